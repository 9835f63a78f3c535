"""Mixed-precision settings: amp=true (CUDA float16), amp=bf16 (CUDA or native-bf16 CPU), amp=false."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mirrordet.cfg import get_cfg
from mirrordet.cli import main
from mirrordet.engine import amp as amp_mod
from mirrordet.engine.amp import amp_dtype, autocast
from mirrordet.utils.errors import ConfigError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_dtype_per_setting_and_device(monkeypatch, native):
    monkeypatch.setattr(amp_mod, "cpu_has_native_bf16", lambda: native)
    assert amp_dtype(True, CPU) is None  # float16 autocast is a CUDA feature here
    assert amp_dtype(False, CPU) is None and amp_dtype(False, CUDA) is None
    assert amp_dtype(True, CUDA) is torch.float16
    assert amp_dtype("bf16", CUDA) is torch.bfloat16
    assert amp_dtype("bf16", CPU) is (torch.bfloat16 if native else None)


def test_settings_accept_bool_or_bf16_only():
    assert get_cfg({"amp": "bf16"})["amp"] == "bf16"
    assert get_cfg({"amp": False})["amp"] is False
    with pytest.raises(ConfigError, match="choose one of bf16, true, false"):
        get_cfg({"amp": "fp8"})
    with pytest.raises(ConfigError, match="must be bool or str"):
        get_cfg({"amp": 1})


def test_autocast_context():
    conv = nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    with autocast(CPU, torch.bfloat16):
        assert conv(x).dtype is torch.bfloat16
    with autocast(CPU, None):
        assert conv(x).dtype is torch.float32


def test_bf16_training_keeps_float32_weights(tmp_path, monkeypatch, capsys):
    """amp=bf16 trains end to end (forced on here, so that CPUs without native bf16 also run the path)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("h", Path(__file__).parents[1] / "data" / "test_classification_data.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    helpers.write_cifar_batch(root / "data_batch_1", 16, seed=0)
    helpers.write_cifar_batch(root / "test_batch", 8, seed=1)
    (tmp_path / "c.yaml").write_text(f"task: classify\npath: {root}\ntrain: data_batch_1\nval: test_batch\n"
                                     f"names: {json.dumps([str(i) for i in range(10)])}\n")
    monkeypatch.setattr(amp_mod, "cpu_has_native_bf16", lambda: True)
    assert main(["train", f"data={tmp_path / 'c.yaml'}", "model=yolov8n-cls.yaml", "imgsz=32", "workers=0",
                 "batch=8", "epochs=1", "amp=bf16", "plots=False", f"project={tmp_path}", "name=b"]) == 0
    assert "AMP bfloat16" in capsys.readouterr().err + "".join(
        p.read_text() for p in (tmp_path / "b").glob("*.txt"))
    ckpt = torch.load(tmp_path / "b" / "weights" / "last.pt", weights_only=True)
    weights = [v for v in ckpt["model"].values() if v.is_floating_point()]
    assert all(v.dtype is torch.float32 and torch.isfinite(v).all() for v in weights)
    assert ckpt["scaler"] is None  # bfloat16 needs no GradScaler
