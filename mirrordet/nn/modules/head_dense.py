"""DenseHead: what the one-stage dense heads (RetinaHead, FCOSHead) share: their NMS decoding, mirrordet's or
torchvision's per-level one."""

from __future__ import annotations

import torch

from mirrordet.nn.head import DetectionHead
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings, dense_nms, per_level_nms


class DenseHead(DetectionHead):
    """A detection head whose eval output is [B, 4 + nc, A] (xywh pixel boxes, per-class scores) over L levels.

    Attributes:
        conventions: ``mirrordet`` (the ``topk`` best of all levels to NMS) or ``torchvision`` (per level the
            ``topk`` best, clipped to the input, then NMS, as torchvision's RetinaNet and FCOS decode).
        topk: candidates kept before NMS. layout: after an eval forward, (outputs per level, input (h, w)).
    """

    conventions: str = "mirrordet"
    topk: int = 1000
    layout: tuple[list[int], tuple[int, int]] | None = None

    def record_layout(self, feats: list[torch.Tensor], per_cell: int) -> None:
        """Remember the levels of this forward (``per_cell`` outputs per cell) for :meth:`postprocess`."""
        s0 = float(self.stride[0])
        self.layout = ([f.shape[-2] * f.shape[-1] * per_cell for f in feats],
                       (round(feats[0].shape[-2] * s0), round(feats[0].shape[-1] * s0)))

    def postprocess(self, preds: torch.Tensor, nms: NMSSettings) -> list[Detections]:
        """Eval output [B, 4 + nc, A] -> per image :class:`Detections`: every (box, class) pair above
        ``nms.conf`` (always multi-label), the ``topk`` best (per level with torchvision's conventions, of the
        last forward's levels), NMS, ``nms.max_det`` kept."""
        if self.conventions == "torchvision":
            if self.layout is None or sum(self.layout[0]) != preds.shape[-1]:
                raise RuntimeError(f"{type(self).__name__} with torchvision conventions decodes the output of its "
                                   "last forward")
            return per_level_nms(preds, *self.layout, nms, self.topk)
        return dense_nms(preds, nms, self.topk, multi_label=True)
