"""Prediction: sources, outputs (annotated images/video, YOLO txt, COCO JSON), Result objects, bad input."""

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from mirrordet.cli import main
from mirrordet.data.preprocess import letterbox_rect
from mirrordet.engine.checkpoint import CKPT_FORMAT, save_checkpoint
from mirrordet.engine.results import Result, plural
from mirrordet.engine.sources import iter_frames, resolve_source
from mirrordet.model import Model
from mirrordet.nn.graph import build_model
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings
from mirrordet.utils.errors import ConfigError, DatasetError

NAMES = {0: "circle", 1: "square", 2: "triangle", 3: "bus"}


def signal_init(model: nn.Module, cls_gain: float = 100.0, cls_bias: float = -3.0) -> nn.Module:
    """Weights that make a random model's outputs depend on the image (He-normal convs, no vanishing
    signal), with class logits scaled so that some scores pass conf=0.25. Eval mode."""
    g = torch.Generator().manual_seed(0)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and not name.endswith("dfl.conv"):
            m.weight.data.normal_(0, (2.0 / m.weight[0].numel()) ** 0.5, generator=g)
    if hasattr(model.head, "cv3"):
        for seq in model.head.cv3:
            seq[-1].weight.data *= cls_gain
            seq[-1].bias.data[:] = cls_bias
    return model.eval()


@pytest.fixture(scope="module")
def det_ckpt(tmp_path_factory):
    """A yolov8n checkpoint (4 classes, imgsz 64) in the documented layout, weights from signal_init."""
    net = signal_init(build_model("yolov8n.yaml", nc=4))
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, {"format": CKPT_FORMAT, "model_yaml": net.yaml_text, "model_cfg": {"nc": 4, "scale": "n"},
                           "names": NAMES, "model": net.state_dict(), "train_args": {"imgsz": 64}})
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder with 4 images of different sizes and formats (shapes on noise)."""
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.jpg": (64, 80), "b.png": (100, 60), "c.jpg": (48, 48), "d.bmp": (90, 120)}.items():
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.rectangle(img, (5, 5), (w // 2, h // 2), (0, 0, 255), -1)
        cv2.circle(img, (3 * w // 4, 3 * h // 4), min(h, w) // 5, (0, 255, 0), -1)
        cv2.imwrite(str(d / name), img)
    return d


def _box_lists(results):
    return [r.boxes.data for r in results]


def test_cli_folder_writes_annotations_labels_json(tmp_path, det_ckpt, images, capsys):
    (tmp_path / "src").mkdir()
    for f in images.iterdir():
        (tmp_path / "src" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "src" / "empty.jpg").write_bytes(b"")  # zero-byte image: reported, the rest still processed
    (tmp_path / "src" / "notes.md").write_text("not an image")  # unknown types inside a folder are skipped
    rc = main(["predict", f"model={det_ckpt}", f"source={tmp_path / 'src'}", "save_txt=True", "save_conf=True",
               f"project={tmp_path / 'runs'}", "name=p", "conf=0.25"])
    assert rc == 0
    err = capsys.readouterr().err
    out = tmp_path / "runs" / "p"
    assert {p.name for p in out.iterdir()} == {"a.jpg", "b.png", "c.jpg", "d.bmp", "labels", "predictions.json"}
    for name in ("a.jpg", "b.png", "c.jpg", "d.bmp"):
        ann, src = cv2.imread(str(out / name)), cv2.imread(str(images / name))
        assert ann.shape == src.shape
    assert "empty.jpg" in err and "0 bytes" in err
    assert err.count("image ") >= 4 and "Speed:" in err and "preprocess" in err and "ms" in err
    n_lines = 0
    for txt in sorted((out / "labels").iterdir()):
        for line in txt.read_text().splitlines():
            parts = line.split()
            assert len(parts) == 6
            c, vals = int(parts[0]), [float(v) for v in parts[1:]]
            assert 0 <= c < 4 and all(0.0 <= v <= 1.0 for v in vals) and vals[4] >= 0.25
            n_lines += 1
    assert n_lines > 0
    records = json.loads((out / "predictions.json").read_text())
    assert len(records) == n_lines
    r = records[0]
    assert set(r) == {"image_id", "file_name", "category_id", "bbox", "score"} and len(r["bbox"]) == 4
    assert r["bbox"][2] >= 0 and r["bbox"][3] >= 0 and 0.25 <= r["score"] <= 1
    # every logged detection count matches the label files
    assert any(n in err for n in ("circle", "square", "triangle", "bus"))


def test_folder_equals_one_by_one_and_arrays(det_ckpt, images):
    model = Model(det_ckpt)
    files = sorted(str(p) for p in images.iterdir())
    together = model.predict(str(images), batch=3, verbose=False)
    assert [r.path for r in together] == files
    single = [model.predict(f, verbose=False)[0] for f in files]
    arrays = model.predict([cv2.imread(f) for f in files], verbose=False)
    assert sum(len(r) for r in single) > 0
    for a, b, c in zip(together, single, arrays):
        assert a.orig_shape == b.orig_shape == c.orig_shape
        assert a.boxes.data.shape == b.boxes.data.shape == c.boxes.data.shape
        torch.testing.assert_close(a.boxes.data, b.boxes.data, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(c.boxes.data, b.boxes.data, atol=1e-3, rtol=1e-4)


def test_glob_and_txt_list_sources(tmp_path, det_ckpt, images):
    model = Model(det_ckpt)
    lst = tmp_path / "list.txt"
    lst.write_text(f"{images / 'a.jpg'}\n# comment\n{images / 'c.jpg'}\n{tmp_path / 'missing.jpg'}\n")
    from_txt = model.predict(str(lst), verbose=False)
    from_glob = model.predict(str(images / "*.jpg"), verbose=False)
    assert [r.path for r in from_txt] == [r.path for r in from_glob] == [str(images / "a.jpg"), str(images / "c.jpg")]
    for a, b in zip(from_txt, from_glob):
        torch.testing.assert_close(a.boxes.data, b.boxes.data)


def test_result_api(det_ckpt, images):
    r = Model(det_ckpt).predict(str(images / "d.bmp"), verbose=False, conf=0.05)[0]
    b = r.boxes
    assert len(b) > 0 and r.orig_shape == (90, 120) and r.names == NAMES
    assert b.xyxy.shape == (len(b), 4) and b.conf.shape == b.cls.shape == (len(b),)
    assert (b.xyxy[:, 2] >= b.xyxy[:, 0]).all() and (b.xyxy[:, [0, 2]] <= 120).all() and (b.xyxy[:, [1, 3]] <= 90).all()
    torch.testing.assert_close(b.xywhn[:, 2] * 120, b.xyxy[:, 2] - b.xyxy[:, 0])
    assert (b.conf >= 0.05).all() and ((b.cls >= 0) & (b.cls < 4)).all()
    rows = json.loads(r.to_json())
    assert len(rows) == len(b) and rows[0]["name"] == NAMES[rows[0]["class"]]
    plotted = r.plot()
    assert plotted.shape == r.orig_img.shape and plotted.dtype == np.uint8 and not np.array_equal(plotted, r.orig_img)
    assert r.verbose().split(", ")[0][0].isdigit()
    assert set(r.speed) == {"preprocess", "inference", "postprocess"}


def test_conf_classes_max_det_agnostic(det_ckpt, images):
    model = Model(det_ckpt)
    src = str(images / "d.bmp")
    base = model.predict(src, conf=0.05, verbose=False)[0]
    only = model.predict(src, conf=0.05, classes=[int(base.boxes.cls[0])], verbose=False)[0]
    assert len(only) > 0 and (only.boxes.cls == base.boxes.cls[0]).all()
    assert len(model.predict(src, conf=0.05, max_det=2, verbose=False)[0]) == 2
    agn = model.predict(src, conf=0.05, agnostic_nms=True, verbose=False)[0]
    assert len(agn) <= len(base)
    strict = model.predict(src, conf=0.9, verbose=False)[0]
    assert len(strict) <= len(base) and (strict.boxes.conf >= 0.9).all()


def _write_video(path, n, size=(96, 64)):
    fourcc = "mp4v" if path.suffix == ".mp4" else "MJPG"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, size)
    assert vw.isOpened(), f"this OpenCV build cannot write {fourcc}"
    rng = np.random.default_rng(1)
    for i in range(n):
        frame = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        cv2.rectangle(frame, (4 + 4 * i, 4), (40 + 4 * i, 40), (255, 255, 255), -1)
        vw.write(frame)
    vw.release()


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_frames_stride_and_annotated_video(tmp_path, det_ckpt, suffix):
    video = tmp_path / f"clip{suffix}"
    _write_video(video, 7)
    project = tmp_path / "runs"
    results = Model(det_ckpt).predict(str(video), vid_stride=2, save=True, save_txt=True, project=str(project),
                                      name="v", verbose=False)
    assert [r.frame for r in results] == [0, 2, 4, 6]
    assert all(r.orig_shape == (64, 96) for r in results)
    out = project / "v" / "clip.mp4"
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    ok, frame = cap.read()
    assert ok and frame.shape == (64, 96, 3)
    cap.release()
    assert sorted(p.name for p in (project / "v" / "labels").iterdir()) == [f"clip_{i}.txt" for i in (0, 2, 4, 6)]


def test_stream_is_lazy_generator(det_ckpt, images):
    gen = Model(det_ckpt).predict(str(images), stream=True, verbose=False)
    first = next(gen)
    assert isinstance(first, Result) and first.path.endswith("a.jpg")
    assert len(list(gen)) == 3


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.jpg", "does not exist"),
    (lambda d: _write(d / "x.xyz", b"?"), "unknown file type"),
    (lambda d: _write(d / "bad.mp4", b"not a video at all"), "cannot open video"),
    (lambda d: _write(d / "zero.png", b""), "0 bytes"),
    (lambda d: _write(d / "junk.jpg", b"\x00garbage" * 10), "not a readable image"),
    (lambda d: str(d / "*.tif"), "matches no images"),
])
def test_bad_sources_give_one_clear_line(tmp_path, det_ckpt, capsys, make, message):
    src = make(tmp_path)
    assert main(["predict", f"model={det_ckpt}", f"source={src}", f"project={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("mirrordet predict: error:") and message in last and str(src) in last
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.jpg"))


def test_missing_source_and_python_errors(det_ckpt):
    model = Model(det_ckpt)
    with pytest.raises(DatasetError, match="nope.png"):
        model.predict("nope.png")
    with pytest.raises(DatasetError, match=r"expected an image array"):
        model.predict(np.zeros((4, 4, 7), np.uint8))
    assert main(["predict", f"model={det_ckpt}"]) == 2  # no source


def test_classifier_top5(tmp_path, images, capsys):
    model = Model("yolov8n-cls.yaml", nc=6)
    signal_init(model.model)
    # the linear layer too, or its global-RNG init (whatever ran before) can leave nearly equal probabilities
    model.model.head.linear.weight.data.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    model.model.names = {i: f"k{i}" for i in range(6)}
    res = model.predict(str(images), imgsz=64, save=True, save_txt=True, save_json=True, project=str(tmp_path),
                        name="c")
    assert len(res) == 4
    for r in res:
        p = r.probs
        assert r.boxes is None and p.data.shape == (6,) and abs(float(p.data.sum()) - 1) < 1e-4
        assert len(p.top5) == 5 and p.top1 == p.top5[0] and (p.top5conf[:-1] >= p.top5conf[1:]).all()
        assert r.verbose().count(", ") == 4 and r.verbose().startswith(f"k{p.top1} ")
    lines = (tmp_path / "c" / "labels" / "a.txt").read_text().splitlines()
    assert len(lines) == 5 and lines[0].split()[1] == f"k{res[0].probs.top1}"
    assert len(json.loads((tmp_path / "c" / "predictions.json").read_text())) == 20
    assert (tmp_path / "c" / "a.jpg").is_file()
    err = capsys.readouterr().err
    assert f"image 1/4 {images / 'a.jpg'}: 64x80 k{res[0].probs.top1} " in err and "Speed:" in err
    assert not torch.allclose(res[0].probs.data, res[3].probs.data, atol=1e-4)  # image-dependent


def test_sources_and_letterbox_units(tmp_path, images):
    items = resolve_source([str(images / "a.jpg"), np.zeros((10, 20), np.uint8)])
    frames = list(iter_frames(items))
    assert frames[0].image.shape == (64, 80, 3) and frames[1].image.shape == (10, 20, 3) and frames[1].array
    img = np.zeros((810, 1080, 3), np.uint8)
    out, ((gh, _), (pw, ph)) = letterbox_rect(img, 640, 32)
    assert out.shape == (480, 640, 3) and pw == 0 and ph == 0 and abs(gh - 480 / 810) < 1e-3
    out, (_, (pw, ph)) = letterbox_rect(np.zeros((100, 1000, 3), np.uint8), 640, 32)
    assert out.shape == (64, 640, 3) and ph == 0
    assert plural("bus", 2) == "buses" and plural("person", 2) == "persons" and plural("bus", 1) == "bus"


def test_predict_passes_its_settings_to_the_heads_postprocess(images):
    """The head decodes its own output with the predictor's NMS settings; a head that is not
    traceable is predicted eagerly and refused by export."""
    model = Model("yolov8n.yaml", nc=4)
    rows = torch.tensor([[2.0, 2.0, 30.0, 30.0, 0.9, 1.0], [40.0, 40.0, 60.0, 60.0, 0.7, 1.0]])
    calls: list[NMSSettings] = []

    def postprocess(preds, nms):
        calls.append(nms)
        return [Detections.from_rows(rows.clone()) for _ in range(preds.shape[0])]

    model.model.head.postprocess = postprocess
    model.model.head.traceable = False
    r = model.predict(str(images / "c.jpg"), imgsz=64, conf=0.3, max_det=7, verbose=False)[0]
    assert (calls[0].conf, calls[0].iou, calls[0].max_det, calls[0].multi_label) == (0.3, 0.7, 7, False)
    assert len(r) == 2 and r.boxes.cls.tolist() == [1.0, 1.0]
    assert not model._predict_cache["runner"][1].trace_enabled
    model.predict(str(images / "c.jpg"), imgsz=64, classes=[1], agnostic_nms=True, verbose=False)
    assert calls[-1].classes == (1,) and calls[-1].agnostic
    with pytest.raises(ConfigError, match="is not traceable"):
        model.export(format="torchscript", imgsz=64)
