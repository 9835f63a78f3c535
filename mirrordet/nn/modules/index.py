"""Index: pick one tensor out of a multi-output layer so later rows can route it."""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class Index(nn.Module):
    """Select tensor ``index`` of the input list (negative indices count from the end).

    ``from`` names one multi-output layer (e.g. ``TorchVision`` returning [C3, C4, C5], or ``FPN``)
    or lists several layers; the selected tensor [B, C_i, H_i, W_i] is returned unchanged.
    YAML args ``[index]``.
    """

    yaml_example = ([1, 2], [-1])  # (from, args) of a row the registry-wide tests build

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        return x[self.index] if isinstance(x, (list, tuple)) else x

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        check_args(cls.__name__, args, (("index", int),), required=1)
        chans = flat_channels(c_in)
        if not -len(chans) <= args[0] < len(chans):
            raise ModelConfigError(f"Index {args[0]} is out of range for an input of {len(chans)} tensors")
        return cls(args[0]), chans[args[0]], list(args)
