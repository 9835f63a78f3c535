"""End to end: train -> checkpoints -> val, COCO-exact metrics, COCO-format data, resume after SIGKILL."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mirrordet.cli import main

TINY = ["model=yolov8n.yaml", "imgsz=64", "batch=8", "workers=0", "warmup_epochs=0", "close_mosaic=1"]


def run_cli(*argv: str) -> None:
    assert main(list(argv)) == 0


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained_run(tiny_shapes_yaml, tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("runs")
    run_cli("train", f"data={tiny_shapes_yaml}", *TINY, "epochs=2", f"project={project}", "name=exp")
    return project / "exp"


def test_train_writes_run_folder(trained_run):
    for name in ("args.yaml", "results.csv", "results.png", "labels.png", "PR_curve.png", "confusion_matrix.png",
                 "predictions.json", "metrics.json", "weights/last.pt", "weights/best.pt"):
        assert (trained_run / name).is_file() and (trained_run / name).stat().st_size > 0, name
    rows = read_csv(trained_run / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["train/box_loss"])) for r in rows)
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(trained_run / "weights" / name, map_location="cpu", weights_only=True)
        assert "model_yaml" in ckpt and ckpt["names"][0] == "circle"
    best = torch.load(trained_run / "weights" / "best.pt", weights_only=True)
    assert best["optimizer"] is None and best["train_weights"] is None


def test_run_name_increments(trained_run, tiny_shapes_yaml):
    from mirrordet.engine.run_dir import run_dir

    nxt = run_dir("detect", "train", str(trained_run.parent), "exp", exist_ok=False)
    assert nxt.name == "exp2"


def test_val_metrics_equal_independent_pycocotools(trained_run, tiny_shapes_yaml, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    run_cli("val", f"model={trained_run / 'weights/best.pt'}", f"data={tiny_shapes_yaml}", "imgsz=64", "batch=4",
            "workers=0", f"project={tmp_path}", "name=val")
    out = tmp_path / "val"
    metrics = json.loads((out / "metrics.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())
    assert preds, "the model should produce some detections at conf 0.001"
    gt = COCO(str(out / "ground_truth.json"))
    ev = COCOeval(gt, gt.loadRes(str(out / "predictions.json")), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert abs(ev.stats[0] - metrics["metrics/mAP50-95"]) < 1e-4
    assert abs(ev.stats[1] - metrics["metrics/mAP50"]) < 1e-4
    names = ["circle", "square", "triangle", "star"]
    for k, cat in enumerate(gt.getCatIds()):
        p = ev.eval["precision"][:, :, k, 0, 2]
        if (p > -1).any():
            assert abs(p[p > -1].mean() - metrics["per_class"][names[k]]["mAP50-95"]) < 1e-4


def test_coco_format_dataset_keeps_category_ids(tiny_coco_yaml, tmp_path):
    run_cli("train", f"data={tiny_coco_yaml}", *TINY, "epochs=1", f"project={tmp_path}", "name=coco")
    preds = json.loads((tmp_path / "coco" / "predictions.json").read_text())
    assert preds and {p["category_id"] for p in preds} <= {3, 7}
    assert {p["image_id"] for p in preds} <= {100, 101, 102, 103}


def test_dataset_class_count_mismatch_is_clear(trained_run, tiny_coco_yaml, capsys):
    assert main(["val", f"model={trained_run / 'weights/best.pt'}", f"data={tiny_coco_yaml}", "workers=0"]) == 2
    assert "dataset has 2 classes but the model predicts 4" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_sigkill(tiny_shapes_yaml, tmp_path):
    """Kill training mid-epoch with SIGKILL, resume, and end at the requested epoch count."""
    run = tmp_path / "kill"
    cmd = [sys.executable, "-m", "mirrordet", "train", f"data={tiny_shapes_yaml}", *TINY[:2], "batch=4",
           *TINY[3:], "epochs=3", f"project={tmp_path}", "name=kill", "plots=False"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # every run below uses the same thread count: same float order
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "weights" / "last.pt").exists():
        assert proc.poll() is None, f"training exited early: {proc.stderr.read()[-2000:]}"
        time.sleep(0.05)
    time.sleep(0.3)  # inside epoch 2
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "training finished before it could be killed"
    assert len(read_csv(run / "results.csv")) < 3
    assert (run / "weights" / "last.pt").exists()
    torch.load(run / "weights" / "last.pt", weights_only=True)  # not corrupt
    subprocess.run([*cmd[:3], "train", "resume=True", f"model={run / 'weights/last.pt'}"], env=env, check=True,
                   capture_output=True)
    rows = read_csv(run / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    resumed = torch.load(run / "weights" / "last.pt", weights_only=True)
    assert resumed["epoch"] == 3
    # the interrupted run ends where an uninterrupted one does
    subprocess.run([*cmd[:-2], "name=ref", "plots=False"], env=env, check=True, capture_output=True)
    ref = torch.load(tmp_path / "ref" / "weights" / "last.pt", weights_only=True)
    for key in ("model", "train_weights"):
        for name, tensor in ref[key].items():
            torch.testing.assert_close(resumed[key][name], tensor, rtol=1e-5, atol=1e-6, msg=f"{key}.{name}")


def test_time_budget_stops_training(tiny_shapes_yaml, tmp_path):
    """`time=` (hours) overrides `epochs`: a budget shorter than one epoch ends the run after the first."""
    run_cli("train", f"data={tiny_shapes_yaml}", *TINY, "epochs=5", "time=0.000001", f"project={tmp_path}",
            "name=t", "plots=False")
    rows = read_csv(tmp_path / "t" / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [1]
    last = torch.load(tmp_path / "t" / "weights" / "last.pt", weights_only=True)
    assert last["train_time"] > 0


def test_time_budget_refits_schedule():
    """Seconds per epoch and the time left set the new epoch count; the LR follows the new schedule;
    the settings themselves stay as given."""
    from types import SimpleNamespace

    from mirrordet.engine.optim import build_lr_lambda
    from mirrordet.engine.train_state import EpochPlan, LoopState
    from mirrordet.engine.trainer import Trainer

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    plan = EpochPlan(2, 0.01, False)
    lam = plan.lr_lambda
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lam)
    opt.step()
    sched.step()  # end of epoch 0: LR of epoch 1 on the old 2-epoch schedule
    cfg = {"epochs": 2, "time": 1.0, "lrf": 0.01, "cos_lr": False}
    trainer = SimpleNamespace(cfg=dict(cfg), state=LoopState(), plan=plan, t_session=time.time() - 60.0,
                              dist=SimpleNamespace(is_main=True, enabled=False), parts=SimpleNamespace(optimizer=opt),
                              scheduler=sched, _elapsed=lambda: 60.0)
    Trainer._fit_epochs_to_time(trainer, 0)
    assert 58 <= plan.epochs <= 60  # 1 epoch done in ~60 s, ~3540 s left
    assert trainer.cfg == cfg  # read-only settings
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * build_lr_lambda(plan.epochs, 0.01)(1))
    assert opt.param_groups[0]["lr"] > 0.01 * lam(1)  # later decay than on the 2-epoch schedule
    assert not plan.refit(plan.epochs, 1, opt, sched)  # the same total changes nothing


def test_val_runs_a_fused_copy(trained_run, tiny_shapes_yaml, tmp_path):
    """`val` folds BatchNorm into a copy for speed; the caller's model keeps its BatchNorm layers."""
    from mirrordet import Model
    from mirrordet.nn.fuse import is_fused

    model = Model(trained_run / "weights" / "best.pt")
    metrics = model.val(data=str(tiny_shapes_yaml), imgsz=64, batch=8, workers=0, project=str(tmp_path), name="v",
                        plots=False)
    assert not is_fused(model.model)
    ref = json.loads((trained_run / "metrics.json").read_text())  # training's final validation (its own copy)
    assert abs(metrics["metrics/mAP50-95"] - ref["metrics/mAP50-95"]) < 1e-3


def spy_validations(monkeypatch, fitness: list[float] | None = None) -> list[dict]:
    """Record every validation a Trainer runs: its options and whether the validated network was fused; with
    ``fitness``, the n-th validation reports fitness[n] (to steer which epoch becomes best.pt)."""
    from mirrordet.engine import trainer as trainer_module
    from mirrordet.nn.fuse import is_fused

    calls: list[dict] = []
    original_prepare, original_validate = trainer_module.prepare_model, trainer_module.Trainer._validate

    def prepare(model, *args, **kwargs):
        net = original_prepare(model, *args, **kwargs)
        calls.append({"fused": is_fused(net), "source_fused": is_fused(model)})
        return net

    def validate(self, model, **options):
        metrics = original_validate(self, model, **options)
        calls[-1].update(options)
        if fitness is not None:
            metrics["fitness"] = fitness[len(calls) - 1]
        return metrics

    monkeypatch.setattr(trainer_module, "prepare_model", prepare)
    monkeypatch.setattr(trainer_module.Trainer, "_validate", validate)
    return calls


def test_val_false_validates_once_when_best_is_the_last_epoch(tiny_shapes_yaml, tmp_path, monkeypatch):
    """val=False: only the last epoch is validated, with the final options; best.pt holds those weights, so the
    final validation is not repeated. Every validation runs a fused copy and leaves the EMA model as it was."""
    calls = spy_validations(monkeypatch)
    run_cli("train", f"data={tiny_shapes_yaml}", *TINY, "epochs=2", "val=False", f"project={tmp_path}", "name=v")
    assert len(calls) == 1
    assert calls[0] == {"fused": True, "source_fused": False, "verbose": True, "plots": True, "save_json": True}
    run = tmp_path / "v"
    assert (run / "predictions.json").is_file() and (run / "PR_curve.png").is_file()
    final = json.loads((run / "metrics.json").read_text())
    assert final["metrics/mAP50-95"] == pytest.approx(float(read_csv(run / "results.csv")[-1]["metrics/mAP50-95"]))


def test_best_pt_is_validated_again_when_an_earlier_epoch_was_best(tiny_shapes_yaml, tmp_path, monkeypatch):
    calls = spy_validations(monkeypatch, fitness=[0.9, 0.1, 0.5])
    run_cli("train", f"data={tiny_shapes_yaml}", *TINY, "epochs=2", f"project={tmp_path}", "name=v")
    assert [c["plots"] for c in calls] == [False, True, True]  # epoch 1, epoch 2 (final options), best.pt
    assert all(c["fused"] and not c["source_fused"] for c in calls)
