"""Classification transforms: hue-shift colour jitter, crops keep the requested size."""

import cv2
import numpy as np
import pytest

from mirrordet.data.classify_transforms import center_crop_resize, pad_crop, random_resized_crop
from mirrordet.data.transforms import hsv_jitter


def hue_of(img: np.ndarray) -> int:
    return int(cv2.cvtColor(img[:1, :1], cv2.COLOR_BGR2HSV)[0, 0, 0])


def test_hue_shift_off_is_identity():
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert hsv_jitter(img, 0.0, 0.0, 0.0, np.random.default_rng(0), hue_shift=True) is img


def test_hue_shift_full_hue_range_reaches_every_hue_of_red():
    """Hue is an additive shift (torchvision semantics): pure red (hue 0) leaves red, unlike a hue gain."""
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 2] = 255
    rng = np.random.default_rng(0)
    hues = [hue_of(hsv_jitter(red, 0.5, 0.0, 0.0, rng, hue_shift=True)) for _ in range(200)]
    assert min(hues) < 20 and max(hues) > 160
    assert len({h // 30 for h in hues}) == 6  # all six 60-degree sectors are visited
    gains = {hue_of(hsv_jitter(red, 0.5, 0.0, 0.0, rng)) for _ in range(50)}  # detection: a hue gain
    assert gains == {0}


@pytest.mark.parametrize("hue", [0.05, 0.2])
def test_hue_shift_hue_shift_is_bounded(hue):
    green = np.zeros((4, 4, 3), np.uint8)
    green[..., 1] = 255  # OpenCV hue 60
    rng = np.random.default_rng(1)
    shifts = [hue_of(hsv_jitter(green, hue, 0.0, 0.0, rng, hue_shift=True)) - 60 for _ in range(100)]
    assert max(abs(s) for s in shifts) <= hue * 180 + 1
    assert max(abs(s) for s in shifts) > 0


def test_crops_return_requested_size():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    assert center_crop_resize(img, 32).shape == (32, 32, 3)
    assert random_resized_crop(img, 40, rng).shape == (40, 40, 3)
    assert pad_crop(img, 32, rng, pad=4).shape == (32, 32, 3)
