"""labels.png: class histogram, box sizes and box centers of a dataset's labels."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mirrordet.plotting.figure import new_figure, save_figure

MAX_DRAWN_BOXES = 500


def plot_labels(
    cls: np.ndarray, boxes_xywhn: np.ndarray, names: Mapping[int, str] | Sequence[str], path: str | Path
) -> Path:
    """Summarize labels in four panels.

    Args:
        cls: [N] class indices of every box in the dataset.
        boxes_xywhn: [N, 4] normalized xywh boxes.
        names: class index -> name (its length sets the histogram's class axis).
        path: PNG to write.

    Returns:
        ``path``.
    """
    cls = np.asarray(cls, dtype=np.int64).reshape(-1)
    boxes = np.asarray(boxes_xywhn, dtype=np.float64).reshape(-1, 4)
    nc = len(names)
    fig, axes = new_figure((10.0, 9.0), 2, 2)
    (ax_hist, ax_boxes), (ax_xy, ax_wh) = axes

    counts = np.bincount(cls[(cls >= 0) & (cls < nc)], minlength=nc)
    ax_hist.bar(np.arange(nc), counts, color="tab:blue")
    ax_hist.set_ylabel("instances")
    ax_hist.set_title(f"{len(cls)} boxes, {nc} classes")
    if nc <= 30:
        ax_hist.set_xticks(np.arange(nc), labels=[str(names[i]) for i in range(nc)], rotation=90, fontsize=7)
    else:
        ax_hist.set_xlabel("class index")

    rng = np.random.default_rng(0)
    pick = rng.permutation(len(boxes))[:MAX_DRAWN_BOXES]
    from matplotlib.patches import Rectangle

    for w, h in boxes[pick, 2:]:  # every box centered, to show shapes
        ax_boxes.add_patch(Rectangle((0.5 - w / 2, 0.5 - h / 2), w, h, fill=False, linewidth=0.4, alpha=0.4))
    ax_boxes.set_xlim(0, 1)
    ax_boxes.set_ylim(1, 0)
    ax_boxes.set_aspect("equal")
    ax_boxes.set_title("box shapes (centered)")

    bins = 50
    ax_xy.hist2d(boxes[:, 0], boxes[:, 1], bins=bins, range=[[0, 1], [0, 1]], cmap="Blues")
    ax_xy.set_xlabel("x")
    ax_xy.set_ylabel("y")
    ax_xy.set_ylim(1, 0)
    ax_xy.set_title("box centers")

    ax_wh.hist2d(boxes[:, 2], boxes[:, 3], bins=bins, range=[[0, 1], [0, 1]], cmap="Blues")
    ax_wh.set_xlabel("width")
    ax_wh.set_ylabel("height")
    ax_wh.set_title("box sizes")
    return save_figure(fig, path)
