"""The per-image COCO bootstrap pools pycocotools' per-image matches exactly as COCOeval.accumulate does."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from mirrordet.metrics.coco_bootstrap import ImageEvals, paired_image_bootstrap


def _data(seed: int, n_img: int = 12, noise: float = 6.0):
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n_img + 1):
        images.append({"id": i, "width": 200, "height": 200})
        for _ in range(int(rng.integers(0, 5))):
            x, y, w, h = rng.uniform(0, 120, 2).tolist() + rng.uniform(8, 70, 2).tolist()
            cat = int(rng.integers(1, 4))  # category 4 never has ground truth
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": int(rng.random() < 0.1)})
            if rng.random() < 0.8:
                j = rng.normal(0, noise, 4)
                dets.append({"image_id": i, "category_id": cat if rng.random() < 0.85 else 4,
                             "bbox": [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])],
                             "score": float(rng.uniform(0.05, 1))})
        for _ in range(int(rng.integers(0, 3))):  # background false positives
            dets.append({"image_id": i, "category_id": int(rng.integers(1, 5)),
                         "bbox": rng.uniform(0, 150, 2).tolist() + rng.uniform(5, 40, 2).tolist(),
                         "score": float(rng.uniform(0, 0.6))})
    gt = {"images": images, "annotations": anns, "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3, 4)]}
    return gt, dets


def _pycocotools(gt, dets, img_ids=None):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_image_once_equals_cocoeval(seed):
    gt, dets = _data(seed)
    ap, ap50 = ImageEvals(gt, dets).ap()
    stats = _pycocotools(gt, dets)
    assert ap == pytest.approx(stats[0], abs=1e-12) and ap50 == pytest.approx(stats[1], abs=1e-12)


def test_a_subset_of_images_equals_cocoeval_on_that_subset():
    gt, dets = _data(4)
    ev = ImageEvals(gt, dets)
    keep = [1, 2, 5, 8, 9, 11]
    counts = np.array([int(i in keep) for i in ev.image_ids])
    assert ev.ap(counts)[0] == pytest.approx(_pycocotools(gt, dets, keep)[0], abs=1e-12)


def test_paired_bootstrap_of_a_run_against_itself_is_zero_and_spreads_for_another():
    gt, dets = _data(5, n_img=20)
    a = ImageEvals(gt, dets)
    _, worse = _data(5, n_img=20, noise=20.0)  # the same boxes, matched far less precisely
    b = ImageEvals(gt, worse)
    assert np.all(paired_image_bootstrap([(a, a)], n=50) == 0)
    reps = paired_image_bootstrap([(b, a)], n=200, seed=1)
    assert reps.std() > 0 and reps.mean() < 0


def test_runs_on_different_images_are_refused():
    gt, dets = _data(6)
    small = dict(gt, images=gt["images"][:5], annotations=[a for a in gt["annotations"] if a["image_id"] <= 5])
    with pytest.raises(ValueError, match="different images"):
        paired_image_bootstrap([(ImageEvals(gt, dets), ImageEvals(small, [d for d in dets if d["image_id"] <= 5]))], n=2)
