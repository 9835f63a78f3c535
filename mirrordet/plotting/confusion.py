"""confusion_matrix.png / confusion_matrix_normalized.png."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mirrordet.plotting.figure import new_figure, save_figure

MAX_ANNOTATED_CLASSES = 30


def plot_confusion_matrix(
    matrix: np.ndarray, names: Mapping[int, str] | Sequence[str], path: str | Path, normalize: bool = False,
    background: bool = True,
) -> Path:
    """Heat map of a ``[nc + 1, nc + 1]`` detection confusion matrix (rows predicted, columns true).

    Args:
        matrix: counts, last row/column = background (see :class:`mirrordet.metrics.ConfusionMatrix`).
        names: class index -> name for the first nc entries.
        path: PNG to write.
        normalize: divide each column (true class) by its total.
        background: the last row/column is background (detection); False for a plain [nc, nc]
            classification matrix.

    Returns:
        ``path``.
    """
    m = np.asarray(matrix, dtype=np.float64)
    nc = m.shape[0] - 1 if background else m.shape[0]
    if normalize:
        m = m / np.maximum(m.sum(0, keepdims=True), 1e-9)
    labels = [str(names[i]) for i in range(nc)] + (["background"] if background else [])
    size = min(4.0 + 0.45 * (nc + 1), 24.0)
    fig, ax = new_figure((size + 1.5, size))
    shown = np.where(m > (0.005 if normalize else 0), m, np.nan)  # empty cells stay blank
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels=labels if nc < MAX_ANNOTATED_CLASSES * 3 else [], rotation=90, fontsize=7)
    ax.set_yticks(ticks, labels=labels if nc < MAX_ANNOTATED_CLASSES * 3 else [], fontsize=7)
    if nc < MAX_ANNOTATED_CLASSES:
        peak = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
        for (i, j), v in np.ndenumerate(m):
            if v > (0.005 if normalize else 0):
                text = f"{v:.2f}" if normalize else f"{int(v)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if v > 0.5 * peak else "black")
    ax.set_xlabel("True")
    ax.set_ylabel("Predicted")
    ax.set_title("Confusion Matrix" + (" Normalized" if normalize else ""))
    return save_figure(fig, path)
