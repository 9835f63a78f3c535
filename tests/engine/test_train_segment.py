"""The segment task end to end: train a YOLO-seg model on synthetic shapes-seg, validate and predict its
checkpoint; a detector trains on the same segmentation data (its polygons give the boxes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mirrordet.cli import main

TINY = ["imgsz=64", "batch=4", "workers=0", "warmup_epochs=0", "close_mosaic=1"]


@pytest.fixture(scope="module")
def seg_yaml(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_seg")
    path = root / "tiny-seg.yaml"
    path.write_text("synthetic: shapes-seg\npath: data\nsynthetic_args: {n_train: 8, n_val: 4, imgsz: 64, seed: 0}\n"
                    "train: images/train\nval: images/val\nnames: [circle, square, triangle, star]\n")
    return path


@pytest.fixture(scope="module")
def seg_run(seg_yaml, tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("segruns")
    assert main(["segment", "train", f"data={seg_yaml}", *TINY, "epochs=2", f"project={project}", "name=exp"]) == 0
    return project / "exp"


def test_training_logs_the_mask_loss_and_mask_ap(seg_run):
    with open(seg_run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for key in ("train/box_loss", "train/seg_loss", "train/cls_loss", "metrics/mAP50(M)", "metrics/mAP50-95(M)"):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    saved = json.loads((seg_run / "metrics.json").read_text())
    assert len(saved["coco_stats_segm"]) == 12 and "metrics/mAP50-95(M)" in saved
    ckpt = torch.load(seg_run / "weights" / "best.pt", map_location="cpu", weights_only=True)
    assert "Segment" in ckpt["model_yaml"]


def test_val_and_predict_the_checkpoint(seg_run, seg_yaml, tmp_path):
    assert main(["val", f"model={seg_run / 'weights' / 'best.pt'}", f"data={seg_yaml}", "imgsz=64",
                 f"project={tmp_path}", "name=v"]) == 0
    assert "metrics/mAP50(M)" in json.loads((tmp_path / "v" / "metrics.json").read_text())
    src = next((seg_yaml.parent / "data" / "images" / "val").glob("*.png"))
    assert main(["predict", f"model={seg_run / 'weights' / 'best.pt'}", f"source={src}", "conf=0.0", "max_det=3",
                 "save_txt=True", f"project={tmp_path}", "name=p"]) == 0
    assert len((tmp_path / "p" / "labels" / f"{src.stem}.txt").read_text().splitlines()) >= 1


def test_a_detector_trains_on_segmentation_data(seg_yaml, tmp_path):
    assert main(["train", "model=yolov8n.yaml", f"data={seg_yaml}", *TINY, "epochs=1", f"project={tmp_path}",
                 "name=d"]) == 0
    with open(tmp_path / "d" / "results.csv") as f:
        assert "train/seg_loss" not in next(csv.DictReader(f))


def test_mask_rcnn_trains_and_scores_masks(seg_yaml, tmp_path):
    assert main(["train", "model=mask-rcnn-csp-eca.yaml", f"data={seg_yaml}", *TINY, "epochs=1",
                 f"project={tmp_path}", "name=m"]) == 0
    with open(tmp_path / "m" / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert np.isfinite(float(row["train/roi_mask"])) and "metrics/mAP50-95(M)" in row


def test_compare_tabulates_mask_ap(seg_run, seg_yaml, tmp_path):
    assert main(["train", "model=yolo11n-seg.yaml", f"data={seg_yaml}", *TINY, "epochs=1", f"project={tmp_path}",
                 "name=y11"]) == 0
    assert main(["compare", f"runs={seg_run},{tmp_path / 'y11'}", "force=True", f"project={tmp_path}",
                 "name=c"]) == 0
    report = (tmp_path / "c" / "compare.md").read_text()
    assert "mask mAP50-95" in report and "yolo11n-seg" in report


def test_a_yaml_without_task_trains_a_segmentation_model(seg_yaml, tmp_path):
    """Ultralytics' coco8-seg.yaml carries no `task:`: with a -seg model, the polygons are read as outlines."""
    from mirrordet.data.dataset_yaml import load_dataset_yaml

    d = load_dataset_yaml(seg_yaml)
    plain = tmp_path / "plain-seg.yaml"
    plain.write_text(f"path: {d['path']}\ntrain: {d['train']}\nval: {d['val']}\nnames: [circle, square, triangle, star]\n")
    assert main(["train", "model=yolov8n-seg.yaml", f"data={plain}", *TINY, "epochs=1", f"project={tmp_path}",
                 "name=plain"]) == 0
    with open(tmp_path / "plain" / "results.csv") as f:
        assert "train/seg_loss" in next(csv.DictReader(f))
