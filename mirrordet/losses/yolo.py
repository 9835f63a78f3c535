"""Training loss of YOLOv8-style anchor-free heads: BCE class loss + CIoU + DFL (no DFL when
reg_max is 1: the head regresses the side distances directly)."""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
from torch.nn import functional as F

from mirrordet.losses.base import Loss
from mirrordet.losses.bbox import box_losses, dfl_decode
from mirrordet.losses.tal import TaskAlignedAssigner
from mirrordet.ops.anchors import dist2bbox, make_anchors
from mirrordet.ops.boxes import xywh2xyxy
from mirrordet.utils.errors import MirrordetError


def pack_targets(
    cls: torch.Tensor, bboxes: torch.Tensor, batch_idx: torch.Tensor, batch_size: int, img_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat per-batch targets -> padded per-image tensors.

    Args:
        cls: [N, 1] (or [N]) class indices.
        bboxes: [N, 4] normalized xywh relative to the network input.
        batch_idx: [N] image index of each box within the batch.
        batch_size: B.
        img_hw: (H, W) of the network input in pixels.

    Returns:
        gt_labels [B, M, 1] float, gt_bboxes [B, M, 4] xyxy pixels, mask_gt [B, M, 1] bool,
        with M the largest number of boxes in one image (0 when the batch has no boxes).
    """
    device = bboxes.device
    n = bboxes.shape[0]
    img_idx = batch_idx.view(-1).long()
    if n and (int(img_idx.min()) < 0 or int(img_idx.max()) >= batch_size):
        raise MirrordetError(
            f"batch_idx values must lie in [0, {batch_size - 1}] (batch of {batch_size} images)"
        )
    counts = torch.bincount(img_idx, minlength=batch_size) if n else torch.zeros(batch_size, dtype=torch.long)
    counts = counts.to(device)
    m = int(counts.max()) if n else 0
    gt_labels = torch.zeros((batch_size, m, 1), dtype=torch.float32, device=device)
    gt_bboxes = torch.zeros((batch_size, m, 4), dtype=torch.float32, device=device)
    if n:
        order = torch.sort(img_idx, stable=True).indices
        sorted_img = img_idx[order]
        starts = torch.cumsum(counts, 0) - counts  # first flat position of each image
        slot = torch.arange(n, device=device) - starts[sorted_img]
        h, w = img_hw
        scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=device)
        gt_labels[sorted_img, slot] = cls.view(-1, 1)[order].float()
        gt_bboxes[sorted_img, slot] = xywh2xyxy(bboxes[order].float() * scale)
    mask_gt = (torch.arange(m, device=device).view(1, m) < counts.view(-1, 1)).unsqueeze(-1)
    return gt_labels, gt_bboxes, mask_gt


class Assignment(NamedTuple):
    """Which ground truth each anchor was given (for losses that score more per positive anchor).

    Attributes:
        fg_mask: bool [B, A], the positive anchors.
        gt_index: int64 [B, A], per anchor the slot of its ground truth in the image (= the box's row among that
            image's boxes in the batch); meaningless where ``fg_mask`` is False.
        boxes: [B, A, 4] xyxy input pixels of the assigned ground truth.
    """

    fg_mask: torch.Tensor
    gt_index: torch.Tensor
    boxes: torch.Tensor


class DetectionLoss(Loss):
    """Loss of a DFL detection head (YOLOv8 family), with a task-aligned assigner.

    Args:
        nc: number of classes.
        strides: stride in input pixels of each prediction level, in the order of ``preds``.
        reg_max: DFL bins per box side.
        box: gain of the CIoU loss.
        cls: gain of the BCE classification loss.
        dfl: gain of the distribution focal loss.
        tal_topk: positives per ground-truth box in the assigner (1: one-to-one assignment).
        tal_topk2: positives kept per box after the assigner's conflict step (None: ``tal_topk``; see
            :class:`~mirrordet.losses.tal.TaskAlignedAssigner`).
        prefix: put before every term name (the one-to-one branch of end-to-end heads: ``o2o_``).

    Terms (reduction ``"sum"``): ``box_loss``, ``cls_loss`` and, when reg_max > 1, ``dfl_loss``,
    each gain x per-image mean x B.
    """

    def __init__(
        self,
        nc: int,
        strides: Sequence[float],
        reg_max: int = 16,
        box: float = 7.5,
        cls: float = 0.5,
        dfl: float = 1.5,
        tal_topk: int = 10,
        prefix: str = "",
        tal_topk2: int | None = None,
    ) -> None:
        if nc < 1 or reg_max < 1 or not strides or tal_topk < 1:
            raise MirrordetError(
                "DetectionLoss needs nc >= 1, reg_max >= 1, tal_topk >= 1 and at least one stride; "
                f"got {nc}, {reg_max}, {tal_topk}, {strides}"
            )
        self.names = tuple(f"{prefix}{n}" for n in ("box_loss", "cls_loss", "dfl_loss")[: 3 if reg_max > 1 else 2])
        self.nc = int(nc)
        self.strides = [float(s) for s in strides]
        self.reg_max = int(reg_max)
        self.gains = (float(box), float(cls), float(dfl))
        self.no = 4 * self.reg_max + self.nc
        self.assigner = TaskAlignedAssigner(topk=tal_topk, num_classes=self.nc, alpha=0.5, beta=6.0,
                                            topk2=tal_topk2)

    def terms(self, preds: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Compute the loss of one batch.

        Args:
            preds: per level raw head outputs [B, 4 * reg_max + nc, H_i, W_i] (any float dtype).
            batch: ``cls`` [N, 1], ``bboxes`` [N, 4] normalized xywh, ``batch_idx`` [N],
                ``img`` [B, 3, H, W] (only its shape is read).

        Returns:
            ``{"box_loss": box * L_ciou * B, "cls_loss": cls * L_bce * B, "dfl_loss": dfl * L_dfl * B}``
            (no ``dfl_loss`` when reg_max is 1; names prefixed by ``prefix``).
        """
        if len(preds) != len(self.strides):
            raise MirrordetError(
                f"DetectionLoss got {len(preds)} prediction levels for {len(self.strides)} strides"
            )
        device_type = preds[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self.score([p.float() for p in preds], batch)[0]

    def score(
        self, feats: list[torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], Assignment]:
        """The weighted terms of float32 level maps and the assignment they were computed with (for losses that
        score more per positive anchor, such as the segmentation loss)."""
        bsz = feats[0].shape[0]
        for i, f in enumerate(feats):
            if f.dim() != 4 or f.shape[1] != self.no:
                raise MirrordetError(
                    f"prediction level {i} has shape {tuple(f.shape)}; expected [B, {self.no}, H, W] "
                    f"(4 * reg_max={self.reg_max} + nc={self.nc})"
                )
        device = feats[0].device
        flat = torch.cat([f.reshape(bsz, self.no, -1) for f in feats], 2).transpose(1, 2)  # [B, A, no]
        pred_dist, pred_logits = flat.split((4 * self.reg_max, self.nc), -1)
        anchor_points, stride_tensor = make_anchors(feats, self.strides, 0.5)  # [A, 2], [A, 1] grid units

        img_hw = tuple(int(s) for s in batch["img"].shape[-2:])
        gt_labels, gt_bboxes, mask_gt = pack_targets(
            batch["cls"].to(device), batch["bboxes"].to(device), batch["batch_idx"].to(device), bsz, img_hw
        )

        dist = dfl_decode(pred_dist, self.reg_max) if self.reg_max > 1 else pred_dist
        pred_bboxes = dist2bbox(dist, anchor_points, xywh=False)  # grid units
        _, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            pred_logits.detach().sigmoid(),
            pred_bboxes.detach() * stride_tensor,
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
        )
        target_scores_sum = target_scores.sum().clamp(min=1.0)

        loss_cls = F.binary_cross_entropy_with_logits(pred_logits, target_scores, reduction="none").sum()
        loss_cls = loss_cls / target_scores_sum
        if bool(fg_mask.any()):
            loss_box, loss_dfl = box_losses(
                pred_dist,
                pred_bboxes,
                anchor_points,
                target_bboxes / stride_tensor,
                target_scores,
                target_scores_sum,
                fg_mask,
                self.reg_max,
            )
        else:  # keep the regression branch in the graph so every parameter gets a (zero) gradient
            loss_box = loss_dfl = pred_dist.new_zeros(()) + pred_dist.sum() * 0.0

        gain_box, gain_cls, gain_dfl = self.gains
        parts = (loss_box * gain_box, loss_cls * gain_cls, loss_dfl * gain_dfl)
        terms = {name: part * bsz for name, part in zip(self.names, parts)}
        return terms, Assignment(fg_mask, target_gt_idx, target_bboxes)
