"""Random affine augmentation (rotation, zoom, shear, translation) with box transformation.

Boxes are transformed through their four corners, the enclosing axis-aligned box is taken,
clipped to the output, and boxes that became tiny, too elongated, or lost most of their area
to the border are dropped together with their classes.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from mirrordet.data.transforms import PAD_VALUE


def affine_matrix(
    in_shape: tuple[int, int],
    out_shape: tuple[int, int],
    rng: np.random.Generator,
    degrees: float = 0.0,
    translate: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Random 3x3 affine matrix mapping input pixels to output pixels, and its zoom gain.

    The input centre goes to the output centre, then rotation (+/- ``degrees``), zoom
    (gain in [1 - scale, 1 + scale]), shear (+/- ``shear`` degrees) and translation
    (+/- ``translate`` of the output size) are applied.
    """
    ih, iw = in_shape
    oh, ow = out_shape
    C = np.eye(3)
    C[0, 2], C[1, 2] = -iw / 2, -ih / 2
    gain = rng.uniform(1 - scale, 1 + scale)
    R = np.eye(3)
    R[:2] = cv2.getRotationMatrix2D((0, 0), rng.uniform(-degrees, degrees), gain)
    S = np.eye(3)
    S[0, 1] = math.tan(math.radians(rng.uniform(-shear, shear)))
    S[1, 0] = math.tan(math.radians(rng.uniform(-shear, shear)))
    T = np.eye(3)
    T[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * ow
    T[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * oh
    return T @ S @ R @ C, gain


def transform_boxes(boxes: np.ndarray, M: np.ndarray) -> np.ndarray:
    """[n, 4] xyxy -> [n, 4] xyxy enclosing the four transformed corners of each box (3x3 ``M``)."""
    n = len(boxes)
    if n == 0:
        return np.zeros((0, 4), np.float32)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    corners = np.stack(
        [np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1)], 1
    ).astype(np.float64)  # [n, 4, 2]
    pts = corners @ M[:2, :2].T + M[:2, 2]
    return np.concatenate([pts.min(1), pts.max(1)], 1).astype(np.float32)


def box_candidates(
    unclipped: np.ndarray,
    clipped: np.ndarray,
    min_size: float = 2.0,
    area_thr: float = 0.1,
    max_aspect: float = 20.0,
) -> np.ndarray:
    """Keep mask [n]: clipped boxes wider and taller than ``min_size`` pixels, keeping more than
    ``area_thr`` of their unclipped area, with aspect ratio below ``max_aspect``."""
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    w0, h0 = unclipped[:, 2] - unclipped[:, 0], unclipped[:, 3] - unclipped[:, 1]
    eps = 1e-9
    aspect = np.maximum(w / (h + eps), h / (w + eps))
    return (w > min_size) & (h > min_size) & (w * h / (w0 * h0 + eps) > area_thr) & (aspect < max_aspect)


def random_affine(
    img: np.ndarray,
    boxes: np.ndarray,
    cls: np.ndarray,
    rng: np.random.Generator,
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.0,
    out_shape: tuple[int, int] | None = None,
    min_size: float = 2.0,
    area_thr: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp ``img`` by a random affine map into ``out_shape`` (default: the input's), padding with 114.

    Args:
        img: [h, w, 3] uint8 BGR.
        boxes: [n, 4] xyxy pixels of ``img``.
        cls: [n] class indices.
        rng: random generator.
        degrees, translate, scale, shear: ranges, see ``affine_matrix``.
        out_shape: (H, W) of the output (a mosaic canvas of 2s is warped into s x s).
        min_size, area_thr: box filtering, see ``box_candidates``.

    Returns:
        (img [H, W, 3], boxes [m, 4] xyxy pixels inside the output, cls [m]).
    """
    out_shape = out_shape or img.shape[:2]
    M, _ = affine_matrix(img.shape[:2], out_shape, rng, degrees, translate, scale, shear)
    if not np.allclose(M, np.eye(3)) or tuple(out_shape) != img.shape[:2]:
        img = cv2.warpAffine(
            img, M[:2], dsize=(out_shape[1], out_shape[0]), borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE)
        )
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    new = transform_boxes(boxes, M)
    clipped = new.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, out_shape[1])
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, out_shape[0])
    keep = box_candidates(new, clipped, min_size, area_thr) & np.isfinite(clipped).all(1)
    return img, clipped[keep], np.asarray(cls)[keep]
