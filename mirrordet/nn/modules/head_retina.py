"""RetinaHead: the anchor-based one-stage RetinaNet head (class and box subnets shared by all levels)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, conv_tower, flat_channels, tower_depth
from mirrordet.nn.modules.head_dense import DenseHead
from mirrordet.ops.anchor_boxes import decode_boxes, flatten_levels, grid_anchors, torchvision_grid_anchors
from mirrordet.ops.boxes import xyxy2xywh
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

SCALES3 = [1.0, 2 ** (1 / 3), 2 ** (2 / 3)]


@MODULES.register()
class RetinaHead(DenseHead):
    """RetinaNet head over L levels of equal width (e.g. FPN P3-P7).

    Args:
        nc: classes (sigmoid, no background class). ch: channels per level (all equal).
        sizes: base anchor size in pixels per level (None: 4 x the level stride, i.e. 32..512 on P3-P7).
        ratios: anchor h / w ratios. scales: anchor size multipliers (K = len(ratios) * len(scales)).
        num_convs: 3x3 convs in each subnet. fg_iou, bg_iou: matcher thresholds (read by the loss).
        box_loss: ``l1`` (on deltas) or ``giou`` (on decoded boxes). topk: candidates kept before NMS.
        norm: ``none`` (plain conv + ReLU subnets) or ``gn`` (conv without bias + GroupNorm + ReLU, as
            torchvision's RetinaNet v2).
        conventions: ``mirrordet`` (anchors on cell centres; the ``topk`` best of all levels to NMS) or
            ``torchvision`` (the file's top-level key: anchors as torchvision's ``AnchorGenerator`` places them,
            and per level the ``topk`` best, clipped to the input, then NMS, as torchvision's RetinaNet decodes).

    Forward:
        training: [cls [B, A, nc] logits, deltas [B, A, 4] (dx, dy, dw, dh), anchors [B, A, 4] xyxy
            pixels (an expanded view)], A = sum_i H_i * W_i * K.
        eval: [B, 4 + nc, A] boxes xywh pixels, sigmoid class scores (for NMS or :meth:`postprocess`).
    """

    yaml_example = (-1, ["nc", [32]])  # (from, args) of a row the registry-wide tests build

    loss = "retina"
    train_outputs = ("cls_logits", "deltas", "anchors")
    traceable = False  # as before the head contract: predicted eagerly, not exported

    def __init__(self, nc: int, ch: tuple[int, ...], sizes: list[float] | None = None,
                 ratios: list[float] = (0.5, 1.0, 2.0), scales: list[float] = tuple(SCALES3), num_convs: int = 4,
                 fg_iou: float = 0.5, bg_iou: float = 0.4, box_loss: str = "l1", topk: int = 1000, norm: str = "none",
                 conventions: str = "mirrordet") -> None:
        super().__init__()
        self.conventions = conventions
        c = ch[0]
        self.nc, self.nl = nc, len(ch)
        self.sizes, self.ratios, self.scales = sizes, list(ratios), list(scales)
        self.na = len(self.ratios) * len(self.scales)
        self.fg_iou, self.bg_iou, self.box_loss, self.topk = fg_iou, bg_iou, box_loss, topk
        self.register_buffer("stride", torch.zeros(self.nl), persistent=True)
        gn = norm == "gn"
        self.cls_subnet = conv_tower(c, num_convs, group_norm=gn, bias=not gn)
        self.box_subnet = conv_tower(c, num_convs, group_norm=gn, bias=not gn)
        self.cls_logits = nn.Conv2d(c, self.na * nc, 3, padding=1)
        self.bbox_reg = nn.Conv2d(c, self.na * 4, 3, padding=1)
        for conv in (self.cls_logits, self.bbox_reg):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - 0.01) / 0.01))  # prior 0.01

    def anchor_sizes(self) -> list[float]:
        """Base anchor size per level in pixels."""
        return list(self.sizes) if self.sizes is not None else [4.0 * float(s) for s in self.stride]

    def anchors(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """[A, 4] xyxy pixel anchors of the levels ``feats`` (only their shapes are read)."""
        place = torchvision_grid_anchors if self.conventions == "torchvision" else grid_anchors
        return place([f.shape[-2:] for f in feats], self.stride.tolist(), self.anchor_sizes(), self.ratios, self.scales,
                     feats[0].device)

    def forward(self, x: list[torch.Tensor] | torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        x = [x] if isinstance(x, torch.Tensor) else list(x)  # one level arrives as a tensor
        cls = flatten_levels([self.cls_logits(self.cls_subnet(f)) for f in x], self.nc)
        deltas = flatten_levels([self.bbox_reg(self.box_subnet(f)) for f in x], 4)
        anchors = self.anchors(x).to(deltas.dtype)
        if self.training:
            return [cls, deltas, anchors.expand(cls.shape[0], -1, -1)]
        boxes = xyxy2xywh(decode_boxes(deltas.float(), anchors[None].float()))
        self.record_layout(x, self.na)
        return torch.cat([boxes, cls.float().sigmoid()], 2).transpose(1, 2)

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[nc, sizes=None, ratios=[0.5, 1, 2], scales=[1, 2^(1/3), 2^(2/3)], num_convs=4,
        fg_iou=0.5, bg_iou=0.4, box_loss='l1', topk=1000, norm='none']``; ``from`` lists the levels. A repeats column above 1
        sets the subnets' depth instead of ``num_convs``, scaled by the depth multiple (:func:`tower_depth`)."""
        spec = (("nc", int), ("sizes", (list, type(None))), ("ratios", list), ("scales", list), ("num_convs", int),
                ("fg_iou", float), ("bg_iou", float), ("box_loss", str), ("topk", int), ("norm", str))
        check_args(cls.__name__, args, spec, required=1)
        ch = flat_channels(c_in)
        if len(set(ch)) != 1:
            raise ModelConfigError(f"RetinaHead needs levels of equal width (shared subnets), got {ch}")
        if args[0] < 1:
            raise ModelConfigError(f"RetinaHead needs nc >= 1, got {args[0]}")
        if len(args) > 1 and args[1] is not None and len(args[1]) != len(ch):
            raise ModelConfigError(f"RetinaHead sizes list one size per level ({len(ch)}), got {args[1]}")
        for k, v in zip(("sizes", "ratios", "scales"), args[1:4]):
            if v is not None and not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in v):
                raise ModelConfigError(f"RetinaHead {k} must be positive numbers, got {v!r}")
        if len(args) > 7 and args[7] not in ("l1", "giou"):
            raise ModelConfigError(f"RetinaHead box_loss must be 'l1' or 'giou', got {args[7]!r}")
        if len(args) > 9 and args[9] not in ("none", "gn"):
            raise ModelConfigError(f"RetinaHead norm must be 'none' or 'gn', got {args[9]!r}")
        convs = tower_depth(cls.__name__, args, 4, n, ctx)
        full = [args[0], tuple(ch), *args[1:4]]
        full += [None, [0.5, 1.0, 2.0], list(SCALES3)][len(full) - 2:] + [convs, *args[5:]]
        module = cls(*full, **({"conventions": ctx.conventions} if ctx.conventions != "mirrordet" else {}))
        return module, args[0], full
