"""The geometric augmentations applied to an image and its instance-index map together.

Each function moves the index map (int16 [H, W], data/segments.py) exactly as the image: the same
letterbox and affine matrix (the mosaic tiles are pasted by :func:`mirrordet.data.mosaic.mosaic_canvas` for
both), with nearest-neighbour resampling and 0 (background) where the image gets padding. Boxes are read back from the map afterwards, so they need no transform.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from mirrordet.data.augment_affine import affine_matrix
from mirrordet.data.transforms import PAD_VALUE, RatioPad


def letterbox_mask(mask: np.ndarray, ratio_pad: RatioPad, shape: tuple[int, int]) -> np.ndarray:
    """The index map [h0, w0] through the letterbox ``ratio_pad`` of its image, onto a (H, W) canvas."""
    (gh, gw), (pw, ph) = ratio_pad
    h1, w1 = round(mask.shape[0] * gh), round(mask.shape[1] * gw)
    if (h1, w1) != mask.shape:
        mask = cv2.resize(mask, (w1, h1), interpolation=cv2.INTER_NEAREST)
    out = np.zeros(shape, mask.dtype)
    top, left = int(ph), int(pw)
    out[top:top + h1, left:left + w1] = mask
    return out


def offset_ids(masks: Sequence[np.ndarray], counts: Sequence[int]) -> list[np.ndarray]:
    """Index maps of several images renumbered so that they can share one canvas: the instances of map k
    follow those of maps 0..k-1 (``counts``: instances per map)."""
    out, base = [], 0
    for m, n in zip(masks, counts):
        out.append(np.where(m > 0, m + base, 0).astype(m.dtype))
        base += int(n)
    return out


def random_affine_pair(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, out_shape: tuple[int, int],
                       degrees: float = 0.0, translate: float = 0.1, scale: float = 0.5,
                       shear: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Warp the image (bilinear, padding 114) and its index map (nearest, padding 0) by one random affine
    matrix (:func:`~mirrordet.data.augment_affine.affine_matrix`, the same draws as ``random_affine``)."""
    M, _ = affine_matrix(img.shape[:2], out_shape, rng, degrees, translate, scale, shear)
    if np.allclose(M, np.eye(3)) and tuple(out_shape) == img.shape[:2]:
        return img, mask
    dsize = (out_shape[1], out_shape[0])
    img = cv2.warpAffine(img, M[:2], dsize=dsize, borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    mask = cv2.warpAffine(mask, M[:2], dsize=dsize, flags=cv2.INTER_NEAREST, borderValue=0)
    return img, mask
