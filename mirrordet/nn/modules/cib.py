"""The compact inverted block (CIB) of YOLOv10 and the C2f stage built from it (C2fCIB).

CIB spends its spatial mixing on cheap depthwise convs and its channel mixing on pointwise convs:
depthwise 3x3, pointwise expand, depthwise 3x3 (or the large-kernel RepVGGDW), pointwise
project, depthwise 3x3. RepVGGDW trains a 7x7 and a 3x3 depthwise branch side by side and folds
them into one 7x7 depthwise conv for inference (:meth:`RepVGGDW.reparameterize`).
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.activation import default_activation
from mirrordet.nn.modules.base import BuildContext
from mirrordet.nn.modules.blocks import CSPBlock
from mirrordet.nn.modules.conv import Conv
from mirrordet.nn.modules.reparam import merge_branches
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


class RepVGGDW(nn.Module):
    """Two parallel depthwise branches, 7x7 and 3x3 (each conv + BN, no activation), summed, then the
    activation: ``act(conv(x) + conv1(x))``.

    After :meth:`reparameterize` the two branches are one 7x7 depthwise conv with a bias (``conv1`` is None).
    Shape: [B, c, H, W] -> [B, c, H, W].
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = Conv(c, c, 7, 1, 3, g=c, act=False)
        self.conv1: Conv | None = Conv(c, c, 3, 1, 1, g=c, act=False)
        self.act = default_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.act(y if self.conv1 is None else y + self.conv1(x))

    def reparameterize(self) -> "RepVGGDW":
        """Fold both branches (and their eval-mode BatchNorms) into ``self.conv``, one 7x7 depthwise
        conv with a bias (:func:`~mirrordet.nn.modules.reparam.merge_branches`: the 3x3 kernel
        zero-padded to 7x7 and added). Idempotent. Returns self."""
        if self.conv1 is not None:
            self.conv.conv, self.conv.bn = merge_branches(self.conv, self.conv1), nn.Identity()
            self.conv1 = None
        return self


class CIB(nn.Module):
    """Compact inverted block: dw3x3(c1) -> pw(c1 -> 2c_) -> dw3x3(2c_) or RepVGGDW(2c_) with ``lk``
    -> pw(2c_ -> c2) -> dw3x3(c2), every conv with BN + activation; ``x +`` the result when
    ``shortcut`` and c1 == c2.

    Args:
        c1, c2: channels. shortcut: residual. e: hidden ratio (c_ = int(c2 * e)). lk: large kernel.
    Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 0.5, lk: bool = False) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = nn.Sequential(
            Conv(c1, c1, 3, g=c1),
            Conv(c1, 2 * c_, 1),
            RepVGGDW(2 * c_) if lk else Conv(2 * c_, 2 * c_, 3, g=2 * c_),
            Conv(2 * c_, c2, 1),
            Conv(c2, c2, 3, g=c2),
        )
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        return x + y if self.add else y


@MODULES.register()
class C2fCIB(CSPBlock):
    """C2f wiring with CIB inner blocks (full-width hidden, ``e=1``).

    y = cv1(x) split into halves (a, b); b passes the n CIBs, each output kept;
    out = cv2(cat([a, b, m1, ..., mn])). ``g`` is accepted in the C2f argument position but has no
    effect: CIB's spatial convs are depthwise already. Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    yaml_example = (-1, [64, True, True])  # (from, args) of a row the registry-wide tests build

    EXTRA_ARGS = (("lk", bool), ("g", int), ("e", float))

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, lk: bool = False, g: int = 1,
                 e: float = 0.5) -> None:
        super().__init__()
        if not 0 < e <= 1:
            raise ModelConfigError(f"C2fCIB hidden ratio e must be in (0, 1], got {e}")
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(CIB(self.c, self.c, shortcut, e=1.0, lk=lk) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, shortcut=False, lk=False, g=1, e=0.5]``; ``repeats`` are the CIBs."""
        return super().from_yaml(c_in, args, n, ctx)
