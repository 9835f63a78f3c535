"""ModelGraph: runs the parsed layers in order and routes each layer's ``from`` inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from mirrordet.nn.head import Head
from mirrordet.nn.init import set_batchnorm, zero_init_residual
from mirrordet.nn.parser import (LayerRow, batchnorm_options, load_model_yaml, normalize_options, parse_model,
                                 parse_yaml_text, resize_options, resolve_model_yaml)
from mirrordet.utils.errors import ModelConfigError
from mirrordet.utils.safe_yaml import read_yaml_text


def max_input_stride(stride: torch.Tensor) -> int:
    """The largest of a head's input strides [L], at least 32 (input sizes are rounded up to it)."""
    return int(max(float(stride.max()), 32.0)) if stride.numel() else 32


class _StopForward(Exception):
    """Raised by a pre-hook to end a probing forward pass at the head."""


class ModelGraph(nn.Module):
    """A network built from a model YAML.

    Attributes:
        layers: the built modules, in YAML order (backbone then head); the last one is the head.
        yaml_text: the YAML source (stored in checkpoints, so a checkpoint rebuilds its model).
        nc: classes. scale: scale letter used (or None). task: "detect" or "classify" (from the head).
        stride: [L] output strides of the head's input levels, in pixels.
        names: {class index: name}.
        kpt_shape: the file's ``kpt_shape`` (keypoints, values per keypoint), or None.
        resize: the file's ``resize`` (min_size, max_size) for predict, or None (fit the long side to imgsz).
    """

    def __init__(self, yaml_text: str, nc: int | None = None, scale: str | None = None, ch: int = 3,
                 source: str = "<yaml>", names: dict[int, str] | None = None) -> None:
        super().__init__()
        d = parse_yaml_text(yaml_text, source)
        parsed, ctx = parse_model(d, nc=nc, scale=scale, ch=ch, source=source)
        self.yaml_text, self.source, self.scale, self.ch = yaml_text, source, scale, ch
        self.nc, self.kpt_shape = ctx.nc, ctx.kpt_shape
        self.n_backbone = len(d.get("backbone") or [])  # the first rows of the YAML (freeze=backbone)
        self.layers = parsed.layers
        self.sources, self.save, self.rows = parsed.sources, set(parsed.save), parsed.rows
        self.names = dict(names) if names else {i: f"class{i}" for i in range(self.nc)}
        head = self.layers[-1]
        self.task: str = head.task if isinstance(head, Head) else "features"
        if d.get("zero_init_residual", False):
            zero_init_residual(self)
        if d.get("batchnorm"):
            set_batchnorm(self, **batchnorm_options(d, source))
        self.resize = resize_options(d, source)
        norm = normalize_options(d, ch, source)
        self.normalize = norm is not None
        if norm is not None:  # part of the network (and of its exports), not of the checkpoint's tensors
            self.register_buffer("input_mean", torch.tensor(norm[0]).view(1, ch, 1, 1), persistent=False)
            self.register_buffer("input_std", torch.tensor(norm[1]).view(1, ch, 1, 1), persistent=False)
        self.register_buffer("stride", self._probe_strides(), persistent=False)
        if isinstance(head, Head):
            head.set_strides(self.stride)

    def freeze(self, layers: int | str) -> int:
        """Keep the first ``layers`` layers (or the YAML's ``"backbone"`` rows) fixed in training: their parameters
        get ``requires_grad=False`` and their BatchNorm layers stay in eval mode (running statistics kept).
        Returns the number of parameter tensors frozen."""
        n = self.n_backbone if layers == "backbone" else int(layers)
        params = [p for layer in self.layers[:n] for p in layer.parameters()]
        for p in params:
            p.requires_grad_(False)
        self.frozen = n
        self.train(self.training)  # their BatchNorm layers keep their statistics from now on
        return len(params)

    def train(self, mode: bool = True) -> "ModelGraph":
        """``nn.Module.train``; the BatchNorm layers of frozen layers (:meth:`freeze`) stay in eval mode, so a frozen
        trunk keeps its running statistics too (as a FrozenBatchNorm trunk does)."""
        super().train(mode)
        for layer in self.layers[: getattr(self, "frozen", 0)]:
            for m in layer.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    @property
    def head(self) -> nn.Module:
        """The last layer: a :class:`~mirrordet.nn.head.Head` unless the model is a feature extractor."""
        return self.layers[-1]

    @property
    def max_stride(self) -> int:
        """The largest input stride of the head's levels, at least 32 (input sizes are rounded up to it)."""
        return max_input_stride(self.stride)

    def forward(self, x: torch.Tensor, targets: Mapping[str, torch.Tensor] | None = None) -> Any:
        """x: [B, ch, H, W] float image batch in [0, 1] -> the head's output (see the head's docstring).

        ``targets`` (the batch's ``cls``, ``bboxes``, ``batch_idx``, ``img``) reach the head in training
        when it samples its own targets (``Head.needs_targets``); every other layer ignores them.
        """
        if self.normalize:  # the YAML's `normalize`: standardized as the weights expect
            x = (x - self.input_mean) / self.input_std
        image, outputs, last = x, {}, len(self.layers) - 1
        for i, (m, src) in enumerate(zip(self.layers, self.sources)):
            ins = [image if k == -1 else (x if k == i - 1 else outputs[k]) for k in src]
            inp = ins[0] if len(ins) == 1 else ins
            x = m(inp, targets) if i == last and self.training and isinstance(m, Head) and m.needs_targets else m(inp)
            if i in self.save:
                outputs[i] = x
        return x

    @torch.no_grad()
    def _probe_strides(self, size: int = 256) -> torch.Tensor:
        """Strides of the head's inputs, from one eval-mode forward of a ``size`` x ``size`` image."""
        seen: list[torch.Tensor] = []

        def hook(_m, args):
            xs = args[0]
            seen.extend(xs if isinstance(xs, (list, tuple)) else [xs])
            raise _StopForward

        handle = self.head.register_forward_pre_hook(hook)
        was_training = self.training
        self.eval()
        try:
            self.forward(torch.zeros(1, self.ch, size, size))
        except _StopForward:
            pass
        except RuntimeError as e:
            raise ModelConfigError(f"{self.source}: forward pass failed while wiring the model: {e}") from None
        finally:
            handle.remove()
            self.train(was_training)
        return torch.tensor([size / t.shape[-2] for t in seen if t.dim() == 4], dtype=torch.float32)


def build_model(cfg: str | Path | dict, nc: int | None = None, scale: str | None = None, ch: int = 3,
                names: dict[int, str] | None = None) -> ModelGraph:
    """Build a :class:`ModelGraph` from a model YAML path/name (e.g. ``"yolov8n-mirror.yaml"``) or dict.

    The scale comes from ``scale`` if given, else from the file name (``yolov8n`` -> ``n``); a file
    without ``scales`` ignores the letter in its name (an explicit ``scale`` is still an error there).
    """
    if isinstance(cfg, dict):
        _, text, source = load_model_yaml(cfg)
        return ModelGraph(text, nc=nc, scale=scale, ch=ch, source=source, names=names)
    path, name_scale = resolve_model_yaml(cfg)
    text = read_yaml_text(path, ModelConfigError)
    if scale is None and name_scale is not None and not parse_yaml_text(text, str(path)).get("scales"):
        name_scale = None  # a letter in the name of a file without `scales` (yolov9m.yaml) is just its name
    return ModelGraph(text, nc=nc, scale=scale or name_scale, ch=ch, source=str(path), names=names)


__all__ = ["LayerRow", "ModelGraph", "build_model"]
