"""Box regression losses of DFL heads: CIoU loss and distribution focal loss (DFL).

A DFL head predicts, for each of the four side distances (left, top, right, bottom), a
discrete distribution over ``reg_max`` bins ``0 .. reg_max - 1`` (grid units). The distance is
the expectation of that distribution. DFL pushes probability mass onto the two bins that
bracket the target distance, in proportion to how close each bin is (Li et al., GFL, 2020).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mirrordet.ops.anchors import bbox2dist
from mirrordet.ops.iou import bbox_iou


def dfl_decode(pred_dist: torch.Tensor, reg_max: int) -> torch.Tensor:
    """Expected side distances of a DFL head.

    Args:
        pred_dist: [B, A, 4 * reg_max] raw logits, grouped by side (l, t, r, b).
        reg_max: number of bins per side.

    Returns:
        [B, A, 4] expected (l, t, r, b) distances in grid units.
    """
    bsz, n_anchors, _ = pred_dist.shape
    bins = torch.arange(reg_max, dtype=pred_dist.dtype, device=pred_dist.device)
    prob = pred_dist.view(bsz, n_anchors, 4, reg_max).softmax(-1)
    return (prob * bins).sum(-1)


def distribution_focal_loss(pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DFL of each side, averaged over the four sides.

    Args:
        pred_logits: [N, 4, reg_max] raw logits.
        target: [N, 4] target distances in grid units, within [0, reg_max - 1).

    Returns:
        [N, 1] loss per anchor.
    """
    n, sides, reg_max = pred_logits.shape
    left = target.floor().long().clamp(0, reg_max - 2)
    right = left + 1
    w_left = right.to(target.dtype) - target  # weight of the lower bin
    w_right = 1.0 - w_left
    logits = pred_logits.reshape(-1, reg_max)
    ce_left = F.cross_entropy(logits, left.reshape(-1), reduction="none").view(n, sides)
    ce_right = F.cross_entropy(logits, right.reshape(-1), reduction="none").view(n, sides)
    return (ce_left * w_left + ce_right * w_right).mean(-1, keepdim=True)


def box_losses(
    pred_dist: torch.Tensor,
    pred_bboxes: torch.Tensor,
    anchor_points: torch.Tensor,
    target_bboxes: torch.Tensor,
    target_scores: torch.Tensor,
    target_scores_sum: torch.Tensor,
    fg_mask: torch.Tensor,
    reg_max: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIoU and DFL losses over positive anchors, weighted by their soft class targets.

    Args:
        pred_dist: [B, A, 4 * reg_max] raw side-distance logits.
        pred_bboxes: [B, A, 4] decoded boxes, xyxy grid units.
        anchor_points: [A, 2] anchor centers, grid units.
        target_bboxes: [B, A, 4] assigned boxes, xyxy grid units.
        target_scores: [B, A, C] soft class targets from the assigner.
        target_scores_sum: scalar normalizer (>= 1).
        fg_mask: [B, A] bool positives.
        reg_max: bins per side (1: no DFL; pred_dist holds the distances themselves).

    Returns:
        (ciou_loss, dfl_loss), scalars (dfl_loss 0 when reg_max is 1).
    """
    weight = target_scores.sum(-1)[fg_mask].unsqueeze(-1)  # [P, 1]
    iou = bbox_iou(pred_bboxes[fg_mask], target_bboxes[fg_mask], xywh=False, CIoU=True)  # [P, 1]
    loss_iou = ((1.0 - iou) * weight).sum() / target_scores_sum
    if reg_max == 1:  # no distribution to fit: the head regresses the distances directly
        return loss_iou, loss_iou.new_zeros(())

    points = anchor_points.unsqueeze(0).expand(fg_mask.shape[0], -1, -1)[fg_mask]  # [P, 2]
    target_ltrb = bbox2dist(points, target_bboxes[fg_mask], reg_max - 1)  # clamp to reg_max - 1.01
    logits = pred_dist[fg_mask].view(-1, 4, reg_max)
    loss_dfl = (distribution_focal_loss(logits, target_ltrb) * weight).sum() / target_scores_sum
    return loss_iou, loss_dfl
