"""How a YAML row becomes a module: the build context and argument checking.

Each registered module implements the classmethod ``from_yaml(c_in, args, n, ctx)`` returning
``(module, c_out, shown_args)``; the parser itself knows nothing about any module's wiring, so a
new block is one file plus one ``@MODULES.register()`` decorator. A module whose forward needs a
list of tensors declares ``list_input = True``; the parser then refuses a ``from`` that hands it a
single tensor (one single-output layer), instead of letting its forward fail later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from torch import nn

from mirrordet.utils.errors import ModelConfigError

ArgSpec = Sequence[tuple[str, type | tuple[type, ...]]]


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= ``x``."""
    return int(math.ceil(x / divisor) * divisor)


@dataclass(frozen=True)
class BuildContext:
    """Model-wide build options a module may need for its wiring.

    Attributes:
        nc: number of classes.
        width: channel multiplier of the chosen scale.
        depth: repeat multiplier of the chosen scale (already applied to ``n`` by the parser).
        max_channels: channel cap of the chosen scale (applied before ``width``).
        scale: the scale letter built (``n``, ``s``, ...), or None for a file without ``scales``.
        depthwise_head: a YOLO11-generation block appeared in an earlier row (a module class that
            declares ``marks_depthwise_head = True``), so a later ``Detect`` uses the depthwise class
            branch of that generation, as the files of those models expect.
        end2end: the file's top-level ``end2end``: detection heads add a one-to-one branch and
            decode without NMS (YOLO26).
        reg_max: the file's top-level ``reg_max``, the default DFL bins of detection heads
            (1: the head regresses the four side distances directly, no DFL).
        kpt_shape: the file's top-level ``kpt_shape`` (keypoints, values per keypoint), or None.
        repeats: the repeats column of the row being built, as written (before the depth multiple).
        conventions: the file's top-level ``conventions``: ``mirrordet``, or ``torchvision`` (heads that support
            it place anchors and decode as torchvision's detectors do).
    """

    nc: int
    width: float = 1.0
    depth: float = 1.0
    max_channels: int = 1 << 30
    scale: str | None = None
    depthwise_head: bool = False
    end2end: bool = False
    reg_max: int = 16
    kpt_shape: tuple[int, int] | None = None
    repeats: int = 1
    conventions: str = "mirrordet"

    def channels(self, c: int) -> int:
        """Scaled channel count: ``make_divisible(min(c, max_channels) * width, 8)``."""
        return make_divisible(min(c, self.max_channels) * self.width, 8)


def check_args(name: str, args: Sequence[Any], spec: ArgSpec, required: int = 0) -> None:
    """Validate positional YAML ``args`` against ``spec`` = [(arg name, allowed types), ...].

    Raises:
        ModelConfigError: too many or too few arguments, or an argument of the wrong type.
    """
    if len(args) > len(spec) or len(args) < required:
        expected = ", ".join(n for n, _ in spec)
        raise ModelConfigError(
            f"{name} takes {required}..{len(spec)} arguments [{expected}], got {len(args)}: {list(args)!r}"
        )
    for i, (value, (arg_name, types)) in enumerate(zip(args, spec)):
        types = types if isinstance(types, tuple) else (types,)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            allowed = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise ModelConfigError(f"{name} argument {i} ({arg_name}) must be {allowed}, got {value!r}")


def single_input(name: str, c_in: Sequence[int | list[int]]) -> int:
    """The one input channel count of a single-input module (raises if ``from`` is a list, or if the
    one input is a multi-output layer such as ``TorchVision`` or ``FPN``: pick a level with ``Index``)."""
    if len(c_in) != 1:
        raise ModelConfigError(f"{name} takes one input, but `from` lists {len(c_in)} layers")
    if isinstance(c_in[0], list):
        raise ModelConfigError(f"{name} takes one tensor, but its input layer outputs a list of {len(c_in[0])} "
                               "tensors; pick one with an `Index` row")
    return c_in[0]


def flat_channels(c_in: Sequence[int | list[int]]) -> list[int]:
    """Channels of every tensor a multi-input module receives, in order.

    ``from`` may list single-output layers (``[256, 512]``), name one multi-output layer
    (``[[256, 256, 256]]``), or mix both; the graph hands the module the tensors in the same order.
    """
    out: list[int] = []
    for c in c_in:
        out.extend(c if isinstance(c, list) else [c])
    return out


def chain(cls: type, args: Sequence[Any], n: int) -> nn.Module:
    """``n`` stacked ``cls(c1, c2, *rest)`` modules: the first maps c1 -> c2, the others c2 -> c2.

    Used for modules whose YAML ``repeats`` means "stack n of these" (``nn.Sequential``); a
    single module is returned unwrapped when ``n == 1``.
    """
    c1, c2, *rest = args
    if n == 1:
        return cls(*args)
    return nn.Sequential(cls(c1, c2, *rest), *(cls(c2, c2, *rest) for _ in range(n - 1)))


def tower_depth(name: str, args: Sequence[Any], index: int, n: int, ctx: BuildContext, default: int = 4) -> int:
    """The conv count of a dense head's towers: the row's repeats column when it is above 1 (scaled by the
    depth multiple like a block's repeats: ``n``), else ``args[index]`` (``num_convs``, unscaled) or ``default``.

    So ``[P, 4, RetinaHead, [nc]]`` gives 4 convs at depth 1.0 and 2 at depth 0.5, while ``[P, 1, RetinaHead,
    [nc]]`` keeps 4 at every scale.

    Raises:
        ModelConfigError: both the repeats column and ``num_convs`` set the depth.
    """
    if ctx.repeats > 1:
        if len(args) > index:
            raise ModelConfigError(f"{name}: the tower depth is set twice, by the repeats column ({ctx.repeats}) and "
                                   f"by num_convs ({args[index]}); keep one")
        return n
    depth = args[index] if len(args) > index else default
    if depth < 1:
        raise ModelConfigError(f"{name} needs num_convs >= 1, got {depth}")
    return depth


def conv_tower(c: int, n: int, group_norm: bool = False, bias: bool = True) -> nn.Sequential:
    """``n`` x (3x3 conv [+ GroupNorm(gcd(32, c))] + ReLU), conv weights N(0, 0.01), bias 0.

    The per-level branch of dense heads: plain in RetinaNet, with GroupNorm in FCOS (conv with bias) and in
    torchvision's RetinaNet v2 (``bias=False``). Shape: [B, c, H, W] -> [B, c, H, W].
    """
    layers: list[nn.Module] = []
    for _ in range(n):
        conv = nn.Conv2d(c, c, 3, padding=1, bias=bias)
        nn.init.normal_(conv.weight, std=0.01)
        if bias:
            nn.init.zeros_(conv.bias)
        layers += [conv, nn.GroupNorm(math.gcd(32, c), c)] if group_norm else [conv]
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)

