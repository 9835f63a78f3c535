"""Resume is exact at the default recipe: workers=2, batch 16, nbs 64 (gradient accumulation), warmup.

A run killed mid-epoch (SIGKILL, or SIGINT as Ctrl-C) and resumed from its last.pt must end with
the same weights, bit for bit, and the same results.csv (all but the time column) as a run that
was never interrupted. 160 train images at batch 16 give 10 batches an epoch, so the third epoch
starts at iteration 20, where warmup has raised the accumulation to 2 steps: the case where a
restart that forgets the optimizer-step bookkeeping steps one batch early.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SETTINGS = ["model=yolov8n.yaml", "imgsz=64", "epochs=3", "workers=2", "plots=False", "verbose=False"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # every process uses the same thread count: same float order


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume_data")
    path = root / "shapes160.yaml"
    path.write_text("synthetic: shapes\npath: data\nsynthetic_args: {n_train: 160, n_val: 8, imgsz: 64, seed: 0}\n"
                    "train: images/train\nval: images/val\nnames: [circle, square, triangle, star]\n")
    return path


def _cmd(data_yaml: Path, project: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "mirrordet", "train", f"data={data_yaml}", *SETTINGS, f"project={project}",
            f"name={name}"]


def _rows(run: Path) -> list[dict]:
    with open(run / "results.csv") as f:
        return [{k: v for k, v in r.items() if k != "epoch_time"} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference(data_yaml, tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("ref")
    subprocess.run(_cmd(data_yaml, project, "ref"), env=ENV, check=True, capture_output=True, timeout=600)
    return project / "ref"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_and_resumed_run_equals_uninterrupted(data_yaml, reference, tmp_path, sig):
    run = tmp_path / "cut"
    proc = subprocess.Popen(_cmd(data_yaml, tmp_path, "cut"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    deadline = time.time() + 600
    while time.time() < deadline and not ((run / "results.csv").exists() and len(_rows(run)) >= 2):
        assert proc.poll() is None, f"training exited early: {proc.stderr.read()[-2000:]}"
        time.sleep(0.02)
    time.sleep(0.8)  # past the epoch-2 checkpoint, inside epoch 3
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), err[-2000:]
    ckpt = torch.load(run / "weights" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2, "the kill did not land inside epoch 3"
    if sig == signal.SIGINT:  # Ctrl-C says what is kept and how to go on
        assert "last.pt" in err and "resume=True" in err, err[-2000:]
    subprocess.run([sys.executable, "-m", "mirrordet", "train", "resume=True", f"model={run / 'weights/last.pt'}"],
                   env=ENV, check=True, capture_output=True, timeout=600)
    assert _rows(run) == _rows(reference)
    got = torch.load(run / "weights" / "last.pt", weights_only=True)
    ref = torch.load(reference / "weights" / "last.pt", weights_only=True)
    for key in ("model", "train_weights"):
        differ = [n for n, t in ref[key].items() if not torch.equal(got[key][n], t)]
        assert not differ, f"{len(differ)} of {len(ref[key])} {key} tensors differ, e.g. {differ[:3]}"
