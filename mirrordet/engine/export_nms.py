"""NMS inside an exported detector graph (``mirrordet export nms=True``), for runtimes without a NMS step.

:class:`NMSModel` wraps the fused detector: per image, the boxes and the best class of each anchor, the ``topk``
best candidates, class-wise (or class-agnostic) ``torchvision.ops.batched_nms`` (traced to ONNX's
NonMaxSuppression), the best ``max_det`` kept. Output ``output0``: [B, max_det, 6] rows (x1, y1, x2, y2 pixels of
the network input, score, class), zero rows after the last detection or below ``conf``. The batch size is fixed
at export (the per-image loop is unrolled by tracing).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import batched_nms

from mirrordet.ops.boxes import xywh2xyxy

MAX_CANDIDATES = 1000  # boxes handed to NMS per image at most


class NMSModel(nn.Module):
    """A fused detector [B, 4 + nc, A] followed by NMS -> [B, max_det, 6] (see the module docstring)."""

    def __init__(self, net: nn.Module, conf: float, iou: float, max_det: int, agnostic: bool = False) -> None:
        super().__init__()
        self.net, self.conf, self.iou, self.max_det, self.agnostic = net, float(conf), float(iou), int(max_det), agnostic
        self.task = "detect"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preds = self.net(x)
        out = []
        for p in preds.transpose(1, 2):  # [A, 4 + nc] per image
            boxes = xywh2xyxy(p[:, :4])
            scores, labels = p[:, 4:].max(1)
            scores, idx = scores.topk(min(MAX_CANDIDATES, p.shape[0]))
            boxes, labels = boxes[idx], labels[idx]
            keep = batched_nms(boxes, scores, labels * 0 if self.agnostic else labels, self.iou)[: self.max_det]
            rows = torch.cat([boxes[keep], scores[keep, None], labels[keep, None].to(boxes.dtype)], 1)
            rows = rows * (rows[:, 4:5] > self.conf).to(rows.dtype)
            out.append(nn.functional.pad(rows, (0, 0, 0, self.max_det - rows.shape[0])))
        return torch.stack(out)
