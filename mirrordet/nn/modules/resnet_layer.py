"""ResNet stages as YAML rows: ResNetLayer and its bottleneck block ResNetBlock (He et al. 2016).

A ResNetLayer is either the stem (7x7 stride-2 conv, then 3x3 stride-2 max-pool: /4) or a stage
of n bottleneck blocks whose first block carries the stride and the projection shortcut.
The convs are the model's Conv (conv + BN + the model's activation); the block's
output activation, after the residual sum, is ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

MAX_BLOCKS = 100


class ResNetBlock(nn.Module):
    """Bottleneck block: 1x1 (c1 -> c2), 3x3 stride s (c2 -> c2), 1x1 (c2 -> e * c2, no activation),
    plus a shortcut (identity, or a 1x1 stride-s conv without activation when the shape changes),
    then ReLU.

    Shape: [B, c1, H, W] -> [B, e * c2, H / s, W / s].
    """

    def __init__(self, c1: int, c2: int, s: int = 1, e: int = 4) -> None:
        super().__init__()
        c3 = e * c2
        self.cv1 = Conv(c1, c2, 1, 1)
        self.cv2 = Conv(c2, c2, 3, s, 1)
        self.cv3 = Conv(c2, c3, 1, act=False)
        self.shortcut = (nn.Sequential(Conv(c1, c3, 1, s, act=False)) if s != 1 or c1 != c3 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.cv3(self.cv2(self.cv1(x))) + self.shortcut(x))


@MODULES.register()
class ResNetLayer(nn.Module):
    """A ResNet stem (``is_first``) or stage of ``n`` bottleneck blocks.

    Args:
        c1: input channels. c2: stem output / block width. s: stride of the stage's first block
        (the stem always reduces by 4). is_first: build the stem. n: blocks in the stage.
        e: block expansion (a stage outputs e * c2 channels).

    Shape: stem [B, c1, H, W] -> [B, c2, H / 4, W / 4]; stage -> [B, e * c2, H / s, W / s].
    """

    yaml_example = (-1, [64, 16, 2, False, 2])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, s: int = 1, is_first: bool = False, n: int = 1, e: int = 4) -> None:
        super().__init__()
        self.is_first = is_first
        if is_first:
            self.layer = nn.Sequential(Conv(c1, c2, 7, 2, 3), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        else:
            blocks = [ResNetBlock(c1, c2, s, e)] + [ResNetBlock(e * c2, c2, 1, e) for _ in range(n - 1)]
            self.layer = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c1, c2, s=1, is_first=False, n=1, e=4]``, taken as written (no width scaling, as
        in the ResNet classification files, whose size is the same at every scale). ``c1`` must
        equal the input's channel count; the stage's block count is arg ``n``, so ``repeats`` must be 1."""
        name = cls.__name__
        spec = (("c1", int), ("c2", int), ("s", int), ("is_first", bool), ("n", int), ("e", int))
        check_args(name, args, spec, required=2)
        c1 = single_input(name, c_in)
        full = list(args) + [1, False, 1, 4][len(args) - 2:]
        _, c2, s, is_first, blocks, e = full
        if args[0] != c1:
            raise ModelConfigError(f"{name} c1 (arg 0) is {args[0]} but its input has {c1} channels")
        if n != 1:
            raise ModelConfigError(f"{name} repeats must be 1 (the block count is its 5th argument n), got {n}")
        if c2 < 1 or s < 1 or e < 1 or not 1 <= blocks <= MAX_BLOCKS:
            raise ModelConfigError(f"{name} needs c2, s, e >= 1 and 1 <= n <= {MAX_BLOCKS}, "
                                   f"got c2={c2}, s={s}, n={blocks}, e={e}")
        c_out = c2 if is_first else e * c2
        return cls(*full), c_out, full
