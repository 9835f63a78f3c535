"""Nothing lost: run folders, resume locations, interrupts, storage failures and dead workers.

Every failure here must leave earlier results intact and end in one line that says what is kept.
"""

from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from mirrordet.cli import main
from mirrordet.data.dataset import DetectionDataset
from mirrordet.engine import trainer as trainer_mod
from mirrordet.engine.checkpoint import load_checkpoint, save_checkpoint
from mirrordet.engine.run_dir import claim_dir
from mirrordet.utils.files import atomic_save

TINY = ["model=yolov8n.yaml", "imgsz=64", "batch=8", "workers=0", "warmup_epochs=0", "close_mosaic=0",
        "plots=False", "verbose=False", "val=False"]


def _rows(run: Path) -> list[dict]:
    with open(run / "results.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def one_epoch_of_two(tiny_shapes_yaml, tmp_path_factory) -> Path:
    """A run folder whose last.pt holds epoch 1 of 2 (the second epoch never ran)."""
    project = tmp_path_factory.mktemp("runs")
    assert main(["train", f"data={tiny_shapes_yaml}", *TINY, "epochs=1", f"project={project}", "name=r"]) == 0
    run = project / "r"
    ckpt = load_checkpoint(run / "weights" / "last.pt")
    ckpt["train_args"]["epochs"] = 2
    save_checkpoint(run / "weights" / "last.pt", ckpt)
    return run


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def test_dataset_defaults_cannot_choose_output_locations(tiny_shapes_yaml, tmp_path, one_line_error):
    text = tiny_shapes_yaml.read_text().replace("path: data", f"path: {tiny_shapes_yaml.parent / 'data'}")
    bad = tmp_path / "hijack.yaml"
    bad.write_text(text + f"defaults: {{project: {tmp_path / 'victim'}, name: exp, exist_ok: true}}\n")
    one_line_error(["train", f"data={bad}", *TINY, "epochs=1"], contains="may only suggest training hyperparameters")
    assert not (tmp_path / "victim").exists()


def test_concurrent_run_folders_are_distinct(tmp_path):
    got: list[Path] = []
    barrier = threading.Barrier(12)

    def claim() -> None:
        barrier.wait()
        got.append(claim_dir(tmp_path / "train", exist_ok=False))

    threads = [threading.Thread(target=claim) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 12 and all(p.is_dir() for p in got)


def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "last.pt"
    writer = ("import sys, time; from mirrordet.utils.files import atomic_save; "
              "atomic_save(sys.argv[1], lambda f: (f.write(b'x' * 1000), f.flush(), time.sleep(60)))")
    proc = subprocess.Popen([sys.executable, "-c", writer, str(target)])
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".last.pt.*.tmp")):
        time.sleep(0.02)
    alive = subprocess.Popen([sys.executable, "-c", writer, str(target)])  # a writer still at work: kept
    while time.time() < deadline and len(list(tmp_path.glob(".last.pt.*.tmp"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (tmp_path / ".other.tmp").write_bytes(b"not ours")
    try:
        assert len(list(tmp_path.glob(".last.pt.*.tmp"))) == 2
        atomic_save(target, lambda f: f.write(b"new"))
        left = list(tmp_path.glob(".last.pt.*.tmp"))
        assert [p.name.split(".")[3].split("-")[0] for p in left] == [str(alive.pid)]
        assert target.read_bytes() == b"new" and (tmp_path / ".other.tmp").exists()
    finally:
        alive.kill()
        alive.wait()


def test_resume_writes_next_to_the_given_last_pt(one_epoch_of_two, tmp_path):
    copy = _copy_run(one_epoch_of_two, tmp_path / "copy")
    ckpt = load_checkpoint(copy / "weights" / "last.pt")
    ckpt["train_args"]["save_dir"] = str(tmp_path / "elsewhere")  # a crafted path inside the file is ignored
    save_checkpoint(copy / "weights" / "last.pt", ckpt)
    before = (one_epoch_of_two / "results.csv").read_bytes(), (one_epoch_of_two / "weights" / "last.pt").read_bytes()
    assert main(["train", "resume=True", f"model={copy / 'weights' / 'last.pt'}"]) == 0
    assert [r["epoch"] for r in _rows(copy)] == ["1", "2"]
    assert load_checkpoint(copy / "weights" / "last.pt")["epoch"] == 2
    assert ((one_epoch_of_two / "results.csv").read_bytes(),
            (one_epoch_of_two / "weights" / "last.pt").read_bytes()) == before
    assert not (tmp_path / "elsewhere").exists()


def test_resume_true_alone_continues_the_newest_run(one_epoch_of_two, tmp_path):
    project = tmp_path / "proj"
    older = _copy_run(one_epoch_of_two, project / "a")
    newer = _copy_run(one_epoch_of_two, project / "b")
    os.utime(older / "weights" / "last.pt", (1, 1))
    assert main(["train", "resume=True", f"project={project}"]) == 0
    assert len(_rows(newer)) == 2 and len(_rows(older)) == 1


def test_resume_true_without_any_run_is_a_clear_error(tmp_path, one_line_error):
    one_line_error(["train", "resume=True", f"project={tmp_path}"], contains="found no weights/last.pt")


def test_ctrl_c_before_the_first_checkpoint(tiny_shapes_yaml, tmp_path, monkeypatch, capfd):
    real = trainer_mod.criterion

    def interrupted(model, cfg, world_size=1):
        loss_fn = real(model, cfg, world_size)

        def terms(preds, batch):
            raise KeyboardInterrupt

        loss_fn.terms = terms
        return loss_fn

    monkeypatch.setattr(trainer_mod, "criterion", interrupted)
    capfd.readouterr()
    assert main(["train", f"data={tiny_shapes_yaml}", *TINY, "epochs=2", f"project={tmp_path}", "name=c"]) == 130
    err = capfd.readouterr().err.strip().splitlines()  # the run's own log, then one closing line
    assert "interrupted: in epoch 1" in err[-1] and "no checkpoint was written yet" in err[-1]
    assert sum("interrupted" in ln for ln in err) == 1 and not any("Traceback" in ln for ln in err)
    assert not (tmp_path / "c" / "weights").exists()  # no empty weights/ folder


def test_class_count_setting_that_contradicts_the_dataset(tiny_shapes_yaml, tmp_path, one_line_error):
    one_line_error(["train", f"data={tiny_shapes_yaml}", *TINY, "epochs=1", "nc=3", f"project={tmp_path}"],
                   contains="nc=3 but")


def test_resume_after_the_dataset_changed_its_classes(one_epoch_of_two, tiny_shapes_yaml, tmp_path, one_line_error):
    copy = _copy_run(one_epoch_of_two, tmp_path / "copy")
    fewer = tmp_path / "three.yaml"
    fewer.write_text(tiny_shapes_yaml.read_text().replace("path: data", f"path: {tiny_shapes_yaml.parent / 'data'}")
                     .replace("names: [circle, square, triangle, star]", "names: [circle, square, triangle]"))
    ckpt = load_checkpoint(copy / "weights" / "last.pt")
    ckpt["train_args"]["data"] = str(fewer)
    save_checkpoint(copy / "weights" / "last.pt", ckpt)
    one_line_error(["train", "resume=True", f"model={copy / 'weights' / 'last.pt'}"],
                   contains="trained for 4 classes")


@pytest.mark.parametrize("corrupt", [
    lambda c: c.update(optimizer={"state": {}, "param_groups": []}),
    lambda c: c.update(epoch="two"),
    lambda c: c["model"].pop(next(iter(c["model"]))),
], ids=["optimizer", "epoch", "ema-weights"])
def test_resume_with_corrupt_training_state(one_epoch_of_two, tmp_path, one_line_error, corrupt):
    copy = _copy_run(one_epoch_of_two, tmp_path / "copy")
    ckpt = load_checkpoint(copy / "weights" / "last.pt")
    corrupt(ckpt)
    save_checkpoint(copy / "weights" / "last.pt", ckpt)
    one_line_error(["train", "resume=True", f"model={copy / 'weights' / 'last.pt'}"], contains="last.pt",
                   after_log=True)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_disk_keeps_the_last_good_checkpoint(tiny_shapes_yaml, tmp_path, monkeypatch,
                                                               one_line_error, code):
    import mirrordet.engine.trainer as trainer_mod

    real, calls = trainer_mod.save_checkpoint, {"n": 0}

    def failing(path, ckpt):
        calls["n"] += 1
        if ckpt["epoch"] >= 2:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, ckpt)

    monkeypatch.setattr(trainer_mod, "save_checkpoint", failing)
    line = one_line_error(["train", f"data={tiny_shapes_yaml}", *TINY, "epochs=3", f"project={tmp_path}", "name=d"],
                          contains=os.strerror(code), after_log=True)
    assert "holds epoch 1" in line and "resume=True" in line
    assert load_checkpoint(tmp_path / "d" / "weights" / "last.pt")["epoch"] == 1


def test_killed_dataloader_worker_is_one_line(tiny_shapes_yaml, tmp_path, monkeypatch, one_line_error):
    real = DetectionDataset.__getitem__

    def dies_in_worker(self, i):
        info = torch.utils.data.get_worker_info()
        if info is not None and int(self._epoch[0]) == 1:  # epoch 2, inside a worker process: killed
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, i)

    monkeypatch.setattr(DetectionDataset, "__getitem__", dies_in_worker)
    args = [a for a in TINY if not a.startswith("workers")]
    line = one_line_error(["train", f"data={tiny_shapes_yaml}", *args, "workers=1", "epochs=2", f"project={tmp_path}",
                           "name=w"], contains="data-loading worker died in epoch 2", after_log=True)
    assert "holds epoch 1" in line
