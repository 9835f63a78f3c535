"""Ultralytics checkpoints (files of the same pickle structure, written by the test) are imported without
running anything, predict what the network that went into them predicts, and work wherever a .pt does."""

from __future__ import annotations

import os

import pytest
import torch

from mirrordet.cli import main
from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.engine.import_ultralytics import is_ultralytics_checkpoint, read_ultralytics_checkpoint
from mirrordet.engine.weights import load_matching, read_checkpoint, rebuild_network
from mirrordet.nn.graph import build_model
from mirrordet.utils.errors import CheckpointError

CASES = [  # (model file, input size, BatchNorm constants of the file)
    ("yolov8n.yaml", 64, None),
    ("yolo11n.yaml", 64, None),
    ("yolov10n.yaml", 64, None),
    ("yolov8n-cls.yaml", 32, (1e-5, 0.1)),  # Ultralytics' classifiers keep PyTorch's BatchNorm constants
]


@pytest.mark.parametrize("model,size,bn", CASES, ids=[c[0] for c in CASES])
def test_import_gives_the_same_network(ultralytics_like_file, tmp_path, model, size, bn):
    net, _ = ultralytics_like_file(tmp_path / "u.pt", model=model, nc=4, bn=bn)
    assert is_ultralytics_checkpoint(tmp_path / "u.pt")
    ckpt = read_checkpoint(tmp_path / "u.pt")
    assert ckpt.model_cfg == {"scale": "n", "nc": 4}
    assert ckpt.names == {i: f"thing{i}" for i in range(4)} and ckpt.train_args == {"imgsz": 64}
    mine = rebuild_network(ckpt, "u.pt").eval()
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = mine(x), net(x)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), float((got - want).abs().max())
    if bn is not None:
        assert "batchnorm:" in ckpt.model_yaml


def test_ema_entry_is_preferred(ultralytics_like_file, tmp_path):
    net, _ = ultralytics_like_file(tmp_path / "last.pt", key="ema")
    mine = rebuild_network(read_checkpoint(tmp_path / "last.pt"), "last.pt").eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(mine(x), net(x), atol=1e-5)


def test_unsupported_model_class_is_named(ultralytics_like_file, tmp_path):
    ultralytics_like_file(tmp_path / "seg.pt", kind="SegmentationModel")
    with pytest.raises(CheckpointError, match="SegmentationModel models cannot be imported yet"):
        read_ultralytics_checkpoint(tmp_path / "seg.pt")


def test_a_mirrordet_checkpoint_is_not_taken_for_one(tmp_path):
    from mirrordet.engine.checkpoint import save_checkpoint

    net = build_model("yolov8n.yaml", nc=2)
    save_checkpoint(tmp_path / "m.pt", Checkpoint(model_yaml=net.yaml_text, model=net.state_dict(),
                                                  model_cfg={"scale": "n", "nc": 2}).to_dict())
    assert not is_ultralytics_checkpoint(tmp_path / "m.pt")
    assert read_checkpoint(tmp_path / "m.pt").model_cfg["nc"] == 2


class _System:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["ckpt", "model"])
def test_planted_payload_is_refused_by_every_mode(ultralytics_like_file, tmp_path, one_line_error, where):
    marker = tmp_path / "ran"
    extra = {"payload": _System(marker)}
    ultralytics_like_file(tmp_path / "evil.pt", **({"ckpt_extra": extra} if where == "ckpt" else {"model_extra": extra}))
    with pytest.raises(CheckpointError, match="posix.system, which is never loaded"):
        read_checkpoint(tmp_path / "evil.pt")
    one_line_error(["predict", f"model={tmp_path / 'evil.pt'}", f"source={tmp_path}"], contains="never loaded")
    assert not marker.exists()


def test_convert_writes_a_weights_only_checkpoint(ultralytics_like_file, tmp_path, one_line_error):
    net, _ = ultralytics_like_file(tmp_path / "yolov8n.pt")
    assert main(["convert", f"model={tmp_path / 'yolov8n.pt'}"]) == 0
    out = tmp_path / "yolov8n-mirrordet.pt"
    d = torch.load(out, map_location="cpu", weights_only=True)
    mine = rebuild_network(Checkpoint.from_dict(d, out), out).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(mine(x), net(x), atol=1e-5)
    one_line_error(["convert", f"model={tmp_path / 'yolov8n.pt'}"], contains="exist_ok=True")


def test_predict_accepts_the_file(ultralytics_like_file, tmp_path, capfd):
    import cv2
    import numpy as np

    ultralytics_like_file(tmp_path / "yolov8n.pt")
    cv2.imwrite(str(tmp_path / "a.png"), np.full((48, 80, 3), 90, np.uint8))
    assert main(["predict", f"model={tmp_path / 'yolov8n.pt'}", f"source={tmp_path / 'a.png'}",
                 f"project={tmp_path}", "name=p", "save=False"]) == 0
    assert "Ultralytics 8.4.0 checkpoint (DetectionModel, 4 classes, scale n) converted in memory" in capfd.readouterr().err


def test_weights_transfer_into_a_yaml_model(ultralytics_like_file, tmp_path):
    net, _ = ultralytics_like_file(tmp_path / "yolov8n.pt", nc=4)
    same = build_model("yolov8n.yaml", nc=4)
    assert load_matching(same, tmp_path / "yolov8n.pt", "yolov8n.pt") == len(same.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(same.eval()(x), net(x), atol=1e-5)
    other = build_model("yolov8n.yaml", nc=7)  # new classes: the class-output convs stay fresh
    n = load_matching(other, tmp_path / "yolov8n.pt", "yolov8n.pt")
    assert 0 < n < len(other.state_dict())


def test_train_starts_from_weights(ultralytics_like_file, tiny_shapes_yaml, tmp_path, capfd):
    ultralytics_like_file(tmp_path / "yolov8n.pt", nc=4)
    assert main(["train", "model=yolov8n.yaml", f"weights={tmp_path / 'yolov8n.pt'}", f"data={tiny_shapes_yaml}",
                 "epochs=1", "imgsz=64", "batch=8", "workers=0", f"project={tmp_path}", "name=ft", "plots=False"]) == 0
    err = capfd.readouterr().err
    n = len(build_model("yolov8n.yaml", nc=4).state_dict())
    assert f"Transferred {n}/{n} tensors from {tmp_path / 'yolov8n.pt'}" in err


def test_freeze_keeps_the_backbone_fixed(ultralytics_like_file, tiny_shapes_yaml, tmp_path):
    """freeze=backbone: after a fine-tuning epoch the backbone tensors (BatchNorm statistics included) are those of
    the file, the head's are not."""
    from mirrordet.engine.weights import load_weights

    ultralytics_like_file(tmp_path / "yolov8n.pt", nc=4)
    assert main(["train", "model=yolov8n.yaml", f"weights={tmp_path / 'yolov8n.pt'}", "freeze=backbone",
                 f"data={tiny_shapes_yaml}", "epochs=1", "imgsz=64", "batch=8", "workers=0", "ema=False",
                 f"project={tmp_path}", "name=fz", "plots=False"]) == 0
    start = build_model("yolov8n.yaml", nc=4)
    load_matching(start, tmp_path / "yolov8n.pt", "yolov8n.pt")
    after = load_weights(tmp_path / "fz" / "weights" / "last.pt")[0].state_dict()
    backbone = [k for k in after if k.startswith(("layers.0.", "layers.9.")) and not k.endswith("num_batches_tracked")]
    head = [k for k in after if k.startswith("layers.22.cv3") and k.endswith("weight")]
    assert backbone and all(torch.equal(after[k], start.state_dict()[k]) for k in backbone)
    assert any(not torch.equal(after[k], start.state_dict()[k]) for k in head)
