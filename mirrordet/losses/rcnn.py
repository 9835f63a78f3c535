"""Faster R-CNN loss: RPN (anchor matching 0.7/0.3, balanced sampling, BCE + smooth-L1) and the RoI
stage (proposals + ground truth, matching 0.5, balanced sampling, cross-entropy + class-specific
smooth-L1), trained jointly. The loss runs the head's RoI stage on the sampled RoIs."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import box_iou

from mirrordet.losses.base import Loss
from mirrordet.losses.targets import image_targets
from mirrordet.ops.anchor_boxes import ROI_WEIGHTS, encode_boxes, match_anchors


def sample_balanced(matched: torch.Tensor, num: int, pos_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Random positives (matched >= 0, at most ``num * pos_fraction``) and negatives (matched == -1)
    filling up to ``num``. Returns (positive indices, negative indices)."""
    pos = (matched >= 0).nonzero(as_tuple=True)[0]
    neg = (matched == -1).nonzero(as_tuple=True)[0]
    n_pos = min(int(num * pos_fraction), pos.numel())
    n_neg = min(num - n_pos, neg.numel())
    pos = pos[torch.randperm(pos.numel(), device=pos.device)[:n_pos]]
    neg = neg[torch.randperm(neg.numel(), device=neg.device)[:n_neg]]
    return pos, neg


class RCNNLoss(Loss):
    """Joint loss of an :class:`~mirrordet.nn.modules.head_rcnn.RCNNHead`.

    Args:
        head: the head (its :meth:`roi_forward` runs on the sampled RoIs; the head of the model being
            trained, so gradients reach its parameters).
        rpn_iou: (fg, bg) anchor IoU thresholds. rpn_batch, rpn_pos: anchors sampled per image, positive fraction.
        roi_iou: RoI fg threshold (below = background). roi_batch, roi_pos: RoIs sampled per image, positive fraction.
        beta: smooth-L1 beta of both box losses. gains: (rpn_obj, rpn_box, roi_cls, roi_box).
    """

    names = ("rpn_obj", "rpn_box", "roi_cls", "roi_box")

    def __init__(self, head: nn.Module, rpn_iou: tuple[float, float] = (0.7, 0.3), rpn_batch: int = 256,
                 rpn_pos: float = 0.5, roi_iou: float = 0.5, roi_batch: int = 512, roi_pos: float = 0.25,
                 beta: float = 1 / 9, gains: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> None:
        self.head, self.rpn_iou, self.rpn_batch, self.rpn_pos = head, rpn_iou, rpn_batch, rpn_pos
        self.roi_iou, self.roi_batch, self.roi_pos, self.beta = roi_iou, roi_batch, roi_pos, beta
        self.gains = tuple(gains)

    def terms(self, preds: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Args: preds = the head's training output [objectness [B, A, 1], deltas [B, A, 4],
        anchors [B, A, 4], proposals [B, P, 4], counts [B], *levels]; batch: ``cls``, ``bboxes``
        (normalized xywh), ``batch_idx``, ``img``.

        Returns:
            ``{"rpn_obj", "rpn_box", "roi_cls", "roi_box"}`` terms (reduction ``"sum"``): each per-image
            loss summed over the batch, gains applied.
        """
        obj, deltas, anchors, props, counts, *feats = preds
        bsz = obj.shape[0]
        targets = image_targets(batch, bsz, obj.device)
        rpn_obj = obj.sum() * 0
        rpn_box = deltas.sum() * 0
        rois, roi_labels, roi_targets = [], [], []
        for i, (labels, gt) in enumerate(targets):
            a = anchors[i].float()
            matched = match_anchors(gt, a, *self.rpn_iou)
            pos, neg = sample_balanced(matched, self.rpn_batch, self.rpn_pos)
            n = max(pos.numel() + neg.numel(), 1)
            sel = torch.cat([pos, neg])
            tgt = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).float()
            rpn_obj = rpn_obj + F.binary_cross_entropy_with_logits(obj[i, sel, 0].float(), tgt, reduction="sum") / n
            if pos.numel():
                rpn_box = rpn_box + F.smooth_l1_loss(deltas[i, pos].float(), encode_boxes(gt[matched[pos]], a[pos]),
                                                     beta=self.beta, reduction="sum") / n
            # second stage: proposals + ground truth, matched at roi_iou, sampled
            cand = torch.cat([props[i, : int(counts[i])].float(), gt])
            if gt.numel():
                iou, idx = box_iou(gt, cand).max(0)
                m = torch.where(iou >= self.roi_iou, idx, torch.full_like(idx, -1))
            else:
                m = torch.full((cand.shape[0],), -1, dtype=torch.long, device=cand.device)
            pos, neg = sample_balanced(m, self.roi_batch, self.roi_pos)
            sel = torch.cat([pos, neg])
            rois.append(cand[sel])
            lab = torch.zeros(sel.numel(), dtype=torch.long, device=cand.device)
            lab[: pos.numel()] = labels[m[pos]] + 1
            roi_labels.append(lab)
            tg = torch.zeros(sel.numel(), 4, device=cand.device)
            if pos.numel():
                tg[: pos.numel()] = encode_boxes(gt[m[pos]], cand[pos], ROI_WEIGHTS)
            roi_targets.append(tg)
        logits, rdeltas = self.head.roi_forward(list(feats), rois)
        logits, rdeltas = logits.float(), rdeltas.float()
        roi_cls, roi_box = logits.sum() * 0, rdeltas.sum() * 0
        start = 0
        for lab, tg in zip(roi_labels, roi_targets):  # per-image means, summed over the batch
            k = lab.numel()
            if k:
                lg, dl = logits[start:start + k], rdeltas[start:start + k]
                roi_cls = roi_cls + F.cross_entropy(lg, lab, reduction="sum") / k
                fg = lab > 0
                if fg.any():
                    roi_box = roi_box + F.smooth_l1_loss(dl[fg, lab[fg]], tg[fg], beta=self.beta, reduction="sum") / k
            start += k
        parts = [p * g for p, g in zip((rpn_obj, rpn_box, roi_cls, roi_box), self.gains)]
        return dict(zip(self.names, parts))
