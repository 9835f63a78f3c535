"""Channel/spatial attention: CBAM and ECA. Both keep the shape [B, C, H, W]."""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.registry import MODULES


@MODULES.register()
class CBAM(nn.Module):
    """Convolutional block attention: channel MLP over avg- AND max-pooled features, then a
    k x k spatial attention over the channel-wise mean and max maps. YAML args ``[r=16, k=7]``."""

    yaml_example = (-1, [16, 7])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, r: int = 16, k: int = 7) -> None:
        super().__init__()
        hidden = max(c1 // r, 1)
        self.mlp = nn.Sequential(nn.Conv2d(c1, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, c1, 1, bias=False))
        self.spatial = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ca = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        x = x * ca
        sa = torch.sigmoid(self.spatial(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        return x * sa

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        check_args(cls.__name__, args, (("r", int), ("k", int)))
        c1 = single_input(cls.__name__, c_in)
        mods = [cls(c1, *args) for _ in range(n)]
        return (mods[0] if n == 1 else nn.Sequential(*mods)), c1, [c1, *args]


def eca_kernel(c: int, gamma: int = 2, b: int = 1) -> int:
    """ECA kernel size: the odd number nearest above |(log2 c + b) / gamma|."""
    t = int(abs((math.log2(c) + b) / gamma))
    return t if t % 2 else t + 1


@MODULES.register()
class ECA(nn.Module):
    """Efficient channel attention: GAP -> Conv1d(k) across channels -> sigmoid -> rescale.
    YAML args ``[k=None]`` (None = :func:`eca_kernel` of the channel count)."""

    yaml_example = (-1, [])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, k: int | None = None) -> None:
        super().__init__()
        k = k or eca_kernel(c1)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3))  # [B, C]
        y = torch.sigmoid(self.conv(y.unsqueeze(1))).squeeze(1)  # [B, C]
        return x * y[:, :, None, None]

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        check_args(cls.__name__, args, (("k", (int, type(None))),))
        c1 = single_input(cls.__name__, c_in)
        mods = [cls(c1, *args) for _ in range(n)]
        return (mods[0] if n == 1 else nn.Sequential(*mods)), c1, [c1, *args]
