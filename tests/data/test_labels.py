"""YOLO txt labels: parsing, verification, bad-row reporting, the label cache, image lists."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrordet.data import labels as labels_mod
from mirrordet.data.image_files import img2label_path, list_images
from mirrordet.data.labels import label_cache_path, load_yolo_records, parse_label_file
from mirrordet.utils.log import LOGGER


@pytest.fixture()
def logs(caplog: pytest.LogCaptureFixture):
    """Capture the package logger even when it does not propagate to the root logger."""
    LOGGER.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="mirrordet")
    yield caplog
    LOGGER.removeHandler(caplog.handler)


def _img(path: Path, h: int = 20, w: int = 30) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))


def _label(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_img2label_path_replaces_last_images_component() -> None:
    assert img2label_path("/d/images/train/a.jpg") == Path("/d/labels/train/a.txt")
    assert img2label_path("/images/x/images/val/b.PNG") == Path("/images/x/labels/val/b.txt")
    assert img2label_path("/d/imgs/c.jpg") == Path("/d/imgs/c.txt")
    assert img2label_path("/d/images/images.jpg") == Path("/d/labels/images.txt")


def test_parse_label_file_rows(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text(
        "0 0.5 0.5 0.2 0.2\n"  # ok
        "1 0.5 0.5 0.2\n"  # 4 columns
        "4 0.5 0.5 0.2 0.2\n"  # class out of range (nc=3)
        "-1 0.5 0.5 0.2 0.2\n"  # negative class
        "1.5 0.5 0.5 0.2 0.2\n"  # non-integer class
        "2 nan 0.5 0.2 0.2\n"  # non-finite
        "2 0.95 0.5 0.2 0.2\n"  # outside the image
        "2 0.5 0.5 0.0 0.2\n"  # zero size
        "0 0.5 0.5 0.2 0.2\n"  # duplicate of row 1
        "\n"
        "2 0.1 0.1 0.2004 0.2\n"  # exceeds by 2e-4: clipped and kept
        "1 abc 0.5 0.2 0.2\n",  # not a number
        encoding="utf-8",
    )
    p = parse_label_file(f, nc=3)
    assert not p.missing
    assert p.cls.tolist() == [0, 2] and p.cls.dtype == np.int64
    assert p.bboxes.dtype == np.float32 and p.bboxes.shape == (2, 4)
    x1 = p.bboxes[1, 0] - p.bboxes[1, 2] / 2
    assert x1 >= 0 and abs(x1) < 1e-6  # clipped to the border
    rows = {row: kind for kind, row in p.problems}
    assert sorted(rows) == [2, 3, 4, 5, 6, 7, 8, 9, 12]
    assert "columns" in rows[2] and "class" in rows[3] and "class" in rows[4] and "class" in rows[5]
    assert "non-finite" in rows[6] and "outside" in rows[7] and "zero-size" in rows[8]
    assert "duplicate" in rows[9] and "number" in rows[12]


def test_parse_missing_and_empty(tmp_path: Path) -> None:
    assert parse_label_file(tmp_path / "none.txt", 2).missing
    (tmp_path / "e.txt").write_text("")
    p = parse_label_file(tmp_path / "e.txt", 2)
    assert not p.missing and p.cls.shape == (0,) and p.bboxes.shape == (0, 4) and not p.problems


def _dataset(root: Path) -> Path:
    imgs = root / "images" / "train"
    _img(imgs / "good.png", 20, 30)
    _label(root / "labels" / "train" / "good.txt", "0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.1 0.2\n")
    _img(imgs / "bg_empty.png")
    _label(root / "labels" / "train" / "bg_empty.txt", "")
    _img(imgs / "bg_nolabel.png")
    _img(imgs / "mixed.png", 40, 10)
    _label(
        root / "labels" / "train" / "mixed.txt", "0 0.5 0.5 0.5 0.5\n7 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.5 0.5\n"
    )
    (imgs / "corrupt.jpg").write_bytes(b"not an image at all")
    _label(root / "labels" / "train" / "corrupt.txt", "0 0.5 0.5 0.5 0.5\n")
    (imgs / "empty.png").write_bytes(b"")
    return imgs


def test_load_records_counts_and_reports(tmp_path: Path, logs) -> None:
    imgs = _dataset(tmp_path)
    records, rep = load_yolo_records(imgs, nc=2, prefix="train: ")
    by_name = {Path(r["im_file"]).name: r for r in records}
    assert sorted(by_name) == ["bg_empty.png", "bg_nolabel.png", "good.png", "mixed.png"]
    good = by_name["good.png"]
    assert good["shape"] == (20, 30)
    assert good["cls"].tolist() == [0, 1]
    np.testing.assert_allclose(good["bboxes"], [[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.1, 0.2]], atol=1e-6)
    assert by_name["mixed.png"]["cls"].tolist() == [0] and by_name["mixed.png"]["shape"] == (40, 10)
    assert by_name["bg_nolabel.png"]["cls"].shape == (0,) and by_name["bg_nolabel.png"]["bboxes"].shape == (
        0,
        4,
    )
    assert rep.images == 6 and rep.ok == 4 and rep.n_corrupt == 2
    assert rep.backgrounds == 2 and rep.missing_labels == 1 and rep.instances == 3 and rep.n_bad_rows == 2
    assert any("mixed.txt:2" in e for e in rep.examples["class out of range [0, 2)"])
    assert rep.examples["duplicate row"] == ["mixed.txt:3"]
    text = "\n".join(r.getMessage() for r in logs.records)
    assert "corrupt.jpg" in text and "empty.png" in text and "mixed.txt:2" in text and "mixed.txt:3" in text
    assert any(r.levelno == logging.WARNING for r in logs.records)


def test_cache_reused_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    imgs = _dataset(tmp_path)
    calls: list[Path] = []
    real = labels_mod.parse_label_file

    def counting(path, nc, segments=False):
        calls.append(Path(path))
        return real(path, nc, segments)

    monkeypatch.setattr(labels_mod, "parse_label_file", counting)
    r1, rep1 = load_yolo_records(imgs, nc=2)
    assert len(calls) == 4  # readable images only
    cache = label_cache_path(imgs)
    assert cache == tmp_path / "labels" / "train.mirrordet.cache" and cache.is_file()
    with np.load(cache, allow_pickle=False) as z:  # plain arrays, no pickle
        assert "key" in z.files
    calls.clear()
    r2, rep2 = load_yolo_records(imgs, nc=2)
    assert calls == []  # nothing re-parsed
    assert [r["im_file"] for r in r2] == [r["im_file"] for r in r1]
    for a, b in zip(r1, r2):
        assert a["shape"] == b["shape"]
        np.testing.assert_array_equal(a["cls"], b["cls"])
        np.testing.assert_array_equal(a["bboxes"], b["bboxes"])
    assert rep2.to_dict() == rep1.to_dict()
    # a changed label file invalidates the cache
    _label(tmp_path / "labels" / "train" / "bg_empty.txt", "1 0.5 0.5 0.3 0.3\n")
    r3, rep3 = load_yolo_records(imgs, nc=2)
    assert len(calls) == 4 and rep3.instances == rep1.instances + 1
    # a different class count too
    calls.clear()
    load_yolo_records(imgs, nc=3)
    assert len(calls) == 4
    # cache=False never reads it
    calls.clear()
    load_yolo_records(imgs, nc=3, cache=False)
    assert len(calls) == 4


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    imgs = _dataset(tmp_path)
    label_cache_path(imgs).write_bytes(b"garbage")
    records, _ = load_yolo_records(imgs, nc=2)
    assert len(records) == 4
    with np.load(label_cache_path(imgs), allow_pickle=False) as z:
        assert int(z["version"]) >= 1


def test_txt_list_relative_to_root_and_absolute(tmp_path: Path) -> None:
    imgs = _dataset(tmp_path)
    lst = tmp_path / "lists" / "train.txt"
    lst.parent.mkdir()
    lst.write_text(f"images/train/good.png\n{imgs / 'mixed.png'}\n# comment\n\nimages/train/gone.png\n")
    assert list_images(lst, root=tmp_path) == [imgs / "good.png", imgs / "mixed.png", imgs / "gone.png"]
    records, rep = load_yolo_records(lst, nc=2, root=tmp_path)
    assert [Path(r["im_file"]).name for r in records] == ["good.png", "mixed.png"]
    assert rep.n_corrupt == 1 and "gone.png" in rep.corrupt[0]
    assert label_cache_path(lst) == tmp_path / "lists" / "train.mirrordet.cache"
    assert label_cache_path(lst).is_file()


def test_list_of_sources_deduplicated(tmp_path: Path) -> None:
    imgs = _dataset(tmp_path)
    _img(tmp_path / "images" / "extra" / "e.png")
    files = list_images([imgs, tmp_path / "images" / "extra", imgs])
    assert len(files) == 7 and files[-1].name == "e.png"
