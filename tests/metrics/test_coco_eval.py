"""COCO evaluation wrapper: equals an independent plain COCOeval run read from JSON files."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mirrordet.metrics.coco_eval import coco_ground_truth, evaluate_coco, predictions_to_coco
from mirrordet.utils.errors import MirrordetError

CATEGORY_IDS = [1, 5, 9, 12]  # class 3 never appears in the ground truth
NAMES = {0: "cat", 1: "dog", 2: "bird", 3: "fish"}


def synthetic_set(seed=0, n_images=15):
    """Random GT of classes 0..2 and noisy detections (jittered GT, misses, false alarms)."""
    rng = np.random.default_rng(seed)
    images, annotations, dets = [], [], []
    for k in range(n_images):
        image_id = 100 + 3 * k
        h, w = int(rng.integers(200, 400)), int(rng.integers(200, 400))
        m = int(rng.integers(0, 6))
        xy = rng.uniform(0, 150, (m, 2))
        wh = rng.uniform(4, 120, (m, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        cls = rng.integers(0, 3, m)
        images.append((image_id, h, w))
        annotations.append((cls, boxes))
        keep = rng.random(m) > 0.2
        jitter = boxes[keep] + rng.normal(0, 4, (keep.sum(), 4))
        d_cls = np.where(rng.random(keep.sum()) < 0.1, rng.integers(0, 4, keep.sum()), cls[keep])
        n_fp = int(rng.integers(0, 3))
        fp_xy = rng.uniform(0, 200, (n_fp, 2))
        fp = np.concatenate([fp_xy, fp_xy + rng.uniform(5, 80, (n_fp, 2))], 1)
        all_boxes = np.concatenate([jitter, fp])
        all_cls = np.concatenate([d_cls, rng.integers(0, 4, n_fp)])
        scores = rng.uniform(0.05, 1.0, len(all_boxes))
        dets += predictions_to_coco(image_id, all_boxes, scores, all_cls, CATEGORY_IDS)
    gt = coco_ground_truth(images, annotations, CATEGORY_IDS, NAMES)
    return gt, dets


def plain_cocoeval(gt_path, dets_path, cat_ids=None):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(dets_path))
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_matches_independent_cocoeval_from_json(tmp_path):
    gt, dets = synthetic_set()
    gt_path, dets_path = tmp_path / "gt.json", tmp_path / "predictions.json"
    gt_path.write_text(json.dumps(gt))
    dets_path.write_text(json.dumps(dets))
    result = evaluate_coco(gt, dets)
    ref = plain_cocoeval(gt_path, dets_path)
    assert result.stats.shape == (12,)
    assert np.allclose(result.stats, ref, atol=1e-9, rtol=0)
    assert 0.1 < result.map50 < 1.0 and result.map <= result.map50
    # per class: COCOeval restricted to that category alone
    assert result.category_ids == CATEGORY_IDS
    assert result.has_gt.tolist() == [True, True, True, False]
    for i, cid in enumerate(CATEGORY_IDS[:3]):
        one = plain_cocoeval(gt_path, dets_path, [cid])
        assert abs(result.ap[i] - one[0]) < 1e-9
        assert abs(result.ap50[i] - one[1]) < 1e-9
    assert np.isnan(result.ap[3]) and np.isnan(result.ap50[3])
    assert abs(np.nanmean(result.ap) - result.map) < 1e-9
    assert abs(np.nanmean(result.ap50) - result.map50) < 1e-9
    lines = result.summary_text.splitlines()
    assert len(lines) == 12
    assert lines[0].startswith(" Average Precision") and lines[-1].startswith(" Average Recall")
    assert f"{ref[0]:0.3f}" in lines[0]


def test_inputs_are_not_modified_and_boxes_keep_full_precision():
    gt, dets = synthetic_set(seed=1, n_images=4)
    gt_copy, dets_copy = copy.deepcopy(gt), copy.deepcopy(dets)
    evaluate_coco(gt, dets)
    assert gt == gt_copy and dets == dets_copy
    box = np.array([[10.123456789012, 2.5, 20.987654321, 9.0]])
    entry = predictions_to_coco(7, box, [0.123456789123], [1], [3, 4])
    expected_bbox = [10.123456789012, 2.5, 20.987654321 - 10.123456789012, 6.5]
    assert entry == [{"image_id": 7, "category_id": 4, "bbox": expected_bbox, "score": 0.123456789123}]
    assert json.loads(json.dumps(entry)) == entry


def test_ground_truth_format():
    gt = coco_ground_truth(
        [(5, 100, 200), (6, 50, 60)],
        [(np.array([1]), np.array([[10.0, 20.0, 40.0, 30.0]])), (np.zeros(0), np.zeros((0, 4)))],
        [11, 22],
        {0: "a", 1: "b"},
    )
    assert gt["images"] == [{"id": 5, "height": 100, "width": 200}, {"id": 6, "height": 50, "width": 60}]
    assert gt["categories"] == [{"id": 11, "name": "a"}, {"id": 22, "name": "b"}]
    (ann,) = gt["annotations"]
    assert ann["id"] >= 1 and ann["image_id"] == 5 and ann["category_id"] == 22 and ann["iscrowd"] == 0
    assert ann["bbox"] == [10.0, 20.0, 30.0, 10.0] and ann["area"] == 300.0
    with pytest.raises(MirrordetError):
        bad_class = [(np.array([2]), np.array([[0, 0, 1, 1]]))]
        coco_ground_truth([(1, 10, 10)], bad_class, [1, 2], {0: "a", 1: "b"})


def test_perfect_and_empty_detections():
    gt, _ = synthetic_set(seed=2, n_images=6)
    perfect = []
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        perfect.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": [x, y, w, h],
                        "score": 0.9})
    res = evaluate_coco(gt, perfect)
    assert res.map == pytest.approx(1.0) and res.map50 == pytest.approx(1.0)
    assert np.allclose(res.ap[res.has_gt], 1.0)
    empty = evaluate_coco(gt, [])
    assert empty.map == 0.0 and empty.map50 == 0.0 and (empty.stats[[0, 1, 2, 6, 7, 8]] == 0).all()
    assert np.allclose(empty.ap[empty.has_gt], 0.0) and len(empty.summary_text.splitlines()) == 12


def test_unknown_image_id_is_a_clear_error():
    gt, dets = synthetic_set(seed=3, n_images=2)
    dets = dets + [{"image_id": 999999, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]
    with pytest.raises(MirrordetError, match="image ids"):
        evaluate_coco(gt, dets)


def test_ground_truth_from_a_coco_file_keeps_its_records_and_completes_gaps():
    from mirrordet.metrics.coco_eval import ground_truth_from_coco

    d = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
         "categories": [{"id": 8, "name": "b"}, {"id": 3, "name": "a"}],
         "annotations": [
             {"id": 7, "image_id": 1, "category_id": 3, "bbox": [0, 0, 4, 5], "area": 11.5, "iscrowd": 1},
             {"image_id": 1, "category_id": 8, "bbox": [1, 1, 2, 2]},  # no id, area or iscrowd
             {"id": 9, "image_id": 1, "category_id": 4, "bbox": [1, 1, 2, 2]},  # unknown category
             {"id": 10, "image_id": 1, "category_id": 3, "bbox": [1, 1, "x", 2]},  # malformed bbox
             {"id": 11, "image_id": 2, "category_id": 3, "bbox": [1, 1, 2, 2]},  # image not evaluated
         ]}
    gt = ground_truth_from_coco(d, [1])
    assert [im["id"] for im in gt["images"]] == [1]
    assert [c["id"] for c in gt["categories"]] == [3, 8]
    first, second = gt["annotations"]
    assert first == {"id": 7, "image_id": 1, "category_id": 3, "bbox": [0.0, 0.0, 4.0, 5.0], "area": 11.5,
                     "iscrowd": 1}
    assert second["id"] == 12 and second["area"] == 4.0 and second["iscrowd"] == 0
