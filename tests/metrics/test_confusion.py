"""ConfusionMatrix: hits, class confusions, misses, false alarms, thresholds."""

import numpy as np
import pytest
import torch

from mirrordet.metrics.confusion import ConfusionMatrix
from mirrordet.utils.errors import MirrordetError

GT_BOXES = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], dtype=float)
GT_CLS = np.array([0, 1, 2])


def test_hits_confusions_misses_and_false_alarms():
    cm = ConfusionMatrix(3, conf=0.25, iou_thres=0.45)
    det = np.array(
        [
            [0, 0, 10, 10, 0.9, 0],  # correct class 0
            [21, 21, 40, 40, 0.8, 2],  # class 1 predicted as 2
            [100, 100, 120, 120, 0.7, 1],  # false alarm of class 1
            [50, 50, 60, 60, 0.1, 2],  # below conf: ignored -> gt 2 missed
        ]
    )
    cm.update(det, GT_CLS, GT_BOXES)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 0] = 1
    expected[2, 1] = 1
    expected[1, 3] = 1  # predicted 1, true background
    expected[3, 2] = 1  # predicted background, true 2
    assert np.array_equal(cm.matrix, expected)
    tp, fp = cm.tp_fp()
    assert tp.tolist() == [1, 0, 0] and fp.tolist() == [0, 1, 1]


def test_matching_is_one_to_one_highest_iou_first():
    cm = ConfusionMatrix(2, conf=0.0, iou_thres=0.45)
    gt = np.array([[0, 0, 10, 10]], dtype=float)
    det = torch.tensor([[0, 0, 10, 9, 0.5, 1], [0, 0, 10, 10, 0.4, 0]], dtype=torch.float32)
    cm.update(det, torch.tensor([0]), torch.from_numpy(gt))
    # the exact box (IoU 1) wins although its score is lower; the other one is a false alarm
    assert cm.matrix[0, 0] == 1 and cm.matrix[1, 2] == 1 and cm.matrix.sum() == 2


def test_empty_sides_and_accumulation():
    cm = ConfusionMatrix(3)
    cm.update(None, GT_CLS, GT_BOXES)
    assert cm.matrix[3, :3].tolist() == [1, 1, 1]
    cm.update(np.array([[0, 0, 5, 5, 0.9, 2]]), np.zeros(0), np.zeros((0, 4)))
    assert cm.matrix[2, 3] == 1
    cm.update(np.zeros((0, 6)), np.zeros(0), np.zeros((0, 4)))
    assert cm.matrix.sum() == 4 and cm.matrix.shape == (4, 4)
    norm = cm.normalized()
    assert np.allclose(norm[:, :3].sum(0), 1.0) and np.allclose(norm[:, 3].sum(), 1.0)


def test_out_of_range_class_is_a_clear_error():
    with pytest.raises(MirrordetError, match="class index"):
        ConfusionMatrix(2).update(np.array([[0, 0, 5, 5, 0.9, 2]]), np.zeros(0), np.zeros((0, 4)))
