"""Export round trips: the ONNX / TorchScript file reproduces the PyTorch outputs at two input sizes."""

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import mirrordet.engine.exporter as exporter
from mirrordet.cli import main
from mirrordet.engine.checkpoint import CKPT_FORMAT, save_checkpoint
from mirrordet.engine.exporter import compare_outputs, export_model
from mirrordet.model import Model
from mirrordet.nn.fuse import fuse
from mirrordet.utils.errors import ExportError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def signal_model(cfg: str, nc: int = 4) -> Model:
    """A model whose outputs depend on the input (He-normal convs: no vanishing signal), so a wrong
    exported graph (anchors, CSPMirror view widths) shows up as a difference."""
    model = Model(cfg, nc=nc)
    g = torch.Generator().manual_seed(0)
    for name, m in model.model.named_modules():
        if isinstance(m, nn.Conv2d) and not name.endswith("dfl.conv"):
            m.weight.data.normal_(0, (2.0 / m.weight[0].numel()) ** 0.5, generator=g)
    head = model.model.head
    if hasattr(head, "cv3"):
        for seq in head.cv3:
            seq[-1].bias.data[:] = 0.0
    model.model.eval()
    return model


def real_batch(b: int, h: int, w: int) -> torch.Tensor:
    """[b, 3, h, w] float RGB in [0, 1]: letterboxed drawings (shapes on a gradient), not noise."""
    out = []
    for k in range(b):
        img = np.zeros((90 + 10 * k, 120, 3), np.uint8)
        img[:] = np.linspace(30, 200, 120, dtype=np.uint8)[None, :, None]
        cv2.rectangle(img, (10 + 5 * k, 10), (60, 50), (0, 0, 255), -1)
        cv2.circle(img, (90, 60), 20, (0, 255, 0), -1)
        cv2.putText(img, "AB", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 0), 2)
        lb = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        out.append(cv2.dnn.blobFromImage(lb, 1 / 255.0, swapRB=True))
    return torch.from_numpy(np.concatenate(out))


def check_close(ref: np.ndarray, got: np.ndarray, task: str) -> float:
    """Scores / probabilities: max abs diff < 1e-4. Boxes (pixels): < 1e-4 absolute, or relative above 1."""
    assert got.shape == ref.shape
    diff = np.abs(got - ref)
    if task in ("detect", "segment"):
        assert diff[:, 4:].max() < 1e-4
        assert (diff[:, :4] <= 1e-4 * np.maximum(1, np.abs(ref[:, :4]))).all(), diff[:, :4].max()
    else:
        assert diff.max() < 1e-4
    return float(diff.max())


CASES = [("yolov8n.yaml", "detect"), ("yolov8n-mirror.yaml", "detect"), ("yolov8n-cls.yaml", "classify"),
         ("yolov8n-seg.yaml", "segment")]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("cfg, task", CASES)
def test_round_trip_two_sizes(tmp_path, cfg, task, fmt):
    model = signal_model(cfg)
    report = export_model(model.model, {"format": fmt, "imgsz": 64, "dynamic": True, "project": str(tmp_path), "name": "e"})
    assert report.path.is_file() and report.path.parent == tmp_path / "e"
    assert len(report.checks) == 2 and report.max_diff < 1e-3  # the exporter's own check ran at two shapes
    ref_net = fuse(model.model)  # the unfused model would agree too, up to float rounding
    if fmt == "onnx":
        sess = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
        meta = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
        assert json.loads(meta["names"]) == {str(k): v for k, v in model.names.items()} and meta["task"] == task

        def run(x):
            return sess.run(None, {"images": x.numpy()})
    else:
        files = {"metadata.json": ""}
        ts = torch.jit.load(str(report.path), _extra_files=files)
        assert json.loads(files["metadata.json"])["task"] == task

        def run(x):
            with torch.no_grad():
                return exporter.as_arrays(ts(x))
    g = torch.Generator().manual_seed(3)
    for x in (torch.rand(1, 3, 64, 64, generator=g), real_batch(1, 64, 64), torch.rand(2, 3, 96, 128, generator=g),
              real_batch(2, 96, 128)):
        with torch.no_grad():
            refs = exporter.as_arrays(ref_net(x))
        gots = run(x)
        assert len(gots) == len(refs) == (2 if task == "segment" else 1)  # segment: detections + prototypes
        check_close(refs[0], gots[0], task)
        if task == "segment":
            assert refs[1].shape == (x.shape[0], 32, x.shape[2] // 4, x.shape[3] // 4)
            check_close(refs[1], gots[1], "prototypes")
    if task in ("detect", "segment"):  # outputs really depend on the input (a broken graph could not pass by luck)
        with torch.no_grad():
            a, b = (exporter.as_arrays(ref_net(x))[0] for x in (real_batch(1, 64, 64), torch.rand(1, 3, 64, 64, generator=g)))
        assert np.abs(a - b)[:, :4].max() > 1e-2


def test_export_checkpoint_next_to_it_static(tmp_path, capsys):
    net = signal_model("yolov8n.yaml").model
    ckpt = tmp_path / "weights" / "best.pt"
    names = {0: "a", 1: "b", 2: "c", 3: "d"}
    save_checkpoint(ckpt, {"format": CKPT_FORMAT, "model_yaml": net.yaml_text, "model_cfg": {"nc": 4, "scale": "n"},
                           "names": names, "model": net.state_dict(), "train_args": {"imgsz": 64}})
    assert main(["export", f"model={ckpt}", "format=onnx", "opset=13"]) == 0
    out = tmp_path / "weights" / "best.onnx"
    graph = onnx.load(str(out))
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64] and graph.opset_import[0].version == 13  # imgsz from the checkpoint, static
    assert json.loads({p.key: p.value for p in graph.metadata_props}["names"])["2"] == "c"
    err = capsys.readouterr().err
    assert "Verified best.onnx" in err and "Export complete" in err


def test_simplify_without_simplifier_says_so(tmp_path, capsys, monkeypatch):
    real_find = exporter.importlib.util.find_spec
    monkeypatch.setattr(exporter.importlib.util, "find_spec",
                        lambda name: None if name in ("onnxslim", "onnxsim") else real_find(name))
    report = export_model(signal_model("yolov8n-cls.yaml").model, {"format": "onnx", "imgsz": 32, "simplify": True,
                                                             "project": str(tmp_path)})
    assert report.path.is_file() and not report.simplified
    assert "neither onnxslim nor onnxsim is installed" in capsys.readouterr().err


def test_mismatch_is_an_error(tmp_path, monkeypatch):
    ref = np.zeros((1, 8, 10), np.float32)
    assert compare_outputs(ref, ref + 5e-5, "x") == pytest.approx(5e-5)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        compare_outputs(ref, ref + 1e-3, "x")
    with pytest.raises(ExportError, match="shape"):
        compare_outputs(ref, ref[:, :4], "x")
    real = exporter.export_torchscript

    def broken(*args, **kwargs):  # an exported file that computes something else
        run = real(*args, **kwargs)
        return lambda x: [o + 1e-2 for o in run(x)]

    monkeypatch.setattr(exporter, "export_torchscript", broken)
    with pytest.raises(ExportError, match="not usable"):
        export_model(signal_model("yolov8n-cls.yaml").model, {"format": "torchscript", "imgsz": 32, "project": str(tmp_path),
                                                        "name": "bad"})
    assert not (tmp_path / "bad" / "yolov8n-cls.torchscript").exists()  # a file that fails its check is removed
    assert main(["export", "model=yolov8n-cls.yaml", "imgsz=32", "format=torchscript", f"project={tmp_path}"]) == 2


@pytest.mark.parametrize("cfg", ["yolov8n.yaml", "yolov8n-cls.yaml"])
def test_onnx_file_runs_in_opencv_dnn(tmp_path, cfg):
    """The exported ONNX file also runs in OpenCV's DNN module (cv2.dnn) with PyTorch's outputs."""
    model = signal_model(cfg)
    path = model.export(format="onnx", imgsz=64, project=str(tmp_path), name="e")
    net = cv2.dnn.readNetFromONNX(str(path))
    x = real_batch(1, 64, 64)
    net.setInput(x.numpy())
    got = net.forward()
    with torch.no_grad():
        ref = fuse(model.model).eval()(x).numpy()
    check_close(ref, got, model.task)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_nms_inside_the_graph(tmp_path, fmt):
    """nms=True: the file outputs [B, max_det, 6] rows equal to the model's own decoding + NMS."""
    from mirrordet.ops.nms import NMSSettings

    model = signal_model("yolov8n.yaml")
    report = export_model(model.model, {"format": fmt, "imgsz": 64, "nms": True, "conf": 0.05, "iou": 0.5,
                                        "max_det": 30, "batch": 2, "project": str(tmp_path), "name": "n"})
    x = real_batch(2, 64, 64)
    if fmt == "onnx":
        sess = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
        out = sess.run(None, {"images": x.numpy()})[0]
        meta = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
        assert json.loads(meta["nms"])["max_det"] == 30
    else:
        out = torch.jit.load(str(report.path))(x).numpy()
    assert out.shape == (2, 30, 6)
    with torch.no_grad():
        net = fuse(model.model).eval()
        dets = net.head.postprocess(net(x), NMSSettings(conf=0.05, iou=0.5, max_det=30, multi_label=False))
    for rows, d in zip(out, dets):
        rows = rows[rows[:, 4] > 0]
        want = d.rows().numpy()
        assert len(rows) == len(want) > 0
        assert np.allclose(exporter.sorted_rows(rows[None])[0], exporter.sorted_rows(want[None])[0], atol=1e-3)


def test_nms_export_refusals(tmp_path):
    with pytest.raises(Exception, match="fixed batch size"):
        export_model(signal_model("yolov8n.yaml").model, {"format": "onnx", "imgsz": 64, "nms": True, "dynamic": True,
                                                          "project": str(tmp_path), "name": "r"})
    with pytest.raises(Exception, match="a classifier has none"):
        export_model(signal_model("yolov8n-cls.yaml").model, {"format": "onnx", "imgsz": 64, "nms": True,
                                                              "project": str(tmp_path), "name": "r"})


@pytest.mark.parametrize("cfg, task", [("yolov8n.yaml", "detect"), ("yolov8n-cls.yaml", "classify"),
                                       ("yolov8n-seg.yaml", "segment")])
def test_openvino_round_trip(tmp_path, cfg, task):
    """format=openvino: an IR folder (xml, bin, metadata.json) checked against PyTorch at two input shapes."""
    pytest.importorskip("openvino")
    import openvino as ov

    model = signal_model(cfg)
    report = export_model(model.model, {"format": "openvino", "imgsz": 64, "dynamic": True, "project": str(tmp_path),
                                        "name": "ov"})
    assert report.path.parent == tmp_path / "ov" and report.path.name.endswith("_openvino_model")
    stem = report.path.name.removesuffix("_openvino_model")
    assert report.path.is_dir() and (report.path / f"{stem}.bin").is_file()
    assert len(report.checks) == 2 and report.max_diff < 1e-3
    assert json.loads((report.path / "metadata.json").read_text())["task"] == task
    compiled = ov.Core().compile_model(str(report.path / f"{stem}.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = real_batch(2, 96, 128)
    with torch.no_grad():
        refs = exporter.as_arrays(fuse(model.model).eval()(x))
    res = compiled(x.numpy())
    gots = [np.asarray(res[o]) for o in compiled.outputs]
    assert len(gots) == len(refs)
    check_close(refs[0], gots[0], task)


def test_openvino_missing_is_a_clear_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(Exception, match="pip install openvino"):
        export_model(signal_model("yolov8n.yaml").model, {"format": "openvino", "imgsz": 64, "project": str(tmp_path),
                                                          "name": "x"})
