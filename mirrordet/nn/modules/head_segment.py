"""Segment: the YOLO-seg head, a :class:`Detect` head plus YOLACT-style instance masks.

Masks are linear combinations of ``nm`` prototype masks shared by the image (Bolya et al., "YOLACT:
Real-time Instance Segmentation", 2019): a small fully convolutional branch (:class:`Proto`) turns the
finest feature level into ``nm`` prototypes at twice its resolution (stride 4 for P3), and every anchor
predicts ``nm`` coefficients beside its box and classes. An instance's mask is
``sigmoid(coefficients @ prototypes)``, cropped to its box.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.nn.modules.conv import Conv
from mirrordet.nn.modules.head_detect import Detect
from mirrordet.ops.detections import Detections
from mirrordet.ops.masks import crop_masks
from mirrordet.ops.nms import NMSSettings, dense_nms_indexed
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class Proto(nn.Module):
    """Prototype masks: 3x3 conv, 2x transposed-conv upsampling, 3x3 conv, 1x1 conv to ``nm`` maps.

    Shapes: [B, c1, H, W] -> [B, nm, 2H, 2W].
    """

    yaml_example = (-1, [32, 16])

    def __init__(self, c1: int, c_: int = 256, nm: int = 32) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c_, 3)
        self.upsample = nn.ConvTranspose2d(c_, c_, 2, 2, 0, bias=True)
        self.cv2 = Conv(c_, c_, 3)
        self.cv3 = Conv(c_, nm, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c_, nm]`` (both scaled by width as channel counts; nm is the output)."""
        check_args(cls.__name__, args, (("c_", int), ("nm", int)))
        c_, nm = (ctx.channels(v) for v in (list(args) + [256, 32][len(args):]))
        return cls(c_in[0], c_, nm), nm, [c_in[0], c_, nm]


@MODULES.register()
class Segment(Detect):
    """YOLO-seg head: :class:`Detect` + ``nm`` mask coefficients per anchor + a :class:`Proto` branch.

    Args:
        nc: number of classes. nm: prototype masks (coefficients per anchor). npr: prototype branch width.
        ch: input channels per level (the first level feeds the prototypes). reg_max, depthwise, end2end:
            as :class:`Detect` (end2end is not supported yet).

    Forward:
        training: ``[level maps (as Detect), coefficients [B, nm, A], prototypes [B, nm, 2H_0, 2W_0]]``.
        eval: ``(detections [B, 4 + nc + nm, A], prototypes [B, nm, 2H_0, 2W_0])``: Detect's decoded
            output with the coefficients appended.
    """

    yaml_example = ([0, 1, 2], ["nc", 8, 16])

    task = "segment"
    loss = "yolo_seg"
    train_outputs = ("levels", "mask_coefficients", "prototypes")

    def __init__(self, nc: int = 80, nm: int = 32, npr: int = 256, ch: tuple[int, ...] = (), reg_max: int = 16,
                 depthwise: bool = False, end2end: bool = False) -> None:
        if end2end:
            raise ModelConfigError("Segment: an end-to-end (NMS-free) segmentation head is not supported yet")
        super().__init__(nc, ch, reg_max, depthwise, end2end)
        self.nm, self.npr = nm, npr
        self.proto = Proto(ch[0], npr, nm)
        c4 = max(ch[0] // 4, nm)
        self.cv4 = nn.ModuleList(nn.Sequential(Conv(x, c4, 3), Conv(c4, c4, 3), nn.Conv2d(c4, nm, 1)) for x in ch)

    def forward(self, x: list[torch.Tensor]) -> list | tuple[torch.Tensor, torch.Tensor]:
        proto = self.proto(x[0])
        b = x[0].shape[0]
        coef = torch.cat([self.cv4[i](xi).view(b, self.nm, -1) for i, xi in enumerate(x)], 2)  # [B, nm, A]
        maps = self._maps(x, self.cv2, self.cv3)
        if self.training:
            return [maps, coef, proto]
        return torch.cat((self.decode(maps), coef), 1), proto

    def postprocess(self, preds: tuple[torch.Tensor, torch.Tensor], nms: NMSSettings) -> list[Detections]:
        """Eval output -> per image :class:`Detections` whose ``masks`` are bool [n, H, W] at the network input
        (mask probability > 0.5, nothing outside the box)."""
        return list(self.postprocess_each(preds, nms))

    def postprocess_each(self, preds: tuple[torch.Tensor, torch.Tensor], nms: NMSSettings) -> Iterator[Detections]:
        """:meth:`postprocess` one image at a time: each image's masks are decoded when it is reached."""
        det, proto = preds
        det, proto = det.float(), proto.float()
        for (d, anchor), coef, p in zip(dense_nms_indexed(det[:, : 4 + self.nc], nms), det[:, 4 + self.nc:], proto):
            # a new object: the NMS list keeps its own, so the masks go when the caller drops this one
            yield Detections(d.boxes, d.scores, d.labels, self.masks_for(coef[:, anchor].T, p, d.boxes, self.input_hw(p)))

    def input_hw(self, proto: torch.Tensor) -> tuple[int, int]:
        """(H, W) of the network input: the prototypes sit at half the first level's stride."""
        s = float(self.stride[0]) / 2
        return round(proto.shape[-2] * s), round(proto.shape[-1] * s)

    @staticmethod
    def masks_for(coef: torch.Tensor, proto: torch.Tensor, boxes: torch.Tensor, hw: tuple[int, int],
                  chunk: int = 32) -> torch.Tensor:
        """Binary masks bool [n, H, W] of detections: coef [n, nm], proto [nm, h, w], boxes [n, 4] xyxy input
        pixels; the logits upsampled (bilinear) to ``hw`` = (H, W), kept where > 0 (probability > 0.5) inside
        the box. ``chunk`` detections at a time bound the float memory."""
        nm, h, w = proto.shape
        out = torch.zeros((coef.shape[0], *hw), dtype=torch.bool, device=proto.device)
        flat = proto.view(nm, -1)
        for i in range(0, coef.shape[0], chunk):
            logits = (coef[i:i + chunk] @ flat).view(-1, 1, h, w)
            logits = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)[:, 0]
            out[i:i + chunk] = crop_masks((logits > 0).float(), boxes[i:i + chunk]) > 0
        return out

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[nc, nm, npr]`` (defaults 32 and 256; ``npr`` is scaled by width like a channel count);
        ``from`` lists the feature levels."""
        check_args(cls.__name__, args, (("nc", int), ("nm", int), ("npr", int)), required=1)
        if min(args) < 1:
            raise ModelConfigError(f"{cls.__name__} needs nc, nm and npr >= 1, got {args}")
        nc, nm, npr = (list(args) + [32, 256][len(args) - 1:])[:3]
        full = [nc, nm, ctx.channels(npr), tuple(flat_channels(c_in)), ctx.reg_max, *cls.head_kinds(ctx)]
        return cls(*full), nc, full
