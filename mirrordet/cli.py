"""``mirrordet MODE key=value ...``: the command line. ``main(argv)`` is callable in-process."""

from __future__ import annotations

import difflib
import sys
from typing import Any, Callable, Sequence

import yaml

from mirrordet.cfg import get_cfg, load_defaults
from mirrordet.utils.errors import ConfigError, MirrordetError
from mirrordet.utils.log import LOGGER, setup_logging
from mirrordet.utils.safe_yaml import load_yaml_text
from mirrordet.version import __version__

USAGE = f"""mirrordet {__version__}: YAML-defined detectors and classifiers

usage: mirrordet [TASK] MODE [key=value ...]     (TASK: detect | segment | classify, optional)

modes:
  train   train a model           mirrordet train model=yolov8n-mirror.yaml data=coco.yaml epochs=100
  val     validate a checkpoint   mirrordet val model=runs/detect/train/train/weights/best.pt data=coco.yaml
  info    layer table, GFLOPs     mirrordet info model=yolov8n-mirror.yaml imgsz=640
  predict run a model on images   mirrordet predict model=best.pt source=images/ (files, folders, globs, videos, .txt)
          (val and predict also take an exported best.onnx / best.torchscript / best_openvino_model)
  export  TorchScript/ONNX/OpenVINO  mirrordet export model=best.pt format=onnx dynamic=True
  benchmark  the checkpoint and its exports (TorchScript, ONNX, OpenVINO) validated and timed side by side
          mirrordet benchmark model=best.pt data=coco.yaml
  convert another tool's .pt / .pth (Ultralytics, torchvision detectors) into a mirrordet checkpoint,
          running nothing from it
          mirrordet convert model=yolov8n.pt    (writes yolov8n-mirrordet.pt beside it)
  compare train models with the same settings and seeds; tables and plots
          mirrordet compare models=yolov8n.yaml,yolov8n-mirror.yaml seeds=0,1,2 epochs=30
          mirrordet compare models=yolov8n.yaml vary=mixup=0,0.1 seeds=0,1
          mirrordet compare runs=runs/detect/train/train,runs/detect/train/train2
  help    this text and every setting with its default
  version print the version

`mirrordet train` with no settings trains yolov8n on the built-in synthetic shapes dataset.
"""


def parse_overrides(tokens: Sequence[str]) -> dict[str, Any]:
    """``["epochs=3", "device=cpu"]`` -> ``{"epochs": 3, "device": "cpu"}``.

    Values are read as YAML scalars/lists with a bounded ``yaml.safe_load`` (never evaluated as
    code; anchors/aliases that expand too far are refused, see :mod:`mirrordet.utils.safe_yaml`).
    A value that is not valid YAML stays the raw string.
    """
    out: dict[str, Any] = {}
    for tok in tokens:
        if "=" not in tok:
            raise ConfigError(f"expected key=value, got {tok!r} (e.g. epochs=10)")
        key, _, raw = tok.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not key:
            raise ConfigError(f"missing key in {tok!r}")
        value = load_yaml_text(raw, f"'{key}='", ConfigError, invalid_as_text=True) if raw.strip() else None
        if isinstance(value, (dict, set)) or (value is not None and not isinstance(value, (str, int, float, bool, list))):
            value = raw
        if key in out:
            raise ConfigError(f"'{key}' given twice")
        out[key] = value
    return out


def _mode_info(overrides: dict[str, Any]) -> int:
    from mirrordet.model import Model

    cfg = get_cfg(overrides)
    Model(cfg["model"], nc=cfg["nc"], scale=cfg["scale"]).info(imgsz=cfg["imgsz"])
    return 0


def _mode_train(overrides: dict[str, Any]) -> int:
    from mirrordet.engine.distributed import cuda_device_list, dist_info, launch

    devices = cuda_device_list(overrides.get("device"))
    if len(devices) > 1 and not dist_info().enabled:  # device=0,1: one process per GPU (torchrun)
        return launch(["train", *format_overrides(overrides)], devices)
    from mirrordet.engine.trainer import Trainer

    Trainer(overrides).train()
    return 0


def format_overrides(overrides: dict[str, Any]) -> list[str]:
    """Inverse of :func:`parse_overrides` (values written as YAML flow scalars/lists)."""
    return [f"{k}={v}" if isinstance(v, str) else f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
            .replace("\n...", "") for k, v in overrides.items()]


def _mode_val(overrides: dict[str, Any]) -> int:
    from mirrordet.engine.modes import val_mode

    val_mode(overrides)
    return 0


def _mode_compare(overrides: dict[str, Any]) -> int:
    from mirrordet.engine.compare import compare

    compare(overrides)
    return 0


def _mode_predict(overrides: dict[str, Any]) -> int:
    from mirrordet.engine.modes import predict_mode

    predict_mode(overrides)
    return 0


def _mode_export(overrides: dict[str, Any]) -> int:
    from mirrordet.engine.modes import export_mode

    export_mode(overrides)
    return 0


def _mode_benchmark(overrides: dict[str, Any]) -> int:
    from mirrordet.engine.benchmark import benchmark

    benchmark(overrides)
    return 0


def _mode_convert(overrides: dict[str, Any]) -> int:
    from mirrordet.engine.modes import convert_mode

    convert_mode(overrides)
    return 0


def _mode_help(overrides: dict[str, Any]) -> int:
    print(USAGE)
    print("settings (default):")
    for key, value in load_defaults().items():
        print(f"  {key}={value}")
    return 0


def _mode_version(overrides: dict[str, Any]) -> int:
    print(__version__)
    return 0


MODES: dict[str, Callable[[dict[str, Any]], int]] = {
    "train": _mode_train, "val": _mode_val, "info": _mode_info, "help": _mode_help, "version": _mode_version,
    "compare": _mode_compare,
    "predict": _mode_predict, "export": _mode_export, "convert": _mode_convert, "benchmark": _mode_benchmark,
}


# A task word may come first, as Ultralytics users type it; it becomes task=.
TASK_WORDS: dict[str, str] = {"detect": "detect", "classify": "classify", "segment": "segment"}
# what a task word implies when the command does not say (`mirrordet classify train` trains a classifier)
TASK_DEFAULTS: dict[str, dict[str, str]] = {"detect": {"task": "detect"},
                                            "segment": {"task": "segment", "model": "yolov8n-seg.yaml",
                                                        "data": "shapes-seg.yaml"},
                                            "classify": {"task": "classify", "model": "yolov8n-cls.yaml",
                                                         "data": "shapes-cls.yaml"}}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one CLI command; returns the exit code (0 ok, 2 bad input or a project error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    mode, rest = argv[0], argv[1:]
    try:
        if mode in TASK_WORDS:  # `mirrordet detect train ...`, as Ultralytics users type it
            if not rest or rest[0] not in MODES:
                raise ConfigError(f"`mirrordet {mode}` needs a mode after the task, e.g. `mirrordet {mode} train ...` "
                                  f"(modes: {', '.join(MODES)})")
            task, mode, rest = TASK_WORDS[mode], rest[0], rest[1:]
            given = {tok.partition("=")[0].strip().lstrip("-") for tok in rest}
            rest = [*rest, *(f"{k}={v}" for k, v in TASK_DEFAULTS[task].items() if k not in given and mode != "compare")]
        if mode not in MODES:
            if "=" in mode:
                raise ConfigError(f"the first argument must be a mode ({', '.join(MODES)}), got {mode!r}")
            close = difflib.get_close_matches(mode, list(MODES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown mode {mode!r}{hint} (modes: {', '.join(MODES)})")
        overrides = parse_overrides(rest)
        return MODES[mode](overrides)
    except MirrordetError as e:
        LOGGER.error(f"mirrordet {mode}: error: {e}")
        return 2
    except KeyboardInterrupt as e:  # a TrainingInterrupted says what was kept and how to resume
        LOGGER.error(f"mirrordet {mode}: interrupted{': ' + str(e) if str(e) else ''}")
        return 130


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
