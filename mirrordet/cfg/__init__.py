"""Settings: the commented defaults in default.yaml, overrides, and type/range checks."""

from __future__ import annotations

import copy
import difflib
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import yaml

from mirrordet.utils.errors import ConfigError
from mirrordet.utils.safe_yaml import short_repr

NUMBER = (int, float)
# The type of every setting whose default is null (tests/cfg checks that none is missing).
OPTIONAL_TYPES: dict[str, tuple[type, ...]] = {
    "scale": (str,), "nc": (int,), "device": (str, int), "project": (str,), "name": (str,),
    "conf": NUMBER, "classes": (list, int), "source": (str,), "weights": (str,), "freeze": (int, str), "time": NUMBER, "save": (bool,),
}
MAX_IMGSZ = 8192  # pixels; activation memory grows with imgsz**2 (see default.yaml)
MIXED_TYPES: dict[str, tuple[type, ...]] = {"amp": (bool, str), "cache": (bool, str)}  # True/False, or "bf16"; "ram"/"disk"
UNIT_INTERVAL = {"hsv_h", "hsv_s", "hsv_v", "fliplr", "flipud", "mosaic", "mixup", "copy_paste", "translate", "iou", "conf",
                 "lrf", "momentum", "warmup_momentum", "label_smoothing"}
POSITIVE = {"epochs", "time", "batch", "imgsz", "lr0", "nbs", "max_det", "vid_stride", "max_bad_steps", "fraction"}
NON_NEGATIVE = {"patience", "workers", "weight_decay", "warmup_epochs", "warmup_bias_lr", "grad_clip",
                "close_mosaic", "box", "cls", "dfl", "degrees", "aug_scale", "shear", "seed", "opset"}
CHOICES = {
    "task": ("detect", "segment", "classify"), "mode": ("train", "val", "predict", "info", "export", "compare", "convert", "benchmark"),
    "optimizer": ("auto", "SGD", "Adam", "AdamW"), "format": ("torchscript", "onnx", "openvino"),
    "split": ("train", "val", "test"), "scale": ("n", "s", "m", "l", "x"), "amp": ("bf16",), "cache": ("ram", "disk"),
}


@lru_cache(maxsize=1)
def _default_text() -> str:
    return resources.files("mirrordet.cfg").joinpath("default.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _parsed_defaults() -> dict[str, Any]:
    return yaml.safe_load(_default_text())


def load_defaults() -> dict[str, Any]:
    """A fresh dict of every setting and its default value."""
    return copy.deepcopy(_parsed_defaults())


def _check_type(key: str, value: Any, default: Any) -> Any:
    if value is None:
        if default is None or key in OPTIONAL_TYPES:
            return None
        raise ConfigError(f"'{key}' cannot be null (default {default!r})")
    if key in MIXED_TYPES:
        types = MIXED_TYPES[key]
    elif default is None:
        types = OPTIONAL_TYPES[key]
    elif isinstance(default, bool):
        types = (bool,)
    elif isinstance(default, int):
        types = (int,) if key not in ("fraction",) else NUMBER
    elif isinstance(default, float):
        types = NUMBER
    else:
        types = (type(default),)
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"'{key}={value}' must be {' or '.join(t.__name__ for t in types)}, not a boolean")
    if not isinstance(value, types):
        raise ConfigError(f"'{key}={short_repr(value)}' must be {' or '.join(t.__name__ for t in types)} "
                          f"(got {type(value).__name__})")
    if isinstance(default, float) and isinstance(value, int):
        value = float(value)
    return value


def _check_range(key: str, value: Any) -> None:
    if value is None or isinstance(value, bool):
        return
    if key in CHOICES and value not in CHOICES[key]:
        choices = [*CHOICES[key], *(("true", "false") if bool in MIXED_TYPES.get(key, ()) else ())]
        raise ConfigError(f"'{key}={value}' is not valid; choose one of {', '.join(choices)}")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"'{key}={value}' must be a finite number")
        if key in UNIT_INTERVAL and not 0.0 <= value <= 1.0:
            raise ConfigError(f"'{key}={value}' must be within [0, 1]")
        if key == "batch" and value == -1:
            raise ConfigError("'batch=-1' (AutoBatch) is not available in mirrordet; give a batch size, e.g. batch=16 "
                              "(the total over all GPUs)")
        if key in POSITIVE and value <= 0:
            raise ConfigError(f"'{key}={value}' must be > 0")
        if key in NON_NEGATIVE and value < 0:
            raise ConfigError(f"'{key}={value}' must be >= 0")
        if key == "imgsz" and value > MAX_IMGSZ:
            raise ConfigError(f"'imgsz={value}' is larger than the maximum {MAX_IMGSZ} pixels")
    if key == "freeze" and not (value == "backbone" or (isinstance(value, int) and value >= 0)):
        raise ConfigError(f"'freeze={value}' must be a number of layers (>= 0) or 'backbone'")
    if key == "fraction" and value > 1:
        raise ConfigError(f"'fraction={value}' must be within (0, 1]")
    if key == "classes" and value is not None:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in items):
            raise ConfigError(f"'classes={short_repr(value)}' must be a class index or a list of class indices")


def unknown_key_error(key: str, valid: list[str]) -> ConfigError:
    """A ConfigError for an unknown setting, naming the closest valid keys."""
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.75) or difflib.get_close_matches(key, valid, n=1,
                                                                                                   cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown setting {key!r}{hint} (see `mirrordet help` for every setting)")


def get_cfg(overrides: Mapping[str, Any] | None = None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, updated with ``base`` then ``overrides``, each key type- and range-checked.

    Raises:
        ConfigError: unknown key (with the closest valid key) or a bad value.
    """
    defaults = load_defaults()
    cfg = dict(defaults)
    for layer in (base or {}, overrides or {}):
        for key, value in layer.items():
            if key not in defaults:
                raise unknown_key_error(str(key), list(defaults))
            value = _check_type(key, value, defaults[key])
            _check_range(key, value)
            cfg[key] = value
    return cfg
