"""COCO tables: repeated or missing ids and wrong entry types are errors that name them;
bad single annotations are skipped and reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest

from mirrordet.data.coco import load_coco_records, read_coco_json
from mirrordet.utils.errors import DatasetError


def _base() -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 30, "height": 20},
                   {"id": 2, "file_name": "b.jpg", "width": 30, "height": 20}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": 0},
                        {"id": 11, "image_id": 2, "category_id": 2, "bbox": [2, 2, 10, 10], "iscrowd": 0}],
    }


def _set(table: str, k: int, key: str, value: Any) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        d[table][k][key] = value
    return edit


def _drop(table: str, k: int, key: str) -> Callable[[dict], None]:
    return lambda d: d[table][k].pop(key)


def _replace(table: str, k: int, value: Any) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        d[table][k] = value
    return edit


TABLE_ERRORS = [
    ("duplicate image id", _set("images", 1, "id", 1), "'images' ids must be unique; repeated: 1"),
    ("duplicate category id", _set("categories", 1, "id", 1), "'categories' ids must be unique; repeated: 1"),
    ("duplicate annotation id", _set("annotations", 1, "id", 10), "'annotations' ids must be unique; repeated: 10"),
    ("image without id", _drop("images", 0, "id"), "'images' entries 0 have a missing or non-integer 'id'"),
    ("category without id", _drop("categories", 1, "id"), "'categories' entries 1 have a missing"),
    ("string image id", _set("images", 0, "id", "1"), "non-integer 'id'"),
    ("bool category id", _set("categories", 0, "id", True), "non-integer 'id'"),
    ("float annotation id", _set("annotations", 0, "id", 1.5), "non-integer 'id'"),
    ("image not an object", _replace("images", 1, [2, "b.jpg"]), "'images' entries must be objects; entries 1"),
    ("annotation not an object", _replace("annotations", 0, "x"), "'annotations' entries must be objects"),
    ("file_name missing", _drop("images", 0, "file_name"), "images 1 have a missing or non-string 'file_name'"),
    ("file_name a number", _set("images", 1, "file_name", 7), "images 2 have a missing or non-string"),
    ("width a string", _set("images", 0, "width", "30"), "images 1 have a 'width'/'height'"),
    ("height negative", _set("images", 1, "height", -5), "images 2 have a 'width'/'height'"),
    ("category name a list", _set("categories", 0, "name", ["c"]), "categories 1 have a non-string 'name'"),
    ("annotations not a list", lambda d: d.update(annotations={"a": 1}), "'annotations' must be a list"),
]


@pytest.mark.parametrize("edit,message", [c[1:] for c in TABLE_ERRORS], ids=[c[0] for c in TABLE_ERRORS])
def test_malformed_tables_are_errors_naming_the_entry(tmp_path: Path, edit, message: str) -> None:
    d = copy.deepcopy(_base())
    edit(d)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(d))
    with pytest.raises(DatasetError) as e:
        read_coco_json(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_many_repeated_ids_are_summarized(tmp_path: Path) -> None:
    d = _base()
    d["images"] = [{"id": i // 2, "file_name": f"{i}.jpg"} for i in range(40)]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(d))
    with pytest.raises(DatasetError, match=r"repeated: 0, 1, 2, 3, 4 \(and 15 more\)"):
        read_coco_json(path)


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b'{"images": [', b"[" * 200_000 + b"]" * 200_000, b"null"],
                         ids=["not utf-8", "truncated", "nested too deep", "null"])
def test_unreadable_json_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "instances.json"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="instances.json"):
        read_coco_json(path)


def test_bad_annotation_fields_are_skipped_and_reported(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((20, 30, 3), 90, np.uint8))
    d = _base()
    d["annotations"] += [
        {"id": 12, "image_id": [1], "category_id": 1, "bbox": [1, 1, 5, 5]},  # unhashable image_id
        {"id": 13, "image_id": 1, "category_id": {"id": 1}, "bbox": [1, 1, 5, 5]},  # unhashable category_id
        {"id": 14, "image_id": "1", "category_id": 1, "bbox": [1, 1, 5, 5]},  # string image_id
        {"id": 15, "image_id": 1, "category_id": 2, "bbox": [1, 1, 5, 5], "iscrowd": "yes"},
        {"image_id": 2, "category_id": 1, "bbox": [3, 3, 5, 5]},  # no id: allowed
    ]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(d))
    records, cat_ids, rep = load_coco_records(tmp_path, path, nc=2, cache=False)
    assert cat_ids == [1, 2]
    assert [len(r["cls"]) for r in records] == [1, 2]
    assert rep.bad_rows == {"unknown image_id": 2, "unknown category_id": 1, "malformed iscrowd": 1}
