"""Anchor boxes, box-delta coding and the IoU matcher of anchor-based detectors (RetinaNet, RPN).

Boxes are xyxy pixels of the network input throughout. Anchors are ordered location-major
(row, column) and then anchor type (ratio-major, then scale), matching a head output
[B, K * C, H, W] reshaped to [B, H * W * K, C] by :func:`flatten_levels`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torchvision.ops import box_iou


def base_anchors(size: float, ratios: Sequence[float], scales: Sequence[float]) -> torch.Tensor:
    """[K, 4] xyxy anchors centred on 0 for one level, K = len(ratios) * len(scales).

    A ratio r is h / w; every anchor of scale s has area (size * s) ** 2.
    """
    r = torch.as_tensor(ratios, dtype=torch.float32)
    s = torch.as_tensor(scales, dtype=torch.float32) * size
    h = (r.sqrt()[:, None] * s[None, :]).reshape(-1)
    w = ((1 / r.sqrt())[:, None] * s[None, :]).reshape(-1)
    return torch.stack([-w, -h, w, h], 1) / 2


def grid_anchors(shapes: Sequence[tuple[int, int]], strides: Sequence[float], sizes: Sequence[float],
                 ratios: Sequence[float], scales: Sequence[float], device: torch.device | None = None) -> torch.Tensor:
    """All anchors of all levels: [A, 4] xyxy pixels, A = sum_i H_i * W_i * K.

    Args:
        shapes: (H_i, W_i) per level. strides: pixels per cell per level. sizes: base size per level.
        ratios, scales: anchor shapes shared by all levels. Anchors are centred on cell centres
        ((x + 0.5) * stride, (y + 0.5) * stride).
    """
    out = []
    for (h, w), st, size in zip(shapes, strides, sizes):
        base = base_anchors(size, ratios, scales).to(device)
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * st
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * st
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        centers = torch.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
        out.append((centers + base[None]).reshape(-1, 4))
    return torch.cat(out)


def torchvision_grid_anchors(shapes: Sequence[tuple[int, int]], strides: Sequence[float], sizes: Sequence[float],
                             ratios: Sequence[float], scales: Sequence[float],
                             device: torch.device | None = None) -> torch.Tensor:
    """:func:`grid_anchors` as torchvision's ``AnchorGenerator`` places them: [A, 4] xyxy pixels.

    Differences from mirrordet's own: each anchor size is ``int(size * scale)`` (torchvision's detectors list
    their sizes that way), the zero-centred base anchors are rounded to whole pixels, and they sit on cell
    corners (``x * stride``), not centres.
    """
    out = []
    for (h, w), st, size in zip(shapes, strides, sizes):
        r = torch.as_tensor(ratios, dtype=torch.float32)
        s = torch.as_tensor([float(int(size * k)) for k in scales], dtype=torch.float32)
        hs = (r.sqrt()[:, None] * s[None, :]).reshape(-1)
        ws = ((1 / r.sqrt())[:, None] * s[None, :]).reshape(-1)
        base = (torch.stack([-ws, -hs, ws, hs], 1) / 2).round().to(device)
        ys = torch.arange(h, device=device, dtype=torch.float32) * st
        xs = torch.arange(w, device=device, dtype=torch.float32) * st
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
        out.append((shifts + base[None]).reshape(-1, 4))
    return torch.cat(out)


def flatten_levels(maps: Sequence[torch.Tensor], c: int) -> torch.Tensor:
    """Per-level head maps [B, K * c, H, W] -> [B, sum(H * W * K), c] (location-major, then anchor)."""
    b = maps[0].shape[0]
    return torch.cat([m.view(b, -1, c, *m.shape[-2:]).permute(0, 3, 4, 1, 2).reshape(b, -1, c) for m in maps], 1)


ROI_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # box-delta weights of two-stage RoI heads (Faster R-CNN)


def encode_boxes(gt: torch.Tensor, anchors: torch.Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """R-CNN deltas [N, 4] (dx, dy, dw, dh) that map ``anchors`` [N, 4] xyxy onto ``gt`` [N, 4] xyxy."""
    wx, wy, ww, wh = weights
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    gw, gh = (gt[:, 2] - gt[:, 0]).clamp(min=1e-3), (gt[:, 3] - gt[:, 1]).clamp(min=1e-3)
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    return torch.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw), wh * torch.log(gh / ah)], 1)


def decode_boxes(deltas: torch.Tensor, anchors: torch.Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 clip: float = math.log(1000.0 / 16)) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`: deltas [..., 4] + anchors [..., 4] xyxy -> boxes [..., 4] xyxy.

    dw and dh are clamped at ``clip`` so exp() cannot overflow.
    """
    wx, wy, ww, wh = weights
    aw, ah = anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]
    ax, ay = anchors[..., 0] + 0.5 * aw, anchors[..., 1] + 0.5 * ah
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw, dh = (deltas[..., 2] / ww).clamp(max=clip), (deltas[..., 3] / wh).clamp(max=clip)
    cx, cy, w, h = ax + dx * aw, ay + dy * ah, aw * dw.exp(), ah * dh.exp()
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def match_anchors(gt: torch.Tensor, anchors: torch.Tensor, fg_iou: float, bg_iou: float,
                  low_quality: bool = True) -> torch.Tensor:
    """IoU matcher: index of the matched ground-truth box for every anchor.

    Args:
        gt: [M, 4] xyxy ground-truth boxes of one image. anchors: [A, 4] xyxy.
        fg_iou: IoU >= fg_iou is a positive. bg_iou: IoU < bg_iou is a negative; between is ignored.
        low_quality: also make positive, for each ground truth, the anchors of its highest IoU
            (ties included), even below ``fg_iou`` (so every box has at least one positive).

    Returns:
        [A] long: the matched gt index (>= 0), -1 for negatives, -2 for ignored anchors.
    """
    if gt.numel() == 0:
        return torch.full((anchors.shape[0],), -1, dtype=torch.long, device=anchors.device)
    iou = box_iou(gt, anchors)  # [M, A]
    best, idx = iou.max(0)
    matched = idx.clone()
    matched[best < fg_iou] = -2
    matched[best < bg_iou] = -1
    if low_quality:
        per_gt = iou.max(1, keepdim=True).values  # [M, 1]
        gi, ai = ((iou == per_gt) & (per_gt > 0)).nonzero(as_tuple=True)
        matched[ai] = idx[ai]
    return matched


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
