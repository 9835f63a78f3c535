"""Model summaries: the per-layer table, parameter/gradient counts and GFLOPs (thop)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from mirrordet.nn.graph import ModelGraph


@dataclass
class ModelSummary:
    """Totals of a model at one input size."""

    layers: int
    params: int
    grads: int
    gflops: float | None
    strides: list[float]
    imgsz: int

    def line(self, name: str) -> str:
        flops = f", {self.gflops:.1f} GFLOPs" if self.gflops is not None else ""
        strides = "/".join(f"{s:g}" for s in self.strides)
        return (f"{name} summary: {self.layers} layers, {self.params:,} parameters, {self.grads:,} gradients"
                f"{flops}, strides {strides} (imgsz={self.imgsz})")


def count_gflops(model: torch.nn.Module, imgsz: int = 640, ch: int = 3) -> float | None:
    """Forward GFLOPs (2 x multiply-accumulates counted by thop) of one ``imgsz`` x ``imgsz`` image.

    Profiled at the full size (not extrapolated from a small input), so blocks whose cost is
    not linear in the map size (CSPMirror's overlapping views) are counted as they run.
    Returns None when thop is not installed.
    """
    try:
        import thop
    except ImportError:
        return None
    probe = copy.deepcopy(model).eval()
    p = next(model.parameters())
    im = torch.zeros(1, ch, imgsz, imgsz, device=p.device, dtype=p.dtype)
    with torch.no_grad():
        macs = thop.profile(probe, inputs=(im,), verbose=False)[0]
    return float(macs) * 2 / 1e9


def layer_table(model: ModelGraph) -> str:
    """Rows ``index, from, n, params, module, args`` of every YAML layer."""
    header = f"{'':>3} {'from':>18} {'n':>3} {'params':>10}  {'module':<14} arguments"
    lines = [header]
    for r in model.rows:
        src = r.source if isinstance(r.source, int) else list(r.source)
        args = ", ".join(map(repr, r.args))
        lines.append(f"{r.index:>3} {str(src):>18} {r.repeats:>3} {r.params:>10,}  {r.module_name:<14} [{args}]")
    return "\n".join(lines)


def summarize(model: ModelGraph, imgsz: int = 640, flops: bool = True) -> ModelSummary:
    """Totals for ``model``: modules, parameters, trainable parameters, GFLOPs, strides."""
    params = sum(p.numel() for p in model.parameters())
    grads = sum(p.numel() for p in model.parameters() if p.requires_grad)
    layers = len(list(model.modules()))
    return ModelSummary(layers, params, grads, count_gflops(model, imgsz, model.ch) if flops else None,
                        [float(s) for s in model.stride], imgsz)
