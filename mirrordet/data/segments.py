"""Instance outlines of the segment task: polygons in the records, one instance-index map per sample.

Records of segmentation data carry ``segments``: one entry per instance (aligned with ``cls`` and
``bboxes``), each a list of float32 [k, 2] polygons (x, y) normalized to the image, k >= 3 (a COCO
instance may have several parts). Pixel (i, j) covers [j, j + 1) x [i, i + 1), so a polygon vertex at
normalized (1, 1) is the image's far corner.

A sample carries its masks as one int16 *index map* [H, W] at the network input: 0 background, k + 1
where instance k (row k of the sample's boxes) is visible. Instances are drawn largest first, so a
smaller object on top of a larger one keeps its pixels (as in the overlap masks of YOLO-seg). The map
goes through every geometric augmentation with the image itself (nearest-neighbour resampling), and
the training boxes are then read back from it (:func:`boxes_from_index_map`), so masks and boxes
cannot disagree.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

MASK_DTYPE = np.int16  # up to 32767 instances per sample (a mosaic of four crowded images fits)

Polygons = list[np.ndarray]  # the parts of one instance, each [k, 2] float


def parse_polygon(values: Sequence[float], tol: float = 1e-3) -> tuple[np.ndarray | None, str]:
    """Normalized ``x1 y1 x2 y2 ...`` -> ([k, 2] float32 clipped to [0, 1], "") or (None, why it is bad).

    Bad: an odd count, fewer than 3 points, a non-finite value, a point outside [0, 1] by more than
    ``tol``, or no area at all.
    """
    if len(values) % 2:
        return None, "odd number of polygon coordinates"
    if len(values) < 6:
        return None, "polygon with fewer than 3 points"
    pts = np.asarray(values, np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all():
        return None, "non-finite polygon coordinate"
    if pts.min() < -tol or pts.max() > 1 + tol:
        return None, "polygon outside the image"
    pts = pts.clip(0.0, 1.0)
    if np.ptp(pts[:, 0]) <= 0 or np.ptp(pts[:, 1]) <= 0:
        return None, "polygon without area"
    return pts.astype(np.float32), ""


def polygons_box(parts: Polygons) -> np.ndarray:
    """[4] normalized xywh enclosing every part of one instance."""
    pts = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in parts])
    (x1, y1), (x2, y2) = pts.min(0), pts.max(0)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], np.float32)


def polygons_area(parts: Polygons) -> float:
    """Sum of the parts' areas (shoelace), in the polygons' units squared."""
    area = 0.0
    for p in parts:
        x, y = np.asarray(p, np.float64).reshape(-1, 2).T
        area += 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return area


def index_map(instances: Sequence[Polygons], shape: tuple[int, int], scale: tuple[float, float]) -> np.ndarray:
    """Rasterize instances into an index map with pycocotools (the rasterizer COCO's own polygon ground
    truth is scored with: a pixel belongs to a polygon by its area, in the pixel-edge convention).

    Args:
        instances: per instance, its polygons in normalized coordinates.
        shape: (H, W) of the map.
        scale: (sx, sy) multiplying normalized x and y into map pixels (usually (W, H)).

    Returns:
        int16 [H, W]: 0 background, k + 1 where instance k is visible (larger instances drawn first).
    """
    from pycocotools import mask as mask_utils

    h, w = shape
    out = np.zeros(shape, MASK_DTYPE)
    if len(instances) >= np.iinfo(MASK_DTYPE).max:
        raise ValueError(f"{len(instances)} instances do not fit an int16 index map")
    sx, sy = scale
    order = sorted(range(len(instances)), key=lambda k: -polygons_area(instances[k]))
    for k in order:
        flat = [(np.asarray(p, np.float64).reshape(-1, 2) * (sx, sy)).reshape(-1).tolist() for p in instances[k]]
        rle = mask_utils.merge(mask_utils.frPyObjects(flat, h, w)) if flat else None
        if rle is not None:
            out[mask_utils.decode(rle).astype(bool)] = k + 1
    return out


def mask_to_polygons(mask: np.ndarray, upscale: int = 4) -> Polygons:
    """Outer contours of a binary mask [h, w] as polygons in pixel units (x, y), pixel j spanning [j, j + 1).

    The contour is traced on the mask enlarged ``upscale`` times (nearest), so it runs within 0.5 / upscale
    pixel of the mask's own edges and rasterizes back (:func:`index_map`) to the same pixels. Holes are
    filled; parts of fewer than 3 points are dropped.
    """
    big = cv2.resize(mask.astype(np.uint8), None, fx=upscale, fy=upscale, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [(c.reshape(-1, 2).astype(np.float32) + 0.5) / upscale for c in contours if len(c) >= 3]


def largest_outline(mask: np.ndarray) -> np.ndarray | None:
    """The outline (:func:`mask_to_polygons`) of the largest part of a binary mask [h, w], or None when empty."""
    parts = mask_to_polygons(mask) if mask.any() else []
    return max(parts, key=lambda p: polygons_area([p])) if parts else None


def boxes_from_index_map(masks: np.ndarray, n: int, min_pixels: int = 4,
                         min_size: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of the instances still visible in ``masks``.

    Args:
        masks: int16 [H, W] index map with values 0..n.
        n: number of instances the map may hold.
        min_pixels: instances with fewer visible pixels are dropped.
        min_size: instances whose box is not wider and taller than this (pixels) are dropped.

    Returns:
        (kept instance indices int64 [m] ascending, boxes float32 [m, 4] xyxy pixels, x2/y2 exclusive).
    """
    flat = masks.reshape(-1).astype(np.int64)
    counts = np.bincount(flat, minlength=n + 1)[1:n + 1]
    keep, boxes = [], []
    if not counts.any():
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    ys, xs = np.divmod(np.flatnonzero(flat), masks.shape[1])
    ids = flat[flat > 0] - 1
    x1 = np.full(n, np.inf)
    y1 = np.full(n, np.inf)
    x2 = np.full(n, -np.inf)
    y2 = np.full(n, -np.inf)
    np.minimum.at(x1, ids, xs)
    np.minimum.at(y1, ids, ys)
    np.maximum.at(x2, ids, xs + 1)
    np.maximum.at(y2, ids, ys + 1)
    for k in range(n):
        if counts[k] >= min_pixels and x2[k] - x1[k] > min_size and y2[k] - y1[k] > min_size:
            keep.append(k)
            boxes.append((x1[k], y1[k], x2[k], y2[k]))
    return np.asarray(keep, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4)


def relabel(masks: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The index map with only instances ``keep`` (ascending indices), renumbered 1..len(keep) in that order."""
    lut = np.zeros(max(int(masks.max(initial=0)), int(keep.max(initial=-1)) + 1) + 1, MASK_DTYPE)
    lut[keep + 1] = np.arange(1, len(keep) + 1, dtype=MASK_DTYPE)
    return lut[masks]


def circle_polygon(cx: float, cy: float, r: float, n: int = 64) -> np.ndarray:
    """[n, 2] vertices of a circle (within r * (1 - cos(pi / n)) of the true outline)."""
    t = np.arange(n) * (2 * math.pi / n)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def coco_segmentation(seg: object, w: int, h: int) -> tuple[Polygons | None, str]:
    """A COCO annotation's ``segmentation`` -> (its normalized polygons, "") or (None, why it is unusable).

    Polygons (``[[x1, y1, x2, y2, ...], ...]`` pixels) are checked part by part (bad parts dropped; none
    left is an error). RLE (``{"size": [h, w], "counts": ...}``, compressed or not) is decoded with
    pycocotools and traced back to outer contours (:func:`mask_to_polygons`).
    """
    if isinstance(seg, list):
        parts = []
        for part in seg:
            if not isinstance(part, list) or not all(isinstance(v, (int, float)) for v in part):
                return None, "malformed segmentation polygon"
            if len(part) % 2:
                continue
            xy = (np.asarray(part, np.float64).reshape(-1, 2) / (w, h)).reshape(-1).tolist()
            poly, _ = parse_polygon(xy, tol=max(1e-3, 1 / min(w, h)))  # at least a pixel of slack
            if poly is not None:
                parts.append(poly)
        return (parts, "") if parts else (None, "no valid segmentation polygon")
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        from pycocotools import mask as mask_utils

        try:
            if list(seg["size"]) != [h, w]:
                return None, "RLE size differs from the image"
            rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
            mask = mask_utils.decode(rle)
        except (TypeError, ValueError):
            return None, "malformed RLE"
        parts = [p / np.array([w, h], np.float32) for p in mask_to_polygons(mask)]
        return (parts, "") if parts else (None, "empty RLE mask")
    return None, "annotation without segmentation"
