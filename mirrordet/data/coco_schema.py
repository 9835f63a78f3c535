"""Structural checks of a loaded COCO instances dict, before any entry is used.

A COCO file is three id-keyed tables. A table whose entries are not objects, whose ids are
missing or not integers, or whose ids repeat cannot be read without guessing which entry is
meant (two images with one id would silently share their boxes), so each of those is a
DatasetError naming the file, the table and the offending ids. Problems of single
annotations that leave the tables intact (an unknown image id, a bad bbox) are not errors
here: coco.py skips and reports them like bad label rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mirrordet.utils.errors import DatasetError

MAX_NAMED = 5  # ids or indices quoted in one message


def is_int(v: Any) -> bool:
    """A JSON integer (``true``/``false`` are not ids)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _quote(items: list[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:MAX_NAMED])
    return shown + (f" (and {len(items) - MAX_NAMED} more)" if len(items) > MAX_NAMED else "")


def _check_table(path: Path, table: str, entries: list[Any], id_required: bool) -> None:
    """Every entry an object; ``id`` an integer (when present, or always if ``id_required``); ids unique."""
    not_objects = [k for k, e in enumerate(entries) if not isinstance(e, dict)]
    if not_objects:
        raise DatasetError(f"{path}: '{table}' entries must be objects; entries {_quote(not_objects)} are not")
    bad_ids = [k for k, e in enumerate(entries) if ("id" in e or id_required) and not is_int(e.get("id"))]
    if bad_ids:
        raise DatasetError(f"{path}: '{table}' entries {_quote(bad_ids)} have a missing or non-integer 'id'")
    counts = Counter(e["id"] for e in entries if "id" in e)
    dups = sorted(i for i, n in counts.items() if n > 1)
    if dups:
        raise DatasetError(f"{path}: '{table}' ids must be unique; repeated: {_quote(dups)}")


def _check_images(path: Path, images: list[dict[str, Any]]) -> None:
    """``file_name`` a string; ``width``/``height`` positive integers when given."""
    bad_name = [im["id"] for im in images if not isinstance(im.get("file_name"), str) or not im["file_name"]]
    if bad_name:
        raise DatasetError(f"{path}: images {_quote(bad_name)} have a missing or non-string 'file_name'")
    bad_size = [
        im["id"] for im in images
        if any(k in im and not (is_int(im[k]) and im[k] > 0) for k in ("width", "height"))
    ]
    if bad_size:
        raise DatasetError(f"{path}: images {_quote(bad_size)} have a 'width'/'height' that is not a positive integer")


def check_coco_tables(d: dict[str, Any], path: str | Path) -> None:
    """Raise DatasetError unless ``images``/``categories``/``annotations`` are well-formed id tables.

    Images and categories need integer ids; annotation ids are optional but, when given, integer
    and unique. ``image_id``/``category_id`` of an annotation may be anything: one that matches
    no table entry is skipped and reported later.
    """
    path = Path(path)
    for table in ("images", "categories", "annotations"):
        if not isinstance(d.get(table), list):
            raise DatasetError(f"{path}: '{table}' must be a list")
    _check_table(path, "images", d["images"], id_required=True)
    _check_table(path, "categories", d["categories"], id_required=True)
    _check_table(path, "annotations", d["annotations"], id_required=False)
    _check_images(path, d["images"])
    bad_names = [c["id"] for c in d["categories"] if "name" in c and not isinstance(c["name"], str)]
    if bad_names:
        raise DatasetError(f"{path}: categories {_quote(bad_names)} have a non-string 'name'")
