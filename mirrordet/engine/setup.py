"""Settings of every mode, resolved once: per-mode defaults, dataset hints, image size, class checks."""

from __future__ import annotations

from typing import Any, Mapping

from mirrordet.cfg import get_cfg
from mirrordet.data.dataset_yaml import load_dataset_yaml
from mirrordet.data.preprocess import stride_multiple
from mirrordet.utils.errors import ConfigError, DatasetError
from mirrordet.utils.log import LOGGER

MODEL_KEYS = ("model", "nc", "scale")  # the settings that name a network (read before the others)
# Settings each mode defaults differently from the training defaults of cfg/default.yaml.
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "predict": {"batch": 1},
    "export": {"batch": 1},
}
PYTHON_DEFAULTS: dict[str, dict[str, Any]] = {  # from Python (not the CLI) only
    "predict": {"save_json": False},
}
TASK_DATA = {"segment": "shapes-seg.yaml", "classify": "shapes-cls.yaml"}  # embedded data of the other tasks


def default_data(model: Any) -> str | None:
    """The embedded dataset of a model YAML's task (``TASK_DATA``, by the registered class of its last row),
    used when the command names no ``data``; None for detectors, checkpoints and unreadable files (whose
    errors are reported when the model is built)."""
    import mirrordet.nn.modules  # noqa: F401  (registers the modules)
    from mirrordet.nn.head import Head
    from mirrordet.nn.parser import load_model_yaml
    from mirrordet.registry import MODULES
    from mirrordet.utils.errors import MirrordetError

    if not isinstance(model, str) or not model.endswith((".yaml", ".yml")):
        return None
    try:
        d, _, _ = load_model_yaml(model)
    except MirrordetError:
        return None
    rows = d.get("head") if isinstance(d.get("head"), list) else []
    last = rows[-1] if rows else None
    name = last[2] if isinstance(last, list) and len(last) >= 3 and isinstance(last[2], str) else None
    module = MODULES.get(name) if name is not None and name in MODULES else None
    return TASK_DATA.get(module.task) if isinstance(module, type) and issubclass(module, Head) else None


def mode_settings(mode: str, overrides: Mapping[str, Any], train_args: Mapping[str, Any] | None = None,
                  cli: bool = False) -> dict[str, Any]:
    """The settings of ``mode``: defaults < the mode's defaults < the checkpoint's imgsz < ``overrides``.

    ``train_args`` (a checkpoint's training settings) supply ``imgsz`` when it is not given.

    Raises:
        ConfigError: a bad setting.
    """
    merged = {**MODE_DEFAULTS.get(mode, {}), **({} if cli else PYTHON_DEFAULTS.get(mode, {})), **overrides}
    trained_imgsz = (train_args or {}).get("imgsz")
    if "imgsz" not in overrides and isinstance(trained_imgsz, int) and not isinstance(trained_imgsz, bool):
        merged["imgsz"] = trained_imgsz
    return get_cfg(merged)


def resolve_settings(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, dataset dict): defaults < the dataset YAML's ``defaults:`` < user overrides.

    ``defaults:`` may only hold keys of ``data.dataset_yaml.DATASET_HINT_KEYS`` (checked when it is read).
    """
    # the user's own settings are checked before any dataset is read or generated
    data_name = get_cfg(overrides)["data"] if overrides.get("data") is not None else None
    data_name = data_name or default_data(overrides.get("model")) or get_cfg()["data"]
    data = load_dataset_yaml(data_name)
    hints = {k: v for k, v in (data.get("defaults") or {}).items() if k not in overrides}
    try:
        cfg = get_cfg({**overrides, "data": data_name}, base=hints)  # the dataset used, also when defaulted
    except ConfigError as e:
        raise ConfigError(f"{e} (in {data.get('yaml_file', data_name)} `defaults:` or the command line)") from None
    return cfg, data


def check_imgsz(imgsz: int, stride: int) -> int:
    """``imgsz`` rounded up to a multiple of the model's max stride (with a log line if changed)."""
    new = stride_multiple(imgsz, stride)
    if new != imgsz:
        LOGGER.warning(f"imgsz={imgsz} is not a multiple of the max stride {stride}; using {new}")
    return new


def check_classes(model_nc: int, data: Mapping[str, Any]) -> None:
    """The model and the dataset must agree on the class count."""
    if int(data["nc"]) != model_nc:
        raise DatasetError(f"{data.get('yaml_file')}: dataset has {data['nc']} classes but the model predicts "
                           f"{model_nc}; train a model for this dataset or pass the matching data=")
