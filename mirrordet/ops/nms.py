"""The one non-maximum suppression of the project (torchvision.ops.batched_nms underneath).

:class:`NMSSettings` carries what the caller asks for (thresholds, classes, agnostic, multi-label);
:func:`select_and_suppress` is the core every head's ``postprocess`` ends in: class filter, top-k
candidates, class-wise (or agnostic) NMS, ``max_det`` kept. :func:`non_max_suppression` applies it
to the dense ``[B, 4 + nc, A]`` output of one-stage heads (YOLO Detect, RetinaNet, FCOS).
:func:`dense_topk` is the NMS-free selection of end-to-end heads (one-to-one trained, YOLOv10 /
YOLO26): the best-scored candidates, no suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torchvision

from mirrordet.ops.boxes import xywh2xyxy
from mirrordet.ops.detections import Detections

MAX_NMS = 30000  # candidates handed to NMS at most, by default


@dataclass(frozen=True)
class NMSSettings:
    """What a caller asks of a head's ``postprocess``.

    Attributes:
        conf: minimum score kept. iou: IoU above which a lower-scored box of the same class is
        suppressed. max_det: detections kept per image. classes: keep only these class indices.
        agnostic: suppress across classes. multi_label: a dense-output box may be kept for every
        class whose score passes ``conf`` (else only for its best class).
    """

    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    classes: tuple[int, ...] | None = None
    agnostic: bool = False
    multi_label: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.conf <= 1 or not 0 <= self.iou <= 1:
            raise ValueError(f"conf={self.conf} and iou={self.iou} must be within [0, 1]")


def suppress(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, nms: NMSSettings,
             topk: int = MAX_NMS) -> torch.Tensor:
    """Indices [k] into the candidates that survive: ``nms.classes`` only, the ``topk`` best scored, then
    class-wise (or ``nms.agnostic``) NMS at ``nms.iou``, at most ``nms.max_det``, best first.

    Args:
        boxes: [n, 4] xyxy pixels. scores: [n] (already above ``nms.conf``). labels: [n] int64.
    """
    idx = torch.arange(scores.numel(), device=scores.device)
    if nms.classes is not None:
        idx = idx[torch.isin(labels, torch.as_tensor(list(nms.classes), device=labels.device))]
    if idx.numel() > topk:
        idx = idx[scores[idx].topk(topk).indices]
    if nms.agnostic:
        keep = torchvision.ops.nms(boxes[idx], scores[idx], nms.iou)
    else:
        keep = torchvision.ops.batched_nms(boxes[idx], scores[idx], labels[idx], nms.iou)
    return idx[keep[: nms.max_det]]


def select_and_suppress(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, nms: NMSSettings,
                        topk: int = MAX_NMS) -> Detections:
    """Candidates of one image -> its detections (:func:`suppress`).

    Args:
        boxes: [n, 4] xyxy pixels. scores: [n] (already above ``nms.conf``). labels: [n] int64.
        nms: the settings. topk: the best-scored candidates handed to NMS at most.
    """
    keep = suppress(boxes, scores, labels, nms, topk)
    return Detections(boxes[keep], scores[keep], labels[keep])


def dense_nms_indexed(prediction: torch.Tensor, nms: NMSSettings, topk: int = MAX_NMS,
                      multi_label: bool | None = None) -> list[tuple[Detections, torch.Tensor]]:
    """:func:`dense_nms`, with per image the anchor index [n] (into A) of each detection, for heads that
    carry more per anchor (a segmentation head's mask coefficients)."""
    multi = nms.multi_label if multi_label is None else multi_label
    nc = prediction.shape[1] - 4
    out: list[tuple[Detections, torch.Tensor]] = []
    for x in prediction.transpose(1, 2):  # [A, 4 + nc]
        boxes = xywh2xyxy(x[:, :4])
        scores_all = x[:, 4:]
        if multi and nc > 1:
            anchor, labels = (scores_all > nms.conf).nonzero(as_tuple=True)
            scores = scores_all[anchor, labels]
        else:
            scores, labels = scores_all.max(1)
            anchor = (scores > nms.conf).nonzero(as_tuple=True)[0]
            scores, labels = scores[anchor], labels[anchor]
        keep = suppress(boxes[anchor], scores, labels, nms, topk)
        anchor = anchor[keep]
        out.append((Detections(boxes[anchor], scores[keep], labels[keep]), anchor))
    return out


def dense_nms(prediction: torch.Tensor, nms: NMSSettings, topk: int = MAX_NMS,
              multi_label: bool | None = None) -> list[Detections]:
    """Per-image NMS of a dense output.

    Args:
        prediction: [B, 4 + nc, A] boxes as xywh pixels, per-class scores in [0, 1].
        nms: the settings. topk: candidates (box, class pairs) handed to NMS at most.
        multi_label: overrides ``nms.multi_label`` (heads whose decoding is always multi-label).
    """
    return [d for d, _ in dense_nms_indexed(prediction, nms, topk, multi_label)]


def dense_topk(prediction: torch.Tensor, nms: NMSSettings) -> list[Detections]:
    """NMS-free selection of a dense one-to-one output: per image the ``nms.max_det`` best candidates.

    Args:
        prediction: [B, 4 + nc, A] boxes as xywh pixels, per-class scores in [0, 1].
        nms: the settings; ``iou`` and ``agnostic`` do not apply (nothing is suppressed). With
            ``multi_label`` every (box, class) pair competes, else each box counts once, for its
            best class.

    Returns:
        per image :class:`Detections` with scores above ``nms.conf``, best first.
    """
    out: list[Detections] = []
    for x in prediction.transpose(1, 2):  # [A, 4 + nc]
        boxes, scores_all = xywh2xyxy(x[:, :4]), x[:, 4:]
        if nms.classes is not None:
            allowed = torch.zeros(scores_all.shape[1], dtype=torch.bool, device=x.device)
            allowed[[c for c in nms.classes if 0 <= c < scores_all.shape[1]]] = True
            scores_all = scores_all.masked_fill(~allowed, 0.0)
        if nms.multi_label:
            flat = scores_all.flatten()
            scores, idx = flat.topk(min(nms.max_det, flat.numel()))
            anchor, labels = idx // scores_all.shape[1], idx % scores_all.shape[1]
        else:
            best, best_label = scores_all.max(1)
            scores, anchor = best.topk(min(nms.max_det, best.numel()))
            labels = best_label[anchor]
        keep = scores > nms.conf
        out.append(Detections(boxes[anchor[keep]], scores[keep], labels[keep]))
    return out


def non_max_suppression(
    prediction: torch.Tensor,
    conf_thres: float = 0.25,
    iou_thres: float = 0.7,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    max_det: int = 300,
    max_nms: int = MAX_NMS,
    multi_label: bool = False,
) -> list[torch.Tensor]:
    """:func:`dense_nms` with keyword settings, as [n, 6] rows (x1, y1, x2, y2 pixels, score, class).

    Args:
        prediction: [B, 4 + nc, A] with boxes as xywh pixels and per-class scores in [0, 1].
        max_nms: the top-k option: boxes handed to NMS at most (highest scores first).
        The others: see :class:`NMSSettings`.
    """
    nms = NMSSettings(conf_thres, iou_thres, max_det, None if classes is None else tuple(classes), agnostic,
                      multi_label)
    return [d.rows() for d in dense_nms(prediction, nms, max_nms)]


def per_level_nms(prediction: torch.Tensor, level_sizes: Sequence[int], image_hw: tuple[int, int],
                  nms: NMSSettings, topk: int = 1000) -> list[Detections]:
    """Per-image NMS of a dense multi-label output the way torchvision's one-stage detectors decode it.

    Per level: every (box, class) pair scored above ``nms.conf``, the ``topk`` best of the level, boxes clipped
    to ``image_hw``; then the levels together through class-wise (or agnostic) NMS, ``nms.max_det`` kept.

    Args:
        prediction: [B, 4 + nc, A] boxes as xywh pixels, per-class scores in [0, 1].
        level_sizes: anchors per level (summing to A), finest first.
        image_hw: (height, width) of the network input, in pixels.
    """
    out: list[Detections] = []
    h, w = image_hw
    for x in prediction.transpose(1, 2):  # [A, 4 + nc]
        boxes, scores, labels = [], [], []
        for lvl in x.split(list(level_sizes)):
            flat = lvl[:, 4:].flatten()  # anchor-major, class-minor
            idx = (flat > nms.conf).nonzero(as_tuple=True)[0]
            s, order = flat[idx].topk(min(topk, idx.numel()))
            idx = idx[order]
            anchor, cls = idx // (x.shape[1] - 4), idx % (x.shape[1] - 4)
            b = xywh2xyxy(lvl[anchor, :4])
            b = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
            boxes.append(b)
            scores.append(s)
            labels.append(cls)
        out.append(select_and_suppress(torch.cat(boxes), torch.cat(scores), torch.cat(labels), nms,
                                       topk=sum(level_sizes) * (x.shape[1] - 4)))
    return out
