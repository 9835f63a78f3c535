"""Top-k + class-wise NMS of decoded one-stage outputs (RetinaNet, FCOS heads' ``postprocess``)."""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms

from mirrordet.ops.boxes import xywh2xyxy


def topk_nms(pred: torch.Tensor, conf: float, iou: float, max_det: int, topk: int = 1000) -> list[torch.Tensor]:
    """Per image: scores > ``conf``, the ``topk`` best (box, class) pairs, class-wise NMS, ``max_det`` kept.

    Args:
        pred: [B, 4 + nc, A] boxes as xywh pixels, per-class scores in [0, 1].

    Returns:
        list of B tensors [n, 6]: x1, y1, x2, y2 (pixels), score, class.
    """
    nc = pred.shape[1] - 4
    out = []
    for x in pred.transpose(1, 2):  # [A, 4 + nc]
        scores = x[:, 4:].reshape(-1)
        keep = (scores > conf).nonzero(as_tuple=True)[0]
        if keep.numel() > topk:
            keep = keep[scores[keep].topk(topk).indices]
        a, c = keep // nc, keep % nc
        boxes, s = xywh2xyxy(x[a, :4]), scores[keep]
        k = batched_nms(boxes, s, c, iou)[:max_det]
        out.append(torch.cat([boxes[k], s[k, None], c[k, None].to(boxes.dtype)], 1))
    return out
