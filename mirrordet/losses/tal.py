"""Task-aligned label assignment (TOOD) for anchor-free dense heads.

Every anchor point whose center lies inside a ground-truth box is a candidate for that box.
Candidates are ranked by the alignment metric ``t = s**alpha * u**beta``, where ``s`` is the
predicted probability of the box's class and ``u`` the IoU between the predicted box and the
ground truth. The ``topk`` best candidates of each ground truth become positives; an anchor
claimed by several ground truths keeps the one it overlaps most. With ``topk2 < topk`` each ground truth then
keeps only its ``topk2`` best remaining positives: a one-to-one assignment (``topk2`` 1) that still finds a
positive for a box whose best anchor went to a neighbour in the conflict step. Classification targets are
soft: the one-hot label of each positive is scaled by ``t / max_t * max_u`` of its ground truth.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mirrordet.ops.iou import bbox_iou


class TaskAlignedAssigner(nn.Module):
    """Assign ground-truth boxes to anchor points by the task-alignment metric.

    Args:
        topk: positives kept per ground-truth box.
        num_classes: number of classes C; also the label given to background anchors.
        alpha: exponent of the class score in the alignment metric.
        beta: exponent of the IoU in the alignment metric.
        eps: numerical floor (inside-box margin and divisions).
        topk2: positives kept per ground truth after the conflict step (None: ``topk``).
    """

    def __init__(
        self, topk: int = 10, num_classes: int = 80, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9,
        topk2: int | None = None
    ) -> None:
        super().__init__()
        self.topk = int(topk)
        self.topk2 = int(topk2) if topk2 is not None else self.topk
        self.num_classes = int(num_classes)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.eps = float(eps)

    @torch.no_grad()
    def forward(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compute the targets of every anchor.

        Args:
            pd_scores: [B, A, C] predicted class probabilities (after sigmoid).
            pd_bboxes: [B, A, 4] predicted boxes, xyxy pixels.
            anc_points: [A, 2] anchor centers (x, y), pixels.
            gt_labels: [B, M, 1] class index of each ground-truth box (padding rows arbitrary).
            gt_bboxes: [B, M, 4] ground-truth boxes, xyxy pixels.
            mask_gt: [B, M, 1] 1 for real ground-truth rows, 0 for padding.

        Returns:
            target_labels: [B, A] long, class of the assigned box (``num_classes`` for background).
            target_bboxes: [B, A, 4] assigned box, xyxy pixels (zeros for background).
            target_scores: [B, A, C] soft classification targets (zeros for background).
            fg_mask: [B, A] bool, True for positive anchors.
            target_gt_idx: [B, A] long, index into M of the assigned box (0 for background).
        """
        bsz, n_anchors, n_cls = pd_scores.shape
        n_max = gt_bboxes.shape[1]
        device = pd_scores.device
        if n_max == 0:
            return (
                torch.full((bsz, n_anchors), self.num_classes, dtype=torch.long, device=device),
                torch.zeros((bsz, n_anchors, 4), dtype=pd_bboxes.dtype, device=device),
                torch.zeros((bsz, n_anchors, n_cls), dtype=pd_scores.dtype, device=device),
                torch.zeros((bsz, n_anchors), dtype=torch.bool, device=device),
                torch.zeros((bsz, n_anchors), dtype=torch.long, device=device),
            )

        labels = gt_labels.view(bsz, n_max).long().clamp(0, n_cls - 1)  # [B, M]
        valid_gt = mask_gt.view(bsz, n_max, 1).bool()  # [B, M, 1]
        candidate = self._points_in_boxes(anc_points, gt_bboxes) & valid_gt  # [B, M, A]

        align, ious = self._alignment(pd_scores, pd_bboxes, labels, gt_bboxes, candidate)
        mask_pos = self._select_topk(align, self.topk) & candidate  # [B, M, A]
        mask_pos = self._resolve_conflicts(mask_pos, ious)
        if self.topk2 < self.topk:
            mask_pos &= self._select_topk(align * mask_pos, self.topk2)

        fg_mask = mask_pos.any(1)  # [B, A]
        target_gt_idx = mask_pos.to(torch.uint8).argmax(1)  # [B, A]; 0 where background

        target_labels = labels.gather(1, target_gt_idx)  # [B, A]
        target_bboxes = gt_bboxes.gather(1, target_gt_idx.unsqueeze(-1).expand(-1, -1, 4))  # [B, A, 4]
        target_labels = torch.where(fg_mask, target_labels, torch.full_like(target_labels, self.num_classes))
        target_bboxes = target_bboxes * fg_mask.unsqueeze(-1).to(target_bboxes.dtype)

        # Soft targets: align / max_align(gt) * max_iou(gt), taken per anchor from its own gt.
        align = align * mask_pos
        max_align = align.amax(-1, keepdim=True)  # [B, M, 1]
        max_iou = (ious * mask_pos).amax(-1, keepdim=True)  # [B, M, 1]
        norm = (align * max_iou / (max_align + self.eps)).amax(1)  # [B, A]
        onehot = F.one_hot(target_labels.clamp(max=n_cls - 1), n_cls).to(pd_scores.dtype)  # [B, A, C]
        target_scores = onehot * (norm * fg_mask).unsqueeze(-1).to(pd_scores.dtype)
        return target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx

    def _points_in_boxes(self, points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """[A, 2] points, [B, M, 4] xyxy boxes -> [B, M, A] bool, point strictly inside the box."""
        x1y1 = boxes[..., None, :2]  # [B, M, 1, 2]
        x2y2 = boxes[..., None, 2:]
        margins = torch.cat((points - x1y1, x2y2 - points), -1)  # [B, M, A, 4]
        return margins.amin(-1) > self.eps

    def _alignment(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        candidate: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alignment metric and IoU of every (gt, anchor) pair, zero outside ``candidate``.

        Returns:
            align [B, M, A] and ious [B, M, A], float.
        """
        bsz, n_max, n_anchors = candidate.shape
        # Score of each gt's class at every anchor: [B, C, A] gathered along C with [B, M, A] indices.
        cls_scores = pd_scores.transpose(1, 2).gather(1, labels.unsqueeze(-1).expand(-1, -1, n_anchors))
        ious = torch.zeros((bsz, n_max, n_anchors), dtype=pd_bboxes.dtype, device=pd_bboxes.device)
        b, m, a = candidate.nonzero(as_tuple=True)  # IoU only where needed: memory ~ #candidates
        if b.numel():
            pair_iou = bbox_iou(gt_bboxes[b, m], pd_bboxes[b, a], xywh=False).squeeze(-1).clamp_(0)
            ious[b, m, a] = pair_iou.to(ious.dtype)
        align = cls_scores.pow(self.alpha) * ious.pow(self.beta)
        return align * candidate, ious

    @staticmethod
    def _select_topk(align: torch.Tensor, k: int) -> torch.Tensor:
        """[B, M, A] metric -> [B, M, A] bool mask of the ``k`` largest entries of each gt row."""
        k = min(k, align.shape[-1])
        idx = align.topk(k, dim=-1).indices  # [B, M, k]
        chosen = torch.zeros_like(align, dtype=torch.bool)
        return chosen.scatter_(-1, idx, True)

    @staticmethod
    def _resolve_conflicts(mask_pos: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
        """Keep, for an anchor positive for several gts, only the gt with the highest IoU.

        Args:
            mask_pos: [B, M, A] bool positives.
            ious: [B, M, A] IoU of each pair.

        Returns:
            [B, M, A] bool with at most one True per anchor column.
        """
        multi = mask_pos.sum(1, keepdim=True) > 1  # [B, 1, A]
        if not bool(multi.any()):
            return mask_pos
        masked_iou = torch.where(mask_pos, ious, torch.full_like(ious, -1.0))
        best = masked_iou.argmax(1, keepdim=True)  # [B, 1, A]
        best_onehot = torch.zeros_like(mask_pos).scatter_(1, best, True)
        return torch.where(multi, best_onehot, mask_pos)
