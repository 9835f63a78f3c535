"""Detect: the YOLOv8 anchor-free decoupled head with distribution focal loss (DFL) boxes, and its
end-to-end (NMS-free, one-to-one branch) form of YOLOv10 and YOLO26."""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.nn.head import DetectionHead
from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.nn.modules.conv import Conv, DWConv
from mirrordet.ops.anchors import dist2bbox, make_anchors
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings, dense_nms, dense_topk
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
    """YOLOv8 detection head over several feature levels (3 for P3-P5, 4 for the P6 files, ...).

    Args:
        nc: number of classes. ch: input channels per level. reg_max: DFL bins (1: the box branch
            regresses the four side distances directly, no DFL). depthwise: the YOLO11-generation
            class branch (depthwise 3x3 + pointwise 1x1 convs). end2end: add a one-to-one branch
            (``one2one_cv2`` / ``one2one_cv3``, same shapes, reading detached features) trained with
            one positive per object and decoded without NMS (YOLOv10, YOLO26).

    Forward:
        training: list of [B, 4 * reg_max + nc, H_i, W_i] raw maps (the loss decodes them); with
            ``end2end`` the pair ``[one-to-many maps, one-to-one maps]``.
        eval: [B, 4 + nc, A] with boxes as xywh in input pixels and sigmoid class scores,
            A = sum(H_i * W_i) (from the one-to-one branch with ``end2end``).
    """

    yaml_example = ([0, 1, 2], ["nc"])  # (from, args) of a row the registry-wide tests build

    loss = "yolo"
    train_outputs = ("*levels",)
    list_input = True  # forward takes a list of levels: the parser refuses a `from` that gives one tensor

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), reg_max: int = 16, depthwise: bool = False,
                 end2end: bool = False) -> None:
        super().__init__()
        self.nc, self.nl, self.reg_max, self.end2end = nc, len(ch), reg_max, end2end
        self.no = nc + 4 * reg_max
        self.register_buffer("stride", torch.zeros(self.nl), persistent=True)
        self.cv2, self.cv3 = self._branches(ch, depthwise)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        if end2end:
            self.one2one_cv2, self.one2one_cv3 = self._branches(ch, depthwise)
            self.train_outputs = ("one2many", "one2one")

    def _branches(self, ch: tuple[int, ...], depthwise: bool) -> tuple[nn.ModuleList, nn.ModuleList]:
        """Per level: the box branch (-> 4 * reg_max) and the class branch (-> nc)."""
        c2 = max(16, ch[0] // 4, self.reg_max * 4)
        c3 = max(ch[0], min(self.nc, 100))
        box = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch
        )
        if depthwise:  # YOLO11 generation: each class-branch 3x3 conv is a depthwise 3x3 + a pointwise 1x1
            cls = nn.ModuleList(nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                                              nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                                              nn.Conv2d(c3, self.nc, 1)) for x in ch)
        else:
            cls = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, self.nc, 1)) for x in ch)
        return box, cls

    @staticmethod
    def _maps(x: list[torch.Tensor], box: nn.ModuleList, cls: nn.ModuleList) -> list[torch.Tensor]:
        return [torch.cat((box[i](xi), cls[i](xi)), 1) for i, xi in enumerate(x)]

    def forward(self, x: list[torch.Tensor]) -> list | torch.Tensor:
        if self.end2end:
            one2one = self._maps([xi.detach() for xi in x], self.one2one_cv2, self.one2one_cv3)
            if not self.training:
                return self.decode(one2one)
            return [self._maps(x, self.cv2, self.cv3), one2one]
        maps = self._maps(x, self.cv2, self.cv3)
        return maps if self.training else self.decode(maps)

    def training_branch(self, x: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """What the training forward runs on the level features ``x`` beyond the eval forward: the one-to-many
        maps of an end-to-end head (for FLOP counts of the training cost); None for other heads, or once fused."""
        if not self.end2end or self.cv2 is None:
            return None
        return self._maps(x, self.cv2, self.cv3)

    def reparameterize(self) -> None:
        """For inference (``mirrordet.nn.fuse``): an end-to-end head drops its one-to-many branch, which
        only training reads; the eval output is unchanged. Other heads keep everything."""
        if self.end2end and self.cv2 is not None:
            self.cv2 = self.cv3 = None

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Raw level maps -> [B, 4 + nc, A] (xywh pixels, sigmoid scores)."""
        b = feats[0].shape[0]
        anchors, strides = (t.transpose(0, 1) for t in make_anchors(feats, self.stride, 0.5))
        flat = torch.cat([f.view(b, self.no, -1) for f in feats], 2)
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        dbox = dist2bbox(self.dfl(box), anchors.unsqueeze(0), xywh=True, dim=1) * strides
        return torch.cat((dbox, cls.sigmoid()), 1)

    def postprocess(self, preds: torch.Tensor, nms: NMSSettings) -> list[Detections]:
        """Eval output [B, 4 + nc, A] -> per image :class:`Detections`: the shared dense NMS, or with
        ``end2end`` the NMS-free top-k (:func:`~mirrordet.ops.nms.dense_topk`)."""
        return dense_topk(preds.float(), nms) if self.end2end else dense_nms(preds.float(), nms)

    def init_for_strides(self) -> None:
        """Box bias 1.0; class bias log(5 / nc / (640 / stride)^2): ~5 objects per 640 image prior."""
        pairs = [(self.cv2, self.cv3)] + ([(self.one2one_cv2, self.one2one_cv3)] if self.end2end else [])
        for box, cls in pairs:
            for a, b, s in zip(box, cls, self.stride):
                a[-1].bias.data[:] = 1.0
                b[-1].bias.data[: self.nc] = math.log(5 / self.nc / (640 / float(s)) ** 2)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[nc, reg_max]`` (reg_max defaults to the file's top-level ``reg_max``, 16 when
        absent); ``from`` lists the feature levels. The depthwise class branch follows
        ``ctx.depthwise_head`` and the one-to-one branch the file's ``end2end``."""
        check_args(cls.__name__, args, (("nc", int), ("reg_max", int)), required=1)
        if args[0] < 1 or (len(args) > 1 and args[1] < 1):
            raise ModelConfigError(f"{cls.__name__} needs nc >= 1 and reg_max >= 1, got {args}")
        reg_max = args[1] if len(args) > 1 else ctx.reg_max
        full = [args[0], tuple(flat_channels(c_in)), reg_max, *cls.head_kinds(ctx)]
        return cls(*full), args[0], full

    @classmethod
    def head_kinds(cls, ctx: BuildContext) -> tuple[bool, bool]:
        """(depthwise, end2end) of this head in a model built with ``ctx``."""
        return ctx.depthwise_head, ctx.end2end


@MODULES.register(name="v10Detect")
class V10Detect(Detect):
    """The YOLOv10 head: :class:`Detect` that is always end-to-end (one-to-many + one-to-one
    branches, NMS-free decoding) with the depthwise class branch. Shapes as :class:`Detect`."""

    @classmethod
    def head_kinds(cls, ctx: BuildContext) -> tuple[bool, bool]:
        return True, True
