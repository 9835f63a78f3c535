"""The shared trainer/validator on classification: CIFAR pickle batches and an ImageFolder."""

import csv
import json

import cv2
import numpy as np
import torch

from mirrordet.cli import main

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("cls_data_helpers", Path(__file__).parents[1] / "data" / "test_classification_data.py")
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
write_cifar_batch = _helpers.write_cifar_batch

TINY = ["model=yolov8n-cls.yaml", "imgsz=32", "workers=0", "warmup_epochs=0", "plots=True"]


def test_train_and_val_from_cifar_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    write_cifar_batch(root / "data_batch_1", 32, seed=0)
    write_cifar_batch(root / "data_batch_2", 16, seed=1)
    write_cifar_batch(root / "test_batch", 16, seed=2)
    (tmp_path / "c10.yaml").write_text(
        f"task: classify\npath: {root}\ntrain: [data_batch_1, data_batch_2]\nval: test_batch\n"
        "names: [airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck]\n")
    assert main(["train", f"data={tmp_path / 'c10.yaml'}", *TINY, "batch=8", "epochs=2", f"project={tmp_path}", "name=c"]) == 0
    run = tmp_path / "c"
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and "metrics/accuracy_top1" in rows[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["metrics/accuracy_top1"] <= metrics["metrics/accuracy_top5"] <= 1
    assert (run / "confusion_matrix.png").stat().st_size > 0
    ckpt = torch.load(run / "weights" / "best.pt", weights_only=True)
    assert ckpt["names"][9] == "truck"
    assert main(["val", f"model={run / 'weights/best.pt'}", f"data={tmp_path / 'c10.yaml'}", "imgsz=32",
                 "workers=0", f"project={tmp_path}", "name=v"]) == 0
    again = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert abs(again["metrics/accuracy_top1"] - metrics["metrics/accuracy_top1"]) < 1e-9


def test_train_from_image_folder_learns(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("val", 8)):
        for c, name in enumerate(("dark", "bright")):
            d = tmp_path / split / name
            d.mkdir(parents=True)
            for i in range(n):
                img = np.clip(rng.normal(60 + 130 * c, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(d / f"{i}.png"), img)
    (tmp_path / "if.yaml").write_text(f"task: classify\npath: {tmp_path}\ntrain: train\nval: val\nnames: [dark, bright]\n")
    assert main(["train", f"data={tmp_path / 'if.yaml'}", *TINY, "epochs=10", "batch=4", "nbs=4", "optimizer=AdamW", "lr0=0.003",
                 "hsv_h=0.0", "hsv_s=0.0", "hsv_v=0.0",
                 f"project={tmp_path}", "name=f"]) == 0
    metrics = json.loads((tmp_path / "f" / "metrics.json").read_text())
    # brightness separates the classes (so colour jitter is off: it would blur the only signal);
    # 120 optimizer steps (nbs=batch) also settle BatchNorm statistics
    assert metrics["metrics/accuracy_top1"] >= 0.9


def test_classifier_on_detection_data_is_refused(tmp_path, capsys):
    (tmp_path / "d.yaml").write_text(f"path: {tmp_path}\ntrain: .\nval: .\nnames: [a]\n")
    assert main(["train", f"data={tmp_path / 'd.yaml'}", *TINY, "epochs=1"]) == 2
    assert "is a detect dataset but yolov8-cls.yaml is a classify model" in capsys.readouterr().err
