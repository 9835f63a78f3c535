"""Plain torch layers a model YAML may name as ``nn.<Class>``: MaxPool2d, ZeroPad2d, ConvTranspose2d
and Identity.

Each is a thin subclass of the torch class (same state-dict layout, same forward) that adds the
YAML wiring: checked arguments in torch's positional order and the output channel count. Rows with
``repeats`` n > 1 stack n copies (ConvTranspose2d: the first maps c1 -> c2, the others c2 -> c2).
"""

from __future__ import annotations

from torch import nn

from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


def _stack(cls: type, args: list, n: int) -> nn.Module:
    """``cls(*args)``, or ``n`` of them in an ``nn.Sequential`` (for parameter-free layers)."""
    return cls(*args) if n == 1 else nn.Sequential(*(cls(*args) for _ in range(n)))


def _at_least(name: str, arg: str, value: int | None, low: int) -> None:
    """Raise ModelConfigError unless ``value`` is None or ``>= low``."""
    if value is not None and value < low:
        raise ModelConfigError(f"{name} {arg} must be >= {low}, got {value}")


@MODULES.register(aliases=("nn.MaxPool2d",))
class MaxPool2d(nn.MaxPool2d):
    """``torch.nn.MaxPool2d``; args ``[kernel_size, stride=kernel_size, padding=0, dilation=1]``.

    Shape: [B, C, H, W] -> [B, C, floor((H + 2p - d(k - 1) - 1) / s) + 1, same for W]; channels
    are kept.
    """

    yaml_example = (-1, [2, 2, 0])  # (from, args) of a row the registry-wide tests build

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        name = "nn.MaxPool2d"
        check_args(name, args, (("kernel_size", int), ("stride", (int, type(None))), ("padding", int),
                                ("dilation", int)), required=1)
        k, s, p, d = (list(args) + [None, 0, 1][len(args) - 1:])[:4]
        _at_least(name, "kernel_size", k, 1)
        _at_least(name, "stride", s, 1)
        _at_least(name, "dilation", d, 1)
        if not 0 <= p <= k // 2:
            raise ModelConfigError(f"{name} padding must be in [0, kernel_size // 2 = {k // 2}], got {p}")
        return _stack(cls, list(args), n), single_input(name, c_in), list(args)


@MODULES.register(aliases=("nn.ZeroPad2d",))
class ZeroPad2d(nn.ZeroPad2d):
    """``torch.nn.ZeroPad2d``; args ``[padding]``: an int (all four sides) or
    ``[left, right, top, bottom]``.

    Shape: [B, C, H, W] -> [B, C, H + top + bottom, W + left + right]; channels are kept.
    """

    yaml_example = (-1, [[0, 1, 0, 1]])  # (from, args) of a row the registry-wide tests build

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        name = "nn.ZeroPad2d"
        check_args(name, args, (("padding", (int, list)),), required=1)
        pad = args[0]
        sides = pad if isinstance(pad, list) else [pad]
        ok = isinstance(pad, int) or len(pad) == 4
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in sides)
        if not ok:
            raise ModelConfigError(f"{name} padding must be an int >= 0 or a list of 4 ints >= 0 "
                                   f"[left, right, top, bottom], got {pad!r}")
        padding = tuple(pad) if isinstance(pad, list) else pad
        return _stack(cls, [padding], n), single_input(name, c_in), list(args)


@MODULES.register(aliases=("nn.ConvTranspose2d",))
class ConvTranspose2d(nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` (with bias); args ``[c2, kernel_size=1, stride=1, padding=0]``,
    c2 width-scaled like :class:`~mirrordet.nn.modules.conv.Conv`.

    Shape: [B, c1, H, W] -> [B, c2, (H - 1) s - 2p + k, same for W] (k = s, p = 0: [B, c2, sH, sW]).
    """

    yaml_example = (-1, [32, 2, 2, 0])  # (from, args) of a row the registry-wide tests build

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        name = "nn.ConvTranspose2d"
        check_args(name, args, (("c2", int), ("kernel_size", int), ("stride", int), ("padding", int)), required=1)
        k, s, p = (list(args[1:]) + [1, 1, 0][len(args) - 1:])[:3]
        _at_least(name, "c2", args[0], 1)
        _at_least(name, "kernel_size", k, 1)
        _at_least(name, "stride", s, 1)
        _at_least(name, "padding", p, 0)
        c1, c2 = single_input(name, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full


@MODULES.register(aliases=("nn.Identity",))
class Identity(nn.Identity):
    """``torch.nn.Identity``; no args. Shape: unchanged (channels are kept)."""

    yaml_example = (-1, [])  # (from, args) of a row the registry-wide tests build

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        name = "nn.Identity"
        check_args(name, args, ())
        return cls(), single_input(name, c_in), []
