"""COCO instances JSON read natively into the per-image records of the detection dataset.

Category ids (e.g. COCO's 1..90 with gaps) are sorted and mapped to contiguous classes
0..K-1; ``category_ids[k]`` maps class k back. Crowd annotations (``iscrowd=1``) are not
training targets; they are kept per image under ``crowd`` and counted. Bad annotations
(unknown image or category, malformed or non-finite bbox, zero size, outside the image,
duplicates) are skipped and reported like bad YOLO rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mirrordet.data.coco_schema import check_coco_tables, is_int
from mirrordet.data.label_cache import files_fingerprint, load_record_cache, save_record_cache
from mirrordet.data.label_report import LabelReport
from mirrordet.data.labels import verify_images
from mirrordet.data.segments import coco_segmentation
from mirrordet.utils.errors import DatasetError

COORD_TOL = 1e-3  # normalized tolerance beyond the image border (at least one pixel)


def read_coco_json(annotations_file: str | Path) -> dict[str, Any]:
    """Load and sanity-check a COCO instances JSON (``images``, ``annotations``, ``categories``)."""
    path = Path(annotations_file)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"COCO annotations file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"COCO annotations file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise DatasetError(f"COCO annotations file {path} is nested too deeply to be a COCO file") from None
    except (OSError, ValueError) as e:
        raise DatasetError(f"COCO annotations file {path} is not readable JSON: {e}") from None
    if (
        not isinstance(d, dict)
        or not isinstance(d.get("images"), list)
        or not isinstance(d.get("categories"), list)
    ):
        raise DatasetError(f"{path} is not a COCO instances file (needs 'images' and 'categories' lists)")
    if not d["categories"]:
        raise DatasetError(f"{path}: 'categories' is empty")
    d.setdefault("annotations", [])
    check_coco_tables(d, path)
    return d


def _convert_bbox(bbox: Any, w: int, h: int) -> tuple[list[float] | None, str]:
    """COCO [x, y, w, h] pixels -> normalized xywh clipped to the image, or (None, reason)."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return None, "malformed bbox"
    try:
        x, y, bw, bh = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None, "malformed bbox"
    if not all(math.isfinite(v) for v in (x, y, bw, bh)):
        return None, "non-finite bbox"
    if bw <= 0 or bh <= 0:
        return None, "zero-size box"
    tol_x, tol_y = max(1.0, COORD_TOL * w), max(1.0, COORD_TOL * h)
    if x < -tol_x or y < -tol_y or x + bw > w + tol_x or y + bh > h + tol_y:
        return None, "box outside the image"
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + bw, float(w)), min(y + bh, float(h))
    if x2 <= x1 or y2 <= y1:
        return None, "zero-size box"
    return [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h], ""


def coco_to_records(
    d: dict[str, Any], images_dir: str | Path, ann_name: str = "annotations", segments: bool = False
) -> tuple[list[dict[str, Any]], list[int], list[str], LabelReport]:
    """Convert a loaded COCO dict (checked by ``check_coco_tables``) into records, verifying every image file.

    With ``segments`` every non-crowd annotation needs a usable ``segmentation`` (polygons or RLE, see
    :func:`mirrordet.data.segments.coco_segmentation`), kept in the records' ``segments``.

    Returns:
        records (sorted by image id: ``im_file``, ``shape`` (h, w), ``cls`` [n] int64, ``bboxes``
        [n, 4] float32 normalized xywh, ``image_id`` int, ``crowd`` [m, 4] normalized xywh when any),
        category_ids (sorted; class k -> category_ids[k]), category names, report.
    """
    images_dir = Path(images_dir)
    cats = sorted(d["categories"], key=lambda c: c["id"])
    category_ids = [int(c["id"]) for c in cats]
    cat_names = [str(c.get("name", c["id"])) for c in cats]
    cat_index = {cid: k for k, cid in enumerate(category_ids)}
    images = {int(im["id"]): im for im in d["images"]}
    report = LabelReport(images=len(images))
    per_image: dict[int, dict[str, list]] = {
        i: {"cls": [], "box": [], "crowd": [], "seen": set(), "seg": []} for i in images
    }
    for k, a in enumerate(d["annotations"]):
        where = f"{ann_name}[{k}] (id {a.get('id', '?')})"
        image_id, category_id, crowd = a.get("image_id"), a.get("category_id"), a.get("iscrowd", 0)
        im = images.get(image_id) if is_int(image_id) else None
        if im is None:
            report.add_bad("unknown image_id", where)
            continue
        if not is_int(category_id) or category_id not in cat_index:
            report.add_bad("unknown category_id", where)
            continue
        if crowd not in (0, 1):  # also False/True
            report.add_bad("malformed iscrowd", where)
            continue
        w, h = int(im.get("width", 0) or 0), int(im.get("height", 0) or 0)
        if w <= 0 or h <= 0:
            report.add_bad("image without width/height", where)
            continue
        box, why = _convert_bbox(a.get("bbox"), w, h)
        if box is None:
            report.add_bad(why, where)
            continue
        entry = per_image[int(im["id"])]
        if crowd:
            entry["crowd"].append(box)
            report.crowd += 1
            continue
        key = (cat_index[category_id], *(round(v, 6) for v in box))
        if key in entry["seen"]:
            report.add_bad("duplicate annotation", where)
            continue
        if segments:
            polys, why = coco_segmentation(a.get("segmentation"), w, h)
            if polys is None:
                report.add_bad(why, where)
                continue
            entry["seg"].append(polys)
        entry["seen"].add(key)
        entry["cls"].append(cat_index[category_id])
        entry["box"].append(box)

    ids = sorted(images)
    files = [images_dir / str(images[i].get("file_name", "")) for i in ids]
    shapes = verify_images(files)
    records = []
    for image_id, im_file, shape in zip(ids, files, shapes):
        im = images[image_id]
        if isinstance(shape, str):
            report.add_corrupt(im_file.name, shape)
            continue
        jw, jh = int(im.get("width", 0) or 0), int(im.get("height", 0) or 0)
        if (jh, jw) != shape:
            report.add_corrupt(im_file.name, f"size {shape[1]}x{shape[0]} differs from the JSON's {jw}x{jh}")
            continue
        e = per_image[image_id]
        rec: dict[str, Any] = {
            "im_file": str(im_file.absolute()),
            "shape": shape,
            "cls": np.array(e["cls"], np.int64),
            "bboxes": np.array(e["box"], np.float32).reshape(-1, 4),
            "image_id": image_id,
        }
        if e["crowd"]:
            rec["crowd"] = np.array(e["crowd"], np.float32).reshape(-1, 4)
        if segments:
            rec["segments"] = e["seg"]
        report.ok += 1
        report.missing_labels += not e["cls"] and not e["crowd"]
        report.backgrounds += not e["cls"]
        report.instances += len(e["cls"])
        records.append(rec)
    return records, category_ids, cat_names, report


def load_coco_records(
    images_dir: str | Path,
    annotations_file: str | Path,
    nc: int | None = None,
    cache: bool = True,
    prefix: str = "",
    segments: bool = False,
) -> tuple[list[dict[str, Any]], list[int], LabelReport]:
    """Records of a COCO split, from ``<annotations>.cache`` when the JSON and images are unchanged.

    Args:
        images_dir: folder the JSON's ``file_name`` entries are relative to.
        annotations_file: the instances JSON.
        nc: expected number of classes (the dataset YAML's); must equal the JSON's category count.
        cache: read and write the record cache beside the JSON.
        prefix: text put before the summary log line.
        segments: keep the instances' outlines (segmentation data).

    Returns:
        (records, category_ids, report).

    Raises:
        DatasetError: unreadable JSON, or a category count that disagrees with ``nc``.
    """
    images_dir, annotations_file = Path(images_dir), Path(annotations_file)
    if not annotations_file.is_file():
        raise DatasetError(f"COCO annotations file {annotations_file} does not exist")
    # The key covers the JSON; the image files it lists are fingerprinted from the cached list.
    cache_file = annotations_file.with_suffix(".mirrordet.cache")
    extra_key = f"coco|{images_dir.absolute()}" + ("|segments" if segments else "")
    base_key = files_fingerprint([annotations_file], extra=extra_key)
    if cache:
        hit = load_record_cache(cache_file, base_key)
        if hit is not None:
            records, rep = hit
            fresh = rep.get("images_key") == files_fingerprint(rep.get("all_files", []))
            if fresh and _nc_ok(rep["category_ids"], nc, annotations_file):
                report = LabelReport.from_dict(rep)
                report.log(f"{prefix}(cache {cache_file.name}) ")
                return records, list(rep["category_ids"]), report
    d = read_coco_json(annotations_file)
    records, category_ids, names, report = coco_to_records(d, images_dir, annotations_file.name, segments)
    _nc_ok(category_ids, nc, annotations_file, raise_=True)
    if cache:
        all_files = [str(images_dir / str(im.get("file_name", ""))) for im in d["images"]]
        extra = {
            "category_ids": category_ids,
            "category_names": names,
            "all_files": all_files,
            "images_key": files_fingerprint(all_files),
        }
        save_record_cache(cache_file, base_key, records, report.to_dict() | extra)
    report.log(prefix)
    return records, category_ids, report


def _nc_ok(category_ids: list[int], nc: int | None, path: Path, raise_: bool = False) -> bool:
    if nc is None or len(category_ids) == nc:
        return True
    if raise_:
        raise DatasetError(
            f"{path} has {len(category_ids)} categories but the dataset YAML names {nc} classes; "
            "make `names` list one name per category"
        )
    return False
