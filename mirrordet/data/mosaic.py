"""Mosaic: four images tiled around a random centre on a 2s x 2s canvas (padded with 114).

The canvas is then warped to s x s by ``random_affine`` (its output centre crops the middle
of the canvas, where the four tiles meet).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mirrordet.data.transforms import PAD_VALUE, clip_and_filter


Tile = tuple[int, int, int, int, int, int]  # canvas region x1a, y1a, x2a, y2a and its source corner x1b, y1b


def mosaic_layout(shapes: Sequence[tuple[int, int]], size: int, rng: np.random.Generator) -> list[Tile]:
    """Where each of four images (h, w) lands on the 2s x 2s canvas around a random centre in [s/2, 3s/2]
    (one draw of ``rng``): per image its canvas region and the corner of its part that is shown."""
    s2 = 2 * size
    xc, yc = (int(v) for v in rng.uniform(size / 2, 3 * size / 2, 2))
    tiles = []
    for k, (h, w) in enumerate(shapes):
        if k == 0:  # top-left tile: its bottom-right corner sits at the centre
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif k == 1:  # top-right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, s2), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif k == 2:  # bottom-left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(yc + h, s2)
            x1b, y1b = w - (x2a - x1a), 0
        else:  # bottom-right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, s2), min(yc + h, s2)
            x1b, y1b = 0, 0
        tiles.append((x1a, y1a, x2a, y2a, x1b, y1b))
    return tiles


def mosaic_canvas(arrays: Sequence[np.ndarray], tiles: Sequence[Tile], size: int, fill: int) -> np.ndarray:
    """Paste four arrays (images [h, w, 3] or index maps [h, w]) onto the 2s x 2s canvas at ``tiles``
    (:func:`mosaic_layout`), the rest ``fill``."""
    first = arrays[0]
    canvas = np.full((2 * size, 2 * size, *first.shape[2:]), fill, dtype=first.dtype)
    for a, (x1a, y1a, x2a, y2a, x1b, y1b) in zip(arrays, tiles):
        canvas[y1a:y2a, x1a:x2a] = a[y1b:y1b + (y2a - y1a), x1b:x1b + (x2a - x1a)]
    return canvas


def mosaic4(
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    classes: Sequence[np.ndarray],
    size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tile four images into one canvas.

    Args:
        images: four BGR uint8 images, each with its longer side at most ``size``.
        boxes: per image [n_k, 4] xyxy pixels.
        classes: per image [n_k] class indices.
        size: tile size s; the canvas is [2s, 2s, 3].
        rng: random generator (picks the centre in [s/2, 3s/2]).

    Returns:
        (canvas [2s, 2s, 3] uint8, boxes [m, 4] xyxy canvas pixels (clipped to their tile, empty
        ones dropped), cls [m]).
    """
    if len(images) != 4:
        raise ValueError(f"mosaic4 needs 4 images, got {len(images)}")
    s2 = 2 * size
    out_b, out_c = [], []
    tiles = mosaic_layout([im.shape[:2] for im in images], size, rng)
    canvas = mosaic_canvas(images, tiles, size, PAD_VALUE)
    for b, c, (x1a, y1a, x2a, y2a, x1b, y1b) in zip(boxes, classes, tiles):
        dx, dy = x1a - x1b, y1a - y1b
        bb = np.asarray(b, np.float32).reshape(-1, 4) + np.array([dx, dy, dx, dy], np.float32)
        # clip to the tile (the cut-off part of the image is not on the canvas)
        bb[:, [0, 2]] = bb[:, [0, 2]].clip(x1a, x2a)
        bb[:, [1, 3]] = bb[:, [1, 3]].clip(y1a, y2a)
        bb, cc = clip_and_filter(bb, np.asarray(c).reshape(-1), (s2, s2))
        out_b.append(bb)
        out_c.append(cc)
    return canvas, np.concatenate(out_b, 0), np.concatenate(out_c, 0)
