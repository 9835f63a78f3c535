"""val_batch0.png: the first validation batch as a mosaic, ground truth and predictions side by side."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mirrordet.plotting.figure import new_figure, save_figure

MAX_IMAGES = 16
PLOT_CONF = 0.25  # predictions below this score are not drawn
MAX_BOXES_PER_IMAGE = 50
GAP = 2  # pixels between tiles


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _mosaic(images: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """[n, 3, H, W] uint8 -> ([rows*(H+GAP), cols*(W+GAP), 3] uint8 grid on white, [n] tile (x0, y0) offsets)."""
    n, _, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP, 3), 255, np.uint8)
    offsets = []
    for i in range(n):
        y0, x0 = (i // cols) * (h + GAP), (i % cols) * (w + GAP)
        grid[y0:y0 + h, x0:x0 + w] = images[i].transpose(1, 2, 0)
        offsets.append((x0, y0))
    return grid, offsets


def _draw(ax: Any, grid: np.ndarray, boxes: Sequence[np.ndarray], names: Mapping[int, str] | Sequence[str],
          title: str, fontsize: float) -> None:
    """Show ``grid`` with ``boxes[i]`` ([k, 4] xyxy mosaic pixels, class, optional score) on it."""
    from matplotlib.patches import Rectangle

    ax.imshow(grid, interpolation="nearest")
    for rows in boxes:
        for row in rows:
            x1, y1, x2, y2, c = row[:5]
            color = f"C{int(c) % 10}"
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.5))
            text = str(names[int(c)]) if int(c) < len(names) else str(int(c))
            if len(row) > 5:
                text += f" {row[5]:.2f}"
            ax.text(x1, y1, text, fontsize=fontsize, color="white", va="bottom", ha="left",
                    bbox={"facecolor": color, "edgecolor": "none", "pad": 0.5, "alpha": 0.8}, clip_on=True)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _tint(grid: np.ndarray, offsets: list[tuple[int, int]], masks: Sequence[np.ndarray],
          classes: Sequence[np.ndarray], alpha: float = 0.45) -> np.ndarray:
    """The mosaic with instance masks blended in their class colours (matplotlib's C0..C9, as the boxes):
    per tile, bool masks [k, H, W] and their classes [k]."""
    from matplotlib.colors import to_rgb

    out = grid.astype(np.float32)
    for (x0, y0), ms, cs in zip(offsets, masks, classes):
        for m, c in zip(ms, np.asarray(cs).reshape(-1)):
            h, w = m.shape
            tile = out[y0:y0 + h, x0:x0 + w]
            tile[m] = tile[m] * (1 - alpha) + np.array(to_rgb(f"C{int(c) % 10}")) * 255 * alpha
    return out.round().clip(0, 255).astype(np.uint8)


def plot_val_batch(batch: Mapping[str, Any], preds: Sequence[Any], names: Mapping[int, str] | Sequence[str],
                   path: str | Path, conf: float = PLOT_CONF, max_images: int = MAX_IMAGES,
                   pred_masks: Sequence[Any] | None = None) -> Path:
    """Draw up to ``max_images`` images of a batch twice: labelled boxes (left) and predictions (right).

    Args:
        batch: a collated detection batch: ``img`` uint8 [B, 3, H, W] RGB, ``cls`` [N, 1], ``bboxes``
            [N, 4] normalized xywh relative to ``img``, ``batch_idx`` [N]; with ``masks`` int [B, H, W] (instance
            index maps, segment task) the labelled masks are drawn too.
        preds: B tensors/arrays [n, 6] (x1, y1, x2, y2 in ``img`` pixels, score, class), e.g. the NMS
            output before boxes are mapped back to the original images.
        pred_masks: B bool [n, H, W] masks of ``preds`` (segment task), drawn with their boxes.
        names: class index -> name.
        path: PNG to write.
        conf: predictions below this score are not drawn.
        max_images: images drawn at most.

    Returns:
        ``path``.
    """
    images = _np(batch["img"])[:max_images]
    n, _, h, w = images.shape
    grid, offsets = _mosaic(images)
    cls = _np(batch["cls"]).reshape(-1)
    xywh = _np(batch["bboxes"]).reshape(-1, 4) * np.array([w, h, w, h])
    idx = _np(batch["batch_idx"]).reshape(-1).astype(np.int64)
    gt, dt, shown_masks = [], [], []
    for i, (x0, y0) in enumerate(offsets):
        b = xywh[idx == i]
        shift = np.array([x0, y0, x0, y0])
        xyxy = np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1) + shift
        gt.append(np.concatenate([xyxy, cls[idx == i, None]], 1)[:MAX_BOXES_PER_IMAGE])
        p = _np(preds[i]).reshape(-1, 6).astype(np.float64) if i < len(preds) else np.zeros((0, 6))
        keep = np.argsort(-p[:, 4])
        keep = keep[p[keep, 4] >= conf][:MAX_BOXES_PER_IMAGE]
        p = p[keep]
        if pred_masks is not None:
            shown_masks.append(_np(pred_masks[i])[keep].astype(bool))
        dt.append(np.concatenate([np.clip(p[:, :4], 0, [w, h, w, h]) + shift, p[:, 5:6], p[:, 4:5]], 1))
    side = min(8.0, 2.0 + 1.6 * math.ceil(math.sqrt(n)))
    fig, (ax_gt, ax_dt) = new_figure((2 * side, side + 0.6), 1, 2)
    fontsize = 5 if n > 4 else 7
    n_gt, n_dt = sum(len(g) for g in gt), sum(len(d) for d in dt)
    grid_gt = grid_dt = grid
    if "masks" in batch:  # index maps: instance k + 1 is the k-th box of its image
        maps = _np(batch["masks"])[:n]
        per = [[maps[i] == k + 1 for k in range(int((idx == i).sum()))] for i in range(n)]
        grid_gt = _tint(grid, offsets, [np.asarray(m).reshape(-1, h, w) for m in per],
                        [cls[idx == i] for i in range(n)])
    if pred_masks is not None:
        grid_dt = _tint(grid, offsets, shown_masks, [d[:, 4] for d in dt])
    _draw(ax_gt, grid_gt, gt, names, f"Ground truth: {n} images, {n_gt} boxes", fontsize)
    _draw(ax_dt, grid_dt, dt, names, f"Predictions (score >= {conf:g}): {n_dt} boxes", fontsize)
    from matplotlib.patches import Patch

    shown = sorted({int(c) for rows in (*gt, *dt) for c in rows[:, 4]})
    bottom = 0.0
    if shown and len(shown) <= 20:
        handles = [Patch(color=f"C{c % 10}", label=str(names[c]) if c < len(names) else str(c)) for c in shown]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=8, frameon=False)
        bottom = 0.06  # room for the legend
    fig.get_layout_engine().set(rect=(0, bottom, 1, 0.97))  # and for the titles above the square images
    return save_figure(fig, path)
