"""Malformed dataset and run files reach the CLI as one line (exit 2) naming the file and the fault:
COCO tables, image lists, CIFAR batches, and the files `compare runs=` reads."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

Maker = Callable[[Path], str]


def _coco(images: list[Any], categories: list[Any] | None = None, raw: bytes | None = None) -> Maker:
    """A detection dataset YAML whose train and val splits are one COCO JSON."""
    def make(tmp: Path) -> str:
        (tmp / "images").mkdir(exist_ok=True)
        ann = tmp / "instances.json"
        cats = categories if categories is not None else [{"id": 1, "name": "a"}]
        ann.write_bytes(raw if raw is not None else json.dumps(
            {"images": images, "categories": cats, "annotations": []}).encode())
        split = "{images: images, annotations: instances.json}"
        (tmp / "d.yaml").write_text(f"path: {tmp}\ntrain: {split}\nval: {split}\nnames: [a]\n")
        return str(tmp / "d.yaml")
    return make


def _txt_list(content: bytes) -> Maker:
    def make(tmp: Path) -> str:
        (tmp / "train.txt").write_bytes(content)
        (tmp / "d.yaml").write_text(f"path: {tmp}\ntrain: train.txt\nval: train.txt\nnames: [a]\n")
        return str(tmp / "d.yaml")
    return make


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch payload-ran",))  # relative: the test runs in tmp_path


def _nested_lists(levels: int = 40) -> list:
    node: list = [0]
    for _ in range(levels):
        node = [node, node]  # shared in the pickle memo: a few hundred bytes, 2**40 leaves
    return node


def _cifar(payload: Any = None, raw: bytes | None = None) -> Maker:
    """A classification dataset YAML whose splits are one CIFAR batch file."""
    def make(tmp: Path) -> str:
        batch = tmp / "data_batch_1"
        batch.write_bytes(raw if raw is not None else pickle.dumps(payload, protocol=2))
        (tmp / "d.yaml").write_text(f"path: {tmp}\ntask: classify\ntrain: data_batch_1\nval: data_batch_1\n"
                                    "names: [a, b]\n")
        return str(tmp / "d.yaml")
    return make


def _run_folder(**files: bytes) -> Maker:
    """Two copies of a finished-looking run folder for `compare runs=`; ``files`` overrides its contents."""
    def make(tmp: Path) -> str:
        run = tmp / "run"
        (run / "weights").mkdir(parents=True)
        contents = {"args.yaml": b"imgsz: 64\n", "results.csv": b"epoch,loss\n1,0.5\n", "metrics.json": b"{}",
                    "weights/best.pt": b""} | {k.replace("__", "/"): v for k, v in files.items()}
        for name, data in contents.items():
            (run / name).write_bytes(data)
        return f"{run},{run}"
    return make


IMAGE = {"file_name": "x.jpg", "width": 8, "height": 8}
GOOD_DATA = np.zeros((2, 3072), np.uint8)
# (id, mode, maker, expected substring of the one error line)
CASES: list[tuple[str, str, Maker, str]] = [
    ("coco-duplicate-image-id", "train", _coco([IMAGE | {"id": 3}, IMAGE | {"id": 3}]),
     "'images' ids must be unique; repeated: 3"),
    ("coco-duplicate-category-id", "train", _coco([IMAGE | {"id": 1}], [{"id": 1}, {"id": 1}]),
     "'categories' ids must be unique"),
    ("coco-image-without-id", "train", _coco([IMAGE]), "missing or non-integer 'id'"),
    ("coco-image-not-object", "train", _coco(["x.jpg"]), "'images' entries must be objects"),
    ("coco-width-string", "train", _coco([IMAGE | {"id": 1, "width": "8"}]), "not a positive integer"),
    ("coco-not-utf8", "train", _coco([], raw=b'{"images": ["\xff"]}'), "not UTF-8"),
    ("coco-not-json", "train", _coco([], raw=b'{"images": '), "not readable JSON"),
    ("txt-list-not-utf8", "train", _txt_list(b"images/\xff\xfe.jpg\n"), "train.txt is not UTF-8"),
    ("txt-list-nul", "train", _txt_list(b"a.jpg\nb\x00.jpg\n"), "train.txt:2 holds a NUL byte"),
    ("cifar-runs-code", "train", _cifar({b"data": _RunsCode(), b"labels": [0]}), "system is not allowed"),  # posix.system
    ("cifar-nested-lists", "train", _cifar({b"data": GOOD_DATA, b"labels": _nested_lists()}), "data_batch_1"),
    ("cifar-truncated", "train", _cifar(raw=pickle.dumps({b"data": GOOD_DATA, b"labels": [0, 1]})[:-30]),
     "data_batch_1"),
    ("cifar-labels-strings", "train", _cifar({b"data": GOOD_DATA, b"labels": ["a", "b"]}), "data_batch_1"),
    ("compare-metrics-not-utf8", "compare", _run_folder(**{"metrics.json": b'{"\xff": 1}'}),
     "metrics.json: not UTF-8"),
    ("compare-metrics-not-object", "compare", _run_folder(**{"metrics.json": b"[1, 2]"}),
     "metrics.json: expected a JSON object"),
    ("compare-results-not-utf8", "compare", _run_folder(**{"results.csv": b"epoch\n\xff\n"}),
     "results.csv: not a readable results.csv"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_files_are_one_line_errors(case, one_line_error, tmp_path, monkeypatch):
    _, mode, make, contains = case
    monkeypatch.chdir(tmp_path)  # runs/ would be created here
    target = make(tmp_path)
    argv = ["compare", f"runs={target}"] if mode == "compare" else ["train", f"data={target}", "epochs=1",
                                                                     "imgsz=32", "batch=2", "workers=0"]
    if mode == "train" and "cifar" in case[0]:
        argv.append("model=yolov8n-cls.yaml")
    one_line_error(argv, contains=contains, after_log=True)
    assert not (tmp_path / "payload-ran").exists()
