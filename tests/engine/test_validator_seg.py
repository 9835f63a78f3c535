"""Mask AP of the segment task equals pycocotools run on the written predictions.json and ground truth: on a
COCO JSON split with polygons, RLE and a crowd region (scored against the original file), and on YOLO-seg
data (scored against the written ground_truth.json)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from mirrordet.data.dataset import build_detection_dataset
from mirrordet.data.dataset_seg import SegmentationDataset
from mirrordet.data.dataset_yaml import load_dataset_yaml
from mirrordet.data.loader import build_dataloader
from mirrordet.engine.validator_seg import SegmentationValidator
from mirrordet.nn.graph import build_model
from mirrordet.ops.detections import Detections

SIZE = 96  # square images validated at imgsz=SIZE: network-input pixels are original pixels


def _polygon(rng: np.random.Generator, side: float) -> list[float]:
    """A random convex-ish polygon (pixels) inside the image."""
    cx, cy = rng.uniform(side / 2 + 1, SIZE - side / 2 - 1, 2)
    t = np.sort(rng.uniform(0, 2 * np.pi, 7))
    r = side / 2 * rng.uniform(0.6, 1.0, 7)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1).reshape(-1).tolist()


def _coco_seg_split(root: Path) -> Path:
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    (root / "images").mkdir()
    images, anns = [], []
    for i in range(4):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.full((SIZE, SIZE, 3), 80, np.uint8))
        images.append({"id": 7 + i, "file_name": f"{i}.png", "width": SIZE, "height": SIZE})
        for k, side in enumerate((14, 40, 70)):
            poly = _polygon(rng, side)
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], SIZE, SIZE))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            seg: object = [poly]
            if k == 1:  # an uncompressed RLE annotation
                m = mask_utils.decode(rle)
                flat = m.flatten(order="F")
                change = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]])) if flat.size else []
                counts = np.diff(np.r_[0, change]).tolist()
                seg = {"size": [SIZE, SIZE], "counts": counts}
            anns.append({"id": 50 + len(anns), "image_id": 7 + i, "category_id": (3, 8)[k % 2], "bbox": [x, y, w, h],
                         "area": float(mask_utils.area(rle)), "iscrowd": 0, "segmentation": seg})
        crowd = mask_utils.encode(np.asfortranarray(np.pad(np.ones((20, 20), np.uint8), ((0, SIZE - 20), (0, SIZE - 20)))))
        anns.append({"id": 50 + len(anns), "image_id": 7 + i, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 20, 20],
                     "area": 400.0, "segmentation": {"size": [SIZE, SIZE], "counts": crowd["counts"].decode()}})
    d = {"images": images, "annotations": anns, "categories": [{"id": 8, "name": "eight"}, {"id": 3, "name": "three"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(d))
    (root / "d.yaml").write_text(yaml.safe_dump({"path": str(root), "names": ["three", "eight"], "task": "segment",
                                                 "train": {"images": "images", "annotations": "instances.json"},
                                                 "val": {"images": "images", "annotations": "instances.json"}}))
    return path


def _fake_detections(gt: dict, ds, rng: np.random.Generator, mask_shift: int | None = None) -> dict[int, Detections]:
    """Per image id: detections near the ground truth (masks dilated or eroded, boxes jittered), plus misses.
    ``mask_shift``: instead, exact boxes and no misses, each mask the true one rolled by that many pixels."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = json.loads(json.dumps(gt))
    coco.createIndex()
    cls_of = {cid: k for k, cid in enumerate(ds.category_ids)}
    out = {}
    for image_id in coco.getImgIds():
        boxes, scores, labels, masks = [], [], [], []
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False)):
            m = coco.annToMask(a)
            if mask_shift is not None:
                x, y, w, h = a["bbox"]
                boxes.append([x, y, x + w, y + h]), scores.append(rng.uniform(0.3, 0.99))
                labels.append(cls_of[a["category_id"]]), masks.append(np.roll(m, mask_shift, axis=(0, 1)).astype(bool))
                continue
            op = (cv2.dilate, cv2.erode)[int(rng.integers(0, 2))]
            m = op(m, np.ones((3, 3), np.uint8), iterations=int(rng.integers(0, 3)))
            x, y, w, h = a["bbox"]
            boxes.append([x - 1, y - 1, x + w + 1, y + h + 1])
            scores.append(rng.uniform(0.3, 0.99))
            labels.append(cls_of[a["category_id"]])
            masks.append(m.astype(bool))
            if rng.random() < 0.5:  # a false positive
                fp = np.zeros((SIZE, SIZE), bool)
                fp[60:80, 5:30] = True
                boxes.append([5, 60, 30, 80]), scores.append(rng.uniform(0.01, 0.5)), labels.append(1), masks.append(fp)
        order = np.argsort(-np.asarray(scores))
        out[image_id] = Detections(torch.tensor(boxes, dtype=torch.float32)[order], torch.tensor(scores)[order].float(),
                                   torch.tensor(labels)[order], torch.from_numpy(np.stack(masks))[order])
    return out


def _pycocotools(gt_path: Path, dets: list[dict], iou_type: str) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(gt_path))
    res = gt.loadRes([{k: v for k, v in x.items() if iou_type == "bbox" or k != "bbox"} for x in dets])
    ev = COCOeval(gt, res, iou_type)
    ev.evaluate(), ev.accumulate(), ev.summarize()
    return np.asarray(ev.stats)


def _validate(ds, tmp_path: Path, monkeypatch, mask_shift: int | None = None) -> tuple[dict, SegmentationValidator]:
    net = build_model("yolov8n-seg.yaml", nc=len(ds.names))
    validator = SegmentationValidator(ds, build_dataloader(ds, 2, 0, shuffle=False, seed=0), save_dir=tmp_path / "val")
    found = _fake_detections(validator.gt, ds, np.random.default_rng(1), mask_shift)
    served = iter([ds.image_id(i) for i in range(len(ds))])
    # the validator reads a head's detections image by image (postprocess_each)
    monkeypatch.setattr(net.head, "postprocess_each", lambda preds, nms: (found[next(served)] for _ in range(len(preds[0]))))
    return validator(net, torch.device("cpu"), verbose=False, plots=False), validator


def test_mask_ap_equals_pycocotools_on_the_original_coco_file(tmp_path, monkeypatch):
    ann = _coco_seg_split(tmp_path)
    ds = build_detection_dataset(load_dataset_yaml(tmp_path / "d.yaml"), "val", SIZE, augment=False, kind=SegmentationDataset)
    assert all(len(r["segments"]) == 3 for r in ds.records)  # polygons and RLE read
    metrics, validator = _validate(ds, tmp_path, monkeypatch)
    written = json.loads((tmp_path / "val" / "predictions.json").read_text())
    saved = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert all("segmentation" in d and "bbox" in d for d in written)
    segm = _pycocotools(ann, written, "segm")
    np.testing.assert_allclose(saved["coco_stats_segm"], segm, atol=1e-4)
    np.testing.assert_allclose(saved["coco_stats"], _pycocotools(ann, written, "bbox"), atol=1e-4)
    assert metrics["metrics/mAP50-95(M)"] == pytest.approx(segm[0], abs=1e-4)
    assert 0.3 < segm[0] < 0.99  # a real score: neither perfect nor zero
    assert set(saved["per_class_segm"]) == {"three", "eight"}


def test_mask_ap_of_yolo_seg_data_equals_pycocotools_on_the_written_ground_truth(tmp_path, monkeypatch):
    from mirrordet.data.synthetic import generate_shapes_seg

    root = generate_shapes_seg(tmp_path / "s", n_train=1, n_val=6, imgsz=SIZE)
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                                     "task": "segment", "names": ["a", "b", "c", "d"]}))
    ds = build_detection_dataset(load_dataset_yaml(tmp_path / "d.yaml"), "val", SIZE, augment=False, kind=SegmentationDataset)
    metrics, validator = _validate(ds, tmp_path, monkeypatch)
    gt_file = tmp_path / "val" / "ground_truth.json"
    written = json.loads((tmp_path / "val" / "predictions.json").read_text())
    segm = _pycocotools(gt_file, written, "segm")
    assert metrics["metrics/mAP50-95(M)"] == pytest.approx(segm[0], abs=1e-4)
    assert metrics["metrics/mAP50(M)"] == pytest.approx(segm[1], abs=1e-4)
    assert 0.3 < segm[0] < 0.99
    gt = json.loads(gt_file.read_text())
    assert all(a["segmentation"] and a["area"] > 0 for a in gt["annotations"])


@pytest.mark.parametrize("shift, expected", [(0, 1.0), (40, 0.0)])
def test_mask_precision_and_recall_match_masks_not_boxes(tmp_path, monkeypatch, shift, expected):
    """Exact boxes every time; the masks are exact (mask P = R = 1) or displaced off their objects (mask P = R = 0)
    while the box P and R stay 1."""
    _coco_seg_split(tmp_path)
    ds = build_detection_dataset(load_dataset_yaml(tmp_path / "d.yaml"), "val", SIZE, augment=False,
                                 kind=SegmentationDataset)
    metrics, _ = _validate(ds, tmp_path, monkeypatch, mask_shift=shift)
    assert metrics["metrics/precision"] == pytest.approx(1.0) and metrics["metrics/recall"] == pytest.approx(1.0)
    assert metrics["metrics/precision(M)"] == pytest.approx(expected)
    assert metrics["metrics/recall(M)"] == pytest.approx(expected)
