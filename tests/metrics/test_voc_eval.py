"""The VOC metric on a hand-worked example (the devkit's rules: IoU >= 0.5 pixel-inclusive, difficult ignored)."""

from __future__ import annotations

import numpy as np
import pytest

from mirrordet.metrics.voc_eval import voc_ap, voc_evaluate


def test_hand_worked_example():
    """One class, two images. Image A: g1 (0,0,10,10) and g2 (20,20,30,30) difficult; image B: g3 (0,0,10,10).
    Detections by score: d1 A on g1 (TP), d2 A on g2 (difficult: ignored), d3 B nowhere (FP), d4 B on g3 (TP),
    d5 A on g1 again (duplicate: FP). Two countable objects, so recall .5 .5 .5 1 1 and precision 1 1 .5 2/3 .5.
    VOC07 11-point: recall thresholds 0..0.5 reach precision 1 (6 points), 0.6..1.0 reach 2/3 (5 points):
    (6 + 5 * 2/3) / 11 = 0.848485. Area: 0.5 * 1 + 0.5 * 2/3 = 0.833333."""
    gts = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "cls": np.array([0, 0]),
            "difficult": np.array([False, True])},
           {"boxes": np.array([[0, 0, 10, 10]]), "cls": np.array([0]), "difficult": np.array([False])}]
    dets = [np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 0], [0, 0, 10, 10, 0.5, 0]]),
            np.array([[50, 50, 60, 60, 0.7, 0], [0, 0, 10, 10, 0.6, 0]])]
    r = voc_evaluate(dets, gts, nc=2)
    assert r.ap07[0] == pytest.approx((6 + 5 * 2 / 3) / 11) and r.ap[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert np.isnan(r.ap07[1]) and r.n_gt.tolist() == [2, 0]
    assert r.map07 == pytest.approx(r.ap07[0])  # classes without objects are left out of the mean


def test_pixel_inclusive_iou_threshold():
    """A 10x10-pixel box shifted by 3 px overlaps (8 x 11) / (2 * 121 - 88) = 0.571 pixel-inclusive: a match;
    shifted by 5 px, (6 x 11) / (242 - 66) = 0.375: no match."""
    gts = [{"boxes": np.array([[0, 0, 10, 10]]), "cls": np.array([0]), "difficult": np.array([False])}]
    assert voc_evaluate([np.array([[3, 0, 13, 10, 0.9, 0]])], gts, 1).ap07[0] == pytest.approx(1.0)
    assert voc_evaluate([np.array([[5, 0, 15, 10, 0.9, 0]])], gts, 1).ap07[0] == pytest.approx(0.0)


def test_ap_of_a_perfect_and_an_empty_curve():
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0]), use_07=True) == pytest.approx(1.0)
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0]), use_07=False) == pytest.approx(1.0)
    assert voc_ap(np.zeros(0), np.zeros(0), use_07=True) == 0.0
