"""The label cache: any byte of a file name survives a round trip; damaged arrays are rebuilt."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrordet.data import labels as labels_mod
from mirrordet.data.label_cache import files_fingerprint, load_record_cache, save_record_cache
from mirrordet.data.labels import label_cache_path, load_yolo_records

ODD_NAMES = ["new\nline", "tab\there", "cr\rname", "space name", "ünï", "pipe|1|2"]
if os.name == "posix":
    ODD_NAMES.append(os.fsdecode(b"latin1-\xe9"))  # not UTF-8: decoded with surrogateescape


def _write(folder: Path, stem: str, label: str) -> Path:
    img = folder / "images" / "train" / f"{stem}.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.full((16, 24, 3), 80, np.uint8))
    assert ok
    img.write_bytes(buf.tobytes())  # cv2.imwrite refuses some of these names
    lab = folder / "labels" / "train" / f"{stem}.txt"
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_text(label)
    return img


def test_names_with_any_byte_survive_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [_write(tmp_path, stem, f"{k % 2} 0.5 0.5 0.2 0.3\n") for k, stem in enumerate(ODD_NAMES)]
    images = tmp_path / "images" / "train"
    first, rep1 = load_yolo_records(images, nc=2)
    assert sorted(r["im_file"] for r in first) == sorted(str(f.absolute()) for f in files)
    assert label_cache_path(images).is_file()
    parsed: list[Path] = []
    monkeypatch.setattr(labels_mod, "parse_label_file", lambda p, nc: parsed.append(p))
    for _ in range(2):  # the second and third loads both come from the cache
        again, rep = load_yolo_records(images, nc=2)
        assert parsed == []
        assert [r["im_file"] for r in again] == [r["im_file"] for r in first]
        assert [r["cls"].tolist() for r in again] == [r["cls"].tolist() for r in first]
        assert rep.to_dict() == rep1.to_dict()


def test_fingerprint_cannot_be_confused_by_separators(tmp_path: Path) -> None:
    assert files_fingerprint(["a\nb"]) != files_fingerprint(["a", "b"])
    assert files_fingerprint(["a|1|2"]) != files_fingerprint(["a"], extra="1|2")
    assert files_fingerprint(["a\x00b"]) == files_fingerprint(["a\x00b"])  # a NUL name hashes as missing


def _records() -> list[dict]:
    return [{"im_file": "x\ny.png", "shape": (4, 5), "cls": np.array([1]), "bboxes": np.full((1, 4), 0.5, np.float32)}]


def test_roundtrip_and_inconsistent_arrays_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "c.cache"
    assert save_record_cache(path, "k", _records(), {"ok": 1})
    records, report = load_record_cache(path, "k")
    assert records[0]["im_file"] == "x\ny.png" and report == {"ok": 1}
    assert load_record_cache(path, "other key") is None
    with np.load(path, allow_pickle=False) as z:
        arrays = dict(z)
    arrays["im_file_lengths"] = np.array([3], np.int64)  # lengths that do not add up
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    assert load_record_cache(path, "k") is None
    arrays["im_file_lengths"] = np.array([7], np.int64)
    arrays["counts"] = np.array([2], np.int64)  # more boxes claimed than stored
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    assert load_record_cache(path, "k") is None
