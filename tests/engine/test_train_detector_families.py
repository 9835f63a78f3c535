"""Every detector family (RetinaNet, FCOS, Faster R-CNN) trains one epoch, validates, and prints `info`."""

import csv
import json

import pytest
import torch

from mirrordet.cli import main

TINY = ["imgsz=64", "batch=8", "workers=0", "warmup_epochs=0", "close_mosaic=1", "epochs=1", "plots=False"]
FAST = ["retinanet-cspmirror.yaml", "fcos-regnetx400mf.yaml", "faster-rcnn-cspmirror.yaml",
        "faster-rcnn-csp-eca.yaml"]  # scale n: the first scale of each file
SLOW = ["retinanet-efficientnet-b0.yaml", "retinanet-efficientnet-b0.yaml scale=l", "retinanet-r50-fpn.yaml", "fcos-r50-fpn.yaml", "faster-rcnn-r50-fpn.yaml"]
LOSS_NAMES = {"retinanet": ["box_loss", "cls_loss"], "fcos": ["box_loss", "cls_loss", "ctr_loss"],
              "faster": ["rpn_obj", "rpn_box", "roi_cls", "roi_box"]}


def train_and_check(model: str, data, project) -> None:
    """``model``: a model file, optionally with settings after it (``"x.yaml scale=l"``)."""
    torch.set_num_threads(1)
    model, *extra = model.split()
    assert main(["info", f"model={model}", "imgsz=64", *extra]) == 0
    assert main(["train", f"model={model}", f"data={data}", *TINY, *extra, f"project={project}", "name=exp"]) == 0
    run = project / "exp"
    with open(run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    family = model.split("-")[0]
    assert [k[6:] for k in rows[0] if k.startswith("train/")] == LOSS_NAMES[family]
    assert all(float(rows[0][f"train/{n}"]) >= 0 for n in LOSS_NAMES[family])
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics/mAP50"] <= 1.0
    preds = json.loads((run / "predictions.json").read_text())
    assert all(len(p["bbox"]) == 4 and 0 <= p["score"] <= 1 for p in preds)
    assert main(["val", f"model={run / 'weights' / 'best.pt'}", f"data={data}", "imgsz=64", "batch=8", "workers=0",
                 f"project={project}", "name=val", "plots=False"]) == 0


@pytest.mark.parametrize("model", FAST)
def test_family_trains_and_validates(model, tiny_shapes_yaml, tmp_path):
    train_and_check(model, tiny_shapes_yaml, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model", SLOW)
def test_reference_family_trains_and_validates(model, tiny_shapes_yaml, tmp_path):
    train_and_check(model, tiny_shapes_yaml, tmp_path)
