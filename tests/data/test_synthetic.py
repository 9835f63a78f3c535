"""Synthetic "shapes" data: determinism, valid labels, atomic generation, classification layout."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrordet.data import synthetic
from mirrordet.data.labels import parse_label_file
from mirrordet.data.synthetic import SHAPE_NAMES, ensure_shapes, generate_shapes, generate_shapes_cls
from mirrordet.data.synthetic_draw import BASE_COLORS


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_identical_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = generate_shapes(tmp_path / "a", n_train=6, n_val=3, imgsz=96, seed=3)
    b = generate_shapes(tmp_path / "b", n_train=6, n_val=3, imgsz=96, seed=3)
    c = generate_shapes(tmp_path / "c", n_train=6, n_val=3, imgsz=96, seed=4)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert len(da) == 2 * (6 + 3) + 1  # images, labels, synthetic.json
    assert da == db
    assert {k: v for k, v in da.items() if k.endswith(".png")} != {
        k: v for k, v in dc.items() if k.endswith(".png")
    }


def test_layout_and_labels_are_valid(tmp_path: Path) -> None:
    root = generate_shapes(tmp_path / "s", n_train=30, n_val=5, imgsz=128, seed=0)
    classes, sizes = [], []
    for split, n in (("train", 30), ("val", 5)):
        imgs = sorted((root / "images" / split).glob("*.png"))
        assert len(imgs) == n
        for im in imgs:
            assert cv2.imread(str(im)).shape == (128, 128, 3)
            p = parse_label_file(root / "labels" / split / f"{im.stem}.txt", nc=len(SHAPE_NAMES))
            assert not p.problems and not p.missing
            assert 1 <= len(p.cls) <= 6
            classes += p.cls.tolist()
            sizes += p.bboxes[:, 2:].max(1).tolist()
    assert set(classes) == set(range(4))  # every class occurs
    assert min(sizes) >= 0.06 and max(sizes) <= 0.65 and max(sizes) > 0.3


def test_objects_carry_their_class_tint(tmp_path: Path) -> None:
    """Most objects show their class colour at the box centre (the task is learnable)."""
    root = generate_shapes(tmp_path / "s", n_train=40, n_val=0, imgsz=128, seed=1)
    tints = np.array(BASE_COLORS, np.float32)
    hits = total = 0
    for im in sorted((root / "images" / "train").glob("*.png")):
        img = cv2.imread(str(im)).astype(np.float32)
        p = parse_label_file(root / "labels" / "train" / f"{im.stem}.txt", 4)
        for c, (cx, cy, _, _) in zip(p.cls, p.bboxes):
            if c == 2:  # triangles do not cover their box centre reliably
                continue
            px = (
                img[int(cy * 128) - 1 : int(cy * 128) + 2, int(cx * 128) - 1 : int(cx * 128) + 2]
                .reshape(-1, 3)
                .mean(0)
            )
            hits += int(np.argmin(np.abs(tints - px).sum(1)) == c)
            total += 1
    assert total > 30 and hits / total > 0.6


def test_interrupted_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synthetic._write_detection_split

    def crash(root, split, *a):
        real(root, split, *a)
        if split == "val":
            raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_detection_split", crash)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(tmp_path / "s", n_train=3, n_val=2, imgsz=64)
    assert list(tmp_path.iterdir()) == []


def test_ensure_shapes_generates_once_and_regenerates_when_args_change(tmp_path: Path) -> None:
    root = ensure_shapes(tmp_path / "s", n_train=3, n_val=2, imgsz=64)
    stamp = (root / "images" / "train" / "000000.png").stat().st_mtime_ns
    ensure_shapes(tmp_path / "s", n_train=3, n_val=2, imgsz=64)
    assert (root / "images" / "train" / "000000.png").stat().st_mtime_ns == stamp
    ensure_shapes(tmp_path / "s", n_train=4, n_val=2, imgsz=64)
    assert len(list((root / "images" / "train").glob("*.png"))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temp folders left


def test_classification_variant(tmp_path: Path) -> None:
    a = generate_shapes_cls(tmp_path / "a", n_train_per_class=3, n_val_per_class=2, imgsz=48, seed=0)
    b = generate_shapes_cls(tmp_path / "b", n_train_per_class=3, n_val_per_class=2, imgsz=48, seed=0)
    assert _digest(a) == _digest(b)
    for split, n in (("train", 3), ("val", 2)):
        assert sorted(p.name for p in (a / split).iterdir()) == sorted(SHAPE_NAMES)
        for name in SHAPE_NAMES:
            files = sorted((a / split / name).glob("*.png"))
            assert len(files) == n
            assert cv2.imread(str(files[0])).shape == (48, 48, 3)


@pytest.mark.parametrize("make", [ensure_shapes, synthetic.ensure_shapes_cls])
def test_a_folder_mirrordet_did_not_make_survives(tmp_path: Path, make) -> None:
    """Generating into a user's non-empty folder is refused and changes nothing (files, mode)."""
    user = tmp_path / "my_photos"
    (user / "sub").mkdir(parents=True)
    (user / "holiday.jpg").write_bytes(b"precious")
    (user / "sub" / "notes.txt").write_text("keep me")
    user.chmod(0o755)
    before = _digest(user)
    with pytest.raises(synthetic.DatasetError, match="not empty and was not made by mirrordet"):
        make(user, **({"n_train": 2, "n_val": 1} if make is ensure_shapes else
                      {"n_train_per_class": 1, "n_val_per_class": 1}))
    assert _digest(user) == before
    assert (user.stat().st_mode & 0o777) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_photos"]  # no temp folders left beside it


def test_dataset_yaml_pointing_at_a_user_folder_is_a_one_line_error(tmp_path: Path, one_line_error) -> None:
    user = tmp_path / "work"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    yaml_file = tmp_path / "shapes.yaml"
    yaml_file.write_text(f"synthetic: shapes\npath: {user}\nsynthetic_args: {{n_train: 2, n_val: 1, imgsz: 64}}\n"
                         "train: images/train\nval: images/val\nnames: [a, b, c, d]\n")
    one_line_error(["train", f"data={yaml_file}", "epochs=1"], contains="not made by mirrordet")
    assert (user / "thesis.tex").read_text() == "years of work"
    assert [p.name for p in user.iterdir()] == ["thesis.tex"]


def test_empty_and_own_folders_are_generated_into(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    root = generate_shapes(empty, n_train=2, n_val=1, imgsz=64, seed=0)
    assert (root / synthetic.META_FILE).is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert (root.stat().st_mode & 0o777) == 0o777 & ~umask  # not mkdtemp's 0700
    again = generate_shapes(root, n_train=3, n_val=1, imgsz=64, seed=0)  # ours: replaced
    assert len(list((again / "images" / "train").glob("*.png"))) == 3
