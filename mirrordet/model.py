"""Python API: ``Model("yolov8n-mirror.yaml").info()``, ``Model("best.pt").val(data=...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mirrordet.nn.graph import ModelGraph, build_model
from mirrordet.nn.info import ModelSummary, layer_table, summarize
from mirrordet.utils.log import LOGGER, setup_logging


def load_weights(path: str | Path) -> tuple[ModelGraph, dict]:
    """Rebuild a model from a mirrordet checkpoint (YAML text + state dict). Returns (model, ckpt)."""
    from mirrordet.engine.checkpoint import load_checkpoint, load_state_dict_checked

    ckpt = load_checkpoint(path)
    cfg = ckpt.get("model_cfg") or {}
    names = ckpt.get("names")
    if isinstance(names, list):
        names = dict(enumerate(names))
    model = ModelGraph(ckpt["model_yaml"], nc=cfg.get("nc"), scale=cfg.get("scale"), source=str(path),
                       names=names)
    load_state_dict_checked(model, ckpt["model"], path)  # missing keys / wrong shapes -> CheckpointError
    return model, ckpt


class Model:
    """A model plus the modes that act on it.

    Args:
        model: a model YAML (path or bundled name, e.g. ``"yolov8n-mirror.yaml"``) or a ``.pt``
            checkpoint written by mirrordet.
        nc: class count override when building from YAML.
        scale: scale letter override when building from YAML.
    """

    def __init__(self, model: str | Path = "yolov8n.yaml", nc: int | None = None, scale: str | None = None) -> None:
        self.source = str(model)
        self.ckpt: dict | None = None
        if Path(self.source).suffix == ".pt":
            self.model, self.ckpt = load_weights(self.source)
        else:
            self.model = build_model(self.source, nc=nc, scale=scale)

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
        summary = summarize(self.model, imgsz)
        if verbose:
            setup_logging()
            if detailed:
                LOGGER.info(layer_table(self.model))
            LOGGER.info(summary.line(Path(self.source).stem))
        return summary

    def train(self, **overrides: Any) -> dict:
        """Train with ``overrides`` on top of the defaults; returns the final metrics."""
        from mirrordet.engine.trainer import Trainer

        return Trainer({**overrides, "model": self.source}, model=self).train()

    def val(self, **overrides: Any) -> dict:
        """Validate on ``data``'s ``split``; returns the metrics."""
        from mirrordet.engine.validator import validate_model

        return validate_model(self, overrides)

    def predict(self, source: Any = None, stream: bool = False, **overrides: Any) -> list:
        """Predict on images, folders, globs, ``.txt`` lists, videos or numpy arrays (BGR [H, W, 3]).

        Returns a list of :class:`mirrordet.engine.results.Result` (a generator when ``stream``).
        Nothing is written unless ``save=True`` (annotated images), ``save_txt=True`` or
        ``save_json=True``; outputs then go to runs/<task>/predict/<name>/.
        """
        from mirrordet.engine.predictor import predict_model

        return predict_model(self, source, overrides, stream=stream)

    def export(self, **overrides: Any) -> Path:
        """Export to ``format`` (torchscript | onnx), checked against PyTorch; returns the file's path."""
        from mirrordet.engine.exporter import export_model

        return export_model(self, overrides).path
