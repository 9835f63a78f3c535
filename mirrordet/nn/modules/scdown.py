"""SCDown: the spatial-channel decoupled downsampling of YOLOv10.

A stride-2 3x3 convolution both changes the width and shrinks the map. SCDown splits the two
jobs: a pointwise (1x1) conv changes the width c1 -> c2, then a depthwise k x k conv with stride s
shrinks the map, costing c1 * c2 + c2 * k * k weights instead of c1 * c2 * k * k.
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class SCDown(nn.Module):
    """Pointwise conv (with activation) then a stride-``s`` depthwise conv (without).

    Args:
        c1, c2: input / output channels. k: depthwise kernel (odd). s: stride.

    Shape: [B, c1, H, W] -> [B, c2, ceil(H / s), ceil(W / s)].
    """

    yaml_example = (-1, [128, 3, 2])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 2) -> None:
        super().__init__()
        if k < 1 or k % 2 == 0 or s < 1:
            raise ModelConfigError(f"SCDown needs an odd kernel k >= 1 and a stride s >= 1, got k={k}, s={s}")
        self.cv1 = Conv(c1, c2, 1, 1)
        self.cv2 = Conv(c2, c2, k, s, g=c2, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv2(self.cv1(x))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, k=3, s=2]``; c2 is width-scaled; ``repeats`` stacks n of them."""
        check_args(cls.__name__, args, (("c2", int), ("k", int), ("s", int)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full
