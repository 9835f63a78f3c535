"""Model summaries: the per-layer table, parameter/gradient counts and GFLOPs (thop).

FLOPs are 2 x the multiply-accumulates of one forward pass at the full input size. thop counts what modules
run (convolutions, linear layers, normalization, ...); tensor products a module runs itself (the query-key and
attention-value products of self-attention) are counted by the module: a module with
``extra_macs(x) -> int`` (``x``: its input) declares them, and :func:`count_gflops` adds them. Without that, the
attention of YOLO11 / YOLO12 / YOLO26 would be missing (13% of yolo12n's cost at 640).
"""

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
    train_gflops: float | None = None  # with the branches only training runs (None: there are none)

    def line(self, name: str) -> str:
        flops = f", {self.gflops:.1f} GFLOPs" if self.gflops is not None else ""
        if self.gflops is not None and self.train_gflops is not None:
            flops += f" ({self.train_gflops:.1f} with the training-only branch)"
        strides = "/".join(f"{s:g}" for s in self.strides)
        return (f"{name} summary: {self.layers} layers, {self.params:,} parameters, {self.grads:,} gradients"
                f"{flops}, strides {strides} (imgsz={self.imgsz})")


def count_gflops(model: torch.nn.Module, imgsz: int = 640, ch: int = 3) -> float | None:
    """Forward GFLOPs (2 x multiply-accumulates) of one ``imgsz`` x ``imgsz`` image in eval mode: thop's count of
    the modules plus the ``extra_macs`` the modules declare (see the module docstring).

    Profiled at the full size (not extrapolated from a small input), so blocks whose cost is
    not linear in the map size (CSPMirror's overlapping views, attention) are counted as they run.
    Returns None when thop is not installed.
    """
    return _profile(model, imgsz, ch)[0]


class _Branch(torch.nn.Module):
    """The head's training-only branch as a module thop can profile."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, *feats: torch.Tensor) -> object:
        return self.head.training_branch(list(feats))


class _ExtraMacs:
    """Sums the ``extra_macs`` that modules of a tree declare while it runs (forward pre-hooks)."""

    def __init__(self, root: torch.nn.Module) -> None:
        self.macs = 0
        self.hooks = [m.register_forward_pre_hook(self._add) for m in root.modules()
                      if callable(getattr(m, "extra_macs", None))]

    def _add(self, module: torch.nn.Module, args: tuple) -> None:
        self.macs += int(module.extra_macs(args[0]))

    def close(self) -> int:
        for h in self.hooks:
            h.remove()
        return self.macs


def _profile(model: torch.nn.Module, imgsz: int, ch: int, training_branch: bool = False
             ) -> tuple[float | None, float | None]:
    """(eval-forward GFLOPs, GFLOPs with the head's training-only branch or None); (None, None) without thop."""
    try:
        import thop
    except ImportError:
        return None, None
    probe = copy.deepcopy(model).eval()
    p = next(model.parameters())
    im = torch.zeros(1, ch, imgsz, imgsz, device=p.device, dtype=p.dtype)
    head, head_in = getattr(probe, "head", None), {}
    branch = training_branch and callable(getattr(head, "training_branch", None))
    hook = head.register_forward_pre_hook(lambda m, args: head_in.update(x=args[0])) if branch else None
    extra = _ExtraMacs(probe)
    with torch.no_grad():
        macs = thop.profile(probe, inputs=(im,), verbose=False)[0]
    gflops = (float(macs) + extra.close()) * 2 / 1e9
    if hook is not None:
        hook.remove()
    feats = head_in.get("x")
    if not isinstance(feats, (list, tuple)):
        return gflops, None
    wrapper, out = _Branch(head), {}
    wrapper.register_forward_hook(lambda m, args, y: out.update(y=y))
    extra = _ExtraMacs(head)
    with torch.no_grad():
        macs = thop.profile(wrapper, inputs=tuple(feats), verbose=False)[0]
    branch_macs = float(macs) + extra.close()
    if out.get("y") is None:  # the head has no training-only branch (or dropped it in fusion)
        return gflops, None
    return gflops, gflops + branch_macs * 2 / 1e9


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
    """Totals for ``model``: modules, parameters, trainable parameters, GFLOPs (eval forward, and with the
    training-only branch where the head has one), strides."""
    params = sum(p.numel() for p in model.parameters())
    grads = sum(p.numel() for p in model.parameters() if p.requires_grad)
    layers = len(list(model.modules()))
    gflops, train_gflops = _profile(model, imgsz, model.ch, training_branch=True) if flops else (None, None)
    return ModelSummary(layers, params, grads, gflops, [float(s) for s in model.stride], imgsz, train_gflops)
