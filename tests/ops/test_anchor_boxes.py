"""Anchor generation, delta coding, matcher, and the top-k NMS postprocess."""

import math

import torch

from mirrordet.ops.anchor_boxes import base_anchors, decode_boxes, encode_boxes, flatten_levels, grid_anchors, match_anchors
from mirrordet.ops.nms import NMSSettings, dense_nms


def test_base_anchors_area_and_ratio():
    a = base_anchors(32, [0.5, 1.0, 2.0], [1.0, 2 ** (1 / 3)])
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    torch.testing.assert_close(w * h, torch.tensor([32.0 ** 2, (32 * 2 ** (1 / 3)) ** 2] * 3))
    torch.testing.assert_close(h / w, torch.tensor([0.5, 0.5, 1.0, 1.0, 2.0, 2.0]))


def test_grid_anchor_order_matches_flatten_levels():
    a = grid_anchors([(2, 3)], [8.0], [16.0], [1.0, 2.0], [1.0])
    assert a.shape == (2 * 3 * 2, 4)
    centres = (a[:, :2] + a[:, 2:]) / 2
    torch.testing.assert_close(centres[0], torch.tensor([4.0, 4.0]))
    torch.testing.assert_close(centres[2], torch.tensor([12.0, 4.0]))  # next column (x) comes next
    torch.testing.assert_close(centres[6], torch.tensor([4.0, 12.0]))  # then the next row
    m = torch.zeros(1, 2 * 5, 2, 3)  # K=2 anchors x 5 channels
    m[0, 5 + 4, 1, 2] = 1.0  # anchor 1, channel 4, row 1, column 2
    flat = flatten_levels([m], 5)
    assert flat.shape == (1, 12, 5) and flat[0, (1 * 3 + 2) * 2 + 1, 4] == 1 and flat.sum() == 1


def test_encode_decode_roundtrip():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 50.0, 25.0]])
    gt = torch.tensor([[1.0, 2.0, 12.0, 18.0], [0.0, 10.0, 60.0, 30.0]])
    for w in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        torch.testing.assert_close(decode_boxes(encode_boxes(gt, anchors, w), anchors, w), gt)
    assert torch.isfinite(decode_boxes(torch.full((1, 4), 100.0), anchors[:1])).all()  # clamped exp


def test_matcher_thresholds_and_low_quality():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 22.0], [50.0, 50.0, 60.0, 60.0]])
    m = match_anchors(gt, anchors, 0.5, 0.4)
    assert m.tolist() == [0, -2, -1]  # IoU 1, 0.45 (ignored), 0
    far = torch.tensor([[0.0, 0.0, 10.0, 40.0], [50.0, 50.0, 60.0, 60.0]])  # best IoU 0.25 < bg
    assert match_anchors(gt, far, 0.5, 0.4).tolist() == [0, -1]
    assert match_anchors(gt, far, 0.5, 0.4, low_quality=False).tolist() == [-1, -1]
    assert match_anchors(torch.zeros(0, 4), far, 0.5, 0.4).tolist() == [-1, -1]


def test_multi_label_dense_nms_keeps_best_per_class_with_topk():
    boxes = torch.tensor([[10.0, 10, 10, 10], [10.5, 10, 10, 10], [40, 40, 8, 8]])  # xywh
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.7], [0.0, 0.6]])
    pred = torch.cat([boxes, scores], 1).T[None]  # [1, 6, 3]
    nms = NMSSettings(conf=0.05, iou=0.5, max_det=10, multi_label=True)
    out = dense_nms(pred, nms)[0].rows()
    assert out.shape == (3, 6)  # box 1 is suppressed for class 0 but kept for class 1
    assert sorted(out[:, 5].tolist()) == [0, 1, 1] and math.isclose(out[0, 4].item(), 0.9, rel_tol=1e-6)
    assert len(dense_nms(pred, nms, topk=1)[0]) == 1
    single = dense_nms(pred, NMSSettings(conf=0.05, iou=0.5, max_det=10))[0]  # one label per box
    assert sorted(single.labels.tolist()) == [0, 1]  # box 1's best class (0) is suppressed by box 0
    only = dense_nms(pred, NMSSettings(conf=0.05, iou=0.5, max_det=10, classes=(1,), multi_label=True))[0]
    assert only.labels.tolist() == [1, 1]
    agnostic = dense_nms(pred, NMSSettings(conf=0.05, iou=0.5, max_det=10, agnostic=True, multi_label=True))[0]
    assert len(agnostic) == 2  # box 1 overlaps box 0 whatever the class
