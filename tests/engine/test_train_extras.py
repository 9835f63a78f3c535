"""Training extras users reach for: mixup and multi-scale batches, end to end."""

from __future__ import annotations

import csv

from mirrordet.cli import main


def test_mixup_and_multi_scale_train(tiny_shapes_yaml, tmp_path, capfd):
    assert main(["train", f"data={tiny_shapes_yaml}", "model=yolov8n.yaml", "imgsz=64", "batch=8", "workers=0",
                 "epochs=2", "mixup=0.5", "multi_scale=True", f"project={tmp_path}", "name=x", "plots=False"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "x" / "results.csv")))
    assert len(rows) == 2 and all(float(r["train/box_loss"]) > 0 for r in rows)
    assert (tmp_path / "x" / "weights" / "best.pt").is_file()


def test_bad_mixup_is_one_line(one_line_error):
    one_line_error(["train", "mixup=1.5"], contains="'mixup=1.5' must be within [0, 1]")


def test_end_to_end_heads_train_with_the_progressive_balance(tiny_shapes_yaml, tmp_path, monkeypatch):
    from mirrordet.losses.end2end import EndToEndDetectionLoss

    seen = []
    original = EndToEndDetectionLoss.set_progress

    def spy(self, epoch, epochs):
        original(self, epoch, epochs)
        seen.append((epoch, epochs, round(self.o2m, 6)))
    monkeypatch.setattr(EndToEndDetectionLoss, "set_progress", spy)
    assert main(["train", f"data={tiny_shapes_yaml}", "model=yolov10n.yaml", "imgsz=64", "batch=8", "workers=0",
                 "epochs=3", "val=False", f"project={tmp_path}", "name=e2e", "plots=False"]) == 0
    assert seen == [(0, 3, 0.8), (1, 3, 0.45), (2, 3, 0.1)]
    rows = list(csv.DictReader(open(tmp_path / "e2e" / "results.csv")))
    assert len(rows) == 3 and all(float(r["train/o2o_cls_loss"]) > 0 for r in rows)
