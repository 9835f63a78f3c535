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
        per image (RoI labels [r_i] with 0 = background, box targets [r_i, 4], ...), and with a Cascade RPN
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
        for lab, tg, *_ in roi_samples:  # per-image means, summed over the batch
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


class MaskRCNNLoss(RCNNLoss):
    """:class:`RCNNLoss` plus ``roi_mask``: the per-pixel binary cross-entropy of each positive RoI's mask logits on
    its class channel against its resampled ground-truth mask (a :class:`~mirrordet.nn.modules.head_mask_rcnn.
    MaskRCNNHead`), averaged over the RoIs' pixels. Reduction ``"sum"`` like the other terms: the mean over the
    batch's positive RoIs times the batch size."""

    def __init__(self, beta: float = 1 / 9, gains: Sequence[float] = (1.0, 1.0, 1.0, 1.0, 1.0),
                 stage1: bool = False, mask_gain: float = 1.0) -> None:
        super().__init__(beta, gains, stage1)
        self.names = (*self.names, "roi_mask")
        self.mask_gain = float(mask_gain)

    def terms(self, preds: Sequence[Any], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Args: preds = the head's training output: RCNNLoss's entries, then mask logits [P, nc + 1, 28, 28] and
        (classes [P], target masks [P, 28, 28]); ``batch`` gives the batch size (``img``)."""
        logits, (labels, targets) = preds[-2], preds[-1]
        out = super().terms(preds[:-2], batch)
        if labels.numel() == 0:
            mask = logits.sum() * 0
        else:
            picked = logits[torch.arange(labels.numel(), device=labels.device), labels].float()
            mask = F.binary_cross_entropy_with_logits(picked, targets.float()) * batch["img"].shape[0]
        return {**out, "roi_mask": mask * self.mask_gain}
