"""GELAN blocks of YOLOv9: RepConvN, RepCSP, ELAN1, RepNCSPELAN4 and SPPELAN.

ELAN (efficient layer aggregation): a 1x1 conv to c3 channels is split into halves; the second
half passes two stages in a row (c3/2 -> c4 -> c4), and the two halves plus both stage outputs are
concatenated and fused by a 1x1 conv: ``cv4(cat(a, b, s1(b), s2(s1(b))))`` with c3 + 2 * c4 inputs.
ELAN1 uses one 3x3 conv per stage; RepNCSPELAN4 (GELAN) uses a RepCSP block followed by a 3x3 conv.

RepCSP is a C3 (CSP) block whose bottlenecks start with a RepConvN: a 3x3 and a 1x1 conv+BN branch
summed before the activation, which :meth:`RepConvN.reparameterize` folds into one 3x3 conv.

In the YAML rows only the output width ``c2`` is width-scaled; the hidden widths ``c3`` / ``c4``
are used as written (the published yolov9 files are built that way).
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.activation import default_activation
from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.nn.modules.blocks import Bottleneck
from mirrordet.nn.modules.c3k2 import C3
from mirrordet.nn.modules.conv import Conv
from mirrordet.nn.modules.reparam import merge_branches
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


def _positive(name: str, **values: int) -> None:
    """Raise ModelConfigError unless every named value is a positive integer."""
    for k, v in values.items():
        if v < 1:
            raise ModelConfigError(f"{name} {k} must be a positive integer, got {v}")


class RepConvN(nn.Module):
    """Re-parameterizable conv: ``act(bn1(conv3x3(x)) + bn2(conv1x1(x)))``.

    Two Conv branches without activation, ``conv1`` (k x k) and ``conv2`` (1x1), summed, then the
    activation. For inference :meth:`reparameterize` replaces both by one k x k conv ``conv``.

    Shape: [B, c1, H, W] -> [B, c2, ceil(H / s), ceil(W / s)] (odd k, same padding).
    """

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, p: int = 1, g: int = 1, d: int = 1,
                 act: bool | nn.Module = True) -> None:
        super().__init__()
        if k % 2 == 0 or p != k // 2 * d or d != 1:
            raise ModelConfigError(f"RepConvN needs an odd kernel with 'same' padding and no dilation, "
                                   f"got k={k}, p={p}, d={d}")
        self.act = act if isinstance(act, nn.Module) else default_activation() if act else nn.Identity()
        self.conv1 = Conv(c1, c2, k, s, p, g=g, act=False)
        self.conv2 = Conv(c1, c2, 1, s, p - k // 2, g=g, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "conv"):
            return self.act(self.conv(x))
        return self.act(self.conv1(x) + self.conv2(x))

    def reparameterize(self) -> None:
        """Fold both branches (and their eval-mode BatchNorms) into one k x k conv ``self.conv``
        (:func:`~mirrordet.nn.modules.reparam.merge_branches`); ``conv1`` and ``conv2`` are removed,
        so the module is then inference-only. Idempotent."""
        if hasattr(self, "conv"):
            return
        fused = merge_branches(self.conv1, self.conv2)
        del self.conv1, self.conv2
        self.conv = fused


class RepBottleneck(Bottleneck):
    """A :class:`Bottleneck` whose first conv is a :class:`RepConvN` (k[0] x k[0], no dilation).

    Shape: [B, c1, H, W] -> [B, c2, H, W]; adds the input when ``shortcut`` and c1 == c2.
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1,
                 k: tuple[int, int] = (3, 3), e: float = 0.5) -> None:
        super().__init__(c1, c2, shortcut, g, k, e)
        self.cv1 = RepConvN(c1, int(c2 * e), k[0], 1, k[0] // 2)


class RepCSP(C3):
    """CSP block of ``n`` residual :class:`RepBottleneck` s: ``cv3(cat(m(cv1(x)), cv2(x)))``.

    Hidden width c_ = int(c2 * e). Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__(c1, c2, 0, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(RepBottleneck(c_, c_, shortcut, g, k=(3, 3), e=1.0) for _ in range(n)))


class _ELAN(nn.Module):
    """Shared ELAN wiring: ``cv4(cat(a, b, cv2(b), cv3(cv2(b))))`` with ``a, b = cv1(x).chunk(2)``.

    Subclasses provide the two stages through :meth:`stage`. Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    def __init__(self, c1: int, c2: int, c3: int, c4: int, n: int = 1) -> None:
        super().__init__()
        _positive(type(self).__name__, c2=c2, c3=c3, c4=c4, n=n)
        if c3 < 2:
            raise ModelConfigError(f"{type(self).__name__} c3 must be at least 2 (it is split in halves), got {c3}")
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = self.stage(c3 // 2, c4, n)
        self.cv3 = self.stage(c4, c4, n)
        self.cv4 = Conv(c3 + 2 * c4, c2, 1, 1)

    def stage(self, c_in: int, c_out: int, n: int) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.append(self.cv2(y[-1]))
        y.append(self.cv3(y[-1]))
        return self.cv4(torch.cat(y, 1))


@MODULES.register()
class RepNCSPELAN4(_ELAN):
    """GELAN block: ELAN whose stages are ``RepCSP(c_in, c_out, n)`` followed by a 3x3 Conv.

    Args: c1, c2 (in / out channels), c3 (width of the first 1x1 conv), c4 (stage width),
    n (RepBottlenecks per RepCSP). Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    yaml_example = (-1, [64, 64, 32, 1])  # (from, args) of a row the registry-wide tests build

    def stage(self, c_in: int, c_out: int, n: int) -> nn.Module:
        return nn.Sequential(RepCSP(c_in, c_out, n), Conv(c_out, c_out, 3, 1))

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[c2, c3, c4, n=1]``; only c2 is width-scaled; ``repeats`` stacks whole blocks."""
        check_args(cls.__name__, args, (("c2", int), ("c3", int), ("c4", int), ("n", int)), required=3)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full


@MODULES.register()
class ELAN1(_ELAN):
    """Light ELAN block (the yolov9t/s stem block): each stage is one 3x3 Conv.

    Args: c1, c2 (in / out channels), c3 (width of the first 1x1 conv), c4 (stage width).
    Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    yaml_example = (-1, [64, 64, 32])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, c3: int, c4: int) -> None:
        super().__init__(c1, c2, c3, c4)

    def stage(self, c_in: int, c_out: int, n: int) -> nn.Module:
        return Conv(c_in, c_out, 3, 1)

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[c2, c3, c4]``; only c2 is width-scaled; ``repeats`` stacks whole blocks."""
        check_args(cls.__name__, args, (("c2", int), ("c3", int), ("c4", int)), required=3)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full


@MODULES.register()
class SPPELAN(nn.Module):
    """Spatial pyramid pooling in ELAN form: a 1x1 conv to c3, three chained k x k max-pools (stride 1),
    all four maps concatenated and fused by a 1x1 conv: ``cv5(cat(y, p(y), p(p(y)), p(p(p(y)))))``.

    Args: c1, c2 (in / out channels), c3 (hidden width), k (odd pool size).
    Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    yaml_example = (-1, [64, 32])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, c3: int, k: int = 5) -> None:
        super().__init__()
        _positive("SPPELAN", c2=c2, c3=c3, k=k)
        if k % 2 == 0:
            raise ModelConfigError(f"SPPELAN needs an odd pool size k, got {k}")
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv3 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv4 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv5 = Conv(4 * c3, c2, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for pool in (self.cv2, self.cv3, self.cv4):
            y.append(pool(y[-1]))
        return self.cv5(torch.cat(y, 1))

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[c2, c3, k=5]``; only c2 is width-scaled; ``repeats`` stacks whole blocks."""
        check_args(cls.__name__, args, (("c2", int), ("c3", int), ("k", int)), required=2)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full
