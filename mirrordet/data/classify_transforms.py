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


def color_jitter(img: np.ndarray, hue: float, sat: float, val: float, rng: np.random.Generator) -> np.ndarray:
    """Classification colour jitter (torchvision ``ColorJitter`` semantics for hue).

    Hue is shifted by a random fraction of the colour circle in ``[-hue, hue]`` (``hue`` <= 0.5; 0.5
    makes every hue equally likely, so a class cannot be told by its colour); saturation and value
    are scaled by random gains in ``[1 - sat, 1 + sat]`` and ``[1 - val, 1 + val]``. BGR uint8
    [H, W, 3] in, a new BGR uint8 [H, W, 3] out.
    """
    if not (hue or sat or val):
        return img
    shift, gs, gv = rng.uniform(-1, 1, 3) * (min(hue, 0.5) * 180, sat, val) + (0, 1, 1)
    h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))  # OpenCV hue: 0..179
    x = np.arange(256, dtype=np.float32)
    lut_h = np.mod(np.round(x + shift), 180).astype(np.uint8)
    lut_s = np.clip(x * gs, 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gv, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.merge((cv2.LUT(h, lut_h), cv2.LUT(s, lut_s), cv2.LUT(v, lut_v))), cv2.COLOR_HSV2BGR)
