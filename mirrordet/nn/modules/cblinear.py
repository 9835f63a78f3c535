"""CBNet-style composite-backbone links of YOLOv9e: CBLinear and CBFuse.

CBLinear projects one feature map with a single 1x1 conv (with bias) and splits the result into
several maps, one per level of a second backbone (a multi-output layer: ``c_out`` is a list).
CBFuse adds, to its last input, one chosen map of each earlier input, resized (nearest) to the
last input's size. Together they feed an auxiliary backbone's features into the main one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.nn.modules.conv import autopad
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


def _int_list(name: str, what: str, value: list) -> list[int]:
    """``value`` as a non-empty list of ints (no bools), else ModelConfigError."""
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ModelConfigError(f"{name} {what} must be a non-empty list of integers, got {value!r}")
    return list(value)


@MODULES.register()
class CBLinear(nn.Module):
    """One k x k conv (with bias) to sum(c2s) channels, split into maps of c2s[0], c2s[1], ... channels.

    Shape: [B, c1, H, W] -> [[B, c2s[0], H', W'], [B, c2s[1], H', W'], ...] (H' = H / s).
    """

    yaml_example = (-1, [[32, 64]])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2s: list[int], k: int = 1, s: int = 1, p: int | None = None, g: int = 1) -> None:
        super().__init__()
        if any(c < 1 for c in c2s) or k < 1 or s < 1 or g < 1 or c1 % g or sum(c2s) % g:
            raise ModelConfigError(f"CBLinear needs positive widths, k, s and groups g dividing c1={c1} and "
                                   f"sum(c2s)={sum(c2s)}; got c2s={c2s}, k={k}, s={s}, g={g}")
        self.c2s = list(c2s)
        self.conv = nn.Conv2d(c1, sum(c2s), k, s, autopad(k, p), groups=g, bias=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.conv(x).split(self.c2s, dim=1))

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[c2s, k=1, s=1, p=None, g=1]`` with c2s a list of widths, each width-scaled
        (so a scaled file stays consistent with the Conv outputs CBFuse adds them to)."""
        check_args(cls.__name__, args, (("c2s", list), ("k", int), ("s", int), ("p", (int, type(None))),
                                        ("g", int)), required=1)
        if n != 1:
            raise ModelConfigError(f"CBLinear cannot be repeated (repeats must be 1, got {n})")
        c1 = single_input(cls.__name__, c_in)
        c2s = [ctx.channels(c) for c in _int_list(cls.__name__, "c2s", args[0])]
        full = [c1, c2s, *args[1:]]
        return cls(*full), c2s, full


@MODULES.register()
class CBFuse(nn.Module):
    """Sum of the last input and one chosen map of every earlier input, resized to the last one.

    ``from`` lists k + 1 layers: k multi-output layers (CBLinear; a single-output layer counts as a
    list of one map) and last the target map [B, C, H, W]. ``idx[i]`` picks map ``idx[i]`` of input
    ``i``; each pick must have C channels and is resized to H x W (nearest).
    Output: [B, C, H, W] = target + sum_i nearest(inputs[i][idx[i]], (H, W)).
    """

    yaml_example = ([-1, -1], [[0]])  # (from, args) of a row the registry-wide tests build
    list_input = True  # forward takes the list of inputs: one tensor alone is refused by the parser

    def __init__(self, idx: list[int]) -> None:
        super().__init__()
        self.idx = list(idx)

    def forward(self, xs: list[list[torch.Tensor] | torch.Tensor]) -> torch.Tensor:
        target = xs[-1]
        size = target.shape[-2:]
        picked = [(x[i] if isinstance(x, (list, tuple)) else x) for x, i in zip(xs[:-1], self.idx)]
        resized = [F.interpolate(p, size=size, mode="nearest") for p in picked]
        return torch.stack([*resized, target]).sum(0)

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[idx]``: one map index per input but the last; output channels are the last input's."""
        check_args(cls.__name__, args, (("idx", list),), required=1)
        if n != 1:
            raise ModelConfigError(f"CBFuse cannot be repeated (repeats must be 1, got {n})")
        idx = _int_list(cls.__name__, "idx", args[0])
        if len(c_in) < 2:
            raise ModelConfigError("CBFuse needs at least two layers in `from` (the sources, then the target)")
        if len(idx) != len(c_in) - 1:
            raise ModelConfigError(f"CBFuse takes one index per source layer: `from` lists {len(c_in) - 1} "
                                   f"sources before the target, but idx has {len(idx)}: {idx}")
        if isinstance(c_in[-1], list):
            raise ModelConfigError("CBFuse's last input (the target) must be one tensor, but that layer outputs "
                                   f"a list of {len(c_in[-1])}; pick one with an `Index` row")
        c = c_in[-1]
        for k, (src, i) in enumerate(zip(c_in[:-1], idx)):
            maps = src if isinstance(src, list) else [src]
            if not -len(maps) <= i < len(maps):
                raise ModelConfigError(f"CBFuse idx[{k}] = {i} is out of range for source {k}, which outputs "
                                       f"{len(maps)} map(s)")
            if maps[i] != c:
                raise ModelConfigError(f"CBFuse source {k} map {i} has {maps[i]} channels, but the target has {c}")
        return cls(idx), c, [idx]
