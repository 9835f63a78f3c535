"""Classification transforms on BGR uint8 images [H, W, 3] -> [S, S, 3]."""

from __future__ import annotations

import math

import cv2
import numpy as np


def center_crop_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` and take the central ``size`` x ``size`` crop."""
    h, w = img.shape[:2]
    scale = size / min(h, w)
    if scale != 1:
        img = cv2.resize(img, (max(size, round(w * scale)), max(size, round(h * scale))),
                         interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top:top + size, left:left + size]


def random_resized_crop(img: np.ndarray, size: int, rng: np.random.Generator, scale: tuple[float, float] = (0.35, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
    """A random crop of ``scale`` of the area and ``ratio`` aspect, resized to ``size`` x ``size``."""
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return cv2.resize(img[y:y + ch, x:x + cw], (size, size), interpolation=cv2.INTER_LINEAR)
    return center_crop_resize(img, size)


def pad_crop(img: np.ndarray, size: int, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """CIFAR-style augmentation: resize to ``size``, zero-pad ``pad`` pixels, random ``size`` crop."""
    if img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    x, y = int(rng.integers(0, 2 * pad + 1)), int(rng.integers(0, 2 * pad + 1))
    return padded[y:y + size, x:x + size]

