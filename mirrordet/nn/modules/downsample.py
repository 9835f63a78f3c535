"""Stride-2 downsampling blocks of YOLOv9: AConv and ADown.

Both start with a 2x2 average pool of stride 1 (a light blur, [H, W] -> [H - 1, W - 1]) and then
halve the resolution: AConv with one 3x3 stride-2 conv; ADown splits the channels in halves, one
through a 3x3 stride-2 conv, the other through a 3x3 stride-2 max-pool and a 1x1 conv.
Shapes: [B, c1, H, W] -> [B, c2, ceil((H - 1) / 2), ceil((W - 1) / 2)] (H, W >= 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


def blur(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pool, stride 1, no padding: [B, C, H, W] -> [B, C, H - 1, W - 1]."""
    return F.avg_pool2d(x, 2, 1, 0, False, True)


class _Downsample(nn.Module):
    """YAML wiring shared by AConv and ADown: args ``[c2]``, c2 width-scaled, ``repeats`` stacks blocks."""

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        check_args(cls.__name__, args, (("c2", int),), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2]
        return chain(cls, full, n), c2, full


@MODULES.register()
class AConv(_Downsample):
    """``conv3x3_s2(avgpool2x2_s1(x))``: [B, c1, H, W] -> [B, c2, ceil((H - 1) / 2), ceil((W - 1) / 2)]."""

    yaml_example = (-1, [64])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c2, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv1(blur(x))


@MODULES.register()
class ADown(_Downsample):
    """Two-path downsampling; with ``a, b = avgpool2x2_s1(x).chunk(2)`` (c1 / 2 channels each):
    ``cat(conv3x3_s2(a), conv1x1(maxpool3x3_s2(b)))``, each path c2 / 2 channels.

    Both c1 and c2 must be even. Shape: [B, c1, H, W] -> [B, c2, ceil((H - 1) / 2), ceil((W - 1) / 2)].
    """

    yaml_example = (-1, [64])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        if c1 % 2 or c2 % 2 or c2 < 2:
            raise ModelConfigError(f"ADown splits its input and output channels in halves: c1 and c2 must be "
                                   f"even, got c1={c1}, c2={c2}")
        c = c2 // 2
        self.cv1 = Conv(c1 // 2, c, 3, 2, 1)
        self.cv2 = Conv(c1 // 2, c, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = blur(x).chunk(2, 1)
        return torch.cat((self.cv1(a), self.cv2(F.max_pool2d(b, 3, 2, 1))), 1)
