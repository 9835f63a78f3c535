"""Faults: non-finite losses, unwritable run folders, interrupted checkpoint writes, kills at several points."""

import csv
import signal
import subprocess
import sys
import time

import pytest
import torch

from mirrordet.cli import main
from mirrordet.engine import trainer as trainer_mod
from mirrordet.engine.checkpoint import load_checkpoint, save_checkpoint
from mirrordet.engine.trainer import NonFiniteLossError, Trainer

TINY = {"model": "yolov8n.yaml", "imgsz": 64, "batch": 8, "workers": 0, "warmup_epochs": 0, "close_mosaic": 1,
        "plots": False, "verbose": False}


def test_nonfinite_losses_skip_then_stop_with_usable_last_pt(tiny_shapes_yaml, tmp_path, monkeypatch):
    real = trainer_mod.criterion
    calls = {"n": 0}

    def poisoned(model, cfg, world_size=1):
        loss_fn = real(model, cfg, world_size)
        terms = loss_fn.terms

        def wrapped(preds, batch):
            out = terms(preds, batch)
            calls["n"] += 1
            return {k: v * float("nan") for k, v in out.items()} if calls["n"] > 2 else out  # epoch 1 = 2 batches

        loss_fn.terms = wrapped
        return loss_fn

    monkeypatch.setattr(trainer_mod, "criterion", poisoned)
    trainer = Trainer({**TINY, "data": str(tiny_shapes_yaml), "epochs": 3, "max_bad_steps": 3,
                       "project": str(tmp_path), "name": "nan"})
    with pytest.raises(NonFiniteLossError, match="3 non-finite losses in a row"):
        trainer.train()
    ckpt = load_checkpoint(tmp_path / "nan" / "weights" / "last.pt")
    # 2 batches per epoch: batches 3, 4 (epoch 2) and 5 (epoch 3) are non-finite; epoch 2 ended with
    # every step skipped, so last.pt is epoch 2 with epoch-1 weights, all finite
    assert ckpt["epoch"] == 2 and calls["n"] == 5
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_unwritable_run_folder_is_a_clear_error(tiny_shapes_yaml, tmp_path, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    assert main(["train", f"data={tiny_shapes_yaml}", "epochs=1", f"project={blocker / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert "cannot create the run folder" in err and "Traceback" not in err


def test_failed_checkpoint_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model_yaml": "x", "model": {"w": torch.ones(2)}, "epoch": 1})

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mirrordet.utils.files.os.replace", full_disk)
    with pytest.raises(OSError):
        save_checkpoint(path, {"model_yaml": "x", "model": {"w": torch.zeros(2)}, "epoch": 2})
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.7, 1.6])
def test_sigkill_at_several_points_then_resume(tiny_shapes_yaml, tmp_path, delay):
    run = tmp_path / "k"
    args = [f"{k}={v}" for k, v in TINY.items() if k != "batch"] + ["batch=4", "epochs=3"]
    cmd = [sys.executable, "-m", "mirrordet", "train", f"data={tiny_shapes_yaml}", *args, f"project={tmp_path}", "name=k"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "results.csv").exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.02)
    time.sleep(delay)  # before the first checkpoint, around a checkpoint write, or mid-epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not (run / "weights" / "last.pt").exists():  # killed before the first checkpoint: start again
        assert main(["train", f"data={tiny_shapes_yaml}", *args, f"project={tmp_path}", "name=k", "exist_ok=True"]) == 0
    else:
        load_checkpoint(run / "weights" / "last.pt")  # never a half-written file
        assert main(["train", "resume=True", f"model={run / 'weights/last.pt'}"]) == 0
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
