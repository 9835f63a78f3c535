"""PAN: the bottom-up path aggregation of PANet over an FPN's output levels."""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class PAN(nn.Module):
    """Bottom-up path: N_0 = P_0, N_{i+1} = Conv3x3(Conv3x3_s2(N_i) + P_{i+1}).

    Args:
        ch: channels of the input levels (all equal, e.g. an FPN's outputs), finest first.
        c2: output channels of every level.

    Forward:
        list of L tensors [B, c, H_i, W_i] with H_{i+1} = ceil(H_i / 2) -> list of L tensors
        [B, c2, H_i, W_i]. N_0 is P_0 projected by a 1x1 Conv when c != c2 (identity otherwise).
    """

    yaml_example = ([1, 2], [32])  # (from, args) of a row the registry-wide tests build

    def __init__(self, ch: list[int], c2: int = 256) -> None:
        super().__init__()
        self.proj = nn.ModuleList(Conv(c, c2, 1) if c != c2 else nn.Identity() for c in ch)
        self.down = nn.ModuleList(Conv(c2, c2, 3, 2) for _ in ch[1:])
        self.fuse = nn.ModuleList(Conv(c2, c2, 3, 1) for _ in ch[1:])

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = [self.proj[0](x[0])]
        for i in range(1, len(x)):
            p = self.proj[i](x[i])
            d = self.down[i - 1](outs[-1])[..., : p.shape[-2], : p.shape[-1]]
            outs.append(self.fuse[i - 1](d + p))
        return outs

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[c2]``; ``from`` lists the levels (finest first) or names one multi-output layer."""
        check_args(cls.__name__, args, (("c2", int),), required=1)
        ch = flat_channels(c_in)
        if len(ch) < 2:
            raise ModelConfigError(f"PAN needs at least two levels, got {len(ch)}")
        c2 = ctx.channels(args[0])
        return cls(ch, c2), [c2] * len(ch), [ch, c2]
