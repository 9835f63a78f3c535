"""Faster R-CNN loss: binary cross-entropy + smooth-L1 of the RPN on its sampled anchors, and
cross-entropy + class-specific smooth-L1 of the RoI stage on its sampled RoIs.

The head assigns and samples both stages' targets in its training forward (as torchvision's RPN
and RoIHeads do) and runs its RoI stage on the sampled RoIs; this loss only scores what it returns.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch.nn import functional as F

from mirrordet.losses.base import Loss


class RCNNLoss(Loss):
    """Joint loss of an :class:`~mirrordet.nn.modules.head_rcnn.RCNNHead`.

    Args:
        beta: smooth-L1 beta of the box losses. gains: (rpn_obj, rpn_box, roi_cls, roi_box[, rpn_box1]).
        stage1: the head has a Cascade RPN, whose first (regression-only) stage adds the term ``rpn_box1``.
    """

    def __init__(self, beta: float = 1 / 9, gains: Sequence[float] = (1.0, 1.0, 1.0, 1.0, 1.0),
                 stage1: bool = False) -> None:
        self.beta, self.gains, self.stage1 = beta, tuple(gains), stage1
        self.names = ("rpn_obj", "rpn_box", "roi_cls", "roi_box", *(("rpn_box1",) if stage1 else ()))

    def terms(self, preds: Sequence[Any], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Args: preds = the head's training output (its ``train_outputs``): objectness [B, A, 1],
        rpn deltas [B, A, 4], per image (sampled anchors [k], their objectness targets [k], positive
        anchors [p], their box targets [p, 4]), RoI logits [R, nc + 1], RoI deltas [R, nc + 1, 4] and
        per image (RoI labels [r_i] with 0 = background, box targets [r_i, 4]), and with a Cascade RPN
        (stage-1 deltas [B, A, 4], per image (positive anchors, box targets)); ``batch`` is not read.

        Returns:
            ``{"rpn_obj", "rpn_box", "roi_cls", "roi_box"}`` terms (reduction ``"sum"``): each a
            per-image mean over the sampled anchors / RoIs, summed over the batch, gains applied.
        """
        obj, deltas, rpn_samples, logits, rdeltas, roi_samples = preds[:6]
        rpn_obj = obj.sum() * 0
        rpn_box = deltas.sum() * 0
        for i, (sel, target, pos, box_target) in enumerate(rpn_samples):
            n = max(sel.numel(), 1)
            rpn_obj = rpn_obj + F.binary_cross_entropy_with_logits(obj[i, sel, 0].float(), target, reduction="sum") / n
            if pos.numel():
                rpn_box = rpn_box + F.smooth_l1_loss(deltas[i, pos].float(), box_target, beta=self.beta,
                                                     reduction="sum") / n
        logits, rdeltas = logits.float(), rdeltas.float()
        roi_cls, roi_box = logits.sum() * 0, rdeltas.sum() * 0
        start = 0
        for lab, tg in roi_samples:  # per-image means, summed over the batch
            k = lab.numel()
            if k:
                lg, dl = logits[start:start + k], rdeltas[start:start + k]
                roi_cls = roi_cls + F.cross_entropy(lg, lab, reduction="sum") / k
                fg = lab > 0
                if fg.any():
                    roi_box = roi_box + F.smooth_l1_loss(dl[fg, lab[fg]], tg[fg], beta=self.beta, reduction="sum") / k
            start += k
        parts = [rpn_obj, rpn_box, roi_cls, roi_box]
        if self.stage1:  # a Cascade RPN's first stage: smooth-L1 on its region-assigned positives, per-image means
            deltas1, stage1 = preds[6]
            rpn_box1 = deltas1.sum() * 0
            for i, (pos, target) in enumerate(stage1):
                if pos.numel():
                    rpn_box1 = rpn_box1 + F.smooth_l1_loss(deltas1[i, pos].float(), target, beta=self.beta,
                                                           reduction="sum") / pos.numel()
            parts.append(rpn_box1)
        return dict(zip(self.names, (p * g for p, g in zip(parts, self.gains))))
