"""COCO-exact evaluation of a COCO JSON split: the validator scores against the file's own records
(crowd regions as iscrowd=1, areas from the segmentation), and its 12 numbers equal pycocotools run
on the original file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from mirrordet.data.dataset import build_detection_dataset
from mirrordet.data.dataset_yaml import load_dataset_yaml
from mirrordet.data.loader import build_dataloader
from mirrordet.engine.validator import DetectionValidator, ground_truth_of
from mirrordet.metrics.coco_eval import coco_ground_truth, evaluate_coco
from mirrordet.nn.graph import ModelGraph
from mirrordet.ops.detections import Detections

SIZE = 128  # square images validated at imgsz=SIZE: network-input pixels are original pixels


def _coco_split(root: Path) -> Path:
    """4 images; boxes of every COCO area range; crowd regions; areas taken from 'segmentations'."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir()
    images, anns = [], []
    for i in range(4):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.full((SIZE, SIZE, 3), 60 + 20 * i, np.uint8))
        images.append({"id": 10 + i, "file_name": f"{i}.png", "width": SIZE, "height": SIZE})
        for k, side in enumerate((12, 40, 110)):  # small, medium, large
            x, y = float(rng.integers(0, SIZE - side)), float(rng.integers(0, SIZE - side))
            anns.append({"id": 100 + len(anns), "image_id": 10 + i, "category_id": (5, 9)[k % 2],
                         "bbox": [x, y, float(side), float(side)], "area": 0.7 * side * side,  # a polygon's area
                         "iscrowd": 0})
        anns.append({"id": 100 + len(anns), "image_id": 10 + i, "category_id": 5, "iscrowd": 1,
                     "bbox": [0.0, 0.0, 30.0, 30.0], "area": 500.0})  # a crowd region
    d = {"images": images, "annotations": anns,
         "categories": [{"id": 9, "name": "nine"}, {"id": 5, "name": "five"}]}  # unsorted on purpose
    path = root / "instances.json"
    path.write_text(json.dumps(d))
    (root / "d.yaml").write_text(yaml.safe_dump({"path": str(root), "names": ["five", "nine"],
                                                 "train": {"images": "images", "annotations": "instances.json"},
                                                 "val": {"images": "images", "annotations": "instances.json"}}))
    return path


def _detections(d: dict, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Per image id: [n, 6] rows near the boxes (crowd regions included), plus some misses."""
    out: dict[int, list] = {}
    classes = {5: 0, 9: 1}
    for a in d["annotations"]:
        x, y, w, h = a["bbox"]
        jit = rng.normal(0, 2.0, 4)
        out.setdefault(a["image_id"], []).append(
            [x + jit[0], y + jit[1], x + w + jit[2], y + h + jit[3], rng.uniform(0.3, 0.99), classes[a["category_id"]]])
        if rng.random() < 0.5:  # a false positive
            out[a["image_id"]].append([5.0, 90.0, 25.0, 120.0, rng.uniform(0.01, 0.6), float(rng.integers(0, 2))])
    return {k: np.asarray(sorted(v, key=lambda r: -r[4]), np.float32) for k, v in out.items()}


def _pycocotools_on_file(path: Path, dets: list[dict]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(path))
    ev = COCOeval(gt, gt.loadRes([dict(x) for x in dets]), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    return np.asarray(ev.stats)


def test_validator_equals_pycocotools_on_the_original_file(tmp_path, monkeypatch):
    ann = _coco_split(tmp_path)
    d = json.loads(ann.read_text())
    data = load_dataset_yaml(tmp_path / "d.yaml")
    ds = build_detection_dataset(data, "val", imgsz=SIZE, augment=False, hyp={})
    order = [ds.image_id(i) for i in range(len(ds))]
    rows = _detections(d, np.random.default_rng(1))
    served = iter(order)

    def fake_postprocess(preds, nms):  # detections in network-input (= original) pixels
        return [Detections.from_rows(torch.from_numpy(rows[next(served)])) for _ in range(preds.shape[0])]

    net = ModelGraph((Path(__file__).parent / "assets" / "yolo-tiny.yaml").read_text().replace("nc: 4", "nc: 2"))
    monkeypatch.setattr(net.head, "postprocess", fake_postprocess)
    loader = build_dataloader(ds, 2, 0, shuffle=False, seed=0)
    validator = DetectionValidator(ds, loader, save_dir=tmp_path / "val")
    metrics = validator(net, torch.device("cpu"), verbose=False, plots=False)
    written = json.loads((tmp_path / "val" / "predictions.json").read_text())
    stats = np.asarray(json.loads((tmp_path / "val" / "metrics.json").read_text())["coco_stats"])
    official = _pycocotools_on_file(ann, written)
    np.testing.assert_allclose(stats, official, atol=1e-6)
    assert metrics["metrics/mAP50-95"] == pytest.approx(official[0], abs=1e-6)
    gt = validator.gt
    assert sum(a["iscrowd"] for a in gt["annotations"]) == 4  # crowd regions reach COCOeval
    assert {a["area"] for a in gt["annotations"] if not a["iscrowd"]} == {0.7 * s * s for s in (12, 40, 110)}
    assert [c["id"] for c in gt["categories"]] == [5, 9] == ds.category_ids  # class order


def test_ground_truth_built_from_labels_would_differ(tmp_path):
    """The intended change: scored against boxes rebuilt from labels (no crowd, w*h areas), the
    same detections get other numbers than the official protocol gives."""
    ann = _coco_split(tmp_path)
    d = json.loads(ann.read_text())
    ds = build_detection_dataset(load_dataset_yaml(tmp_path / "d.yaml"), "val", imgsz=SIZE, augment=False, hyp={})
    rows = _detections(d, np.random.default_rng(1))
    dets = [{"image_id": i, "category_id": ds.category_ids[int(r[5])], "bbox": [float(r[0]), float(r[1]),
             float(r[2] - r[0]), float(r[3] - r[1])], "score": float(r[4])} for i, rs in rows.items() for r in rs]
    exact = evaluate_coco(ground_truth_of(ds), dets).stats
    np.testing.assert_allclose(exact, _pycocotools_on_file(ann, dets), atol=1e-6)
    ids = [ds.image_id(i) for i in range(len(ds))]
    rebuilt = coco_ground_truth([(ids[i], *ds.records[i]["shape"]) for i in range(len(ds))],
                                [ds.ground_truth(i) for i in range(len(ds))], ds.category_ids, ds.names)
    assert not np.allclose(evaluate_coco(rebuilt, dets).stats, exact, atol=1e-3)
