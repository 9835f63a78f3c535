"""Cascade RPN (Vu et al., "Cascade RPN: Delving into High-Quality Region Proposal Network with Adaptive
Convolution", NeurIPS 2019): one anchor per location, refined in two stages.

- Stage 1 regresses each square anchor (size per level, as the RPN's) with a 3x3 convolution dilated by 3: the
  adaptive convolution of an anchor that sits on its cell, whose shape is the same everywhere. Its targets are
  region-based (:func:`region_targets`): the anchors of a box's level whose centres lie in the box's central
  region.
- Stage 2 reads the features with an adaptive convolution (``torchvision.ops.deform_conv2d``) whose 3x3 sampling
  points are spread evenly over each stage-1 anchor (:func:`anchor_offsets`): the features are aligned with the
  refined anchor. It predicts objectness and a second refinement, with IoU targets on the stage-1 anchors
  (positive at IoU >= 0.7, negative below 0.7, each box's best anchor positive).

Both stages regress with the RPN's smooth-L1 on deltas (the paper uses an IoU loss). ``simple`` is the variant of
the CSP-attention seed: two stacked 3x3 conv stages in front of a standard RPN, adaptive convolution off.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torchvision.ops import DeformConv2d

from mirrordet.nn.modules.rpn import RPN
from mirrordet.ops.anchor_boxes import decode_boxes, flatten_levels, grid_anchors

CENTER_RATIO = 0.2  # stage-1 positives: anchor centres in the central 20% (per side) of a box


def anchor_offsets(anchors: torch.Tensor, h: int, w: int, stride: float) -> torch.Tensor:
    """Offsets [B, 18, H, W] of a 3x3 ``deform_conv2d`` (padding 1) that sample the features at the centres of a
    3 x 3 partition of each anchor (the adaptive convolution).

    Args:
        anchors: [B, H * W, 4] xyxy pixels, location-major (one anchor per cell). h, w: the level's size.
        stride: pixels per cell. Cell (i, j) is centred on pixel ((j + 0.5) stride, (i + 0.5) stride).
    """
    b = anchors.shape[0]
    a = anchors.view(b, h, w, 4) / stride - 0.5  # feature coordinates (cell index units)
    k = torch.arange(3, device=anchors.device, dtype=anchors.dtype)
    frac = (k + 0.5) / 3  # the centres of the 3 parts along a side
    ys = a[..., 1, None] + frac * (a[..., 3, None] - a[..., 1, None])  # [B, H, W, 3]
    xs = a[..., 0, None] + frac * (a[..., 2, None] - a[..., 0, None])
    ii = torch.arange(h, device=anchors.device, dtype=anchors.dtype).view(1, h, 1, 1)
    jj = torch.arange(w, device=anchors.device, dtype=anchors.dtype).view(1, 1, w, 1)
    dy = ys - (ii + k - 1)  # minus the regular sampling positions i - 1, i, i + 1
    dx = xs - (jj + k - 1)
    off = torch.stack([dy[..., :, None].expand(-1, -1, -1, 3, 3), dx[..., None, :].expand(-1, -1, -1, 3, 3)], -1)
    return off.reshape(b, h, w, 18).permute(0, 3, 1, 2).contiguous()  # (dy, dx) per kernel point, row-major


def region_targets(gt: torch.Tensor, anchors: torch.Tensor, per_level: Sequence[int], sizes: Sequence[float]
                   ) -> torch.Tensor:
    """Stage-1 assignment of one image: [A] long, the box index (>= 0) of each positive anchor, else -1.

    Each box goes to the level whose anchor size is nearest to sqrt(w * h) in log scale; on that level its
    positives are the anchors whose centres lie in the box's central region (``CENTER_RATIO`` of its width and
    height), and at least the anchor nearest to its centre. An anchor claimed by two boxes takes the smaller.
    """
    matched = torch.full((anchors.shape[0],), -1, dtype=torch.long, device=anchors.device)
    if gt.numel() == 0:
        return matched
    size = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).clamp(min=1e-6).sqrt()
    level = (size[:, None].log() - torch.as_tensor(sizes, device=gt.device, dtype=gt.dtype).log()).abs().argmin(1)
    starts = torch.cumsum(torch.as_tensor([0, *per_level[:-1]], device=gt.device), 0)
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2
    for g in (size.argsort(descending=True)).tolist():  # small boxes last: they win shared anchors
        lo, n = int(starts[level[g]]), int(per_level[int(level[g])])
        c = centers[lo:lo + n]
        box = gt[g]
        gc, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * CENTER_RATIO / 2
        inside = ((c - gc).abs() <= half).all(1)
        inside[((c - gc) ** 2).sum(1).argmin()] = True
        matched[lo:lo + n][inside] = g
    return matched


class CascadeRPN(nn.Module):
    """Two-stage RPN with one anchor per location (see the module docstring).

    Args:
        c: input channels (all levels equal). pre_nms_topk, post_nms_topk, nms_iou: as :class:`RPN`.

    Forward: as :class:`RPN`, with the stage-1 anchors (per image, [B, A, 4], detached) in place of the fixed
    anchors, and ``extras`` = ``{"deltas1": [B, A, 4] stage-1 deltas, "anchors0": [A, 4] the square anchors}``.
    """

    iou_thresholds = (0.7, 0.7)  # stage 2 (fg, bg): no ignored band, as the paper
    stage1 = True  # it has a region-assigned first stage to train

    def __init__(self, c: int, pre_nms_topk: Sequence[int] = (2000, 1000), post_nms_topk: Sequence[int] = (2000, 1000),
                 nms_iou: float = 0.7) -> None:
        super().__init__()
        self.na = 1
        self.pre_nms_topk, self.post_nms_topk, self.nms_iou = tuple(pre_nms_topk), tuple(post_nms_topk), nms_iou
        self.conv1 = nn.Sequential(nn.Conv2d(c, c, 3, padding=3, dilation=3), nn.ReLU(inplace=True))
        self.reg1 = nn.Conv2d(c, 4, 1)
        self.conv2 = DeformConv2d(c, c, 3, padding=1)
        self.cls_logits = nn.Conv2d(c, 1, 1)
        self.bbox_pred = nn.Conv2d(c, 4, 1)
        for m in (self.conv1[0], self.reg1, self.conv2, self.cls_logits, self.bbox_pred):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, feats: list[torch.Tensor], strides: list[float], sizes: list[float]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], dict[str, Any]]:
        b = feats[0].shape[0]
        anchors0 = grid_anchors([f.shape[-2:] for f in feats], strides, sizes, [1.0], [1.0], feats[0].device)
        per_level = [f.shape[-2] * f.shape[-1] for f in feats]
        deltas1 = flatten_levels([self.reg1(self.conv1(f)) for f in feats], 4)  # [B, A, 4]
        anchors1 = decode_boxes(deltas1.detach().float(), anchors0[None].float())  # [B, A, 4] refined, detached
        obj, deltas2, start = [], [], 0
        for f, n, s in zip(feats, per_level, strides):
            off = anchor_offsets(anchors1[:, start:start + n], f.shape[-2], f.shape[-1], float(s)).to(f.dtype)
            h = torch.relu(self.conv2(f, off))
            obj.append(self.cls_logits(h))
            deltas2.append(self.bbox_pred(h))
            start += n
        extras = {"deltas1": deltas1, "anchors0": anchors0}
        return (flatten_levels(obj, 1), flatten_levels(deltas2, 4), anchors1.to(deltas1.dtype), per_level, extras)

    proposals = RPN.proposals  # top-k per level, decode on the (per-image) stage-1 anchors, NMS


def build_rpn(kind: str, c: int, ratios: Sequence[float], topk: Sequence[int]) -> nn.Module:
    """The RPN of a two-stage head: ``standard``, ``conv2`` (two stacked 3x3 convs: torchvision's ``_v2`` RPN head),
    ``cascade`` (this module) or ``cascade-simple`` (the seed's variant: two stacked 3x3 stages before a standard RPN;
    the same layers as ``conv2``)."""
    if kind == "cascade":
        return CascadeRPN(c, pre_nms_topk=topk, post_nms_topk=topk)
    return RPN(c, ratios, pre_nms_topk=topk, post_nms_topk=topk, num_convs=2 if kind in ("conv2", "cascade-simple") else 1)
