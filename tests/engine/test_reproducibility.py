"""Same seed on CPU -> bit-identical results.csv and weights; args.yaml records what repeats a run."""

import csv

import pytest
import torch
import yaml

from mirrordet.engine.trainer import Trainer

# a small detector with CSPMirror blocks (strides 8/16): the same trainer code path as yolov8n-mirror, faster
TINY_MIRROR = """nc: 4
backbone:
  - [-1, 1, Conv, [8, 3, 2]]
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, CSPMirror, [16, True]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, CSPMirror, [32, True]]
  - [-1, 1, Conv, [32, 3, 2]]
head:
  - [[4, 5], 1, Detect, [nc]]
"""
SETTINGS = {"imgsz": 64, "batch": 8, "workers": 0,
            "warmup_epochs": 0, "close_mosaic": 1, "device": "cpu", "plots": False, "verbose": False}
# wall-clock columns: the only ones allowed to differ between two runs of the same seed
TIME_COLUMNS = {"epoch_time"}


def train(data, project, name, seed, epochs=2):
    model = project / "tiny-mirror.yaml"
    model.write_text(TINY_MIRROR)
    Trainer({**SETTINGS, "model": str(model), "data": str(data), "seed": seed, "epochs": epochs,
             "project": str(project), "name": name}).train()
    return project / name


def rows_without_time(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in rows]


@pytest.fixture(scope="module")
def runs(tiny_shapes_yaml, tmp_path_factory):
    project = tmp_path_factory.mktemp("repro")
    return [train(tiny_shapes_yaml, project, "a", 0), train(tiny_shapes_yaml, project, "b", 0),
            train(tiny_shapes_yaml, project, "c", 1, epochs=1)]


def test_same_seed_bit_identical_results_csv(runs):
    a, b, _ = runs
    rows_a, rows_b = rows_without_time(a / "results.csv"), rows_without_time(b / "results.csv")
    assert len(rows_a) == 2 and rows_a == rows_b  # exact text: every loss and metric digit
    wa = torch.load(a / "weights" / "last.pt", weights_only=True)
    wb = torch.load(b / "weights" / "last.pt", weights_only=True)
    for key in ("model", "train_weights"):
        assert all(torch.equal(wa[key][k], wb[key][k]) for k in wa[key]), key


def test_other_seed_differs(runs):
    a, _, c = runs
    assert rows_without_time(a / "results.csv")[0]["train/box_loss"] != rows_without_time(c / "results.csv")[0][
        "train/box_loss"]


def test_args_yaml_records_settings_and_versions(runs):
    a, b, _ = runs
    args = yaml.safe_load((a / "args.yaml").read_text())
    for key, value in SETTINGS.items():
        assert args[key] == value, key
    assert args["seed"] == 0 and args["deterministic"] is True and args["epochs"] == 2
    versions = args["versions"]
    assert {"mirrordet", "python", "torch", "torchvision", "numpy", "opencv"} <= set(versions)
    assert versions["torch"] == torch.__version__
    other = yaml.safe_load((b / "args.yaml").read_text())
    assert {k: v for k, v in args.items() if k != "name"} == {k: v for k, v in other.items() if k != "name"}
