"""COCO instances JSON: category mapping, crowd handling, bad annotations, ground truth, cache."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from mirrordet.data import coco as coco_mod
from mirrordet.data.coco import load_coco_records
from mirrordet.data.dataset import build_detection_dataset
from mirrordet.data.dataset_yaml import load_dataset_yaml
from mirrordet.ops.boxes import scale_boxes, xywh2xyxy
from mirrordet.utils.errors import DatasetError


def _make_coco(root: Path) -> Path:
    img_dir = root / "images" / "val2017"
    img_dir.mkdir(parents=True)
    sizes = {11: (40, 60), 22: (50, 30), 33: (20, 20), 44: (30, 30)}  # id -> (h, w)
    for i, (h, w) in sizes.items():
        if i != 44:
            cv2.imwrite(str(img_dir / f"{i:012d}.jpg"), np.full((h, w, 3), 100, np.uint8))
    d = {
        "images": [
            {"id": i, "file_name": f"{i:012d}.jpg", "height": h, "width": w} for i, (h, w) in sizes.items()
        ],
        "categories": [{"id": 7, "name": "seven"}, {"id": 1, "name": "one"}, {"id": 3, "name": "three"}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 7, "bbox": [10, 5, 20, 10], "iscrowd": 0},
            {"id": 2, "image_id": 11, "category_id": 1, "bbox": [0, 0, 60, 40], "iscrowd": 0},
            {"id": 3, "image_id": 11, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 1},
            {"id": 4, "image_id": 11, "category_id": 7, "bbox": [10, 5, 20, 10], "iscrowd": 0},  # duplicate
            {
                "id": 5,
                "image_id": 11,
                "category_id": 2,
                "bbox": [1, 1, 5, 5],
                "iscrowd": 0,
            },  # unknown category
            {"id": 6, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0},  # unknown image
            {"id": 7, "image_id": 22, "category_id": 3, "bbox": [2, 40, 28.4, 10.4]},  # 0.4 px over: clipped
            {"id": 8, "image_id": 22, "category_id": 1, "bbox": [5, 5, 0, 10]},  # zero width
            {"id": 9, "image_id": 22, "category_id": 1, "bbox": [25, 5, 20, 10]},  # far outside
            {"id": 10, "image_id": 22, "category_id": 1, "bbox": [5, 5, 10]},  # malformed
            {"id": 11, "image_id": 44, "category_id": 1, "bbox": [5, 5, 10, 10]},  # image file missing
        ],
    }
    ann = root / "annotations" / "instances_val2017.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(d))
    return ann


def test_records_category_mapping_and_problems(tmp_path: Path) -> None:
    ann = _make_coco(tmp_path)
    records, cat_ids, rep = load_coco_records(tmp_path / "images" / "val2017", ann, nc=3)
    assert cat_ids == [1, 3, 7]
    assert [r["image_id"] for r in records] == [11, 22, 33]
    r11, r22, r33 = records
    assert r11["shape"] == (40, 60) and r11["cls"].tolist() == [2, 0]  # category 7 -> class 2, 1 -> 0
    np.testing.assert_allclose(r11["bboxes"][0], [20 / 60, 10 / 40, 20 / 60, 10 / 40], atol=1e-6)
    np.testing.assert_allclose(r11["crowd"], [[3.5 / 60, 3.5 / 40, 5 / 60, 5 / 40]], atol=1e-6)
    assert r22["cls"].tolist() == [1]
    np.testing.assert_allclose(r22["bboxes"][0], [16 / 30, 45 / 50, 28 / 30, 10 / 50], atol=1e-6)  # clipped
    assert r33["cls"].shape == (0,) and r33["bboxes"].shape == (0, 4)  # background
    assert rep.crowd == 1 and rep.instances == 3 and rep.backgrounds == 1 and rep.n_corrupt == 1
    assert rep.bad_rows == {
        "duplicate annotation": 1,
        "unknown category_id": 1,
        "unknown image_id": 1,
        "zero-size box": 1,
        "box outside the image": 1,
        "malformed bbox": 1,
    }
    assert "(id 4)" in rep.examples["duplicate annotation"][0]
    assert "000000000044.jpg" in rep.corrupt[0]


def test_nc_mismatch_raises(tmp_path: Path) -> None:
    ann = _make_coco(tmp_path)
    with pytest.raises(DatasetError, match="3 categories"):
        load_coco_records(tmp_path / "images" / "val2017", ann, nc=80)


def test_not_a_coco_file(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="x.json"):
        load_coco_records(tmp_path, f)
    f.write_text("{not json")
    with pytest.raises(DatasetError, match="JSON"):
        load_coco_records(tmp_path, f)


def test_cache_skips_json_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = _make_coco(tmp_path)
    calls = []
    real = coco_mod.read_coco_json
    monkeypatch.setattr(coco_mod, "read_coco_json", lambda p: calls.append(p) or real(p))
    r1, ids1, _ = load_coco_records(tmp_path / "images" / "val2017", ann, nc=3)
    assert len(calls) == 1 and ann.with_suffix(".mirrordet.cache").is_file()
    r2, ids2, rep2 = load_coco_records(tmp_path / "images" / "val2017", ann, nc=3)
    assert len(calls) == 1 and ids2 == ids1 and rep2.crowd == 1
    assert [r["image_id"] for r in r2] == [11, 22, 33]
    np.testing.assert_array_equal(r2[0]["crowd"], r1[0]["crowd"])
    # the missing image appears: the cache is stale
    cv2.imwrite(str(tmp_path / "images" / "val2017" / "000000000044.jpg"), np.zeros((30, 30, 3), np.uint8))
    r3, _, _ = load_coco_records(tmp_path / "images" / "val2017", ann, nc=3)
    assert len(calls) == 2 and [r["image_id"] for r in r3] == [11, 22, 33, 44]


def test_dataset_from_yaml_ground_truth_and_mapping_back(tmp_path: Path) -> None:
    ann = _make_coco(tmp_path)
    split = {"images": "images/val2017", "annotations": "annotations/instances_val2017.json"}
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"train": split, "val": split, "names": ["one", "three", "seven"]}))
    data = load_dataset_yaml(f)
    ds = build_detection_dataset(data, "val", imgsz=64, augment=False, hyp={})
    assert len(ds) == 3 and ds.category_ids == [1, 3, 7] and ds.annotations_file == ann.resolve()
    assert [ds.image_id(i) for i in range(3)] == [11, 22, 33]
    cls, boxes = ds.ground_truth(0)
    assert cls.tolist() == [2, 0]
    np.testing.assert_allclose(ds.crowd_boxes(0), [[1, 1, 6, 6]], atol=1e-4)
    assert ds.crowd_boxes(1).shape == (0, 4)
    np.testing.assert_allclose(boxes, [[10, 5, 30, 15], [0, 0, 60, 40]], atol=1e-4)
    s = ds[0]
    assert s["ori_shape"] == (40, 60) and s["resized_shape"] == (64, 64) and s["img"].shape == (3, 64, 64)
    back = scale_boxes(xywh2xyxy(s["bboxes"].double() * 64), (64, 64), s["ori_shape"], s["ratio_pad"])
    np.testing.assert_allclose(back.numpy(), boxes, atol=1e-3)
