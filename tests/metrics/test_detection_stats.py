"""DetectionStats: matching rules, perfect predictions, agreement with COCOeval, class table."""

import numpy as np
import pytest
import torch

from mirrordet.metrics.coco_eval import coco_ground_truth, evaluate_coco, predictions_to_coco
from mirrordet.metrics.detection import DetectionStats, format_class_table, match_predictions

NAMES = {0: "person", 1: "car", 2: "traffic light"}


def random_image(rng, nc=3):
    m = int(rng.integers(1, 6))
    xy = rng.uniform(0, 200, (m, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 100, (m, 2))], 1)
    cls = rng.integers(0, nc, m)
    return cls, boxes


def test_match_predictions_is_greedy_by_score_per_threshold():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    preds = torch.tensor([[0.0, 0.0, 10.0, 5.8], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    cls = torch.tensor([0, 0, 1])
    correct = match_predictions(preds, scores, cls, gt, torch.tensor([0]))
    # IoU 0.58 for the top-scored one: it takes the gt at 0.50 and 0.55; the exact box gets the rest
    assert correct[0].tolist() == [True, True] + [False] * 8
    assert correct[1].tolist() == [False, False] + [True] * 8
    assert not correct[2].any()  # wrong class never matches
    assert match_predictions(preds[:0], scores[:0], cls[:0], gt, torch.tensor([0])).shape == (0, 10)


def test_perfect_predictions_give_one():
    rng = np.random.default_rng(0)
    stats = DetectionStats(3)
    for _ in range(8):
        cls, boxes = random_image(rng)
        pred = np.concatenate([boxes, rng.uniform(0.3, 1.0, (len(cls), 1)), cls[:, None]], 1)
        stats.update(torch.from_numpy(pred).float(), torch.from_numpy(cls), torch.from_numpy(boxes).float())
    stats.update(None, np.zeros(0), np.zeros((0, 4)))  # an image without labels or predictions
    m = stats.compute()
    assert m.n_images == 9
    assert np.allclose(m.p, 1) and np.allclose(m.r, 1)
    assert np.allclose(m.ap50, 1) and np.allclose(m.ap, 1)
    assert m.mp == m.mr == m.map50 == m.map == pytest.approx(1.0)
    assert m.py.shape == (3, 1000) and np.allclose(m.py, 1)


def test_precision_recall_at_best_f1():
    stats = DetectionStats(1)
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    pred = np.array([[0, 0, 10, 10, 0.9, 0], [50, 50, 60, 60, 0.8, 0], [60, 60, 70, 70, 0.1, 0]], dtype=float)
    stats.update(pred, np.zeros(2), gt)
    m = stats.compute()
    # conf > 0.9 nothing; in (0.8, 0.9]: P=1 R=0.5 (F1 .667); (0.1, 0.8]: P=.5 R=.5; lower: P=1/3
    assert m.p[0] == pytest.approx(1.0) and m.r[0] == pytest.approx(0.5)
    assert 0.8 < m.best_conf <= 0.9
    assert m.ap50[0] == pytest.approx(51 / 101)  # precision 1 up to recall 0.5, then 0


def test_ap_matches_cocoeval_on_random_data():
    rng = np.random.default_rng(1)
    stats = DetectionStats(3)
    images, annotations, dets = [], [], []
    for k in range(20):
        cls, boxes = random_image(rng)
        keep = rng.random(len(cls)) > 0.25
        pb = boxes[keep] + rng.normal(0, 5, (keep.sum(), 4))
        pc = cls[keep].copy()
        n_fp = int(rng.integers(0, 3))
        fxy = rng.uniform(0, 200, (n_fp, 2))
        pb = np.concatenate([pb, np.concatenate([fxy, fxy + 30], 1)])
        pc = np.concatenate([pc, rng.integers(0, 3, n_fp)])
        ps = rng.uniform(0.01, 1, len(pc))
        stats.update(np.concatenate([pb, ps[:, None], pc[:, None]], 1), cls, boxes)
        images.append((k + 1, 400, 400))
        annotations.append((cls, boxes))
        dets += predictions_to_coco(k + 1, pb, ps, pc, [1, 2, 3])
    ours = stats.compute()
    coco = evaluate_coco(coco_ground_truth(images, annotations, [1, 2, 3], NAMES), dets)
    assert np.allclose(ours.ap50, coco.ap50, atol=1e-9, rtol=0)
    assert np.allclose(ours.ap, coco.ap, atol=1e-9, rtol=0)
    assert ours.map == pytest.approx(coco.map, abs=1e-9)
    assert 0 < ours.mp < 1 and 0 < ours.mr < 1


def test_class_without_ground_truth_is_marked_and_excluded():
    stats = DetectionStats(3)
    pred = np.array([[0, 0, 5, 5, 0.9, 0], [0, 0, 5, 5, 0.9, 2]])
    stats.update(pred, np.array([0]), np.array([[0, 0, 5, 5]]))
    m = stats.compute()
    assert m.has_gt.tolist() == [True, False, False]
    assert np.isnan(m.ap50[1]) and np.isnan(m.ap50[2])
    assert m.map50 == pytest.approx(1.0) and m.mp == pytest.approx(1.0)
    assert m.instances.tolist() == [1, 0, 0] and m.images.tolist() == [1, 0, 0]


def test_format_class_table_all_row_first_and_aligned():
    stats = DetectionStats(3)
    gt_boxes = np.array([[0, 0, 5, 5], [9, 9, 19, 19], [30, 30, 40, 40]])
    stats.update(np.array([[0, 0, 5, 5, 0.9, 0]]), np.array([0, 1, 1]), gt_boxes)
    stats.update(None, np.array([1]), np.array([[0, 0, 5, 5]]))
    rows = stats.compute().class_rows(ap50=np.array([0.5, 0.25, np.nan]), ap=np.array([0.4, 0.2, np.nan]))
    table = format_class_table(NAMES, rows[::-1])  # order of input does not move the 'all' row
    lines = table.splitlines()
    assert lines[0].split() == ["Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95"]
    assert lines[1].split()[:3] == ["all", "2", "4"]
    assert lines[1].split()[-2:] == ["0.375", "0.300"]  # mean over classes with ground truth
    assert len(lines) == 5 and len({len(line) for line in lines}) == 1
    light = next(line for line in lines if "traffic light" in line)
    assert light.split()[-4:] == ["0.000", "0.000", "-", "-"]
    car = next(line for line in lines if line.split()[0] == "car")
    assert car.split()[1:3] == ["2", "3"]


def test_iou_05_alone_gives_the_same_precision_recall_and_curve():
    """The validator matches at IoU 0.5 only (COCOeval gives the APs): P, R, the chosen confidence
    and the PR curve equal those of the full 0.50:0.95 matching."""
    import numpy as np
    import torch

    from mirrordet.metrics.detection import DetectionStats

    rng = np.random.default_rng(0)
    full, half = DetectionStats(3), DetectionStats(3, iou_thresholds=(0.5,))
    for _ in range(6):
        gt = rng.uniform(0, 80, (5, 2))
        gt_boxes = np.concatenate([gt, gt + rng.uniform(10, 30, (5, 2))], 1)
        gt_cls = rng.integers(0, 3, 5)
        pred = np.concatenate([gt_boxes + rng.normal(0, 4, gt_boxes.shape), rng.uniform(0, 1, (5, 1)),
                               rng.integers(0, 3, (5, 1))], 1)
        for s in (full, half):
            s.update(torch.from_numpy(pred), gt_cls, gt_boxes)
    a, b = full.compute(), half.compute()
    np.testing.assert_array_equal(a.p, b.p)
    np.testing.assert_array_equal(a.r, b.r)
    np.testing.assert_array_equal(a.py, b.py)
    assert a.best_conf == b.best_conf
    np.testing.assert_array_equal(a.ap50, b.ap50)
