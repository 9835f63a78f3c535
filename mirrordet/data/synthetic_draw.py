"""Drawing primitives of the synthetic "shapes" data: textured backgrounds, clutter, four shapes.

Every function takes an explicit ``numpy.random.Generator`` so that a seed fixes every pixel.
Images are BGR uint8 [H, W, 3] (OpenCV order).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SHAPE_NAMES = ("circle", "square", "triangle", "star")
# Per-class base tint (BGR): red circles, green squares, blue triangles, yellow stars.
BASE_COLORS = ((50, 50, 215), (50, 190, 50), (215, 90, 40), (40, 205, 225))
COLOR_JITTER = 40  # +/- per channel around the class tint
RANDOM_COLOR_P = 0.15  # probability of an arbitrary colour: the shape itself must decide the class


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency colour field plus a gradient: [size, size, 3] uint8, muted mid-tones."""
    grid = rng.uniform(70, 185, size=(4, 4, 3)).astype(np.float32)
    img = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    grad = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]
    img += grad[..., None] * rng.uniform(0, 25)
    return np.clip(img, 0, 255).astype(np.uint8)


def add_clutter(img: np.ndarray, rng: np.random.Generator, n_lines: int, n_blobs: int) -> None:
    """Draw unlabelled distractors in place: thin lines and small flat ellipses."""
    s = img.shape[0]
    for _ in range(n_lines):
        p1 = tuple(int(v) for v in rng.integers(0, s, 2))
        p2 = tuple(int(v) for v in rng.integers(0, s, 2))
        color = tuple(int(v) for v in rng.integers(40, 220, 3))
        cv2.line(img, p1, p2, color, int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(n_blobs):
        c = tuple(int(v) for v in rng.integers(0, s, 2))
        axes = (max(1, int(s * rng.uniform(0.02, 0.05))), max(1, int(s * rng.uniform(0.005, 0.015))))
        color = tuple(int(v) for v in rng.integers(40, 220, 3))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)


def add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian pixel noise of standard deviation ``sigma``; returns a new uint8 image."""
    noisy = img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def shape_color(cls: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """Class tint with jitter, or (sometimes) an arbitrary colour."""
    return shape_color_kind(cls, rng)[0]


def shape_color_kind(cls: int, rng: np.random.Generator) -> tuple[tuple[int, int, int], bool]:
    """(:func:`shape_color`'s colour, whether it is an arbitrary colour rather than the class tint); the same draws."""
    if rng.random() < RANDOM_COLOR_P:
        return tuple(int(v) for v in rng.integers(20, 236, 3)), True
    base = np.array(BASE_COLORS[cls]) + rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, 3)
    return tuple(int(v) for v in np.clip(base, 0, 255)), False


def _rotate(pts: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def shape_polygon(cls: int, size: float, rng: np.random.Generator) -> np.ndarray | None:
    """Outline of shape ``cls`` centred at the origin, about ``size`` pixels across: [K, 2] float (x, y).

    Returns None for the circle (drawn analytically).
    """
    r = size / 2
    if cls == 0:
        return None
    if cls == 1:  # square, mild aspect change and rotation
        a = rng.uniform(0.85, 1.15)
        pts = np.array([[-r * a, -r / a], [r * a, -r / a], [r * a, r / a], [-r * a, r / a]])
        return _rotate(pts, math.radians(rng.uniform(-15, 15)))
    if cls == 2:  # triangle pointing up-ish
        ang = [math.radians(-90 + k * 120) for k in range(3)]
        pts = np.array([[r * math.cos(t), r * math.sin(t) + r * 0.2] for t in ang])
        return _rotate(pts, math.radians(rng.uniform(-20, 20)))
    # five-pointed star
    rot = rng.uniform(0, 2 * math.pi / 5)
    pts = [
        [
            (r if k % 2 == 0 else 0.45 * r) * math.cos(rot + k * math.pi / 5),
            (r if k % 2 == 0 else 0.45 * r) * math.sin(rot + k * math.pi / 5),
        ]
        for k in range(10)
    ]
    return np.array(pts)


def shape_extent(cls: int, size: float, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray]:
    """Polygon (or None for a circle) and its bounding box offsets [x1, y1, x2, y2] around the centre."""
    poly = shape_polygon(cls, size, rng)
    if poly is None:
        r = size / 2
        return None, np.array([-r, -r, r, r])
    return poly, np.concatenate([poly.min(0), poly.max(0)])


def draw_shape(
    img: np.ndarray,
    cls: int,
    center: tuple[float, float],
    size: float,
    poly: np.ndarray | None,
    color: tuple[int, int, int],
) -> None:
    """Fill the shape in place (anti-aliased); ``poly`` is the origin-centred outline, None for a circle."""
    shift = 4  # sub-pixel precision of cv2 drawing
    f = 1 << shift
    cx, cy = center
    if poly is None:
        cv2.circle(img, (round(cx * f), round(cy * f)), round(size / 2 * f), color, -1, cv2.LINE_AA, shift)
    else:
        pts = np.round((poly + [cx, cy]) * f).astype(np.int32)
        cv2.fillPoly(img, [pts], color, cv2.LINE_AA, shift)
