"""Annotated images: boxes with class names and scores, or top-k class lines, drawn with OpenCV.

Images are BGR uint8 [H, W, 3]; boxes are [n, 4] xyxy pixels of that image. Every function
returns a new array (the input is not modified).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

# 20 distinct colors (matplotlib's "tab20" order, as RGB hex), one per class index modulo 20.
_PALETTE_HEX = (
    "1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf",
    "aec7e8", "ffbb78", "98df8a", "ff9896", "c5b0d5", "c49c94", "f7b6d2", "c7c7c7", "dbdb8d", "9edae5",
)


def class_color(index: int) -> tuple[int, int, int]:
    """BGR color of class ``index`` (stable across runs and images)."""
    h = _PALETTE_HEX[int(index) % len(_PALETTE_HEX)]
    r, g, b = (int(h[k:k + 2], 16) for k in (0, 2, 4))
    return b, g, r


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``bg`` (BGR)."""
    b, g, r = bg
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def _sizes(shape: tuple[int, ...], line_width: int | None) -> tuple[int, float, int]:
    lw = line_width or max(1, round(sum(shape[:2]) / 2 * 0.003))
    return lw, max(0.3, lw / 3), max(1, lw - 1)


def _label(img: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int], scale: float, thick: int,
           above: bool = True) -> None:
    """Filled label box with ``text`` whose bottom-left corner is (x, y) (or top-left if not ``above``)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    h, w = img.shape[:2]
    x = int(min(max(x, 0), max(w - tw - 2, 0)))
    top = y - th - base - 2 if above else y
    if top < 0:  # no room above the box: put the label inside it
        top = y
    top = int(min(max(top, 0), max(h - th - base - 2, 0)))
    cv2.rectangle(img, (x, top), (x + tw + 2, top + th + base + 2), color, -1, cv2.LINE_AA)
    cv2.putText(img, text, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, _text_color(color), thick,
                cv2.LINE_AA)


def draw_detections(
    img: np.ndarray,
    boxes: np.ndarray,
    cls: np.ndarray,
    conf: np.ndarray | None,
    names: Mapping[int, str],
    line_width: int | None = None,
    labels: bool = True,
    show_conf: bool = True,
) -> np.ndarray:
    """Draw boxes with ``"name 0.87"`` labels in per-class colors.

    Args:
        img: BGR uint8 [H, W, 3].
        boxes: [n, 4] xyxy pixels of ``img``.
        cls: [n] class indices. conf: [n] scores in [0, 1] (or None).
        names: {class index: name}.
        line_width: box line width in pixels (None = about 0.3% of the image size).
        labels: draw the label boxes. show_conf: add the score to the label.

    Returns:
        A new annotated BGR image.
    """
    out = np.ascontiguousarray(img).copy()
    lw, scale, thick = _sizes(out.shape, line_width)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).round().astype(np.int64)
    cls = np.asarray(cls).reshape(-1).astype(np.int64)
    scores = None if conf is None else np.asarray(conf, dtype=np.float64).reshape(-1)
    order = np.argsort(scores, kind="stable") if scores is not None else np.arange(len(cls))  # best drawn last
    for i in order:
        x1, y1, x2, y2 = (int(v) for v in boxes[i])
        color = class_color(int(cls[i]))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, lw, cv2.LINE_AA)
        if labels:
            text = str(names.get(int(cls[i]), int(cls[i])))
            if show_conf and scores is not None:
                text += f" {scores[i]:.2f}"
            _label(out, text, x1, y1, color, scale, thick)
    return out


def draw_masks(img: np.ndarray, masks: np.ndarray, cls: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend instance masks into the image in their class colours.

    Args:
        img: BGR uint8 [H, W, 3]. masks: bool [n, H, W]. cls: [n] class indices. alpha: mask opacity.

    Returns:
        A new BGR image.
    """
    out = np.ascontiguousarray(img).astype(np.float32)
    for m, c in zip(np.asarray(masks, bool), np.asarray(cls).reshape(-1).astype(np.int64)):
        out[m] = out[m] * (1 - alpha) + np.array(class_color(int(c)), np.float32) * alpha
    return out.round().clip(0, 255).astype(np.uint8)


def draw_classification(img: np.ndarray, top: Sequence[tuple[int, float]], names: Mapping[int, str],
                        line_width: int | None = None) -> np.ndarray:
    """Write the top-k ``"name 0.87"`` lines in the top-left corner.

    Args:
        img: BGR uint8 [H, W, 3].
        top: (class index, probability) pairs, best first.
        names: {class index: name}.

    Returns:
        A new annotated BGR image.
    """
    out = np.ascontiguousarray(img).copy()
    _, scale, thick = _sizes(out.shape, line_width)
    y = 2
    for k, p in top:
        text = f"{names.get(int(k), int(k))} {float(p):.2f}"
        (_, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        _label(out, text, 2, y, class_color(int(k)), scale, thick, above=False)
        y += th + base + 4
    return out
