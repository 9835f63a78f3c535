"""Box format conversions. Work on torch tensors and numpy arrays of shape [..., 4]."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

Array = torch.Tensor | np.ndarray


def _empty_like(x: Array) -> Array:
    return torch.empty_like(x) if isinstance(x, torch.Tensor) else np.empty_like(x)


def xywh2xyxy(x: Array) -> Array:
    """[..., 4] center-x, center-y, width, height -> x1, y1, x2, y2 (same units)."""
    y = _empty_like(x)
    half_w, half_h = x[..., 2] / 2, x[..., 3] / 2
    y[..., 0] = x[..., 0] - half_w
    y[..., 1] = x[..., 1] - half_h
    y[..., 2] = x[..., 0] + half_w
    y[..., 3] = x[..., 1] + half_h
    return y


def xyxy2xywh(x: Array) -> Array:
    """[..., 4] x1, y1, x2, y2 -> center-x, center-y, width, height (same units)."""
    y = _empty_like(x)
    y[..., 0] = (x[..., 0] + x[..., 2]) / 2
    y[..., 1] = (x[..., 1] + x[..., 3]) / 2
    y[..., 2] = x[..., 2] - x[..., 0]
    y[..., 3] = x[..., 3] - x[..., 1]
    return y


def xywhn2xyxy(x: Array, w: float, h: float, padw: float = 0.0, padh: float = 0.0) -> Array:
    """[..., 4] normalized xywh -> pixel xyxy in an image of size (w, h), shifted by the padding."""
    y = xywh2xyxy(x)
    y[..., 0] = y[..., 0] * w + padw
    y[..., 1] = y[..., 1] * h + padh
    y[..., 2] = y[..., 2] * w + padw
    y[..., 3] = y[..., 3] * h + padh
    return y


def xyxy2xywhn(x: Array, w: float, h: float) -> Array:
    """[..., 4] pixel xyxy -> normalized xywh for an image of size (w, h)."""
    y = xyxy2xywh(x)
    y[..., 0] /= w
    y[..., 1] /= h
    y[..., 2] /= w
    y[..., 3] /= h
    return y


def clip_boxes(boxes: Array, shape: Sequence[int]) -> Array:
    """Clip [..., 4] xyxy pixel boxes in place to an image of ``shape`` = (h, w). Returns boxes."""
    h, w = shape[0], shape[1]
    if isinstance(boxes, torch.Tensor):
        boxes[..., 0].clamp_(0, w)
        boxes[..., 1].clamp_(0, h)
        boxes[..., 2].clamp_(0, w)
        boxes[..., 3].clamp_(0, h)
    else:
        boxes[..., [0, 2]] = boxes[..., [0, 2]].clip(0, w)
        boxes[..., [1, 3]] = boxes[..., [1, 3]].clip(0, h)
    return boxes


def scale_boxes(
    boxes: Array,
    from_shape: Sequence[int],
    to_shape: Sequence[int],
    ratio_pad: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> Array:
    """Map xyxy boxes from a letterboxed image of ``from_shape`` (h, w) back to ``to_shape`` (h, w).

    Args:
        boxes: [..., 4] xyxy pixels in the letterboxed image (modified in place).
        from_shape: (h, w) of the letterboxed network input.
        to_shape: (h, w) of the original image.
        ratio_pad: ((gain_h, gain_w), (pad_w, pad_h)) as recorded by the letterbox; computed
            for a centered letterbox when None.
    """
    if ratio_pad is None:
        gain = min(from_shape[0] / to_shape[0], from_shape[1] / to_shape[1])
        pad_w = (from_shape[1] - round(to_shape[1] * gain)) / 2
        pad_h = (from_shape[0] - round(to_shape[0] * gain)) / 2
        gain_h = gain_w = gain
    else:
        (gain_h, gain_w), (pad_w, pad_h) = ratio_pad
    boxes[..., 0] -= pad_w
    boxes[..., 2] -= pad_w
    boxes[..., 1] -= pad_h
    boxes[..., 3] -= pad_h
    boxes[..., 0] /= gain_w
    boxes[..., 2] /= gain_w
    boxes[..., 1] /= gain_h
    boxes[..., 3] /= gain_h
    return clip_boxes(boxes, to_shape)
