"""Loss builders keyed by a head's ``loss`` attribute: one head file + one loss file per family.

A builder receives the head (whose YAML-configured attributes it reads explicitly) and the run
settings, and returns a callable ``loss(preds, batch) -> (loss, items)`` with a ``names`` tuple
naming the ``items`` (used for results.csv columns).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from mirrordet.registry import Registry


def _yolo(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.yolo import DetectionLoss

    loss = DetectionLoss(head.nc, head.stride.tolist(), head.reg_max, box=cfg["box"], cls=cfg["cls"], dfl=cfg["dfl"])
    loss.names = ("box_loss", "cls_loss", "dfl_loss")
    return loss


def _retina(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.retina import RetinaLoss

    return RetinaLoss(head.nc, fg_iou=head.fg_iou, bg_iou=head.bg_iou, box_loss=head.box_loss)


def _fcos(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.fcos import FCOSLoss

    return FCOSLoss(head.nc, center_radius=head.center_radius)


def _rcnn(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.rcnn import RCNNLoss

    return RCNNLoss(head)


def build_registry() -> Registry:
    """A fresh registry of the built-in loss builders (no module-level mutable state)."""
    reg = Registry("loss")
    for name, fn in (("yolo", _yolo), ("retina", _retina), ("fcos", _fcos), ("rcnn", _rcnn)):
        reg.add(name, fn)
    return reg


def build_loss(head: nn.Module, cfg: Mapping[str, Any], registry: Registry | None = None) -> Any:
    """The loss of ``head`` (looked up by ``head.loss``); an unknown key raises ``RegistryError``."""
    builder: Callable[[nn.Module, Mapping[str, Any]], Any] = (registry or build_registry()).get(getattr(head, "loss", None))
    return builder(head, cfg)
