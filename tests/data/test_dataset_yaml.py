"""Dataset YAML loading: names/nc, path resolution, split kinds, errors, defaults, synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from mirrordet.data.dataset_yaml import load_dataset_yaml
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.files import bundled_dir


def _yolo_tree(root: Path) -> None:
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        cv2.imwrite(str(root / "images" / split / "a.png"), np.zeros((8, 8, 3), np.uint8))


def _write(path: Path, d: dict | str) -> Path:
    path.write_text(d if isinstance(d, str) else yaml.safe_dump(d), encoding="utf-8")
    return path


def test_names_list_normalized_and_relative_root(tmp_path: Path) -> None:
    _yolo_tree(tmp_path / "ds")
    (tmp_path / "cfg").mkdir()
    f = _write(
        tmp_path / "cfg" / "d.yaml",
        {"path": "../ds", "train": "images/train", "val": "images/val", "names": ["cat", "dog"], "nc": 2},
    )
    d = load_dataset_yaml(f)
    assert d["names"] == {0: "cat", 1: "dog"} and d["nc"] == 2
    assert d["path"] == (tmp_path / "ds").resolve()
    assert d["train"] == (tmp_path / "ds" / "images" / "train").resolve() and d["train"].is_absolute()
    assert d["yaml_file"] == f.resolve()
    assert d["test"] is None and d["defaults"] == {} and d["task"] == "detect"


def test_names_dict_absolute_path_and_default_root(tmp_path: Path) -> None:
    _yolo_tree(tmp_path)
    f = _write(
        tmp_path / "d.yaml",
        {"train": str(tmp_path / "images" / "train"), "val": "images/val", "names": {1: "b", 0: "a"}},
    )
    d = load_dataset_yaml(f)
    assert d["names"] == {0: "a", 1: "b"}
    assert d["path"] == tmp_path.resolve()  # no `path`: the YAML's folder
    assert d["val"] == (tmp_path / "images" / "val").resolve()


@pytest.mark.parametrize(
    "names, nc, match",
    [
        (["a", "b"], 3, "nc: 3"),
        ({0: "a", 2: "c"}, None, "0..1"),
        ("abc", None, "list or a dict"),
        (None, None, "names"),
        ([], None, "empty"),
    ],
)
def test_bad_names(tmp_path: Path, names, nc, match) -> None:
    _yolo_tree(tmp_path)
    raw = {"train": "images/train", "val": "images/val"}
    if names is not None:
        raw["names"] = names
    if nc is not None:
        raw["nc"] = nc
    f = _write(tmp_path / "bad.yaml", raw)
    with pytest.raises(DatasetError, match=match) as e:
        load_dataset_yaml(f)
    assert "bad.yaml" in str(e.value)


def test_nc_only_gives_placeholder_names(tmp_path: Path) -> None:
    _yolo_tree(tmp_path)
    d = load_dataset_yaml(
        _write(tmp_path / "d.yaml", {"train": "images/train", "val": "images/val", "nc": 2})
    )
    assert d["names"] == {0: "class0", 1: "class1"}


def test_missing_file_lists_bundled_names() -> None:
    with pytest.raises(DatasetError) as e:
        load_dataset_yaml("no-such-dataset.yaml")
    assert "no-such-dataset.yaml" in str(e.value)
    for p in bundled_dir("data").glob("*.yaml"):
        assert p.name in str(e.value)
    assert "shapes.yaml" in str(e.value)


def test_missing_split_key_and_missing_split_path(tmp_path: Path) -> None:
    _yolo_tree(tmp_path)
    with pytest.raises(DatasetError, match="`val`") as e:
        load_dataset_yaml(_write(tmp_path / "m.yaml", {"train": "images/train", "names": ["a"]}))
    assert "m.yaml" in str(e.value)
    with pytest.raises(DatasetError, match="`train`") as e:
        load_dataset_yaml(
            _write(tmp_path / "p.yaml", {"train": "images/nope", "val": "images/val", "names": ["a"]})
        )
    assert "p.yaml" in str(e.value) and "nope" in str(e.value)


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not valid YAML"):
        load_dataset_yaml(_write(tmp_path / "x.yaml", "train: [unclosed"))
    with pytest.raises(DatasetError, match="mapping"):
        load_dataset_yaml(_write(tmp_path / "y.yaml", "- a\n- b\n"))


def test_txt_list_and_list_splits(tmp_path: Path) -> None:
    _yolo_tree(tmp_path)
    (tmp_path / "train.txt").write_text("images/train/a.png\n", encoding="utf-8")
    d = load_dataset_yaml(
        _write(
            tmp_path / "d.yaml",
            {
                "train": "train.txt",
                "val": ["images/val", "images/train"],
                "test": "images/val",
                "names": ["a"],
            },
        )
    )
    assert d["train"] == (tmp_path / "train.txt").resolve()
    assert d["val"] == [(tmp_path / "images" / "val").resolve(), (tmp_path / "images" / "train").resolve()]
    assert d["test"] == (tmp_path / "images" / "val").resolve()
    with pytest.raises(DatasetError, match=r"val\[1\]"):
        load_dataset_yaml(
            _write(tmp_path / "e.yaml", {"train": "train.txt", "val": ["images/val", "gone"], "names": ["a"]})
        )


def test_coco_split_dict(tmp_path: Path) -> None:
    (tmp_path / "images" / "val2017").mkdir(parents=True)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "inst.json").write_text(json.dumps({"images": [], "categories": []}))
    split = {"images": "images/val2017", "annotations": "annotations/inst.json"}
    d = load_dataset_yaml(
        _write(tmp_path / "c.yaml", {"path": str(tmp_path), "train": split, "val": split, "names": ["x"]})
    )
    assert d["val"] == {
        "images": (tmp_path / "images" / "val2017").resolve(),
        "annotations": (tmp_path / "annotations" / "inst.json").resolve(),
    }
    with pytest.raises(DatasetError, match="annotations"):
        load_dataset_yaml(
            _write(
                tmp_path / "c2.yaml", {"train": {"images": "images/val2017"}, "val": split, "names": ["x"]}
            )
        )
    bad = {"images": "images/val2017", "annotations": "annotations/missing.json"}
    with pytest.raises(DatasetError, match=r"train\.annotations"):
        load_dataset_yaml(_write(tmp_path / "c3.yaml", {"train": bad, "val": split, "names": ["x"]}))


def test_defaults_pass_through_and_validation(tmp_path: Path) -> None:
    _yolo_tree(tmp_path)
    base = {"train": "images/train", "val": "images/val", "names": ["a"]}
    d = load_dataset_yaml(
        _write(
            tmp_path / "d.yaml",
            base | {"defaults": {"imgsz": 192, "epochs": 3, "lr0": 0.01, "optimizer": "SGD", "cache": False}},
        )
    )
    assert d["defaults"] == {"imgsz": 192, "epochs": 3, "lr0": 0.01, "optimizer": "SGD", "cache": False}
    with pytest.raises(DatasetError, match="defaults.imgsz"):
        load_dataset_yaml(_write(tmp_path / "e.yaml", base | {"defaults": {"imgsz": [1, 2]}}))
    with pytest.raises(DatasetError, match="defaults"):
        load_dataset_yaml(_write(tmp_path / "f.yaml", base | {"defaults": [1]}))
    for key in ("project", "name", "exist_ok", "model", "device", "resume"):  # outputs and runs: the user's alone
        with pytest.raises(DatasetError, match=f"may only suggest training hyperparameters, not {key}"):
            load_dataset_yaml(_write(tmp_path / "g.yaml", base | {"defaults": {key: "x"}}))


def test_download_key_is_never_executed(tmp_path: Path) -> None:
    _yolo_tree(tmp_path)
    marker = tmp_path / "pwned"
    code = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')"
    d = load_dataset_yaml(
        _write(
            tmp_path / "d.yaml",
            {"train": "images/train", "val": "images/val", "names": ["a"], "download": code},
        )
    )
    assert not marker.exists()
    assert "download" not in d


def test_synthetic_generated_once_into_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRRORDET_CACHE", str(tmp_path / "cache"))
    f = _write(
        tmp_path / "s.yaml",
        {
            "synthetic": "shapes",
            "synthetic_args": {"n_train": 5, "n_val": 3, "imgsz": 64},
            "train": "images/train",
            "val": "images/val",
            "names": ["circle", "square", "triangle", "star"],
        },
    )
    d = load_dataset_yaml(f)
    assert d["path"].parent == tmp_path / "cache" and d["path"].name.startswith("shapes-")
    assert len(list(d["train"].glob("*.png"))) == 5 and len(list(d["val"].glob("*.png"))) == 3
    stamp = (d["train"] / "000000.png").stat().st_mtime_ns
    d2 = load_dataset_yaml(f)
    assert d2["path"] == d["path"]
    assert (d2["train"] / "000000.png").stat().st_mtime_ns == stamp  # not regenerated
    with pytest.raises(DatasetError, match="synthetic_args"):
        load_dataset_yaml(
            _write(
                tmp_path / "t.yaml",
                {
                    "synthetic": "shapes",
                    "synthetic_args": {"evil": 1},
                    "train": "images/train",
                    "val": "images/val",
                    "names": ["a"],
                },
            )
        )
    with pytest.raises(DatasetError, match="unknown `synthetic"):
        load_dataset_yaml(
            _write(tmp_path / "u.yaml", {"synthetic": "nope", "train": "a", "val": "b", "names": ["a"]})
        )


def test_bundled_shapes_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRRORDET_CACHE", str(tmp_path))
    d = load_dataset_yaml("shapes")
    assert d["path"] == tmp_path / "shapes"
    assert d["names"] == {0: "circle", 1: "square", 2: "triangle", 3: "star"}
    assert d["defaults"] == {"imgsz": 192, "epochs": 30}
    assert len(list(d["train"].glob("*.png"))) == 400 and len(list(d["val"].glob("*.png"))) == 100
    assert len(list((tmp_path / "shapes" / "labels" / "train").glob("*.txt"))) == 400


def test_bundled_real_dataset_yamls_parse() -> None:
    coco = yaml.safe_load((bundled_dir("data") / "coco.yaml").read_text())
    voc = yaml.safe_load((bundled_dir("data") / "voc.yaml").read_text())
    assert len(coco["names"]) == 80 and coco["names"][0] == "person" and coco["names"][79] == "toothbrush"
    assert coco["val"] == {"images": "images/val2017", "annotations": "annotations/instances_val2017.json"}
    assert len(voc["names"]) == 20 and voc["names"][19] == "tvmonitor"
    assert "download" not in coco and "download" not in voc
    cls = yaml.safe_load((bundled_dir("data") / "shapes-cls.yaml").read_text())
    assert cls["synthetic"] == "shapes-cls" and cls["task"] == "classify"


def test_bundled_coco_yaml_without_data_names_the_key() -> None:
    if (bundled_dir("data") / "../datasets/coco/images/train2017").exists():
        pytest.skip("COCO is present on this machine")
    with pytest.raises(DatasetError, match=r"coco\.yaml.*`train\.images`"):
        load_dataset_yaml("coco.yaml")


def test_bundled_coco_yaml_resolves_a_standard_layout(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "coco.yaml").write_text((bundled_dir("data") / "coco.yaml").read_text())
    root = tmp_path / "datasets" / "coco"
    for split in ("train2017", "val2017"):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text("{}")
    d = load_dataset_yaml(tmp_path / "cfg" / "coco.yaml")
    assert d["nc"] == 80 and d["path"] == root.resolve()
    assert d["train"]["annotations"] == (root / "annotations" / "instances_train2017.json").resolve()
    assert d["val"]["images"] == (root / "images" / "val2017").resolve()
