"""2-process DDP training on CPU (gloo) through torch.distributed.run, as `torchrun` would start it."""

import csv
import subprocess
import sys

import pytest

TINY = ["model=yolov8n.yaml", "imgsz=64", "workers=0", "warmup_epochs=0", "close_mosaic=1", "device=cpu", "plots=False"]


def torchrun(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mirrordet", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_two_process_gloo_training(tiny_shapes_yaml, tmp_path):
    out = torchrun(["train", f"data={tiny_shapes_yaml}", *TINY, "batch=8", "epochs=1", f"project={tmp_path}", "name=ddp"])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "DDP x2 (4/rank)" in log
    assert "weights identical across 2 ranks" in log  # checked by the trainer with an all_gather
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # only rank 0 made a run folder
    rows = list(csv.DictReader(open(tmp_path / "ddp" / "results.csv")))
    assert [r["epoch"] for r in rows] == ["1"]
    # rank 0 validates and prints, once: best.pt holds the one epoch's weights, validated with the final options
    assert log.count("holds the weights of the last epoch") == 1 and log.count("Results saved to") == 1


@pytest.mark.slow
def test_error_in_every_rank_shuts_down_cleanly(tiny_shapes_yaml, tmp_path):
    out = torchrun(["train", f"data={tiny_shapes_yaml}", *TINY, "batch=7", "epochs=1", f"project={tmp_path}"],
                   timeout=120)
    assert out.returncode != 0
    assert "batch=7 must be a multiple of the 2 DDP processes" in out.stderr
