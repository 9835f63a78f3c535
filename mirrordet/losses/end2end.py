"""Dual label assignment of end-to-end (NMS-free) heads: YOLOv10, YOLO26.

The head has two branches over the same features. The one-to-many branch is trained as a YOLOv8
head (task-aligned assigner, ``topk`` positives per object) and gives rich supervision; the
one-to-one branch, the one decoded at inference, gets exactly one positive per object, so that its
top-scored boxes need no NMS. Both assigners use the same matching metric
``score^alpha * IoU^beta`` (alpha 0.5, beta 6: the consistent matching metric), so the
one-to-one positive is the best of the one-to-many positives. The one-to-one assigner ranks
``o2o_candidates`` (7) anchors per object and keeps the best one left after anchors claimed by two
objects went to the one they overlap most: with top-1 ranking alone, an object whose best anchor a
neighbour took would get no positive at all (crowded small objects).

The two branches are balanced progressively over training: the one-to-many terms weigh ``o2m_start`` (0.8)
in the first epoch and fall linearly to ``o2m_end`` (0.1) in the last, the one-to-one terms weigh the rest
(0.2 -> 0.9). The rich one-to-many supervision shapes the shared features early; the branch that is decoded
at inference dominates late. (Ultralytics' YOLO26 training describes this schedule as progressive loss
balancing; it applies to YOLOv10 heads the same way.) ``o2m_start == o2m_end`` fixes the balance.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from mirrordet.losses.base import Loss
from mirrordet.losses.yolo import DetectionLoss
from mirrordet.utils.errors import MirrordetError


class EndToEndDetectionLoss(Loss):
    """Weighted sum of a one-to-many (``tal_topk``) and a one-to-one (one positive per object) :class:`DetectionLoss`.

    Args: as :class:`DetectionLoss` (gains shared by both branches), the one-to-many weight's schedule
    ``o2m_start`` (first epoch) -> ``o2m_end`` (last epoch) (the one-to-one terms weigh ``1 - o2m``), and
    ``o2o_candidates``, the anchors the one-to-one assigner ranks per object before keeping one.

    Terms: the one-to-many ``box_loss``, ``cls_loss`` [, ``dfl_loss``], then the same names
    prefixed ``o2o_`` for the one-to-one branch.
    """

    def __init__(self, nc: int, strides: Sequence[float], reg_max: int = 16, box: float = 7.5, cls: float = 0.5,
                 dfl: float = 1.5, tal_topk: int = 10, o2m_start: float = 0.8, o2m_end: float = 0.1,
                 o2o_candidates: int = 7) -> None:
        if not (0 <= o2m_end <= 1 and 0 <= o2m_start <= 1):
            raise MirrordetError(f"one-to-many weights must be within [0, 1], got {o2m_start} -> {o2m_end}")
        self.one2many = DetectionLoss(nc, strides, reg_max, box, cls, dfl, tal_topk=tal_topk)
        self.one2one = DetectionLoss(nc, strides, reg_max, box, cls, dfl, tal_topk=o2o_candidates, tal_topk2=1,
                                     prefix="o2o_")
        self.names = self.one2many.names + self.one2one.names
        self.o2m_start, self.o2m_end = float(o2m_start), float(o2m_end)
        self.o2m = self.o2m_start  # the weight of the one-to-many terms now; the one-to-one terms weigh 1 - o2m

    def set_progress(self, epoch: int, epochs: int) -> None:
        """The one-to-many weight of ``epoch`` (0-based): ``o2m_start`` at the first epoch, linearly down to
        ``o2m_end`` at the last (``epochs - 1``) and after it."""
        left = max(1.0 - epoch / max(epochs - 1, 1), 0.0)
        self.o2m = self.o2m_end + (self.o2m_start - self.o2m_end) * left

    def terms(self, preds: Sequence[Sequence[torch.Tensor]], batch: Mapping[str, torch.Tensor]
              ) -> dict[str, torch.Tensor]:
        """Args: preds = ``[one-to-many level maps, one-to-one level maps]`` (the head's training
        output), each a list of [B, 4 * reg_max + nc, H_i, W_i]; batch as :class:`DetectionLoss`."""
        if len(preds) != 2 or not all(isinstance(p, (list, tuple)) for p in preds):
            raise MirrordetError("an end-to-end head's training output must be [one-to-many maps, one-to-one maps]")
        many = {k: v * self.o2m for k, v in self.one2many(preds[0], batch).items()}
        one = {k: v * (1.0 - self.o2m) for k, v in self.one2one(preds[1], batch).items()}
        return {**many, **one}
