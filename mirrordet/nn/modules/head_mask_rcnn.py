"""MaskRCNNHead: Faster R-CNN (:class:`RCNNHead`) plus the Mask R-CNN mask branch (He et al., "Mask R-CNN", 2017).

The mask branch reads RoIAlign 14x14 features of a RoI, runs four 3x3 convolutions (ReLU), a 2x transposed
convolution and a 1x1 convolution to one 28x28 mask logit map per class (background included, as
torchvision's layout). In training it runs on the positive sampled RoIs; each one's target is its matched
ground-truth mask resampled onto the RoI (RoIAlign of the binary mask, as torchvision's
``project_masks_on_boxes``), scored by per-pixel BCE on the RoI's class channel. In eval it runs on the final
detections: :meth:`MaskRCNNHead.postprocess` first selects the boxes (RCNNHead's decoding and NMS), then pastes
each box's 28x28 mask into the image (``paste_masks_in_image``) and thresholds it at 0.5.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, Mapping

import torch
from torch import nn
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import MultiScaleRoIAlign, roi_align

from mirrordet.nn.modules.base import BuildContext
from mirrordet.nn.modules.head_rcnn import RCNNHead
from mirrordet.ops.detections import Detections
from mirrordet.ops.masks import instance_masks
from mirrordet.ops.nms import NMSSettings
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

MASK_SIZE = 28  # mask logits per RoI, pixels per side


@MODULES.register()
class MaskRCNNHead(RCNNHead):
    """Mask R-CNN head: :class:`RCNNHead` plus a mask branch.

    Args: as :class:`RCNNHead`, then ``mask_dim``: width of the mask branch (None: the levels' width, 256 for
        an FPN-256 model as in torchvision), and ``mask_norm``: ``none`` (3x3 convs with bias + ReLU) or ``bn``
        (convs without bias + BatchNorm + ReLU, as torchvision's ``maskrcnn_resnet50_fpn_v2``).

    Forward:
        training: RCNNHead's outputs, then mask logits [P, nc + 1, 28, 28] of the P positive sampled RoIs and
            their targets (classes [P] in 1..nc, masks [P, 28, 28] in [0, 1]).
        eval: (RCNNHead's [B, R, nc, 5], the feature levels): :meth:`postprocess` runs the mask branch on the
            detections it keeps.
    """

    yaml_example = (-1, ["nc", None, [0.5, 1.0, 2.0], None, 64, [64, 32], None, "standard", 32])

    task = "segment"
    loss = "mask_rcnn"
    train_outputs = (*RCNNHead.train_outputs, "mask_logits", "mask_targets")

    def __init__(self, nc: int, ch: tuple[int, ...], sizes: list[float] | None = None,
                 ratios: list[float] = (0.5, 1.0, 2.0), roi_levels: int | None = None, fc_dim: int = 1024,
                 post_nms_topk: list[int] = (2000, 1000), ia: list[float] | None = None, rpn: str = "standard",
                 mask_dim: int | None = None, mask_norm: str = "none") -> None:
        super().__init__(nc, ch, sizes, ratios, roi_levels, fc_dim, post_nms_topk, ia, rpn)
        base = RCNNHead.train_outputs + (("rpn_stage1",) if self.rpn_stage1 else ())
        self.train_outputs = (*base, "mask_logits", "mask_targets")
        c, d = ch[0], mask_dim or ch[0]
        self.mask_roi_align = MultiScaleRoIAlign([str(i) for i in range(self.roi_levels)], 14, 2)
        bn = mask_norm == "bn"
        self.mask_head = nn.Sequential(*(nn.Sequential(nn.Conv2d(c if i == 0 else d, d, 3, 1, 1, bias=not bn),
                                                       *([nn.BatchNorm2d(d)] if bn else []), nn.ReLU(inplace=True))
                                         for i in range(4)))
        self.mask_predictor = nn.Sequential(nn.ConvTranspose2d(d, d, 2, 2), nn.ReLU(inplace=True),
                                            nn.Conv2d(d, nc + 1, 1))

    def mask_logits(self, feats: list[torch.Tensor], boxes: list[torch.Tensor]) -> torch.Tensor:
        """Per-class mask logits [sum n_i, nc + 1, 28, 28] of B box sets [n_i, 4] (xyxy input pixels)."""
        x = OrderedDict((str(i), f) for i, f in enumerate(feats[: self.roi_levels]))
        pooled = self.mask_roi_align(x, [b.to(feats[0].dtype) for b in boxes], [self.image_hw(feats)] * len(boxes))
        return self.mask_predictor(self.mask_head(pooled))

    def more_train_outputs(self, out: list[Any], x: list[torch.Tensor], rois: list[torch.Tensor],
                           roi_samples: list[tuple], targets: Mapping[str, torch.Tensor]) -> list[Any]:
        """Append the mask logits of the positive RoIs and their targets (see the class docstring)."""
        if "masks" not in targets:
            raise ModelConfigError("MaskRCNNHead trains on instance masks: the batch needs `masks` (a segment dataset)")
        pos_rois, labels, gts = [], [], []
        for i, (lab, _, gt_index) in enumerate(roi_samples):
            n = gt_index.numel()  # positives come first among the sampled RoIs
            pos_rois.append(rois[i][:n])
            labels.append(lab[:n])
            gts.append(self._mask_targets(targets["masks"][i], gt_index, rois[i][:n]))
        logits = self.mask_logits(x, pos_rois)
        return out + [logits, (torch.cat(labels), torch.cat(gts))]

    @staticmethod
    def _mask_targets(index_map: torch.Tensor, gt_index: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """The matched ground-truth masks of RoIs resampled onto them: [P, 28, 28] in [0, 1].

        Args: index_map int [H, W] (instance k + 1 = the image's k-th box), gt_index [P], boxes [P, 4] xyxy pixels.
        """
        if gt_index.numel() == 0:
            return boxes.new_zeros(0, MASK_SIZE, MASK_SIZE)
        gt = instance_masks(index_map, int(gt_index.max()) + 1).float()[:, None]  # [G, 1, H, W]
        rois = torch.cat([gt_index[:, None].to(boxes), boxes], 1)  # the "batch" column picks the ground truth
        return roi_align(gt, rois.float(), (MASK_SIZE, MASK_SIZE), 1.0)[:, 0]

    def forward(self, x: list[torch.Tensor] | torch.Tensor,
                targets: Mapping[str, torch.Tensor] | None = None) -> list[Any] | tuple[torch.Tensor, list]:
        out = super().forward(x, targets)
        if self.training:
            return out
        return out, [x] if isinstance(x, torch.Tensor) else list(x)

    def postprocess(self, preds: tuple[torch.Tensor, list[torch.Tensor]], nms: NMSSettings) -> list[Detections]:
        """RCNNHead's detections of the eval output, each with its mask: bool [n, H, W] at the network input."""
        return list(self.postprocess_each(preds, nms))

    def postprocess_each(self, preds: tuple[torch.Tensor, list[torch.Tensor]],
                         nms: NMSSettings) -> Iterator[Detections]:
        """:meth:`postprocess` one image at a time: the mask branch runs on an image's boxes when it is reached,
        ``chunk`` boxes at a time (bounds the RoI features and the pasted float masks)."""
        boxes_scores, feats = preds
        hw = self.image_hw(feats)
        for i, d in enumerate(super().postprocess(boxes_scores, nms)):
            masks = torch.zeros((len(d), *hw), dtype=torch.bool, device=d.boxes.device)
            image_feats = [f[i:i + 1] for f in feats]
            for k in range(0, len(d), self.mask_chunk):
                boxes = d.boxes[k:k + self.mask_chunk]
                with torch.no_grad():
                    logits = self.mask_logits(image_feats, [boxes])
                probs = logits[torch.arange(len(boxes)), d.labels[k:k + self.mask_chunk] + 1].float().sigmoid()
                pasted = paste_masks_in_image(probs[:, None], boxes.float(), hw, padding=1)
                masks[k:k + self.mask_chunk] = pasted[:, 0] > 0.5
            # a new object: the box list keeps its own, so the masks go when the caller drops this one
            yield Detections(d.boxes, d.scores, d.labels, masks)

    mask_chunk: int = 64  # boxes per mask-branch call in eval

    arg_spec: tuple = (*RCNNHead.arg_spec, ("mask_dim", (int, type(None))), ("mask_norm", str))

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args as :class:`RCNNHead`, then ``mask_dim=None`` (the mask branch's width) and ``mask_norm='none'``."""
        full = cls.checked_args(c_in, args)
        if len(args) > 8 and args[8] is not None and args[8] < 1:
            raise ModelConfigError(f"MaskRCNNHead mask_dim must be >= 1, got {args[8]}")
        if len(args) > 9 and args[9] not in ("none", "bn"):
            raise ModelConfigError(f"MaskRCNNHead mask_norm must be 'none' or 'bn', got {args[9]!r}")
        return cls(*full).with_conventions(ctx.conventions), args[0], full
