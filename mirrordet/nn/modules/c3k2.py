"""The CSP blocks of the YOLO11 generation: C3, C3k and C3k2.

C3 (the YOLOv5 CSP block): two 1x1 branches of width c_ = c2 * e; one passes n bottlenecks; the
two are concatenated and fused by a 1x1 conv. C3k is a C3 whose bottlenecks use k x k kernels.
C3k2 is wired like C2f (split, every inner output concatenated), but each inner block is either a
plain bottleneck or, with ``c3k``, a C3k of two bottlenecks. Shapes: [B, c1, H, W] -> [B, c2, H, W].
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.nn.modules.blocks import Bottleneck
from mirrordet.nn.modules.conv import Conv
from mirrordet.nn.modules.psa import PSABlock
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

DEEP_SCALES = ("m", "l", "x")  # scales whose C3k2 blocks use C3k inner blocks, whatever the file says


@MODULES.register()
class C3(nn.Module):
    """CSP bottleneck with three convolutions: ``cv3(cat(m(cv1(x)), cv2(x)))``.

    Args:
        c1, c2: channels. n: bottlenecks. shortcut: residual bottlenecks. g: groups. e: hidden ratio.
        k: kernel of both bottleneck convs (C3 itself uses 1 then 3).
    """

    yaml_example = (-1, [64, True])

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: tuple[int, int] = (1, 3)) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, k=k, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, shortcut=True, g=1, e=0.5]``; ``repeats`` are the inner bottlenecks."""
        check_args(cls.__name__, args, (("c2", int), ("shortcut", bool), ("g", int), ("e", float)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, n, *args[1:]]
        return cls(*full), c2, full


class C3k(C3):
    """A C3 whose bottlenecks use ``k`` x ``k`` kernels (the inner block of C3k2)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: int = 3) -> None:
        super().__init__(c1, c2, n, shortcut, g, e, k=(k, k))


@MODULES.register()
class C3k2(nn.Module):
    """C2f wiring with plain bottlenecks (half-width hidden conv) or, with ``c3k``, C3k inner blocks
    (with ``attn``: bottleneck + PSA block pairs).

    y = cv1(x) split into halves (a, b); b passes the n inner blocks, each output kept;
    out = cv2(cat([a, b, m1, ..., mn])).
    """

    yaml_example = (-1, [64, False, 0.25])
    marks_depthwise_head = True  # files with C3k2 (YOLO11 and later) use Detect's depthwise class branch

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, attn: bool = False,
                 g: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(self._inner(c3k, attn, g, shortcut) for _ in range(n))

    def _inner(self, c3k: bool, attn: bool, g: int, shortcut: bool) -> nn.Module:
        """One inner block: a bottleneck, or a C3k with ``c3k``; with ``attn`` (YOLO26's last neck
        block) a bottleneck followed by a position-sensitive attention block (one head per 64 channels)."""
        if attn:
            return nn.Sequential(Bottleneck(self.c, self.c, shortcut, g),
                                 PSABlock(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1)))
        return C3k(self.c, self.c, 2, shortcut, g) if c3k else Bottleneck(self.c, self.c, shortcut, g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))

    ARG_SPEC = (("c2", int), ("c3k", bool), ("e", float), ("attn", bool), ("g", int), ("shortcut", bool))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, c3k=False, e=0.5, attn=False, g=1, shortcut=True]`` (``ARG_SPEC``); ``repeats``
        are the inner blocks. At the deep scales (m, l, x) every C3k2 uses C3k inner blocks, as the
        YOLO11 files intend."""
        check_args(cls.__name__, args, cls.ARG_SPEC, required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, n, *args[1:]]
        if ctx.scale in DEEP_SCALES:
            if len(full) < 4:
                full.append(False)
            full[3] = True
        if len(full) > 4 and not 0 < full[4] <= 1:
            raise ModelConfigError(f"{cls.__name__} hidden ratio e must be in (0, 1], got {full[4]}")
        return cls(*full), c2, full
