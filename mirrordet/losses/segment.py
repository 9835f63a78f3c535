"""Training loss of the YOLO-seg head: the detection loss plus a per-instance mask loss.

Each positive anchor of the task-aligned assignment predicts the mask of its ground truth as
``coefficients @ prototypes`` (YOLACT). The mask term is the per-pixel binary cross-entropy against the
ground-truth instance mask at the prototypes' resolution (area-averaged from the sample's index map, so a
pixel partly covered gets a soft target), counted only inside the ground-truth box, summed and divided by
the box's area, then averaged over the positives. Its gain is the box gain, as in YOLOv8-seg.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch.nn import functional as F

from mirrordet.losses.base import Loss
from mirrordet.losses.yolo import Assignment, DetectionLoss
from mirrordet.ops.masks import crop_masks, instance_masks
from mirrordet.utils.errors import MirrordetError


class SegmentationLoss(Loss):
    """:class:`DetectionLoss` terms plus ``seg_loss``.

    Args: as :class:`DetectionLoss`; ``box`` is also the gain of the mask term.

    Terms (reduction ``"sum"``): ``box_loss``, ``seg_loss``, ``cls_loss`` [, ``dfl_loss``].
    """

    def __init__(self, nc: int, strides: Sequence[float], reg_max: int = 16, box: float = 7.5, cls: float = 0.5,
                 dfl: float = 1.5) -> None:
        self.detection = DetectionLoss(nc, strides, reg_max, box, cls, dfl)
        names = self.detection.names
        self.names = (names[0], "seg_loss", *names[1:])
        self.gain = float(box)

    def terms(self, preds: Sequence, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Args: preds = ``[level maps, coefficients [B, nm, A], prototypes [B, nm, h, w]]`` (the head's
        training output); batch as :class:`DetectionLoss` plus ``masks`` int16 [B, H, W] index maps."""
        if len(preds) != 3:
            raise MirrordetError("a segmentation head's training output must be [level maps, coefficients, prototypes]")
        if "masks" not in batch:
            raise MirrordetError("the segmentation loss needs the batch's `masks` (a segment dataset)")
        maps, coef, proto = preds
        with torch.autocast(device_type=coef.device.type, enabled=False):
            det, assigned = self.detection.score([p.float() for p in maps], batch)
            seg = self.mask_loss(coef.float(), proto.float(), batch["masks"].to(coef.device), assigned)
        bsz = coef.shape[0]
        return {self.names[0]: det[self.names[0]], "seg_loss": seg * self.gain * bsz,
                **{k: v for k, v in det.items() if k != self.names[0]}}

    @staticmethod
    def mask_loss(coef: torch.Tensor, proto: torch.Tensor, masks: torch.Tensor, assigned: Assignment) -> torch.Tensor:
        """Mean over positive anchors of the box-normalized mask BCE.

        Args:
            coef: [B, nm, A] mask coefficients. proto: [B, nm, h, w] prototypes.
            masks: int [B, H, W] index maps (k + 1 = the image's k-th box) at the network input.
            assigned: the detection loss's assignment (positives, their ground-truth slot and box).
        """
        n_pos = int(assigned.fg_mask.sum())
        if n_pos == 0:  # keep both branches in the graph (zero gradient)
            return (coef.sum() + proto.sum()) * 0.0
        b, nm, h, w = proto.shape
        scale = torch.tensor([w / masks.shape[-1], h / masks.shape[-2]] * 2, device=proto.device)
        total = proto.new_zeros(())
        for i in range(b):
            pos = assigned.fg_mask[i]
            if not bool(pos.any()):
                continue
            slots = assigned.gt_index[i][pos]  # [P]
            gt = instance_masks(masks[i], int(slots.max()) + 1).float()  # [m, H, W]
            gt = F.interpolate(gt[None], size=(h, w), mode="area")[0][slots]  # [P, h, w] soft targets
            logits = (coef[i][:, pos].T @ proto[i].view(nm, -1)).view(-1, h, w)
            boxes = assigned.boxes[i][pos] * scale  # xyxy prototype pixels
            bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
            area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1.0)
            total = total + (crop_masks(bce, boxes).sum((1, 2)) / area).sum()
        return total / n_pos
