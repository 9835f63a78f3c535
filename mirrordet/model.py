"""Python API: ``Model("yolov8n-mirror.yaml").info()``, ``Model("best.pt").val(data=...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.engine.callbacks import Callbacks
from mirrordet.engine.weights import load_weights, open_network

__all__ = ["Model", "load_weights"]  # load_weights: kept importable from here for existing scripts
from mirrordet.nn.info import ModelSummary, layer_table, summarize
from mirrordet.utils.log import LOGGER, setup_logging


class Model:
    """A model plus the modes that act on it.

    Args:
        model: a model YAML (path or bundled name, e.g. ``"yolov8n-mirror.yaml"``), a ``.pt``
            checkpoint written by mirrordet (or an Ultralytics one, converted in memory), or an exported file
            (``.onnx``, ``.torchscript``, ``*_openvino_model``) to predict and validate with.
        nc: class count override when building from YAML.
        scale: scale letter override when building from YAML.
    """

    def __init__(self, model: str | Path = "yolov8n.yaml", nc: int | None = None, scale: str | None = None) -> None:
        setup_logging()  # the Python API prints like the CLI (one handler on the package logger, idempotent)
        self.source = str(model)
        self.ckpt: Checkpoint | None = None
        self._predict_cache: dict[str, Any] = {}  # the fused inference copy, reused while the weights are unchanged
        self.callbacks = Callbacks()
        self.run_dir: Path | None = None  # the folder of the last run of train()
        self.model, self.ckpt = open_network(self.source, nc=nc, scale=scale)

    @property
    def train_args(self) -> dict[str, Any]:
        """The settings the checkpoint was trained with ({} for a model built from YAML; imgsz and data for an
        exported file)."""
        from mirrordet.engine.modes import trained_with

        return trained_with(self.model, self.ckpt) or {}

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def names(self) -> dict[int, str]:
        return self.model.names

    def __call__(self, x: torch.Tensor) -> Any:
        return self.model(x)

    def info(self, imgsz: int = 640, verbose: bool = True, detailed: bool = True) -> ModelSummary:
        """Print the layer table and totals (parameters, gradients, GFLOPs at ``imgsz``, strides)."""
        self._needs_weights("info")
        summary = summarize(self.model, imgsz)
        if verbose:
            setup_logging()
            if detailed:
                LOGGER.info(layer_table(self.model))
            LOGGER.info(summary.line(Path(self.source).stem))
        return summary

    def add_callback(self, event: str, fn: Any) -> None:
        """Call ``fn(trainer, **details)`` at a training ``event`` of :meth:`train` (events and details:
        :mod:`mirrordet.engine.callbacks`), e.g. ``m.add_callback("on_epoch_end", lambda t, **d: print(d["metrics"]))``."""
        self.callbacks.add(event, fn)

    def train(self, **overrides: Any) -> dict:
        """Train with ``overrides`` on top of the defaults; returns the final metrics. The run folder is then
        ``self.run_dir`` (its ``weights/best.pt`` is the model to validate or predict with)."""
        from mirrordet.engine.trainer import Trainer

        self._needs_weights("train")
        trainer = Trainer({**overrides, "model": self.source}, model=self.model if self.ckpt is None else None,
                          callbacks=self.callbacks)
        self.run_dir = Path(trainer.save_dir)
        return trainer.train()

    def val(self, **overrides: Any) -> dict:
        """Validate on ``data``'s ``split`` (by default the dataset a checkpoint was trained on); returns the
        metrics."""
        from mirrordet.engine.modes import validate_model

        return validate_model(self.model, overrides, self.train_args)

    def predict(self, source: Any = None, stream: bool = False, **overrides: Any) -> list:
        """Predict on images, folders, globs, ``.txt`` lists, videos or numpy arrays (BGR [H, W, 3]).

        Returns a list of :class:`mirrordet.engine.results.Result` (a generator when ``stream``).
        Nothing is written unless ``save=True`` (annotated images), ``save_txt=True`` or
        ``save_json=True``; outputs then go to runs/<task>/predict/<name>/.
        """
        from mirrordet.engine.modes import predict_model

        return predict_model(self.model, source, overrides, stream=stream, train_args=self.train_args,
                             cache=self._predict_cache)

    def export(self, **overrides: Any) -> Path:
        """Export to ``format`` (torchscript | onnx), checked against PyTorch; returns the file's path."""
        from mirrordet.engine.exporter import export_model

        self._needs_weights("export")
        return export_model(self.model, overrides, train_args=self.train_args, source=self.source).path

    def _needs_weights(self, mode: str) -> None:
        """Refuse ``mode`` on an exported file (its runtime can only run it)."""
        from mirrordet.engine.exported_model import ExportedNetwork
        from mirrordet.utils.errors import ConfigError

        if isinstance(self.model, ExportedNetwork):
            raise ConfigError(f"{self.source} is an exported model: {mode} needs the .pt checkpoint it was exported "
                              "from (exported files run predict and val)")
