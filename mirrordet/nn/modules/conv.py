"""Convolution building blocks: Conv (Conv2d + BN + activation) and depth-wise DWConv."""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.nn.modules.activation import default_activation
from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.registry import MODULES

CONV_ARGS = (("c2", int), ("k", int), ("s", int), ("p", (int, type(None))), ("g", int), ("d", int), ("act", bool))


def autopad(k: int, p: int | None = None, d: int = 1) -> int:
    """'Same' padding for an odd kernel ``k`` with dilation ``d`` when ``p`` is None."""
    if p is not None:
        return p
    k_eff = d * (k - 1) + 1
    return k_eff // 2


@MODULES.register()
class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation.

    Args:
        c1, c2: input / output channels. k: kernel. s: stride. p: padding (None = same).
        g: groups. d: dilation. act: True for the model's activation (SiLU unless the model YAML's
        ``activation`` key names another, see :mod:`mirrordet.nn.modules.activation`), False for
        none, or a module to use.

    Shape: [B, c1, H, W] -> [B, c2, ceil(H / s), ceil(W / s)] for 'same' padding.
    """

    yaml_example = (-1, [32, 3, 1])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 d: int = 1, act: bool | nn.Module = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = act if isinstance(act, nn.Module) else default_activation() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, k=1, s=1, p=None, g=1, d=1, act=True]``; c2 is width-scaled."""
        check_args(cls.__name__, args, CONV_ARGS, required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full


@MODULES.register()
class DWConv(Conv):
    """Depth-wise convolution: Conv with groups = gcd(c1, c2). Shapes as :class:`Conv`."""

    yaml_example = (-1, [64, 3, 1])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, d: int = 1, act: bool | nn.Module = True) -> None:
        super().__init__(c1, c2, k, s, None, math.gcd(c1, c2), d, act)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, k=1, s=1, d=1, act=True]``; c2 is width-scaled."""
        check_args(cls.__name__, args, (("c2", int), ("k", int), ("s", int), ("d", int), ("act", bool)), 1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full
