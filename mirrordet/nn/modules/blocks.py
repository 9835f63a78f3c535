"""CSP building blocks: Bottleneck, C2f, SPPF."""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class Bottleneck(nn.Module):
    """Two 3x3 Convs with an optional residual: [B, c1, H, W] -> [B, c2, H, W].

    Args:
        c1, c2: channels. shortcut: add the input when c1 == c2. g: groups of the second conv.
        k: kernel sizes of the two convs. e: hidden width ratio (hidden = int(c2 * e)).
    """

    yaml_example = (-1, [64])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1,
                 k: tuple[int, int] = (3, 3), e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y

    def zero_init_last(self) -> bool:
        """Zero the scale of the residual branch's last BatchNorm, so that the block starts as the
        identity (``x + SiLU(0) = x``). Returns whether there was a residual to zero."""
        if not self.add:
            return False
        nn.init.zeros_(self.cv2.bn.weight)
        return True

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, shortcut=True, g=1]``; ``repeats`` stacks n bottlenecks."""
        check_args(cls.__name__, args, (("c2", int), ("shortcut", bool), ("g", int)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full


class CSPBlock(nn.Module):
    """Shared YAML wiring of C2f-like blocks whose ``repeats`` are bottlenecks inside the block.

    Subclasses take ``(c1, c2, n, shortcut, *extra)``; YAML args are ``[c2, shortcut, *extra]``.
    """

    EXTRA_ARGS: tuple[tuple[str, type | tuple[type, ...]], ...] = ()

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        check_args(cls.__name__, args, (("c2", int), ("shortcut", bool), *cls.EXTRA_ARGS), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, n, *args[1:]]
        return cls(*full), c2, full


@MODULES.register()
class C2f(CSPBlock):
    """CSP bottleneck with two convolutions and every bottleneck output concatenated.

    y = cv1(x) split into halves (a, b); b passes n bottlenecks, each output kept;
    out = cv2(cat([a, b, m1, ..., mn])). Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    yaml_example = (-1, [64, True])  # (from, args) of a row the registry-wide tests build

    EXTRA_ARGS = (("g", int), ("e", float))

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


@MODULES.register()
class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): ``n`` chained max-pools of size k, all outputs concatenated.

    y0 = cv1(x); y_i = maxpool(y_{i-1}); out = cv2(cat(y0..yn)). With ``shortcut`` (the YOLO26
    form) cv1 has no activation and ``x`` is added to the output when c1 == c2.
    Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    yaml_example = (-1, [64, 5])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, k: int = 5, n: int = 3, shortcut: bool = False) -> None:
        super().__init__()
        if n < 1 or k < 1 or k % 2 == 0:
            raise ModelConfigError(f"SPPF needs an odd kernel k >= 1 and n >= 1 pools, got k={k}, n={n}")
        c_ = c1 // 2
        self.n = n
        self.cv1 = Conv(c1, c_, 1, 1, act=not shortcut)
        self.cv2 = Conv(c_ * (n + 1), c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(self.n):
            y.append(self.m(y[-1]))
        out = self.cv2(torch.cat(y, 1))
        return x + out if self.add else out

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, k=5, n=3, shortcut=False]``."""
        check_args(cls.__name__, args, (("c2", int), ("k", int), ("n", int), ("shortcut", bool)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full
