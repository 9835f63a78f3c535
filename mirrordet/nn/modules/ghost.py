"""Ghost blocks (GhostNet, Han et al. 2020): GhostConv, GhostBottleneck and the CSP block C3Ghost.

A Ghost convolution makes half of its output channels with an ordinary convolution and the other
half ("ghost" features) from the first half with a cheap 5x5 depth-wise convolution, then
concatenates both. The Ghost bottleneck is two Ghost convolutions (expand to half width, project
back without activation) around an optional stride-2 depth-wise convolution, plus a residual.
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.nn.modules.c3k2 import C3
from mirrordet.nn.modules.conv import Conv, DWConv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class GhostConv(nn.Module):
    """Ghost convolution: ``y = cv1(x)`` (c2 // 2 channels), ``out = cat(y, cv2(y))``.

    Args:
        c1, c2: input / output channels (c2 even). k, s: kernel and stride of the primary conv.
        g: groups of the primary conv. act: activation of both convs (True = the model's default).

    Shape: [B, c1, H, W] -> [B, c2, ceil(H / s), ceil(W / s)].
    """

    yaml_example = (-1, [64, 3, 2])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool | nn.Module = True) -> None:
        super().__init__()
        if c2 % 2:
            raise ModelConfigError(f"GhostConv output channels must be even (half primary, half ghost), got {c2}")
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, k, s, None, g, act=act)
        self.cv2 = Conv(c_, c_, 5, 1, None, c_, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        return torch.cat((y, self.cv2(y)), 1)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, k=1, s=1, g=1, act=True]``; c2 is width-scaled; ``repeats`` stacks n convs."""
        check_args(cls.__name__, args, (("c2", int), ("k", int), ("s", int), ("g", int), ("act", bool)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full


@MODULES.register()
class GhostBottleneck(nn.Module):
    """Ghost bottleneck: ``conv(x) + shortcut(x)``.

    ``conv`` = GhostConv(c1 -> c2 // 2), then (stride 2 only) a k x k depth-wise conv of stride 2
    without activation, then GhostConv(c2 // 2 -> c2) without activation. ``shortcut`` is the
    identity at stride 1 (so c1 must equal c2) and, at stride 2, a k x k depth-wise conv of
    stride 2 then a 1x1 conv to c2, both without activation.

    Shape: [B, c1, H, W] -> [B, c2, H / s, W / s] (s = 1 or 2).
    """

    yaml_example = (-1, [64, 3, 1])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        if s not in (1, 2):
            raise ModelConfigError(f"GhostBottleneck stride must be 1 or 2, got {s}")
        if s == 1 and c1 != c2:
            raise ModelConfigError(f"GhostBottleneck with stride 1 adds its input to its output, so it needs "
                                   f"c1 == c2, got {c1} -> {c2}")
        if c2 % 4:
            raise ModelConfigError(f"GhostBottleneck output channels must be a multiple of 4 (its inner Ghost conv "
                                   f"has c2 / 2 channels, itself half ghost), got {c2}")
        c_ = c2 // 2
        self.conv = nn.Sequential(
            GhostConv(c1, c_, 1, 1),
            DWConv(c_, c_, k, s, act=False) if s == 2 else nn.Identity(),
            GhostConv(c_, c2, 1, 1, act=False),
        )
        self.shortcut = (nn.Sequential(DWConv(c1, c1, k, s, act=False), Conv(c1, c2, 1, 1, act=False))
                         if s == 2 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, k=3, s=1]``; c2 is width-scaled; ``repeats`` stacks n bottlenecks."""
        check_args(cls.__name__, args, (("c2", int), ("k", int), ("s", int)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        if n > 1 and len(full) > 3 and full[3] == 2:
            raise ModelConfigError("GhostBottleneck with stride 2 cannot repeat (each copy would halve the "
                                   "resolution again); use one row per stride-2 block")
        return chain(cls, full, n), c2, full


@MODULES.register()
class C3Ghost(C3):
    """C3 whose inner blocks are n Ghost bottlenecks (always residual, so ``shortcut`` and ``g`` are
    accepted for the C3 signature but change nothing).

    ``cv3(cat(m(cv1(x)), cv2(x)))`` with cv1, cv2: c1 -> int(c2 * e). Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__(c1, c2, 0, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(GhostBottleneck(c_, c_) for _ in range(n)))
