"""Transforms keep boxes valid (hypothesis) and move them with the pixels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirrordet.data.augment_affine import random_affine, transform_boxes
from mirrordet.data.mosaic import mosaic4
from mirrordet.data.transforms import (
    PAD_VALUE,
    apply_ratio_pad,
    clip_and_filter,
    flip_lr,
    flip_ud,
    hsv_jitter,
    letterbox,
    resize_long_side,
)

SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def assert_valid(boxes: np.ndarray, cls: np.ndarray, shape: tuple[int, int]) -> None:
    h, w = shape
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) == len(cls)
    assert np.isfinite(boxes).all()
    assert (boxes[:, 0] < boxes[:, 2]).all() and (boxes[:, 1] < boxes[:, 3]).all()
    assert (boxes[:, [0, 1]] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()


@st.composite
def image_and_boxes(draw, min_side: int = 8, max_side: int = 96):
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    n = draw(st.integers(0, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, w - 1, n)
    y1 = rng.uniform(0, h - 1, n)
    x2 = np.minimum(x1 + rng.uniform(0.5, w, n), w)
    y2 = np.minimum(y1 + rng.uniform(0.5, h, n), h)
    boxes = np.stack([x1, y1, x2, y2], 1).astype(np.float32).reshape(-1, 4)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return img, boxes, np.arange(n, dtype=np.int64), seed


@SETTINGS
@given(data=image_and_boxes(), size=st.integers(16, 80), scaleup=st.booleans())
def test_letterbox_keeps_boxes_valid(data, size: int, scaleup: bool) -> None:
    img, boxes, cls, _ = data
    out, rp = letterbox(img, size, scaleup=scaleup)
    assert out.shape == (size, size, 3)
    b = apply_ratio_pad(boxes, rp, (size, size))
    assert_valid(b, cls, (size, size))


@SETTINGS
@given(
    data=image_and_boxes(),
    size=st.integers(16, 64),
    degrees=st.floats(0, 45),
    translate=st.floats(0, 0.5),
    scale=st.floats(0, 0.9),
    shear=st.floats(0, 20),
)
def test_random_affine_keeps_boxes_valid(data, size, degrees, translate, scale, shear) -> None:
    img, boxes, cls, seed = data
    out, b, c = random_affine(
        img, boxes, cls, np.random.default_rng(seed), degrees, translate, scale, shear, out_shape=(size, size)
    )
    assert out.shape == (size, size, 3)
    assert_valid(b, c, (size, size))
    assert set(c.tolist()) <= set(cls.tolist())
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    assert (w > 2).all() and (h > 2).all()  # tiny boxes dropped


@SETTINGS
@given(
    parts=st.lists(image_and_boxes(max_side=40), min_size=4, max_size=4),
    size=st.integers(8, 40),
    seed=st.integers(0, 1000),
)
def test_mosaic_keeps_boxes_valid(parts, size, seed) -> None:
    imgs, bxs, cls = [], [], []
    for img, b, c, _ in parts:
        img2, (gh, gw) = resize_long_side(img, size)
        imgs.append(img2)
        bxs.append(b * np.array([gw, gh, gw, gh], np.float32))
        cls.append(c)
    canvas, b, c = mosaic4(imgs, bxs, cls, size, np.random.default_rng(seed))
    assert canvas.shape == (2 * size, 2 * size, 3)
    assert_valid(b, c, (2 * size, 2 * size))
    out, b2, c2 = random_affine(
        canvas, b, c, np.random.default_rng(seed), 10, 0.1, 0.5, 5, out_shape=(size, size)
    )
    assert_valid(b2, c2, (size, size))


@SETTINGS
@given(data=image_and_boxes())
def test_flips_keep_boxes_valid_and_are_involutions(data) -> None:
    img, boxes, cls, _ = data
    for flip in (flip_lr, flip_ud):
        out, b = flip(img, boxes)
        assert_valid(b, cls, img.shape[:2])
        back, b2 = flip(out, b)
        np.testing.assert_array_equal(back, img)
        np.testing.assert_allclose(b2, boxes, atol=1e-4)


@SETTINGS
@given(data=image_and_boxes(), gains=st.tuples(st.floats(0, 0.5), st.floats(0, 1), st.floats(0, 1)))
def test_hsv_keeps_shape_and_dtype(data, gains) -> None:
    img, boxes, cls, seed = data
    out = hsv_jitter(img, *gains, np.random.default_rng(seed))
    assert out.shape == img.shape and out.dtype == np.uint8


@SETTINGS
@given(boxes=st.lists(st.tuples(*[st.floats(-50, 150) | st.just(float("nan"))] * 4), max_size=8))
def test_clip_and_filter_outputs_valid(boxes) -> None:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    out, c = clip_and_filter(b, np.arange(len(b)), (60, 100))
    assert_valid(out, c, (60, 100))


def test_letterbox_geometry_and_padding() -> None:
    img = np.full((50, 100, 3), 7, np.uint8)
    out, ((gh, gw), (pw, ph)) = letterbox(img, 64)
    assert (gh, gw) == (32 / 50, 64 / 100) and (pw, ph) == (0.0, 16.0)
    assert (out[:16] == PAD_VALUE).all() and (out[48:] == PAD_VALUE).all() and (out[16:48] == 7).all()
    b = apply_ratio_pad(np.array([[0, 0, 100, 50]], np.float32), ((gh, gw), (pw, ph)))
    np.testing.assert_allclose(b, [[0, 16, 64, 48]])
    small, (r, _) = letterbox(np.zeros((10, 10, 3), np.uint8), 40, scaleup=False)
    assert small.shape == (40, 40, 3) and r == (1.0, 1.0)


def test_identity_affine_is_a_no_op() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    b = np.array([[1, 2, 20, 30]], np.float32)
    out, b2, c2 = random_affine(img, b, np.array([3]), rng, 0, 0, 0, 0)
    np.testing.assert_array_equal(out, img)
    np.testing.assert_allclose(b2, b, atol=1e-4)
    assert c2.tolist() == [3]


def test_affine_boxes_follow_the_pixels() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    img[10:30, 20:40] = 255  # a white block with box (20, 10, 40, 30)
    box = np.array([[20, 10, 40, 30]], np.float32)
    checked = 0
    for seed in range(5):
        out, b, c = random_affine(
            img, box, np.array([0]), np.random.default_rng(seed), 0, 0.2, 0.3, 0, out_shape=(64, 64)
        )
        if not len(b):
            continue
        ys, xs = np.nonzero(out[..., 0] > 128)
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], b[0], atol=1.5)
        checked += 1
    assert checked >= 3


def test_transform_boxes_rotation_encloses_corners() -> None:
    theta = np.deg2rad(90)
    M = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    out = transform_boxes(np.array([[1, 2, 3, 6]], np.float32), M)
    np.testing.assert_allclose(out, [[-6, 1, -2, 3]], atol=1e-5)


def test_mosaic_places_each_tile_with_its_boxes() -> None:
    size = 32
    imgs, boxes, classes = [], [], []
    for k in range(4):
        img = np.zeros((size, size, 3), np.uint8)
        img[8:24, 8:24] = 50 * (k + 1)  # a square of a distinct grey per tile
        imgs.append(img)
        boxes.append(np.array([[8, 8, 24, 24]], np.float32))
        classes.append(np.array([k]))
    for seed in range(10):
        canvas, b, c = mosaic4(imgs, boxes, classes, size, np.random.default_rng(seed))
        for (x1, y1, x2, y2), k in zip(b, c):
            patch = canvas[int(np.ceil(y1)) : int(y2), int(np.ceil(x1)) : int(x2), 0]
            assert patch.size and (patch == 50 * (k + 1)).all()


@pytest.mark.parametrize("flip", [flip_lr, flip_ud])
def test_flip_moves_box_with_content(flip) -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    img[2:6, 3:10] = 255
    out, b = flip(img, np.array([[3, 2, 10, 6]], np.float32))
    ys, xs = np.nonzero(out[..., 0])
    np.testing.assert_allclose(b[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
