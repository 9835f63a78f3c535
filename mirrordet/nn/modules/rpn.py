"""RPN: the region proposal network of two-stage detectors (used inside ``RCNNHead``)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes

from mirrordet.ops.anchor_boxes import decode_boxes, flatten_levels, grid_anchors, torchvision_grid_anchors


class RPN(nn.Module):
    """Shared 3x3 conv + ReLU, then per-anchor objectness (1x1) and box deltas (1x1) on every level.

    Args:
        c: input channels (all levels equal). ratios: anchor h / w ratios (one anchor size per level).
        pre_nms_topk: (train, eval) proposals kept per level before NMS.
        post_nms_topk: (train, eval) proposals kept per image after NMS. nms_iou: NMS IoU threshold.
        num_convs: stacked 3x3 conv + ReLU layers before the two 1x1 outputs (2: the simplified Cascade RPN of
            the CSP-attention seed).

    Attributes:
        conventions: ``mirrordet`` (anchors on cell centres) or ``torchvision`` (as its ``AnchorGenerator``
            places them); set by the head from the model file's ``conventions``.
    """

    iou_thresholds = (0.7, 0.3)  # anchor matching (fg, bg); in between is ignored
    stage1 = False  # no first refinement stage (see CascadeRPN)

    def __init__(self, c: int, ratios: Sequence[float] = (0.5, 1.0, 2.0),
                 pre_nms_topk: Sequence[int] = (2000, 1000), post_nms_topk: Sequence[int] = (2000, 1000),
                 nms_iou: float = 0.7, num_convs: int = 1) -> None:
        super().__init__()
        self.ratios, self.na = list(ratios), len(ratios)
        self.conventions = "mirrordet"
        self.pre_nms_topk, self.post_nms_topk, self.nms_iou = tuple(pre_nms_topk), tuple(post_nms_topk), nms_iou
        self.conv = nn.Sequential(*(m for _ in range(num_convs) for m in (nn.Conv2d(c, c, 3, padding=1),
                                                                           nn.ReLU(inplace=True))))
        self.cls_logits = nn.Conv2d(c, self.na, 1)
        self.bbox_pred = nn.Conv2d(c, 4 * self.na, 1)
        for m in (*self.conv[::2], self.cls_logits, self.bbox_pred):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, feats: list[torch.Tensor], strides: list[float], sizes: list[float]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], dict[str, Any]]:
        """Level maps [B, c, H_i, W_i] -> (objectness [B, A, 1] logits, deltas [B, A, 4],
        anchors [A, 4] xyxy pixels, anchors per level [L], extras {} (a cascade's first stage))."""
        hidden = [self.conv(f) for f in feats]
        obj = flatten_levels([self.cls_logits(h) for h in hidden], 1)
        deltas = flatten_levels([self.bbox_pred(h) for h in hidden], 4)
        place = torchvision_grid_anchors if self.conventions == "torchvision" else grid_anchors
        anchors = place([f.shape[-2:] for f in feats], strides, sizes, self.ratios, [1.0], feats[0].device)
        per_level = [f.shape[-2] * f.shape[-1] * self.na for f in feats]
        return obj, deltas, anchors.to(deltas.dtype), per_level, {}

    @torch.no_grad()
    def proposals(self, obj: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor, per_level: list[int],
                  img_hw: tuple[int, int]) -> list[torch.Tensor]:
        """Per image: top-k per level by objectness, decode, clip, drop tiny boxes, NMS per level,
        keep the best ``post_nms_topk``. ``anchors``: [A, 4], or [B, A, 4] per image (a cascade's refined
        anchors). Returns B tensors [P_i, 4] xyxy pixels (detached)."""
        k_pre = self.pre_nms_topk[0 if self.training else 1]
        k_post = self.post_nms_topk[0 if self.training else 1]
        obj, deltas = obj.detach().float()[..., 0], deltas.detach().float()
        level = torch.cat([torch.full((n,), i, device=obj.device) for i, n in enumerate(per_level)])
        keep_idx = []
        start = 0
        for n in per_level:  # top-k candidates of each level
            k = min(k_pre, n)
            keep_idx.append(obj[:, start:start + n].topk(k, dim=1).indices + start)
            start += n
        idx = torch.cat(keep_idx, 1)  # [B, K]
        out = []
        for b in range(obj.shape[0]):
            i = idx[b]
            anc = anchors[b] if anchors.dim() == 3 else anchors
            boxes = clip_boxes_to_image(decode_boxes(deltas[b, i], anc[i].float()), img_hw)
            scores, lv = obj[b, i], level[i]
            keep = remove_small_boxes(boxes, 1e-3)
            boxes, scores, lv = boxes[keep], scores[keep], lv[keep]
            keep = batched_nms(boxes, scores, lv, self.nms_iou)[:k_post]
            out.append(boxes[keep])
        return out
