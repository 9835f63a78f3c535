"""The settings axis of `mirrordet compare`: ``vary=KEY=V1,V2,...`` trains every model once per value.

A comparison's arms are (model, value) pairs: ``models=yolov8n.yaml vary=mixup=0,0.1`` gives two arms,
``yolov8n mixup=0`` and ``yolov8n mixup=0.1``, trained with the same seeds and every other setting equal, so
a recipe change (an augmentation, a loss gain, an image size) is judged by the same paired verdict as a new
block. With ``runs=`` folders, ``vary=KEY`` (no values) lets that one setting differ between the runs and
groups them by model and its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mirrordet.utils.errors import ConfigError

# the budget is set by budget= / epochs= / time=, so it is never an arm's setting
BUDGET_KEYS = ("epochs", "time")


@dataclass(frozen=True)
class Arm:
    """One trained configuration of a comparison.

    Attributes:
        label: the name it is grouped and reported under (``"yolov8n"`` or ``"yolov8n mixup=0.1"``).
        model: the model YAML or checkpoint it trains.
        settings: the arm's own settings (``{"mixup": 0.1}``; empty without ``vary=``).
    """

    label: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """A file-system-safe name for the arm's run folders (``"yolov8n-mixup0.1"``)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "", self.label.replace(" ", "-").replace("=", ""))


def _value_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def vary_key(key: str, settings: Mapping[str, Any]) -> str:
    """Check that ``key`` may be varied: a known training setting that changes the recipe, not a budget, not
    also fixed by ``settings``.

    Raises:
        ConfigError: naming why it cannot be varied.
    """
    from mirrordet.cfg import load_defaults, unknown_key_error
    from mirrordet.engine.fingerprint import NOT_RECIPE

    defaults = load_defaults()
    if key not in defaults:
        raise unknown_key_error(key, list(defaults))
    if key in BUDGET_KEYS:
        raise ConfigError(f"vary={key}: the training budget is set for all arms by budget= with epochs= or time=, "
                          "not varied")
    if key in NOT_RECIPE:
        raise ConfigError(f"vary={key}: '{key}' does not change what a run learns (or is set per run by compare), "
                          "so there is nothing to compare; vary a training setting such as mixup, lr0 or imgsz")
    if key in settings:
        raise ConfigError(f"vary={key}=... and {key}={settings[key]} both set '{key}'; give it in one place")
    return key


def parse_vary(value: Any, settings: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``"mixup=0,0.1"`` -> ``("mixup", [0.0, 0.1])``: each value read like a CLI value and type-checked.

    Raises:
        ConfigError: no ``=``, an unknown or unvariable key, fewer than two values, a repeated or bad value.
    """
    from mirrordet.cfg import get_cfg
    from mirrordet.utils.safe_yaml import load_yaml_text

    text = _value_text(value)
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise ConfigError(f"vary={text!r}: give one setting and its values, e.g. vary=mixup=0,0.1")
    key = vary_key(key.strip(), settings)
    values = []
    for item in (s.strip() for s in raw.split(",")):
        if not item:
            continue
        v = load_yaml_text(item, f"vary {key}=", ConfigError, invalid_as_text=True)
        try:
            values.append(get_cfg({key: v})[key])
        except ConfigError as e:
            raise ConfigError(f"vary={text}: {e}") from None
    if len(values) < 2:
        raise ConfigError(f"vary={text}: give at least two values to compare, e.g. vary={key}=A,B")
    if len({repr(v) for v in values}) != len(values):
        raise ConfigError(f"vary={text} lists a value twice")
    return key, values


def arms(models: Sequence[str], labels: Sequence[str], vary: tuple[str, list[Any]] | None) -> list[Arm]:
    """Every (model, value) pair, model-major; one arm per model without ``vary``."""
    if vary is None:
        return [Arm(label, model) for label, model in zip(labels, models)]
    key, values = vary
    return [Arm(f"{label} {key}={v}", model, {key: v}) for label, model in zip(labels, models) for v in values]


def run_label(model_label: str, args: Mapping[str, Any], key: str | None) -> str:
    """The label of a finished run: its model, with ``key=value`` from its args.yaml when a setting is varied."""
    if key is None:
        return model_label
    from mirrordet.cfg import load_defaults

    return f"{model_label} {key}={args.get(key, load_defaults()[key])}"
