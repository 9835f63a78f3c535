"""Dataset YAMLs that would hang or blow up (anchor bombs, huge nc/names) or are not UTF-8 are refused
at once with a DatasetError naming the file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mirrordet.data.dataset_yaml import load_dataset_yaml
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.safe_yaml import MAX_CLASSES


def anchor_bomb(levels: int = 9, width: int = 9) -> str:
    """A flow list of ``levels`` anchors, each ``width`` aliases of the previous: width**levels leaves."""
    items = [f"&a0 [{', '.join(['x'] * width)}]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


def _tree(tmp_path: Path) -> Path:
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
    return tmp_path


HEAD = "train: images/train\nval: images/val\n"


def test_anchor_bomb_in_names_is_refused_fast(tmp_path: Path) -> None:
    path = _tree(tmp_path) / "bomb.yaml"
    path.write_text(f"{HEAD}names: {anchor_bomb()}\n", encoding="utf-8")
    t = time.perf_counter()
    with pytest.raises(DatasetError, match=r"bomb\.yaml: expands to more than 100,000 nodes"):
        load_dataset_yaml(path)
    assert time.perf_counter() - t < 1.0


def test_non_utf8_dataset_yaml_names_the_file(tmp_path: Path) -> None:
    path = _tree(tmp_path) / "latin1.yaml"
    path.write_bytes(f"{HEAD}names: [caf\u00e9]\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin1\.yaml: not UTF-8 text"):
        load_dataset_yaml(path)


@pytest.mark.parametrize("tail, match", [
    ("nc: 1000000000\n", r"`nc` must be a positive integer \(at most 100,000\)"),
    ("names: {n}\n", r"big\.yaml: expands to more than 100,000 nodes"),  # the YAML node bound comes first
])
def test_class_count_is_bounded(tmp_path: Path, tail: str, match: str) -> None:
    path = _tree(tmp_path) / "big.yaml"
    names = "[" + ", ".join(["c"] * (MAX_CLASSES + 1)) + "]"
    path.write_text(HEAD + tail.format(n=names), encoding="utf-8")
    t = time.perf_counter()
    with pytest.raises(DatasetError, match=match):
        load_dataset_yaml(path)
    assert time.perf_counter() - t < 10.0  # a 100,001-name file takes ~1 s to parse in pure Python
