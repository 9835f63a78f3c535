"""Plots of `mirrordet compare`: accuracy vs cost (compare.png) and overlaid training curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mirrordet.plotting.figure import new_figure, save_figure

MARKERS = "osD^vP*Xh<>p"


def _num(v: float | None) -> float:
    return math.nan if v is None else float(v)


def plot_tradeoff(
    labels: Sequence[str],
    acc_mean: Sequence[float | None],
    acc_std: Sequence[float | None],
    costs: Mapping[str, tuple[Sequence[float | None], Sequence[float | None] | None]],
    metric: str,
    path: str | Path,
    imgsz: int | None = None,
) -> Path:
    """One panel per cost axis: each model's accuracy (mean, std error bar) against that cost.

    Args:
        labels: [M] model names. acc_mean, acc_std: [M] accuracy over seeds (std None = no bar).
        costs: axis label (e.g. ``"GFLOPs"``, ``"CPU latency (ms)"``) -> ([M] means, [M] stds or None).
        metric: accuracy name for the y axis (e.g. ``"mAP50-95"``).
        path: PNG to write.
        imgsz: input size the costs were measured at (shown in the title).

    Returns:
        ``path``.
    """
    axes_items = [(k, v) for k, v in costs.items() if any(x is not None for x in v[0])]
    axes_items = axes_items or [("GFLOPs", ([None] * len(labels), None))]  # nothing measured: one empty panel
    fig, axes = new_figure((5.0 * len(axes_items), 4.4), 1, len(axes_items), squeeze=False)
    y = np.array([_num(v) for v in acc_mean])
    yerr = np.array([_num(v) if v is not None else 0.0 for v in acc_std])
    colors = [f"C{i % 10}" for i in range(len(labels))]
    at = f" at imgsz {imgsz}" if imgsz else ""
    for ax, (name, (xm, xs)) in zip(axes[0], axes_items):
        x = np.array([_num(v) for v in xm])
        xerr = np.array([_num(v) if v is not None else 0.0 for v in (xs or [None] * len(x))])
        for i, label in enumerate(labels):
            ax.errorbar(x[i], y[i], xerr=xerr[i], yerr=yerr[i], fmt=MARKERS[i % len(MARKERS)], color=colors[i],
                        markersize=8, capsize=4, label=label)
            if np.isfinite(x[i]) and np.isfinite(y[i]):
                ax.annotate(label, (x[i], y[i]), textcoords="offset points", xytext=(6, 6), fontsize=8)
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs {name.split(' (')[0]}{at}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.margins(0.2)
    axes[0][0].legend(fontsize=8, loc="best", title="mean ± std over seeds", title_fontsize=7)
    return save_figure(fig, path)


def plot_curves(
    curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]], path: str | Path
) -> Path:
    """Training curves of several models overlaid: one panel per results.csv column.

    Args:
        curves: model name -> column (e.g. ``"train/box_loss"``, ``"metrics/mAP50-95"``) ->
            ([E] epochs, [E] mean over seeds, [E] std over seeds; drawn as a band).
        path: PNG to write.

    Returns:
        ``path``.
    """
    columns: list[str] = []
    for per in curves.values():
        columns += [c for c in per if c not in columns]
    n = max(len(columns), 1)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure((3.6 * ncols, 3.0 * nrows + 0.4), nrows, ncols, squeeze=False)
    flat = axes.ravel()
    for ax, col in zip(flat, columns):
        for i, (label, per) in enumerate(curves.items()):
            if col not in per:
                continue
            e, m, s = (np.asarray(a, dtype=float) for a in per[col])
            ax.plot(e, m, color=f"C{i % 10}", linewidth=1.6, marker="." if len(e) < 40 else None, label=label)
            if np.any(s > 0):
                ax.fill_between(e, m - s, m + s, color=f"C{i % 10}", alpha=0.2, linewidth=0)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(col.split("/")[-1], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in flat[len(columns):]:
        ax.axis("off")
    if columns:
        flat[0].legend(fontsize=7)
    else:
        flat[0].text(0.5, 0.5, "no training curves", ha="center", va="center")
    fig.suptitle("Training curves (mean, band = ± std over seeds)", fontsize=10)
    return save_figure(fig, path)
