"""PR_curve.png: precision-recall curve of every class at IoU 0.5 and their mean."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mirrordet.plotting.figure import new_figure, save_figure

MAX_LEGEND_CLASSES = 20


def plot_pr_curve(
    px: np.ndarray,
    py: np.ndarray,
    ap50: np.ndarray,
    names: Mapping[int, str] | Sequence[str],
    path: str | Path,
) -> Path:
    """Plot per-class PR curves (thin) and the mean curve (thick).

    Args:
        px: [R] recall grid.
        py: [nc, R] precision of each class at ``px``.
        ap50: [nc] AP@0.5 per class (nan for classes without ground truth; those are not drawn).
        names: class index -> name.
        path: PNG to write.

    Returns:
        ``path``.
    """
    px = np.asarray(px, dtype=np.float64)
    py = np.asarray(py, dtype=np.float64).reshape(-1, len(px))
    ap50 = np.asarray(ap50, dtype=np.float64).reshape(-1)
    drawn = np.nonzero(np.isfinite(ap50))[0]
    fig, ax = new_figure((7.0, 5.5))
    show_each = len(drawn) <= MAX_LEGEND_CLASSES
    for c in drawn:
        label = f"{names[int(c)]} {ap50[c]:.3f}" if show_each else None
        ax.plot(px, py[c], linewidth=0.8, label=label, color="grey" if not show_each else None)
    if len(drawn):
        mean_ap = float(ap50[drawn].mean())
        label = f"all classes {mean_ap:.3f} mAP@0.5"
        ax.plot(px, py[drawn].mean(0), linewidth=3.0, color="blue", label=label)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title("Precision-Recall Curve (IoU 0.5)")
    if len(drawn):
        ax.legend(loc="lower left", fontsize=7)
    return save_figure(fig, path)
