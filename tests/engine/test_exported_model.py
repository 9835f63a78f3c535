"""Exported files as backends: `predict` / `val` with model=best.onnx | best.torchscript give the checkpoint's
detections and metrics."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from mirrordet.cli import main
from mirrordet.engine.checkpoint import CKPT_FORMAT, save_checkpoint
from mirrordet.engine.exported_model import ExportedNetwork, is_exported
from mirrordet.model import Model
from mirrordet.utils.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SIZE = 64


def _signal_checkpoint(path: Path, cfg: str, data: Path) -> Path:
    """A checkpoint of ``cfg`` whose outputs depend on the input (He-normal convs) and whose scores are spread out,
    trained on nothing: enough to compare two runtimes detection by detection."""
    model = Model(cfg, nc=4)
    g = torch.Generator().manual_seed(0)
    for name, m in model.model.named_modules():
        if isinstance(m, nn.Conv2d) and not name.endswith("dfl.conv"):
            m.weight.data.normal_(0, (2.0 / m.weight[0].numel()) ** 0.5, generator=g)
    names = {0: "circle", 1: "square", 2: "triangle", 3: "star"}
    save_checkpoint(path, {"format": CKPT_FORMAT, "model_yaml": model.model.yaml_text,
                           "model_cfg": {"nc": 4, "scale": model.model.scale}, "names": names,
                           "model": model.model.state_dict(), "train_args": {"data": str(data), "imgsz": SIZE}})
    return path


@pytest.fixture(scope="module")
def checkpoint(tiny_shapes_yaml, tmp_path_factory) -> Path:
    return _signal_checkpoint(tmp_path_factory.mktemp("exp") / "best.pt", "yolov8n.yaml", tiny_shapes_yaml)


def _export(ckpt: Path, fmt: str, **kw) -> Path:
    return Model(ckpt).export(format=fmt, imgsz=SIZE, **kw)


def _rows(results) -> list[np.ndarray]:
    return [r.boxes.data.numpy() for r in results]


def _square_images(tmp_path: Path, n: int = 3) -> Path:
    """Square images (so a fixed-shape export sees the same letterbox as the checkpoint's rectangular one)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.full((96, 96, 3), 60, np.uint8)
        for _ in range(3):
            x, y, s = (int(v) for v in rng.integers(5, 60, 3))
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.rectangle(img, (x, y), (x + s // 2 + 8, y + s // 2 + 8), color, -1)
        cv2.imwrite(str(folder / f"{i}.jpg"), img)
    return folder


@pytest.mark.parametrize("fmt, dynamic", [("onnx", False), ("onnx", True), ("torchscript", False)])
def test_val_of_an_export_equals_val_of_its_checkpoint(checkpoint, tiny_shapes_yaml, tmp_path, fmt, dynamic):
    exported = _export(checkpoint, fmt, dynamic=dynamic)
    assert is_exported(exported)
    common = {"imgsz": SIZE, "batch": 3, "workers": 0, "plots": False, "project": str(tmp_path)}  # 8 images: padded
    ref = Model(checkpoint).val(name="pt", **common)
    got = Model(exported).val(name="ex", **common)  # data: the dataset stored in the export's metadata
    for key in ("metrics/precision", "metrics/recall", "metrics/mAP50", "metrics/mAP50-95"):
        assert got[key] == pytest.approx(ref[key], abs=1e-3), key
    pt_dets = json.loads((tmp_path / "pt" / "predictions.json").read_text())
    ex_dets = json.loads((tmp_path / "ex" / "predictions.json").read_text())
    assert len(pt_dets) > 20  # detections to compare, one by one
    key = lambda d: (d["image_id"], d["category_id"], -d["score"])  # noqa: E731
    pt_dets, ex_dets = sorted(pt_dets, key=key), sorted(ex_dets, key=key)
    assert len(ex_dets) == len(pt_dets)
    np.testing.assert_allclose([d["score"] for d in ex_dets], [d["score"] for d in pt_dets], atol=1e-4)
    np.testing.assert_allclose([d["bbox"] for d in ex_dets], [d["bbox"] for d in pt_dets], atol=1e-2)


def _predict_both(ckpt: Path, exported: Path, source: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image, the [n, 6] rows predicted with the checkpoint and with its export (same shapes, some boxes)."""
    ref = _rows(Model(ckpt).predict(str(source), imgsz=SIZE, conf=0.001))
    got = _rows(Model(exported).predict(str(source), imgsz=SIZE, conf=0.001))
    assert sum(len(r) for r in ref) > 0 and len(ref) == len(got)
    assert all(a.shape == b.shape for a, b in zip(ref, got))
    return list(zip(ref, got))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_predict_with_an_export_gives_the_checkpoint_detections(checkpoint, tmp_path, fmt):
    for a, b in _predict_both(checkpoint, _export(checkpoint, fmt), _square_images(tmp_path)):
        np.testing.assert_allclose(b[:, :4], a[:, :4], atol=1e-3)  # pixels
        np.testing.assert_allclose(b[:, 4], a[:, 4], atol=1e-4)  # scores
        np.testing.assert_array_equal(b[:, 5], a[:, 5])  # classes


def test_predict_with_an_nms_export_reads_its_rows(checkpoint, tmp_path):
    exported, source = _export(checkpoint, "onnx", nms=True, conf=0.001), _square_images(tmp_path)
    for a, b in _predict_both(checkpoint, exported, source):
        np.testing.assert_allclose(b[:, :5], a[:, :5], atol=1e-3)
    only = Model(exported).predict(str(source / "0.jpg"), imgsz=SIZE, conf=0.001, classes=[1])[0]
    assert len(only.boxes.data) > 0 and (only.boxes.data[:, 5] == 1).all()


def test_segmentation_export_predicts_the_same_masks(tmp_path, tiny_shapes_yaml):
    ckpt = _signal_checkpoint(tmp_path / "seg.pt", "yolov8n-seg.yaml", tiny_shapes_yaml)
    exported = _export(ckpt, "onnx", dynamic=True)
    source = _square_images(tmp_path)
    ref = Model(ckpt).predict(str(source), imgsz=SIZE, conf=0.001)
    got = Model(exported).predict(str(source), imgsz=SIZE, conf=0.001)
    assert sum(len(r.boxes.data) for r in ref) > 0
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b.boxes.data.numpy(), a.boxes.data.numpy(), atol=1e-3)
        assert a.masks.data.shape == b.masks.data.shape
        assert (a.masks.data != b.masks.data).float().mean() < 1e-3  # pixels on a 0.5 threshold may flip


def test_fixed_shape_export_runs_at_its_size_and_in_chunks(checkpoint, tmp_path, capfd):
    exported = _export(checkpoint, "onnx", batch=2)
    net = ExportedNetwork(exported)
    assert not net.dynamic and net.batch == 2 and net.input_multiple == SIZE and net.task == "detect"
    x = torch.rand(5, 3, SIZE, SIZE)
    out = net(x)  # 5 images through a batch-2 graph: chunks of 2, the last padded
    assert out.shape[0] == 5
    torch.testing.assert_close(out[4:], net(x[4:]))
    with pytest.raises(ConfigError, match="dynamic=True"):
        net(torch.rand(1, 3, 2 * SIZE, SIZE))
    source = _square_images(tmp_path)
    capfd.readouterr()
    results = Model(exported).predict(str(source), imgsz=2 * SIZE)
    assert "takes 64x64 inputs only" in capfd.readouterr().err and len(results) == 3


def test_exported_files_refuse_train_export_and_info(checkpoint, one_line_error):
    exported = _export(checkpoint, "onnx")
    model = Model(exported)
    for call in (model.train, model.export, model.info):
        with pytest.raises(ConfigError, match="exported model"):
            call()
    one_line_error(["train", f"model={exported}"], contains="exported model")


def test_files_without_mirrordet_metadata_are_refused(tmp_path):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(nn.Conv2d(3, 4, 1), (torch.rand(1, 3, 8, 8),), str(plain), input_names=["images"], dynamo=False)
    with pytest.raises(CheckpointError, match="no mirrordet metadata"):
        ExportedNetwork(plain)
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="not a readable exported model"):
        ExportedNetwork(tmp_path / "junk.onnx")
    with pytest.raises(CheckpointError, match="does not exist"):
        ExportedNetwork(tmp_path / "missing.torchscript")


def test_an_export_without_the_model_yaml_asks_to_export_again(checkpoint, tmp_path):
    exported = _export(checkpoint, "onnx")
    graph = onnx.load(str(exported))
    keep = [(p.key, p.value) for p in graph.metadata_props if p.key != "model_yaml"]
    del graph.metadata_props[:]
    for k, v in keep:
        graph.metadata_props.add(key=k, value=v)
    old = tmp_path / "old.onnx"
    onnx.save(graph, str(old))
    with pytest.raises(CheckpointError, match="export it again"):
        ExportedNetwork(old)


def test_cli_val_and_predict_on_an_onnx_file(checkpoint, tmp_path):
    exported = _export(checkpoint, "onnx")
    assert main(["val", f"model={exported}", "workers=0", "plots=False", f"project={tmp_path}", "name=v"]) == 0
    assert (tmp_path / "v" / "metrics.json").is_file()
    source = _square_images(tmp_path)
    assert main(["predict", f"model={exported}", f"source={source}", f"project={tmp_path}", "name=p",
                 "save_txt=True"]) == 0
    assert (tmp_path / "p" / "0.jpg").is_file()


def test_benchmark_validates_every_format_beside_the_checkpoint(checkpoint, tmp_path, one_line_error):
    from mirrordet.engine.benchmark import available_formats, benchmark

    rows = benchmark({"model": str(checkpoint), "workers": 0, "batch": 4, "project": str(tmp_path), "name": "b"})
    assert [r["format"] for r in rows] == available_formats() and {"pytorch", "torchscript", "onnx"} <= {
        r["format"] for r in rows}
    ref = rows[0]
    for r in rows:
        assert r["status"] == "ok", r
        assert r["mAP50-95"] == pytest.approx(ref["mAP50-95"], abs=1e-3) and abs(r["mAP50-95 - pytorch"]) <= 1e-3
        assert r["size_mb"] > 0 and r["inference_ms"] > 0
    table = (tmp_path / "b" / "benchmarks.md").read_text()
    assert all(f"| {r['format']} | ok |" in table for r in rows)
    assert json.loads((tmp_path / "b" / "benchmarks.json").read_text())[0]["format"] == "pytorch"
    one_line_error(["benchmark", "model=yolov8n.yaml"], contains="trained checkpoint")
