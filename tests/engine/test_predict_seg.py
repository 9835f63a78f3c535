"""Predict with a segmentation model: masks at the original image size inside their boxes, YOLO-seg label
lines, COCO RLE in predictions.json, masks drawn on the annotated image."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mirrordet.model import Model


@pytest.fixture(scope="module")
def seg_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("segpred")
    img = np.full((90, 130, 3), 120, np.uint8)  # not square: the letterbox must be undone
    cv2.circle(img, (40, 45), 25, (0, 0, 255), -1)
    cv2.imwrite(str(tmp / "a.png"), img)
    model = Model("yolov8n-seg.yaml", nc=3)
    results = model.predict(str(tmp / "a.png"), imgsz=64, conf=0.0, max_det=6, save=True, save_txt=True,
                            save_json=True, project=str(tmp), name="p")
    return tmp / "p", results


def test_masks_are_at_the_original_size_and_inside_their_boxes(seg_results):
    _, (r,) = seg_results
    assert r.masks is not None and len(r.masks) == len(r.boxes) == 6
    assert r.masks.data.shape == (6, 90, 130) and r.masks.data.dtype.is_floating_point is False
    for m, (x1, y1, x2, y2) in zip(r.masks.data.numpy(), r.boxes.xyxy.tolist()):
        ys, xs = np.nonzero(m)
        if len(xs):  # a pixel belongs to a mask only inside its box (one pixel of resampling slack)
            assert xs.min() >= x1 - 1 and xs.max() <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() <= y2 + 1
    assert len(r.masks.xy) == 6 and all(p.ndim == 2 and p.shape[1] == 2 for p in r.masks.xy)
    assert all((p >= 0).all() and (p <= 1).all() for p in r.masks.xyn)


def test_outputs_carry_the_masks(seg_results):
    out, (r,) = seg_results
    lines = (out / "labels" / "a.txt").read_text().splitlines()
    assert len(lines) == sum(len(p) >= 3 for p in r.masks.xy)
    assert all(len(ln.split()) >= 7 and len(ln.split()) % 2 == 1 for ln in lines)  # class + >= 3 points
    records = json.loads((out / "predictions.json").read_text())
    from pycocotools import mask as mask_utils

    decoded = [mask_utils.decode({"size": d["segmentation"]["size"], "counts": d["segmentation"]["counts"].encode()})
               for d in records]
    assert all(np.array_equal(dm.astype(bool), m) for dm, m in zip(decoded, r.masks.data.numpy()))
    drawn = cv2.imread(str(out / "a.png"))
    assert drawn.shape == (90, 130, 3)
    assert "segments" in r.summary()[0]
