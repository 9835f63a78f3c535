"""Loss builders keyed by a head's ``loss`` attribute: one head file + one loss file per family.

A builder receives the head (whose YAML-configured attributes it reads explicitly) and the run
settings, and returns a :class:`mirrordet.losses.base.Loss`: ``loss(preds, batch)`` gives a dict
of named, weighted terms (``loss.names``, the results.csv columns), and the loss owns their
reduction (:meth:`~mirrordet.losses.base.Loss.total`, DDP scaling included).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from mirrordet.losses.base import Loss, check_loss
from mirrordet.registry import Registry


def _yolo(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.end2end import EndToEndDetectionLoss
    from mirrordet.losses.yolo import DetectionLoss

    kind = EndToEndDetectionLoss if head.end2end else DetectionLoss
    return kind(head.nc, head.stride.tolist(), head.reg_max, box=cfg["box"], cls=cfg["cls"], dfl=cfg["dfl"])


def _yolo_seg(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.segment import SegmentationLoss

    return SegmentationLoss(head.nc, head.stride.tolist(), head.reg_max, box=cfg["box"], cls=cfg["cls"], dfl=cfg["dfl"])


def _retina(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.retina import RetinaLoss

    return RetinaLoss(head.nc, fg_iou=head.fg_iou, bg_iou=head.bg_iou, box_loss=head.box_loss)


def _fcos(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.fcos import FCOSLoss

    return FCOSLoss(head.nc, center_radius=head.center_radius)


def _rcnn(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.rcnn import RCNNLoss

    return RCNNLoss(stage1=bool(head.rpn_stage1))


def _mask_rcnn(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.rcnn import MaskRCNNLoss

    return MaskRCNNLoss(stage1=bool(head.rpn_stage1))


def _cross_entropy(head: nn.Module, cfg: Mapping[str, Any]) -> Any:
    from mirrordet.losses.classification import ClassificationLoss

    return ClassificationLoss(cfg.get("label_smoothing", 0.0))


def build_registry() -> Registry:
    """A fresh registry of the built-in loss builders (no module-level mutable state)."""
    reg = Registry("loss")
    for name, fn in (("yolo", _yolo), ("yolo_seg", _yolo_seg), ("retina", _retina), ("fcos", _fcos), ("rcnn", _rcnn),
                     ("mask_rcnn", _mask_rcnn),
                     ("cross_entropy", _cross_entropy)):
        reg.add(name, fn)
    return reg


def build_loss(head: nn.Module, cfg: Mapping[str, Any], world_size: int = 1, registry: Registry | None = None) -> Loss:
    """The loss of ``head`` (looked up by ``head.loss``) for a run on ``world_size`` DDP processes.

    Raises:
        RegistryError: an unknown ``head.loss``.
        MirrordetError: a builder whose result breaks the :class:`Loss` contract.
    """
    builder: Callable[[nn.Module, Mapping[str, Any]], Any] = (registry or build_registry()).get(getattr(head, "loss", None))
    loss = builder(head, cfg)
    check_loss(loss)
    loss.world_size = int(world_size)
    return loss
