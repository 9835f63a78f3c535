"""RCNNHead: a two-stage Faster R-CNN head (RPN + RoIAlign box head with class-specific regression).

Contract with the trainer and validator (the two-stage extension of the one-stage heads):
- ``loss = "rcnn"`` and ``loss_runs_head = True``: in training the head returns the RPN outputs,
  proposals and features; the loss (mirrordet.losses.rcnn.RCNNLoss, given the head) samples RoIs
  against the targets and runs :meth:`RCNNHead.roi_forward` itself.
- eval: the head returns per-class boxes and scores of its proposals; :meth:`postprocess`
  (called by the validator instead of the shared NMS) applies score threshold, class-wise NMS
  and ``max_det``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import MultiScaleRoIAlign, clip_boxes_to_image, remove_small_boxes

from mirrordet.nn.head import DetectionHead
from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.nn.modules.rpn import RPN
from mirrordet.ops.anchor_boxes import ROI_WEIGHTS, decode_boxes
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings, select_and_suppress
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError



@MODULES.register()
class RCNNHead(DetectionHead):
    """Faster R-CNN head over L levels of equal width (e.g. FPN P2-P6).

    Args:
        nc: object classes (the classifier adds a background class 0). ch: channels per level.
        sizes: RPN anchor size per level in pixels (None: 8 x stride, i.e. 32..512 on P2-P6).
        ratios: RPN anchor h / w ratios. roi_levels: finest levels RoIAlign reads (None: all).
        fc_dim: width of the two fc layers of the box head. post_nms_topk: RPN proposals per image
            kept after NMS (train, eval).

    Forward:
        training: [objectness [B, A, 1] logits, rpn deltas [B, A, 4], anchors [B, A, 4] xyxy pixels,
            proposals [B, P, 4] xyxy pixels (zero-padded, detached), counts [B] (valid proposals),
            *levels (the L input maps)].
        eval: [B, R, nc, 5]: per proposal and class the regressed box (x1, y1, x2, y2 pixels) and the
            softmax class probability (0 for padding rows); see :meth:`postprocess`.
    """

    yaml_example = (-1, ["nc", None, [0.5, 1.0, 2.0], None, 64, [64, 32]])  # (from, args) of a test row

    loss = "rcnn"
    train_outputs = ("objectness", "deltas", "anchors", "proposals", "proposal_counts", "*features")
    traceable = False  # the number of proposals depends on the data
    loss_runs_head = True

    def __init__(self, nc: int, ch: tuple[int, ...], sizes: list[float] | None = None,
                 ratios: list[float] = (0.5, 1.0, 2.0), roi_levels: int | None = None, fc_dim: int = 1024,
                 post_nms_topk: list[int] = (2000, 1000)) -> None:
        super().__init__()
        c = ch[0]
        self.nc, self.nl, self.sizes = nc, len(ch), sizes
        self.roi_levels = roi_levels or len(ch)
        self.register_buffer("stride", torch.zeros(self.nl), persistent=True)
        self.rpn = RPN(c, ratios, pre_nms_topk=post_nms_topk, post_nms_topk=post_nms_topk)
        self.roi_align = MultiScaleRoIAlign([str(i) for i in range(self.roi_levels)], 7, 2)
        self.box_head = nn.Sequential(nn.Flatten(), nn.Linear(c * 49, fc_dim), nn.ReLU(inplace=True),
                                      nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True))
        self.cls_score = nn.Linear(fc_dim, nc + 1)
        self.bbox_pred = nn.Linear(fc_dim, (nc + 1) * 4)  # class-specific, background slot unused

    def anchor_sizes(self) -> list[float]:
        return list(self.sizes) if self.sizes is not None else [8.0 * float(s) for s in self.stride]

    def image_hw(self, feats: list[torch.Tensor]) -> tuple[int, int]:
        """Network input size (H, W) in pixels, from the finest level and its stride."""
        s = float(self.stride[0])
        return int(round(feats[0].shape[-2] * s)), int(round(feats[0].shape[-1] * s))

    def roi_forward(self, feats: list[torch.Tensor], rois: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """RoIAlign 7x7 on the RoI levels + box head.

        Args:
            feats: the L level maps. rois: B tensors [R_i, 4] xyxy pixels.

        Returns:
            class logits [sum R_i, nc + 1] (0 = background), deltas [sum R_i, nc + 1, 4] (weights 10, 10, 5, 5).
        """
        hw = self.image_hw(feats)
        x = OrderedDict((str(i), f) for i, f in enumerate(feats[: self.roi_levels]))
        pooled = self.roi_align(x, [r.to(feats[0].dtype) for r in rois], [hw] * len(rois))
        h = self.box_head(pooled)
        return self.cls_score(h), self.bbox_pred(h).view(-1, self.nc + 1, 4)

    def forward(self, x: list[torch.Tensor] | torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        x = [x] if isinstance(x, torch.Tensor) else list(x)  # one level arrives as a tensor
        obj, deltas, anchors, per_level = self.rpn(x, self.stride.tolist(), self.anchor_sizes())
        props = self.rpn.proposals(obj, deltas, anchors, per_level, self.image_hw(x))
        b = len(props)
        if self.training:
            p = max(max(len(q) for q in props), 1)
            padded = obj.new_zeros(b, p, 4)
            for i, q in enumerate(props):
                padded[i, : len(q)] = q
            counts = torch.tensor([len(q) for q in props], device=obj.device, dtype=obj.dtype)
            return [obj, deltas, anchors.expand(b, -1, -1), padded, counts, *x]
        logits, rdeltas = self.roi_forward(x, props)
        scores = logits.float().softmax(-1)[:, 1:]  # [R, nc]
        rois = torch.cat(props).float()[:, None].expand(-1, self.nc, -1)
        boxes = clip_boxes_to_image(decode_boxes(rdeltas[:, 1:].float(), rois, ROI_WEIGHTS), self.image_hw(x))
        per_roi = torch.cat([boxes, scores[..., None]], -1)  # [R, nc, 5]
        r = max(max(len(q) for q in props), 1)
        out = per_roi.new_zeros(b, r, self.nc, 5)
        for i, chunk in enumerate(per_roi.split([len(q) for q in props])):
            out[i, : len(chunk)] = chunk
        return out

    def postprocess(self, preds: torch.Tensor, nms: NMSSettings) -> list[Detections]:
        """Eval output [B, R, nc, 5] -> per image :class:`Detections`: (RoI, class) boxes scoring above
        ``nms.conf``, wider and taller than 0.01 px, NMS, best ``nms.max_det`` (always multi-label)."""
        out = []
        nc = preds.shape[2]
        for p in preds.float():
            flat = p.reshape(-1, 5)
            cls = torch.arange(nc, device=p.device).repeat(p.shape[0])
            keep = flat[:, 4] > nms.conf
            flat, cls = flat[keep], cls[keep]
            keep = remove_small_boxes(flat[:, :4], 1e-2)
            flat, cls = flat[keep], cls[keep]
            out.append(select_and_suppress(flat[:, :4], flat[:, 4], cls, nms, topk=max(len(cls), 1)))
        return out

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[nc, sizes=None, ratios=[0.5, 1, 2], roi_levels=None, fc_dim=1024,
        post_nms_topk=[2000, 1000]]``; ``from`` lists the levels (finest first)."""
        spec = (("nc", int), ("sizes", (list, type(None))), ("ratios", list), ("roi_levels", (int, type(None))),
                ("fc_dim", int), ("post_nms_topk", list))
        check_args(cls.__name__, args, spec, required=1)
        ch = flat_channels(c_in)
        if len(set(ch)) != 1:
            raise ModelConfigError(f"RCNNHead needs levels of equal width (shared RPN), got {ch}")
        if args[0] < 1:
            raise ModelConfigError(f"RCNNHead needs nc >= 1, got {args[0]}")
        if len(args) > 1 and args[1] is not None and len(args[1]) != len(ch):
            raise ModelConfigError(f"RCNNHead sizes list one size per level ({len(ch)}), got {args[1]}")
        if len(args) > 3 and args[3] is not None and not 1 <= args[3] <= len(ch):
            raise ModelConfigError(f"RCNNHead roi_levels must be in 1..{len(ch)}, got {args[3]}")
        if len(args) > 5 and (len(args[5]) != 2 or not all(isinstance(k, int) and k > 0 for k in args[5])):
            raise ModelConfigError(f"RCNNHead post_nms_topk must be [train, eval] positive ints, got {args[5]}")
        full = [args[0], tuple(ch), *args[1:]]
        return cls(*full), args[0], full
