"""Model YAML -> layers. Names resolve only through ``MODULES``; args are YAML literals.

Grammar (Ultralytics-compatible)::

    nc: 80
    scales: {n: [depth, width, max_channels], ...}     # optional
    backbone: [[from, repeats, module, args], ...]
    head:     [[from, repeats, module, args], ...]

``from`` is -1 (previous layer), an absolute index, a negative offset, or a list of those.
Optional top-level keys: ``depth_multiple`` / ``width_multiple`` (files without ``scales``),
``activation`` (the convs' activation, from a fixed table: :mod:`mirrordet.nn.modules.activation`),
``end2end`` (NMS-free detection heads), ``reg_max`` (the heads' DFL bins; 1 = no DFL), ``kpt_shape``
([keypoints, 2 or 3], read for pose heads) and ``zero_init_residual``.

Inside ``args`` the only symbols are ``nc`` (the class count) and ``None``; every other string
stays a plain string that the module validates (no string is ever evaluated).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch import nn

import mirrordet.nn.modules  # noqa: F401  (registers the modules)
from mirrordet.nn.modules.activation import activation_scope, parse_activation
from mirrordet.nn.modules.base import BuildContext
from mirrordet.registry import MODULES
from mirrordet.utils.errors import MirrordetError, ModelConfigError
from mirrordet.utils.files import bundled_dir, find_yaml
from mirrordet.utils.safe_yaml import MAX_CLASSES, check_bounded, load_yaml_text, read_yaml_text, short_repr

TOP_LEVEL_KEYS = {"nc", "scales", "backbone", "head", "depth_multiple", "width_multiple", "zero_init_residual",
                  "end2end", "reg_max", "activation", "kpt_shape", "batchnorm", "normalize", "conventions", "resize"}
CONVENTIONS = ("mirrordet", "torchvision")
SYMBOLS: dict[str, Any] = {"None": None}
SCALE_RE = re.compile(r"^(?P<base>.*?\d+)(?P<scale>[nslmx])(?P<rest>(-.*)?)$")
# Bounds that keep a few characters of YAML from building an unbounded model.
MAX_MULTIPLE = 16.0  # depth and width multiples (scales, depth_multiple, width_multiple)
MAX_CHANNELS = 1 << 16  # a scale's max_channels
MAX_REPEATS = 100  # a row's repeats, before and after the depth multiple
MAX_REG_MAX = 64  # DFL bins of a detection head
MAX_KEYPOINTS = 1000


@dataclass
class LayerRow:
    """One parsed YAML row: where it reads from, how often it repeats, what it built."""

    index: int
    source: int | list[int]
    repeats: int
    module_name: str
    args: list
    params: int = 0


@dataclass
class ParsedModel:
    """Output of :func:`parse_model`."""

    layers: nn.ModuleList
    sources: list[list[int]]  # absolute input indices per layer; -1 = the input image
    save: list[int]  # layers whose output a later, non-adjacent layer reads
    rows: list[LayerRow] = field(default_factory=list)
    channels: list[int | list[int]] = field(default_factory=list)  # a list for multi-output layers


def resolve_model_yaml(cfg: str | Path) -> tuple[Path, str | None]:
    """Find a model YAML and the scale its name implies.

    ``yolov8n.yaml`` resolves to ``yolov8.yaml`` with scale ``n`` (and ``yolov8n-mirror.yaml`` to
    ``yolov8-mirror.yaml``) when no file of the literal name exists. A path is tried first, then
    the bundled ``models/`` folder.

    Raises:
        ModelConfigError: no such file (lists the bundled model YAMLs).
    """
    name = Path(cfg)
    m = SCALE_RE.match(name.stem)
    scale = m.group("scale") if m else None
    path = find_yaml(name, "models")
    if path is None and m:
        path = find_yaml(name.with_name(f"{m.group('base')}{m.group('rest')}{name.suffix or '.yaml'}"), "models")
    if path is None:
        available = ", ".join(sorted(p.name for p in bundled_dir("models").glob("*.yaml")))
        raise ModelConfigError(f"model YAML {str(cfg)!r} not found (bundled: {available})")
    return path, scale


def load_model_yaml(cfg: str | Path | dict) -> tuple[dict, str, str]:
    """Read a model YAML (bounded safe_load). Returns (dict, YAML text, source name used in errors)."""
    if isinstance(cfg, dict):
        return check_bounded(cfg, "<dict>", ModelConfigError), yaml.safe_dump(cfg, sort_keys=False), "<dict>"
    path, _ = resolve_model_yaml(cfg)
    text = read_yaml_text(path, ModelConfigError)
    return parse_yaml_text(text, str(path)), text, str(path)


def parse_yaml_text(text: str, source: str) -> dict:
    """Bounded safe_load of ``text`` (see :mod:`mirrordet.utils.safe_yaml`); anything but a mapping,
    or anchors/aliases that expand too far, is a ModelConfigError naming ``source``."""
    d = load_yaml_text(text, source, ModelConfigError)
    if not isinstance(d, dict):
        raise ModelConfigError(f"{source}: a model YAML must be a mapping with `backbone` and `head`")
    return d


def pick_scale(d: dict, scale: str | None, source: str) -> tuple[float, float, int]:
    """(depth, width, max_channels) of ``scale`` from ``d['scales']`` (or the file's multiples)."""
    scales = d.get("scales")
    if scales:
        if not isinstance(scales, dict):
            raise ModelConfigError(f"{source}: `scales` must map a letter to [depth, width, max_channels]")
        if scale is None:
            scale = next(iter(scales))
        if scale not in scales:
            raise ModelConfigError(f"{source}: scale {scale!r} is not defined (defined: {', '.join(map(str, scales))})")
        v = scales[scale]
        ok = isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                         and math.isfinite(x) for x in v)
        if not ok or not (0 < v[0] <= MAX_MULTIPLE and 0 < v[1] <= MAX_MULTIPLE and 1 <= v[2] <= MAX_CHANNELS):
            raise ModelConfigError(f"{source}: scale {scale!r} must be [depth, width, max_channels] with "
                                   f"0 < depth, width <= {MAX_MULTIPLE:g} and 1 <= max_channels <= {MAX_CHANNELS}, "
                                   f"got {short_repr(v)}")
        return float(v[0]), float(v[1]), int(v[2])
    if scale is not None:
        raise ModelConfigError(f"{source}: scale {scale!r} requested but the file defines no `scales`")
    depth, width = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0)
    for k, v in (("depth_multiple", depth), ("width_multiple", width)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= MAX_MULTIPLE:
            raise ModelConfigError(f"{source}: `{k}` must be a number in (0, {MAX_MULTIPLE:g}], got {short_repr(v)}")
    return float(depth), float(width), 1 << 30


def resolve_arg(value: Any, nc: int) -> Any:
    """Replace the allowed symbols in one YAML argument (recursively in lists)."""
    if isinstance(value, str):
        if value == "nc":
            return nc
        return SYMBOLS.get(value, value)
    if isinstance(value, list):
        return [resolve_arg(v, nc) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise ModelConfigError(f"argument {short_repr(value)} of type {type(value).__name__} is not a YAML literal")


def _brief(e: Exception, limit: int = 300) -> str:
    """A module's error message on one line, cut to ``limit`` characters (it may quote long user args)."""
    msg = " ".join(str(e).split())
    return msg if len(msg) <= limit else msg[: limit - 4] + " ..."


def _resolve_from(f: Any, i: int) -> list[int]:
    """Absolute source indices of ``from`` for layer ``i`` (-1 at i == 0 means the input image)."""
    items = f if isinstance(f, list) else [f]
    if not items or not all(isinstance(x, int) and not isinstance(x, bool) for x in items):
        raise ModelConfigError(f"`from` must be an int or a list of ints, got {short_repr(f)}")
    out = []
    for x in items:
        j = i + x if x < 0 else x
        if (x < 0 and j < -1) or j >= i or (x >= 0 and j >= i):
            raise ModelConfigError(f"`from` {x} is out of range for layer {i} (earlier layers: 0..{i - 1})")
        out.append(j)
    return out


def parse_model(d: dict, nc: int | None = None, scale: str | None = None, ch: int = 3,
                source: str = "<dict>") -> tuple[ParsedModel, BuildContext]:
    """Build every row of ``d`` into modules.

    Args:
        d: the model YAML as a dict. nc: class count override. scale: scale letter.
        ch: input image channels. source: file name used in error messages.

    Raises:
        ModelConfigError: naming ``source``, the row index and what is wrong.
    """
    unknown = set(d) - TOP_LEVEL_KEYS
    if unknown:
        raise ModelConfigError(f"{source}: unknown top-level key(s) {sorted(map(str, unknown))}; "
                               f"allowed: {sorted(TOP_LEVEL_KEYS)}")
    for key in ("backbone", "head"):
        if key not in d:
            raise ModelConfigError(f"{source}: missing `{key}` (a list of [from, repeats, module, args] rows)")
        if not isinstance(d[key], list):
            raise ModelConfigError(f"{source}: `{key}` must be a list of [from, repeats, module, args] rows")
    if not isinstance(d.get("zero_init_residual", False), bool):
        raise ModelConfigError(f"{source}: `zero_init_residual` must be true or false, "
                               f"got {d['zero_init_residual']!r}")
    batchnorm_options(d, source)
    nc = d.get("nc", 80) if nc is None else nc
    if not isinstance(nc, int) or isinstance(nc, bool) or not 1 <= nc <= MAX_CLASSES:
        raise ModelConfigError(f"{source}: `nc` must be a positive integer (at most {MAX_CLASSES:,}), got {nc!r}")
    depth, width, max_ch = pick_scale(d, scale, source)
    ctx = BuildContext(nc=nc, width=width, depth=depth, max_channels=max_ch,
                       scale=scale if scale is not None else next(iter(d.get("scales") or {}), None),
                       **head_options(d, source))
    activation = parse_activation(d["activation"], source) if d.get("activation") is not None else None
    with activation_scope(activation):
        return _build_rows(d, ctx, ch, source)


def batchnorm_options(d: dict, source: str) -> dict[str, float]:
    """The checked top-level ``batchnorm: {eps: float, momentum: float}`` ({} when absent).

    Every BatchNorm layer of the model takes these constants after the build (mirrordet's own default is
    eps 1e-3, momentum 0.03; PyTorch's, which Ultralytics' classifiers keep, is eps 1e-5, momentum 0.1).
    """
    bn = d.get("batchnorm")
    if bn is None:
        return {}
    ok = isinstance(bn, dict) and set(bn) <= {"eps", "momentum"} and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bn.values())
    if not ok or not 0 < bn.get("eps", 1e-3) < 1 or not 0 <= bn.get("momentum", 0.03) <= 1:
        raise ModelConfigError(f"{source}: `batchnorm` must be {{eps: (0, 1), momentum: [0, 1]}}, got {short_repr(bn)}")
    return {k: float(v) for k, v in bn.items()}


def head_options(d: dict, source: str) -> dict[str, Any]:
    """The checked top-level ``end2end``, ``reg_max`` and ``kpt_shape`` of a model YAML."""
    end2end, reg_max, kpt = d.get("end2end", False), d.get("reg_max", 16), d.get("kpt_shape")
    if not isinstance(end2end, bool):
        raise ModelConfigError(f"{source}: `end2end` must be true or false, got {short_repr(end2end)}")
    if not isinstance(reg_max, int) or isinstance(reg_max, bool) or not 1 <= reg_max <= MAX_REG_MAX:
        raise ModelConfigError(f"{source}: `reg_max` must be an integer in [1, {MAX_REG_MAX}], got {short_repr(reg_max)}")
    if kpt is not None:
        ok = (isinstance(kpt, list) and len(kpt) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in kpt)
              and 1 <= kpt[0] <= MAX_KEYPOINTS and kpt[1] in (2, 3))
        if not ok:
            raise ModelConfigError(f"{source}: `kpt_shape` must be [keypoints (1..{MAX_KEYPOINTS}), 2 or 3], "
                                   f"got {short_repr(kpt)}")
        kpt = (kpt[0], kpt[1])
    conventions = d.get("conventions", "mirrordet")
    if conventions not in CONVENTIONS:
        raise ModelConfigError(f"{source}: `conventions` must be one of {', '.join(CONVENTIONS)}, "
                               f"got {short_repr(conventions)}")
    return {"end2end": end2end, "reg_max": reg_max, "kpt_shape": kpt, "conventions": conventions}


def resize_options(d: dict, source: str) -> tuple[int, int] | None:
    """The checked top-level ``resize: {min_size: int, max_size: int}`` (None when absent)."""
    rule = d.get("resize")
    if rule is None:
        return None
    ok = (isinstance(rule, dict) and set(rule) == {"min_size", "max_size"}
          and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 8192 for v in rule.values())
          and rule["min_size"] <= rule["max_size"])
    if not ok:
        raise ModelConfigError(f"{source}: `resize` must be {{min_size: int, max_size: int}} with "
                               f"16 <= min_size <= max_size <= 8192, got {short_repr(rule)}")
    return rule["min_size"], rule["max_size"]


def normalize_options(d: dict, ch: int, source: str) -> tuple[list[float], list[float]] | None:
    """The checked top-level ``normalize: {mean: [ch floats], std: [ch positive floats]}`` (None when absent)."""
    norm = d.get("normalize")
    if norm is None:
        return None

    def numbers(v: Any) -> bool:
        return (isinstance(v, list) and len(v) == ch
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))

    ok = isinstance(norm, dict) and set(norm) == {"mean", "std"} and numbers(norm["mean"]) and numbers(norm["std"])
    if not ok or not all(x > 0 for x in norm["std"]):
        raise ModelConfigError(f"{source}: `normalize` must be {{mean: [{ch} numbers], std: [{ch} positive numbers]}} "
                               f"(per input channel, for inputs in [0, 1]), got {short_repr(norm)}")
    return [float(x) for x in norm["mean"]], [float(x) for x in norm["std"]]


def _build_rows(d: dict, ctx: BuildContext, ch: int, source: str) -> tuple[ParsedModel, BuildContext]:
    """Build every backbone and head row of ``d`` in order (see :func:`parse_model`)."""
    nc, depth = ctx.nc, ctx.depth
    rows = [("backbone", j, r) for j, r in enumerate(d["backbone"])] + [("head", j, r) for j, r in enumerate(d["head"])]
    if not rows:
        raise ModelConfigError(f"{source}: the model has no layers")
    channels: list[int | list[int]] = []  # per layer: int, or a list for layers that output a list
    layers, sources, parsed, save = [], [], [], set()
    for i, (section, j, row) in enumerate(rows):
        where = f"{source}: layer {i} ({section} row {j})"
        try:
            if not isinstance(row, list) or len(row) != 4:
                raise ModelConfigError(f"a row must be [from, repeats, module, args], got {short_repr(row)}")
            f, n, name, args = row
            src = _resolve_from(f, i)
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_REPEATS:
                raise ModelConfigError(f"repeats must be a positive integer (at most {MAX_REPEATS}), "
                                       f"got {short_repr(n)}")
            if not isinstance(name, str):
                raise ModelConfigError(f"module must be a registered name, got {short_repr(name)}")
            cls = MODULES.get(name)
            if not isinstance(args, list):
                raise ModelConfigError(f"args must be a list, got {short_repr(args)}")
            args = [resolve_arg(a, nc) for a in args]
            row_ctx = dataclasses.replace(ctx, repeats=n)
            n = max(round(n * depth), 1) if n > 1 else n
            if n > MAX_REPEATS:
                raise ModelConfigError(f"repeats x the depth multiple {depth:g} = {n}, more than {MAX_REPEATS}")
            c_in = [ch if k == -1 else channels[k] for k in src]
            if getattr(cls, "list_input", False) and len(c_in) == 1 and not isinstance(c_in[0], list):
                raise ModelConfigError(f"{name} reads a list of feature maps, but `from` {short_repr(f)} gives it "
                                       "one tensor; list the layers it reads, e.g. [15, 18, 21]")
            module, c_out, shown = cls.from_yaml(c_in, args, n, row_ctx)
            if getattr(cls, "marks_depthwise_head", False) and not ctx.depthwise_head:
                ctx = dataclasses.replace(ctx, depthwise_head=True)
        except MirrordetError as e:
            raise ModelConfigError(f"{where}: {_brief(e)}") from None
        except (TypeError, ValueError, IndexError, RuntimeError, OverflowError, ZeroDivisionError) as e:
            raise ModelConfigError(f"{where}: cannot build {short_repr(row)}: {_brief(e)}") from None
        save.update(k for k in src if k not in (-1, i - 1))
        channels.append(c_out)
        layers.append(module)
        sources.append(src)
        parsed.append(LayerRow(i, f, n, name, shown, sum(p.numel() for p in module.parameters())))
    return ParsedModel(nn.ModuleList(layers), sources, sorted(save), parsed, channels), ctx
