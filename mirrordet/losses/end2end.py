"""Dual label assignment of end-to-end (NMS-free) heads: YOLOv10, YOLO26.

The head has two branches over the same features. The one-to-many branch is trained as a YOLOv8
head (task-aligned assigner, ``topk`` positives per object) and gives rich supervision; the
one-to-one branch, the one decoded at inference, gets exactly one positive per object, so that its
top-scored boxes need no NMS. Both assigners use the same matching metric
``score^alpha * IoU^beta`` (alpha 0.5, beta 6: the consistent matching metric), so the
one-to-one positive is the best of the one-to-many positives.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from mirrordet.losses.base import Loss
from mirrordet.losses.yolo import DetectionLoss
from mirrordet.utils.errors import MirrordetError


class EndToEndDetectionLoss(Loss):
    """Sum of a one-to-many (``tal_topk``) and a one-to-one (top-1) :class:`DetectionLoss`.

    Args: as :class:`DetectionLoss` (gains shared by both branches).

    Terms: the one-to-many ``box_loss``, ``cls_loss`` [, ``dfl_loss``], then the same names
    prefixed ``o2o_`` for the one-to-one branch.
    """

    def __init__(self, nc: int, strides: Sequence[float], reg_max: int = 16, box: float = 7.5, cls: float = 0.5,
                 dfl: float = 1.5, tal_topk: int = 10) -> None:
        self.one2many = DetectionLoss(nc, strides, reg_max, box, cls, dfl, tal_topk=tal_topk)
        self.one2one = DetectionLoss(nc, strides, reg_max, box, cls, dfl, tal_topk=1, prefix="o2o_")
        self.names = self.one2many.names + self.one2one.names

    def terms(self, preds: Sequence[Sequence[torch.Tensor]], batch: Mapping[str, torch.Tensor]
              ) -> dict[str, torch.Tensor]:
        """Args: preds = ``[one-to-many level maps, one-to-one level maps]`` (the head's training
        output), each a list of [B, 4 * reg_max + nc, H_i, W_i]; batch as :class:`DetectionLoss`."""
        if len(preds) != 2 or not all(isinstance(p, (list, tuple)) for p in preds):
            raise MirrordetError("an end-to-end head's training output must be [one-to-many maps, one-to-one maps]")
        return {**self.one2many(preds[0], batch), **self.one2one(preds[1], batch)}
