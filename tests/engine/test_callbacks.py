"""Training callbacks (documented events, called in order) and the TensorBoard logger built on them."""

from __future__ import annotations

import pytest

from mirrordet import Model
from mirrordet.engine.callbacks import EVENTS, Callbacks
from mirrordet.utils.errors import ConfigError

TINY = {"imgsz": 64, "batch": 8, "workers": 0, "epochs": 2, "verbose": False}


def test_every_event_is_called_in_order_with_its_details(tiny_shapes_yaml, tmp_path):
    seen: list[tuple[str, dict]] = []
    m = Model("yolov8n.yaml")
    for event in EVENTS:
        m.add_callback(event, lambda trainer, _e=event, **d: seen.append((_e, d)))
    m.train(data=str(tiny_shapes_yaml), project=str(tmp_path), name="cb", plots=False, **TINY)
    assert m.run_dir == tmp_path / "cb" and (m.run_dir / "weights" / "best.pt").is_file()  # the run just trained
    names = [e for e, _ in seen]
    assert names[0] == "on_train_start" and names[-1] == "on_train_end"
    assert names.count("on_epoch_start") == names.count("on_epoch_end") == names.count("on_val_end") == 2
    assert names.count("on_batch_end") == 2 * 2  # 16 images, batch 8
    ends = [d for e, d in seen if e == "on_epoch_end"]
    assert [d["epoch"] for d in ends] == [0, 1] and set(ends[0]["losses"]) == {"box_loss", "cls_loss", "dfl_loss"}
    assert "metrics/mAP50-95" in ends[0]["metrics"] and ends[0]["lr"] > 0
    saved = [d["path"].name for e, d in seen if e == "on_checkpoint_saved"]
    assert saved.count("last.pt") == 2 and "best.pt" in saved
    assert "metrics/mAP50-95" in seen[-1][1]["metrics"]
    for i, (e, _) in enumerate(seen):  # a checkpoint is announced only after its epoch's validation
        if e == "on_checkpoint_saved":
            assert "on_val_end" in names[:i]


def test_unknown_event_and_non_callable_are_refused():
    cb = Callbacks()
    with pytest.raises(ConfigError, match="did you mean 'on_epoch_end'"):
        cb.add("on_epoch_ends", print)
    with pytest.raises(ConfigError, match="must be callable"):
        cb.add("on_train_end", 3)


def test_tensorboard_events_read_back(tiny_shapes_yaml, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mirrordet.cli import main

    assert main(["train", f"data={tiny_shapes_yaml}", "model=yolov8n.yaml", "imgsz=64", "batch=8", "workers=0",
                 "epochs=2", "tensorboard=True", f"project={tmp_path}", "name=tb"]) == 0
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = acc.Tags()
    assert {"train/box_loss", "train/cls_loss", "metrics/mAP50-95", "lr/pg0"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("train/box_loss")] == [1, 2]
    assert "val/val_batch0" in tags["images"]
