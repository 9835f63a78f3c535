"""Optional Albumentations transforms: a clear error without the package; with it (where installed), seeded,
pixel-only changes that leave the labels alone."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from mirrordet.data.albumentations_hook import build_albumentations
from mirrordet.data.dataset import DetectionDataset


def test_missing_package_is_one_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "albumentations" else real(name, *a))
    with pytest.raises(Exception, match="pip install albumentations"):
        build_albumentations()
    with pytest.raises(Exception, match="pip install albumentations"):
        DetectionDataset([], 64, augment=True, hyp={"albumentations": True})
    DetectionDataset([], 64, augment=False, hyp={"albumentations": True})  # validation never uses it


def test_transforms_are_seeded_and_change_pixels_only(tmp_path, caplog):
    pytest.importorskip("albumentations")
    import cv2

    img = np.zeros((64, 64, 3), np.uint8)
    cv2.rectangle(img, (10, 10), (40, 50), (30, 200, 90), -1)
    with caplog.at_level("INFO", logger="mirrordet"):
        apply = build_albumentations(p=1.0)
    assert "Blur(p=1.0)" in caplog.text and "CLAHE(p=1.0)" in caplog.text  # the transforms are listed in the log
    a, b, c = apply(img, 7), apply(img, 7), apply(img, 8)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, img)
    assert np.abs(a[..., 0].astype(int) - a[..., 1]).max() <= 3  # ToGray at p=1 (CLAHE after it rounds a little)
    f = tmp_path / "a.png"
    cv2.imwrite(str(f), img)
    rec = {"im_file": str(f), "shape": (64, 64), "cls": np.array([1]), "bboxes": np.array([[0.39, 0.47, 0.48, 0.64]])}
    hyp = {"mosaic": 0.0, "fliplr": 0.0}  # the geometry is drawn before the transforms, the flip after them
    plain = DetectionDataset([rec], 64, augment=True, hyp=hyp)
    extra = DetectionDataset([rec], 64, augment=True, hyp={**hyp, "albumentations": True})
    assert extra.pixel_extra is not None
    assert np.allclose(plain[0]["bboxes"], extra[0]["bboxes"]) and np.array_equal(extra[0]["img"], extra[0]["img"])
