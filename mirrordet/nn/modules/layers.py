"""Parameter-free routing layers: Concat and Upsample."""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

UPSAMPLE_MODES = ("nearest", "bilinear", "bicubic", "nearest-exact")


@MODULES.register()
class Concat(nn.Module):
    """Concatenate a list of tensors along ``dimension`` (channels by default)."""

    yaml_example = ([-1, 2], [1])  # (from, args) of a row the registry-wide tests build

    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[dimension=1]``; output channels are the sum of the inputs' (for dimension 1)."""
        check_args(cls.__name__, args, (("dimension", int),))
        if len(c_in) < 2:
            raise ModelConfigError("Concat needs a list of at least two layers in `from`")
        return cls(*args), sum(c_in), list(args)


@MODULES.register(aliases=("nn.Upsample",))
class Upsample(nn.Upsample):
    """``torch.nn.Upsample`` with YAML wiring: args ``[size=None, scale_factor=2, mode='nearest']``."""

    yaml_example = (-1, [None, 2, "nearest"])  # (from, args) of a row the registry-wide tests build

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        check_args(cls.__name__, args, (("size", (int, type(None))), ("scale_factor", (int, float, type(None))),
                                        ("mode", str)))
        if len(args) > 2 and args[2] not in UPSAMPLE_MODES:
            raise ModelConfigError(f"Upsample mode must be one of {UPSAMPLE_MODES}, got {args[2]!r}")
        return cls(*args), single_input(cls.__name__, c_in), list(args)
