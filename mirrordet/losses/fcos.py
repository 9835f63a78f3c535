"""FCOS loss: scale-range + center-sampling assignment, focal + GIoU + centerness BCE."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from mirrordet.losses.base import Loss
from mirrordet.ops.targets import image_targets


def fcos_assign(points: torch.Tensor, gt: torch.Tensor, center_radius: float = 1.5,
                range_mult: tuple[float, float] = (4.0, 8.0)) -> torch.Tensor:
    """Assign each point to one ground-truth box.

    A point (x, y, stride) is positive for a box when it lies inside the box, (if
    ``center_radius`` > 0) within ``center_radius * stride`` of the box centre on both axes, and the
    largest of its distances (l, t, r, b) lies in (range_mult[0] * stride, range_mult[1] * stride]
    (no lower bound on the finest level, no upper bound on the coarsest). Ties go to the smallest box.

    Args:
        points: [A, 3] (x, y, stride) pixels. gt: [M, 4] xyxy pixels.

    Returns:
        [A] long: the assigned box index, -1 for background.
    """
    if gt.numel() == 0:
        return torch.full((points.shape[0],), -1, dtype=torch.long, device=points.device)
    x, y, s = points[:, 0, None], points[:, 1, None], points[:, 2, None]  # [A, 1]
    ltrb = torch.stack([x - gt[:, 0], y - gt[:, 1], gt[:, 2] - x, gt[:, 3] - y], -1)  # [A, M, 4]
    ok = ltrb.min(-1).values > 0
    if center_radius > 0:
        cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2
        r = center_radius * s
        ok &= ((x - cx).abs() < r) & ((y - cy).abs() < r)
    dist = ltrb.max(-1).values
    lo = torch.where(s == s.min(), torch.zeros_like(s), range_mult[0] * s)
    hi = torch.where(s == s.max(), torch.full_like(s, float("inf")), range_mult[1] * s)
    ok &= (dist > lo) & (dist <= hi)
    area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None].expand_as(dist)
    area = torch.where(ok, area, torch.full_like(area, float("inf")))
    best, idx = area.min(1)
    return torch.where(torch.isfinite(best), idx, torch.full_like(idx, -1))


def centerness(ltrb: torch.Tensor) -> torch.Tensor:
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) of [N, 4] positive distances -> [N]."""
    lr, tb = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
    return ((lr.min(1).values / lr.max(1).values.clamp(min=1e-6)) *
            (tb.min(1).values / tb.max(1).values.clamp(min=1e-6))).clamp(min=0).sqrt()


class FCOSLoss(Loss):
    """Loss of an :class:`~mirrordet.nn.modules.head_fcos.FCOSHead`.

    Args:
        nc: classes. center_radius: center sampling radius in strides (0 = whole box).
        range_mult: per-level regression range in strides. alpha, gamma: focal loss.
        box, cls, ctr: gains of the GIoU, focal and centerness BCE losses.
    """

    names = ("box_loss", "cls_loss", "ctr_loss")

    def __init__(self, nc: int, center_radius: float = 1.5, range_mult: tuple[float, float] = (4.0, 8.0),
                 alpha: float = 0.25, gamma: float = 2.0, box: float = 1.0, cls: float = 1.0, ctr: float = 1.0) -> None:
        self.nc, self.center_radius, self.range_mult = nc, center_radius, range_mult
        self.alpha, self.gamma, self.gains = alpha, gamma, (box, cls, ctr)

    def terms(self, preds: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Args: preds = [cls [B, A, nc], ltrb [B, A, 4] pixels, ctr [B, A, 1], points [B, A, 3]].

        Returns:
            ``{"box_loss": box * GIoU, "cls_loss": cls * focal, "ctr_loss": ctr * BCE}`` (reduction
            ``"sum"``): each summed over points, divided by the image's positives (>= 1), summed over images.
        """
        with torch.autocast(device_type=preds[0].device.type, enabled=False):
            cls_logits, ltrb, ctr, points = (p.float() for p in preds)
            bsz = cls_logits.shape[0]
            parts = [ltrb.sum() * 0, cls_logits.new_zeros(()), ctr.sum() * 0]  # keep every branch in the graph
            for i, (labels, gt) in enumerate(image_targets(batch, bsz, cls_logits.device)):
                idx = fcos_assign(points[i], gt, self.center_radius, self.range_mult)
                fg = idx >= 0
                n_fg = max(int(fg.sum()), 1)
                target = torch.zeros_like(cls_logits[i])
                target[fg, labels[idx[fg]]] = 1.0
                parts[1] = parts[1] + sigmoid_focal_loss(cls_logits[i], target, self.alpha, self.gamma,
                                                         reduction="sum") / n_fg
                if fg.any():
                    p = points[i][fg]
                    box_gt = gt[idx[fg]]
                    pred = torch.cat([p[:, :2] - ltrb[i][fg][:, :2], p[:, :2] + ltrb[i][fg][:, 2:]], 1)
                    parts[0] = parts[0] + generalized_box_iou_loss(pred, box_gt, reduction="sum") / n_fg
                    d = torch.cat([p[:, :2] - box_gt[:, :2], box_gt[:, 2:] - p[:, :2]], 1)
                    parts[2] = parts[2] + F.binary_cross_entropy_with_logits(
                        ctr[i][fg][:, 0], centerness(d), reduction="sum") / n_fg
            parts = [p * g for p, g in zip(parts, self.gains)]
            return dict(zip(self.names, parts))
