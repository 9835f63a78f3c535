"""FPN: feature pyramid (lateral 1x1 + top-down + 3x3 outputs) via torchvision.ops, optional P6/P7."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

EXTRAS = ("none", "p6p7", "p6p7_c5", "maxpool")


@MODULES.register()
class FPN(nn.Module):
    """``torchvision.ops.FeaturePyramidNetwork`` over the input levels (finest first).

    Args:
        ch: channels of the input levels C_i (strides ascending).
        c2: output channels of every level.
        extra: extra coarser levels: ``none``; ``p6p7`` (RetinaNet/FCOS: P6 = 3x3 s2 conv of P5,
            P7 = 3x3 s2 conv of ReLU(P6)); ``p6p7_c5`` (the same from C5); ``maxpool`` (Faster R-CNN:
            P6 = P5 subsampled by 2, no parameters).
        norm: ``none``, or ``bn``: every FPN conv without bias, followed by BatchNorm (torchvision's ``_v2``
            Faster/Mask R-CNN).

    Forward:
        list of L tensors [B, ch_i, H_i, W_i] -> list of L (+2 or +1) tensors [B, c2, H_i, W_i].
    """

    yaml_example = ([1, 2], [32, "p6p7"])  # (from, args) of a row the registry-wide tests build
    list_input = True  # forward takes a list of levels: the parser refuses a `from` that gives one tensor

    def __init__(self, ch: list[int], c2: int = 256, extra: str = "none", norm: str = "none") -> None:
        super().__init__()
        blocks = {"none": None, "p6p7": LastLevelP6P7(c2, c2), "p6p7_c5": LastLevelP6P7(ch[-1], c2),
                  "maxpool": LastLevelMaxPool()}[extra]
        self.fpn = FeaturePyramidNetwork(list(ch), c2, extra_blocks=blocks,
                                         norm_layer=nn.BatchNorm2d if norm == "bn" else None)
        self.n_out = len(ch) + {"none": 0, "p6p7": 2, "p6p7_c5": 2, "maxpool": 1}[extra]

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(self.fpn(OrderedDict((str(i), t) for i, t in enumerate(x))).values())

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[c2=256, extra='none', norm='none']``; ``from`` lists the levels or names one multi-output layer."""
        check_args(cls.__name__, args, (("c2", int), ("extra", str), ("norm", str)))
        ch = flat_channels(c_in)
        extra = args[1] if len(args) > 1 else "none"
        if extra not in EXTRAS:
            raise ModelConfigError(f"FPN extra must be one of {EXTRAS}, got {extra!r}")
        norm = args[2] if len(args) > 2 else "none"
        if norm not in ("none", "bn"):
            raise ModelConfigError(f"FPN norm must be 'none' or 'bn', got {norm!r}")
        c2 = ctx.channels(args[0]) if args else 256
        module = cls(ch, c2, extra, norm)
        return module, [c2] * module.n_out, [ch, c2, extra, norm]
