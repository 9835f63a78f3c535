"""Tests of mirrordet.engine.checkpoint: atomic save, weights-only load, refusal of unsafe files."""

from __future__ import annotations

import pathlib
import pickle
import random

import pytest
import torch
from torch import nn

from mirrordet.engine.checkpoint import CKPT_FORMAT, load_checkpoint, save_checkpoint, strip_for_inference
from mirrordet.engine.ema import ModelEMA
from mirrordet.engine.optim import build_optimizer
from mirrordet.utils.errors import CheckpointError
from mirrordet.utils.torch_utils import get_rng_state, set_rng_state


class _Payload:
    """Unpickling this calls open(marker, "w"), i.e. creates the marker file."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


def _ckpt() -> dict:
    model = _model()
    opt, _, _ = build_optimizer(model, "SGD", lr=0.01)
    x = torch.randn(2, 3, 3, 3)
    model(x).sum().backward()
    opt.step()  # creates momentum buffers in the optimizer state
    ema = ModelEMA(model)
    ema.update(model)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return {
        "format": CKPT_FORMAT,
        "model_yaml": "nc: 2\nbackbone: []\nhead: []\n",
        "model_cfg": {"scale": "n", "nc": 2},
        "names": {0: "cat", 1: "dog"},
        "model": {k: v.detach().float().cpu().clone() for k, v in ema.ema.state_dict().items()},
        "ema": ema.state_dict(),
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": 3,
        "best_fitness": 0.25,
        "train_args": {"epochs": 10, "data": "shapes.yaml", "cos_lr": False, "seed": None, "imgsz": [64, 64]},
        "rng": get_rng_state(),
        "date": "2024-01-01T00:00:00",
        "version": "0.1.0",
    }


def _assert_same(a, b, where="ckpt"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_round_trip(tmp_path):
    ckpt = _ckpt()
    path = save_checkpoint(tmp_path / "weights" / "last.pt", ckpt)
    assert path.is_file()
    assert not list(path.parent.glob(".*.tmp"))
    loaded = load_checkpoint(path)
    _assert_same(ckpt, loaded)
    # weights load into a fresh model, optimizer state into a fresh optimizer
    model = _model()
    model.load_state_dict(loaded["model"])
    opt, _, _ = build_optimizer(model, "SGD", lr=0.01)
    opt.load_state_dict(loaded["optimizer"])
    assert len(opt.state) == len(ckpt["optimizer"]["state"]) > 0
    ema = ModelEMA(model)
    ema.load_state_dict(loaded["ema"])
    assert ema.updates == 1


def test_rng_state_from_checkpoint_restores_sequence(tmp_path):
    random.seed(5)
    torch.manual_seed(5)
    ckpt = _ckpt()
    expected = (random.random(), torch.rand(3).tolist())
    save_checkpoint(tmp_path / "last.pt", ckpt)
    random.seed(99)
    torch.manual_seed(99)
    set_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])
    assert (random.random(), torch.rand(3).tolist()) == expected


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "last.pt"
    ckpt = _ckpt()
    save_checkpoint(path, ckpt)
    ckpt["epoch"] = 4
    save_checkpoint(path, ckpt)
    assert load_checkpoint(path)["epoch"] == 4


def test_save_rejects_values_a_weights_only_load_refuses(tmp_path):
    import numpy as np

    path = tmp_path / "last.pt"
    for bad in ({"data": pathlib.Path("x.yaml")}, {"fitness": np.float64(0.5)}):
        ckpt = {**_ckpt(), "train_args": bad}
        with pytest.raises(CheckpointError, match="train_args"):
            save_checkpoint(path, ckpt)
    assert not path.exists()
    with pytest.raises(CheckpointError, match="required"):
        save_checkpoint(path, {"model": {}})


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["torch.save", "pickle", "torch.save-nested"])
def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path, how):
    marker = tmp_path / "pwned"
    payload = _Payload(marker)
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save(payload, path)
    elif how == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:  # a well-formed checkpoint with the payload hidden in a nested entry
        torch.save({**_ckpt(), "train_args": {"x": payload}}, path)
    with pytest.raises(CheckpointError, match="refusing to load") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "weights_only=False" not in str(info.value)  # never suggest the unsafe loader
    assert not marker.exists()


def test_payload_is_live_control(tmp_path):
    """The payload used above really executes when unpickled without restrictions."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(marker))).close()
    assert marker.exists()


def test_truncated_and_garbage_files_refused(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", _ckpt())
    data = good.read_bytes()
    for name, blob in {"trunc.pt": data[: len(data) // 2], "head.pt": data[:64], "empty.pt": b"",
                       "garbage.pt": b"not a checkpoint at all"}.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(CheckpointError, match="refusing to load") as info:
            load_checkpoint(p)
        assert name in str(info.value)


def test_structurally_wrong_payloads_refused(tmp_path):
    cases = {
        "list.pt": [1, 2, 3],
        "state_dict.pt": _model().state_dict(),
        "noyaml.pt": {"model": {}},
        "badformat.pt": {"format": "other-v9", "model_yaml": "", "model": {}},
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(CheckpointError, match="refusing to load"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_strip_for_inference(tmp_path):
    ckpt = _ckpt()
    stripped = strip_for_inference(ckpt)
    assert stripped["optimizer"] is None and stripped["ema"] is None
    assert stripped["scaler"] is None and stripped["rng"] is None
    assert stripped["model"] is ckpt["model"] and stripped["model_yaml"] == ckpt["model_yaml"]
    assert ckpt["optimizer"] is not None  # input untouched
    small = save_checkpoint(tmp_path / "best.pt", stripped)
    full = save_checkpoint(tmp_path / "last.pt", ckpt)
    assert small.stat().st_size < full.stat().st_size
    _assert_same(stripped["model"], load_checkpoint(small)["model"])
