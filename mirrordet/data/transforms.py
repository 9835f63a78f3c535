"""Geometric and photometric image transforms that keep boxes valid.

Images are BGR uint8 [H, W, 3] numpy arrays (OpenCV order); boxes are [n, 4] float32 xyxy
pixels of the same image, classes [n] int. Every function returns boxes with x1 < x2,
y1 < y2, inside [0, W] x [0, H] (boxes that would become empty are dropped with their class).
Randomness comes from an explicit ``numpy.random.Generator``.

The larger augmentations live in their own files: ``augment_affine.random_affine`` and
``mosaic.mosaic4``.
"""

from __future__ import annotations

from types import MappingProxyType

import cv2
import numpy as np

PAD_VALUE = 114
RatioPad = tuple[tuple[float, float], tuple[float, float]]

# Augmentation settings used when a key is missing from ``hyp`` (the values of cfg/default.yaml).
AUGMENT_DEFAULTS = MappingProxyType(
    {
        "hsv_h": 0.015,
        "hsv_s": 0.7,
        "hsv_v": 0.4,
        "degrees": 0.0,
        "translate": 0.1,
        "aug_scale": 0.5,
        "shear": 0.0,
        "fliplr": 0.5,
        "flipud": 0.0,
        "mosaic": 1.0,
        "mixup": 0.0,
        "copy_paste": 0.0,
    }
)


def resize_long_side(img: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Resize so that the longer side is ``size``, keeping the aspect ratio.

    Returns:
        (image [h1, w1, 3], (gain_h, gain_w)) with gain = new / old per axis (exact after rounding).
    """
    h0, w0 = img.shape[:2]
    r = size / max(h0, w0)
    h1, w1 = max(1, round(h0 * r)), max(1, round(w0 * r))
    if (h1, w1) != (h0, w0):
        interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (w1, h1), interpolation=interp)
    return img, (h1 / h0, w1 / w0)


def letterbox(
    img: np.ndarray, new_shape: int | tuple[int, int], scaleup: bool = True
) -> tuple[np.ndarray, RatioPad]:
    """Resize keeping the aspect ratio and pad (value 114) to ``new_shape``, centred.

    Args:
        img: [h, w, 3] uint8.
        new_shape: side of the square output, or (H, W).
        scaleup: allow enlarging small images (else only shrink).

    Returns:
        (image [H, W, 3], ratio_pad) where ratio_pad = ((gain_h, gain_w), (pad_w, pad_h)) maps a
        source pixel coordinate to the output by ``x * gain_w + pad_w``, ``y * gain_h + pad_h``.
    """
    H, W = (new_shape, new_shape) if isinstance(new_shape, int) else new_shape
    h0, w0 = img.shape[:2]
    r = min(H / h0, W / w0)
    if not scaleup:
        r = min(r, 1.0)
    h1, w1 = min(H, max(1, round(h0 * r))), min(W, max(1, round(w0 * r)))
    return resize_and_pad(img, (h1, w1), (H, W), cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)


def resize_and_pad(img: np.ndarray, size: tuple[int, int], canvas: tuple[int, int],
                   interpolation: int) -> tuple[np.ndarray, RatioPad]:
    """Resize ``img`` [h0, w0, 3] to ``size`` (h1, w1) and centre it on a ``canvas`` (H, W) of value 114.

    The one resize-and-pad of every letterbox (training/validation data and prediction). Returns
    (image [H, W, 3], ratio_pad ((h1 / h0, w1 / w0), (pad_w, pad_h))).
    """
    (h0, w0), (h1, w1), (H, W) = img.shape[:2], size, canvas
    if (h1, w1) != (h0, w0):
        img = cv2.resize(img, (w1, h1), interpolation=interpolation)
    top, left = (H - h1) // 2, (W - w1) // 2
    if (h1, w1) != (H, W):
        img = cv2.copyMakeBorder(img, top, H - h1 - top, left, W - w1 - left, cv2.BORDER_CONSTANT,
                                 value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return img, ((h1 / h0, w1 / w0), (float(left), float(top)))


def apply_ratio_pad(
    boxes: np.ndarray, ratio_pad: RatioPad, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Map [n, 4] xyxy pixel boxes through a letterbox: ``x * gain_w + pad_w`` (new float32 array).

    ``shape`` = (H, W) of the letterboxed image clips away float rounding beyond its border.
    """
    (gh, gw), (pw, ph) = ratio_pad
    out = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]] * gw + pw
    out[:, [1, 3]] = out[:, [1, 3]] * gh + ph
    if shape is not None:
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, shape[1])
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, shape[0])
    return out.astype(np.float32)


def compose_ratio_pad(first: tuple[float, float], second: RatioPad) -> RatioPad:
    """Ratio/pad of a plain resize with gains ``first`` = (gain_h, gain_w) followed by a letterbox."""
    (gh, gw), pad = second
    return (first[0] * gh, first[1] * gw), pad


def clip_and_filter(
    boxes: np.ndarray, cls: np.ndarray, shape: tuple[int, int], min_size: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clip [n, 4] xyxy boxes to ``shape`` = (h, w) and drop those narrower/shorter than ``min_size``
    (or empty, or non-finite). Returns new (boxes float32, cls)."""
    h, w = shape
    b = boxes.astype(np.float32, copy=True).reshape(-1, 4)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    keep = np.isfinite(b).all(1) & (bw > max(min_size, 0.0)) & (bh > max(min_size, 0.0))
    return b[keep], np.asarray(cls)[keep]


def hsv_jitter(
    img: np.ndarray, hgain: float, sgain: float, vgain: float, rng: np.random.Generator, hue_shift: bool = False
) -> np.ndarray:
    """Random saturation/value gains in [1 - g, 1 + g] and a random hue change. Returns a new BGR image.

    Hue (OpenCV 0..179, wraps): a gain in [1 - hgain, 1 + hgain] (detection, YOLO convention), or with
    ``hue_shift`` an additive shift of a random fraction of the colour circle in [-hgain, hgain]
    (classification, torchvision ``ColorJitter`` convention; hgain <= 0.5, where 0.5 makes every hue
    equally likely, so a class cannot be told by its colour).
    """
    if not (hgain or sgain or vgain):
        return img
    u = rng.uniform(-1, 1, 3)
    r = u * (hgain, sgain, vgain) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float32)
    if hue_shift:
        lut_h = np.mod(np.round(x + u[0] * min(hgain, 0.5) * 180), 180).astype(np.uint8)
    else:
        lut_h = ((x * r[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def flip_lr(img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right: x -> W - x (x1 and x2 swap roles). Returns new arrays."""
    w = img.shape[1]
    b = boxes.astype(np.float32, copy=True).reshape(-1, 4)
    b[:, [0, 2]] = w - boxes.reshape(-1, 4)[:, [2, 0]]
    return np.ascontiguousarray(img[:, ::-1]), b


def flip_ud(img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror top-bottom: y -> H - y. Returns new arrays."""
    h = img.shape[0]
    b = boxes.astype(np.float32, copy=True).reshape(-1, 4)
    b[:, [1, 3]] = h - boxes.reshape(-1, 4)[:, [3, 1]]
    return np.ascontiguousarray(img[::-1]), b
