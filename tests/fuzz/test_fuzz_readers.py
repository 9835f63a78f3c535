"""Fuzz targets for the file readers: whatever the bytes or the structure, the dataset-YAML,
COCO-JSON, CIFAR-batch and checkpoint readers either succeed or raise a project error, and
each input is answered within a bounded time."""

from __future__ import annotations

import io
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirrordet.data.cifar import read_cifar_batch
from mirrordet.data.coco import coco_to_records, read_coco_json
from mirrordet.data.dataset_yaml import load_dataset_yaml
from mirrordet.engine.checkpoint import CKPT_FORMAT, save_checkpoint
from mirrordet.engine.weights import load_weights
from mirrordet.utils.errors import MirrordetError

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SECONDS_PER_INPUT = 5.0  # generous for a loaded 2-core machine; a hang is minutes

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=False),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """Overwrite bytes at (position mod len, value) pairs, then optionally truncate."""
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    return bytes(b[:cut] if cut is not None else b)


byte_edits = st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=6)
cuts = st.one_of(st.none(), st.integers(0, 4000))


def _only_project_errors(fn, *args: Any) -> None:
    t = time.perf_counter()
    try:
        fn(*args)
    except MirrordetError:
        pass
    assert time.perf_counter() - t < SECONDS_PER_INPUT


# ---- dataset YAML ---------------------------------------------------------------------------
DATASET_KEYS = ["path", "train", "val", "test", "names", "nc", "task", "defaults", "download", "kpt_shape"]
dataset_docs = st.dictionaries(st.sampled_from(DATASET_KEYS), json_values, max_size=6)


@FUZZ
@given(doc=dataset_docs, edits=byte_edits, cut=cuts)
def test_dataset_yaml_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, doc, edits, cut) -> None:
    monkeypatch.setenv("MIRRORDET_CACHE", str(tmp_path / "cache"))
    (tmp_path / "images").mkdir(exist_ok=True)
    path = tmp_path / "d.yaml"
    text = yaml.safe_dump(doc).encode()
    for data in (text, _mutate(text, edits, cut)):
        path.write_bytes(data)
        _only_project_errors(load_dataset_yaml, path)


# ---- COCO JSON ------------------------------------------------------------------------------
image_entries = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(0, 4), json_values)},
    optional={"file_name": st.one_of(st.just("a.png"), json_values), "width": st.one_of(st.just(8), json_values),
              "height": st.one_of(st.just(8), json_values)})
annotation_entries = st.fixed_dictionaries(
    {}, optional={"id": st.one_of(st.integers(0, 4), json_values), "image_id": st.one_of(st.integers(0, 4), json_values),
                  "category_id": st.one_of(st.integers(0, 2), json_values),
                  "bbox": st.one_of(st.lists(st.floats(-5, 20), min_size=4, max_size=4), json_values),
                  "iscrowd": st.one_of(st.integers(0, 1), json_values)})
coco_docs = st.fixed_dictionaries({
    "images": st.one_of(st.lists(image_entries, max_size=4), json_values),
    "categories": st.one_of(st.lists(st.fixed_dictionaries({"id": st.integers(0, 2)},
                                                           optional={"name": json_values}), max_size=3), json_values),
    "annotations": st.one_of(st.lists(st.one_of(annotation_entries, json_values), max_size=6), json_values),
})


def _read_and_convert(path: Path) -> None:
    coco_to_records(read_coco_json(path), path.parent)


@FUZZ
@given(doc=coco_docs, edits=byte_edits, cut=cuts)
def test_coco_json_reader(tmp_path: Path, doc, edits, cut) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    path = tmp_path / "instances.json"
    text = json.dumps(doc).encode()
    for data in (text, _mutate(text, edits, cut)):
        path.write_bytes(data)
        _only_project_errors(_read_and_convert, path)


# ---- CIFAR batches --------------------------------------------------------------------------
def _cifar_bytes(n: int, protocol: int) -> bytes:
    d = {b"batch_label": b"fuzz", b"labels": list(range(n)), b"data": np.zeros((n, 3072), np.uint8),
         b"filenames": [b"x.png"] * n}
    return pickle.dumps(d, protocol=protocol)


@FUZZ
@given(payload=json_values, n=st.integers(0, 3), protocol=st.sampled_from([2, 4, 5]), edits=byte_edits, cut=cuts)
def test_cifar_reader(tmp_path: Path, payload, n, protocol, edits, cut) -> None:
    path = tmp_path / "data_batch_1"
    good = _cifar_bytes(n, protocol)
    structured = pickle.dumps({b"data": payload, b"labels": payload}, protocol=protocol)
    for data in (_mutate(good, edits, cut), structured, b"\x80" + _mutate(good, edits, None)[1:]):
        path.write_bytes(data)
        _only_project_errors(read_cifar_batch, path)


# ---- checkpoints ----------------------------------------------------------------------------
TINY = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [8, 3, 2]]\nhead:\n  - [-1, 1, Classify, [nc]]\n"


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from mirrordet.nn.graph import ModelGraph

    net = ModelGraph(TINY, source="tiny.yaml")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"format": CKPT_FORMAT, "model_yaml": TINY, "model_cfg": {"nc": 2},
                           "names": ["a", "b"], "model": net.state_dict(), "epoch": 1})
    load_weights(path)  # the unmutated file loads
    return path.read_bytes()


@FUZZ
@given(edits=byte_edits, cut=cuts, fields=st.dictionaries(
    st.sampled_from(["format", "model_yaml", "model_cfg", "names", "model", "epoch"]), json_values, max_size=3))
def test_checkpoint_reader(tmp_path: Path, checkpoint_bytes: bytes, edits, cut, fields) -> None:
    path = tmp_path / "fuzz.pt"
    path.write_bytes(_mutate(checkpoint_bytes, edits, cut))
    _only_project_errors(load_weights, path)
    # well-formed files with wrong contents: each field replaced by arbitrary plain data
    ckpt = torch.load(io.BytesIO(checkpoint_bytes), weights_only=True)
    ckpt.update(fields)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    path.write_bytes(buf.getvalue())
    _only_project_errors(load_weights, path)


# ---- Ultralytics checkpoints (pickled model objects, read as inert data) ---------------------
@FUZZ
@given(edits=byte_edits, cut=cuts, whole_file=st.booleans())
def test_ultralytics_checkpoint_reader(tmp_path: Path, ultralytics_like_file, edits, cut, whole_file) -> None:
    import zipfile

    src = tmp_path / "u.pt"
    if not src.exists():
        (tmp_path / "tiny.yaml").write_text(TINY)
        ultralytics_like_file(src, model=str(tmp_path / "tiny.yaml"), nc=2, scale=None)
        load_weights(src)  # the unmutated file loads
    path = tmp_path / "fuzz.pt"
    if whole_file:
        path.write_bytes(_mutate(src.read_bytes(), edits, cut))
    else:  # the pickle itself mutated inside an intact archive
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)
                zout.writestr(info, _mutate(data, edits, cut) if info.filename.endswith("data.pkl") else data)
    _only_project_errors(load_weights, path)
