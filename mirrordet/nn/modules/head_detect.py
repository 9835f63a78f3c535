"""Detect: the YOLOv8 anchor-free decoupled head with distribution focal loss (DFL) boxes."""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.nn.head import DetectionHead
from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.nn.modules.conv import Conv, DWConv
from mirrordet.ops.anchors import dist2bbox, make_anchors
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings, dense_nms
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


class DFL(nn.Module):
    """Expectation over ``reg_max`` distance bins: [B, 4 * reg_max, A] -> [B, 4, A] (grid units).

    A fixed 1x1 conv with weights 0..reg_max-1 (no gradient), applied after a softmax per side.
    """

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(reg_max, dtype=torch.float).view(1, reg_max, 1, 1)
        self.reg_max = reg_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.reg_max, a).transpose(2, 1).softmax(1)).view(b, 4, a)


@MODULES.register()
class Detect(DetectionHead):
    """YOLOv8 detection head over several feature levels.

    Args:
        nc: number of classes. ch: input channels per level. reg_max: DFL bins.

    Forward:
        training: list of [B, 4 * reg_max + nc, H_i, W_i] raw maps (the loss decodes them).
        eval: [B, 4 + nc, A] with boxes as xywh in input pixels and sigmoid class scores,
            A = sum(H_i * W_i).
    """

    yaml_example = ([0, 1, 2], ["nc"])  # (from, args) of a row the registry-wide tests build

    loss = "yolo"
    train_outputs = ("*levels",)
    list_input = True  # forward takes a list of levels: the parser refuses a `from` that gives one tensor

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), reg_max: int = 16, depthwise: bool = False) -> None:
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(ch), reg_max
        self.no = nc + 4 * reg_max
        self.register_buffer("stride", torch.zeros(self.nl), persistent=True)
        c2 = max(16, ch[0] // 4, reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch
        )
        if depthwise:  # YOLO11 generation: each class-branch 3x3 conv is a depthwise 3x3 + a pointwise 1x1
            self.cv3 = nn.ModuleList(nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                                                   nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                                                   nn.Conv2d(c3, nc, 1)) for x in ch)
        else:
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        x = [torch.cat((self.cv2[i](xi), self.cv3[i](xi)), 1) for i, xi in enumerate(x)]
        if self.training:
            return x
        return self.decode(x)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Raw level maps -> [B, 4 + nc, A] (xywh pixels, sigmoid scores)."""
        b = feats[0].shape[0]
        anchors, strides = (t.transpose(0, 1) for t in make_anchors(feats, self.stride, 0.5))
        flat = torch.cat([f.view(b, self.no, -1) for f in feats], 2)
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        dbox = dist2bbox(self.dfl(box), anchors.unsqueeze(0), xywh=True, dim=1) * strides
        return torch.cat((dbox, cls.sigmoid()), 1)

    def postprocess(self, preds: torch.Tensor, nms: NMSSettings) -> list[Detections]:
        """Eval output [B, 4 + nc, A] -> per image :class:`Detections` (the shared dense NMS)."""
        return dense_nms(preds.float(), nms)

    def init_for_strides(self) -> None:
        """Box bias 1.0; class bias log(5 / nc / (640 / stride)^2): ~5 objects per 640 image prior."""
        for a, b, s in zip(self.cv2, self.cv3, self.stride):
            a[-1].bias.data[:] = 1.0
            b[-1].bias.data[: self.nc] = math.log(5 / self.nc / (640 / float(s)) ** 2)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[nc, reg_max=16]``; ``from`` lists the feature levels."""
        check_args(cls.__name__, args, (("nc", int), ("reg_max", int)), required=1)
        if args[0] < 1 or (len(args) > 1 and args[1] < 1):
            raise ModelConfigError(f"Detect needs nc >= 1 and reg_max >= 1, got {args}")
        full = [args[0], tuple(flat_channels(c_in)), *args[1:]]
        if ctx.depthwise_head:  # the model has YOLO11-generation blocks (see BuildContext.depthwise_head)
            full = [*full, 16][:3] + [True]
        return cls(*full), args[0], full
