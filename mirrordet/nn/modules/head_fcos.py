"""FCOSHead: the anchor-free FCOS head (class branch; box branch carrying the centerness predictor)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, conv_tower, flat_channels, tower_depth
from mirrordet.nn.modules.head_dense import DenseHead
from mirrordet.ops.anchor_boxes import flatten_levels
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


def level_points(feats: list[torch.Tensor], strides: list[float], offset: float = 0.5) -> torch.Tensor:
    """[A, 3] (x, y, stride) of every cell of every level, x along W, y along H, pixels: the cell centres
    (``offset`` 0.5), or the cell corners (0: where torchvision's FCOS places its points)."""
    out = []
    for f, s in zip(feats, strides):
        h, w = f.shape[-2:]
        ys = (torch.arange(h, device=f.device, dtype=torch.float32) + offset) * s
        xs = (torch.arange(w, device=f.device, dtype=torch.float32) + offset) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        out.append(torch.stack([xx.reshape(-1), yy.reshape(-1), torch.full_like(xx.reshape(-1), s)], 1))
    return torch.cat(out)


@MODULES.register()
class FCOSHead(DenseHead):
    """FCOS head over L levels of equal width (e.g. FPN P3-P7), shared across levels.

    Args:
        nc: classes (sigmoid). ch: channels per level. num_convs: convs per branch.
        center_radius: center-sampling radius in strides (0 disables; read by the loss).
        topk: candidates kept before NMS in :meth:`postprocess`.
        conventions: ``mirrordet`` (points on cell centres; the ``topk`` best of all levels to NMS) or
            ``torchvision`` (the file's top-level key: points on cell corners, and per level the ``topk`` best,
            clipped to the input, then NMS, as torchvision's FCOS decodes).

    Forward:
        training: [cls [B, A, nc] logits, ltrb [B, A, 4] pixel distances (ReLU(reg) x stride),
            ctr [B, A, 1] centerness logits, points [B, A, 3] (x, y, stride) pixels], A = sum H_i W_i.
        eval: [B, 4 + nc, A] boxes xywh pixels, scores sqrt(sigmoid(cls) * sigmoid(ctr)).
    """

    yaml_example = (-1, ["nc"])  # (from, args) of a row the registry-wide tests build

    loss = "fcos"
    train_outputs = ("cls_logits", "ltrb", "centerness", "points")
    traceable = False  # as before the head contract: predicted eagerly, not exported

    def __init__(self, nc: int, ch: tuple[int, ...], num_convs: int = 4, center_radius: float = 1.5,
                 topk: int = 1000, conventions: str = "mirrordet") -> None:
        super().__init__()
        self.conventions = conventions
        c = ch[0]
        self.nc, self.nl, self.center_radius, self.topk = nc, len(ch), center_radius, topk
        self.register_buffer("stride", torch.zeros(self.nl), persistent=True)
        self.cls_branch = conv_tower(c, num_convs, group_norm=True)
        self.box_branch = conv_tower(c, num_convs, group_norm=True)
        self.cls_logits = nn.Conv2d(c, nc, 3, padding=1)
        self.bbox_reg = nn.Conv2d(c, 4, 3, padding=1)
        self.bbox_ctrness = nn.Conv2d(c, 1, 3, padding=1)
        for conv in (self.cls_logits, self.bbox_reg, self.bbox_ctrness):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - 0.01) / 0.01))

    def forward(self, x: list[torch.Tensor] | torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        x = [x] if isinstance(x, torch.Tensor) else list(x)  # one level arrives as a tensor
        cls = flatten_levels([self.cls_logits(self.cls_branch(f)) for f in x], self.nc)
        box_feats = [self.box_branch(f) for f in x]
        reg = flatten_levels([self.bbox_reg(f) for f in box_feats], 4)
        ctr = flatten_levels([self.bbox_ctrness(f) for f in box_feats], 1)
        offset = 0.0 if self.conventions == "torchvision" else 0.5
        points = level_points(x, self.stride.tolist(), offset).to(reg.dtype)
        ltrb = torch.relu(reg) * points[None, :, 2:]
        if self.training:
            return [cls, ltrb, ctr, points.expand(cls.shape[0], -1, -1)]
        xy, ltrb = points[None, :, :2].float(), ltrb.float()
        boxes = torch.cat([xy + (ltrb[..., 2:] - ltrb[..., :2]) / 2, ltrb[..., :2] + ltrb[..., 2:]], 2)  # xywh
        scores = (cls.float().sigmoid() * ctr.float().sigmoid()).sqrt()
        self.record_layout(x, 1)
        return torch.cat([boxes, scores], 2).transpose(1, 2)

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[nc, num_convs=4, center_radius=1.5, topk=1000]``; ``from`` lists the levels. A repeats column
        above 1 sets the branches' depth instead of ``num_convs``, scaled by the depth multiple (:func:`tower_depth`)."""
        check_args(cls.__name__, args, (("nc", int), ("num_convs", int), ("center_radius", float), ("topk", int)),
                   required=1)
        ch = flat_channels(c_in)
        if len(set(ch)) != 1:
            raise ModelConfigError(f"FCOSHead needs levels of equal width (shared branches), got {ch}")
        if args[0] < 1:
            raise ModelConfigError(f"FCOSHead needs nc >= 1, got {args[0]}")
        full = [args[0], tuple(ch), tower_depth(cls.__name__, args, 1, n, ctx), *args[2:]]
        module = cls(*full, **({"conventions": ctx.conventions} if ctx.conventions != "mirrordet" else {}))
        return module, args[0], full
