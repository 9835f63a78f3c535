"""YOLO txt labels: read, verify, cache.

One label file per image (see ``img2label_path``), one object per row::

    class cx cy w h        # class: integer in [0, nc); box: normalized xywh in [0, 1]
    class x1 y1 x2 y2 ...  # YOLO-seg: a polygon of 3 or more normalized points; its box is its extent

A missing or empty label file marks a background image. Segmentation data (``segments=True``) needs a
polygon on every row. Bad rows (wrong column count, bad polygons (data/segments.py),
class out of range, non-finite numbers, boxes outside the image beyond a 1e-3 tolerance,
zero-size boxes, duplicate rows) and unreadable images are skipped, counted, and reported by
file name in one summary log; they never stop the run and never reach training.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from mirrordet.data.image_files import img2label_path, imread, list_images
from mirrordet.data.label_cache import files_fingerprint, load_record_cache, save_record_cache
from mirrordet.data.label_report import LabelReport
from mirrordet.data.segments import parse_polygon, polygons_box
from mirrordet.utils.log import LOGGER

COORD_TOL = 1e-3  # normalized coordinates may exceed [0, 1] by this much; the excess is clipped


class ParsedLabels(NamedTuple):
    """Result of parsing one label file.

    Attributes:
        cls: [n] int64 class indices.
        bboxes: [n, 4] float32 normalized xywh, inside [0, 1].
        problems: (kind, 1-based row number) of each skipped row.
        missing: True when the label file does not exist.
        segments: with ``segments=True``, per row its polygon as a one-part instance ([[k, 2] float32]).
    """

    cls: np.ndarray
    bboxes: np.ndarray
    problems: list[tuple[str, int]]
    missing: bool
    segments: list[list[np.ndarray]] | None = None


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)


def parse_label_file(path: str | Path, nc: int, segments: bool = False) -> ParsedLabels:
    """Parse and check one YOLO label file.

    Args:
        path: the .txt file.
        nc: number of classes; class ids must lie in [0, nc).
        segments: keep each row's polygon (segmentation data: a row without one is skipped).

    Returns:
        ParsedLabels with the valid rows only (tiny excess beyond [0, 1] clipped).
    """
    empty_segs = [] if segments else None
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ParsedLabels(*_empty(), [], True, empty_segs)
    except OSError:
        return ParsedLabels(*_empty(), [("unreadable label file", 0)], False, empty_segs)
    cls_out: list[int] = []
    box_out: list[tuple[float, float, float, float]] = []
    seg_out: list[list[np.ndarray]] = []
    problems: list[tuple[str, int]] = []
    seen: set[tuple] = set()
    for row, line in enumerate(text.splitlines(), 1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) != 5 and len(tok) < 7:
            problems.append((f"{len(tok)} columns, expected 5 (box) or 7 or more (polygon)", row))
            continue
        if segments and len(tok) == 5:
            problems.append(("box without a polygon (segmentation data)", row))
            continue
        try:
            vals = [float(t) for t in tok]
        except ValueError:
            problems.append(("not a number", row))
            continue
        if not all(math.isfinite(v) for v in vals):
            problems.append(("non-finite value", row))
            continue
        c = vals[0]
        if not c.is_integer() or not 0 <= c < nc:
            problems.append((f"class out of range [0, {nc})", row))
            continue
        polygon = None
        if len(vals) > 5:
            polygon, why = parse_polygon(vals[1:], COORD_TOL)
            if polygon is None:
                problems.append((why, row))
                continue
            vals = [c, *polygons_box([polygon]).tolist()]
        c, cx, cy, w, h = vals
        if w <= 0 or h <= 0:
            problems.append(("zero-size box", row))
            continue
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        if min(x1, y1) < -COORD_TOL or max(x2, y2) > 1 + COORD_TOL:
            problems.append(("box outside the image", row))
            continue
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, 1.0), min(y2, 1.0)
        if x2 <= x1 or y2 <= y1:
            problems.append(("zero-size box", row))
            continue
        key = (int(c), cx, cy, w, h) if polygon is None else (int(c), polygon.tobytes())
        if key in seen:
            problems.append(("duplicate row", row))
            continue
        seen.add(key)
        cls_out.append(int(c))
        box_out.append(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))
        if segments:
            seg_out.append([polygon])
    if not cls_out:
        return ParsedLabels(*_empty(), problems, False, empty_segs)
    return ParsedLabels(np.array(cls_out, np.int64), np.array(box_out, np.float32), problems, False,
                        seg_out if segments else None)


def verify_image(path: str | Path) -> tuple[int, int] | str:
    """Decode an image fully. Returns its (h, w), or a short reason string when unusable."""
    if not os.path.isfile(path):
        return "missing"
    img = imread(path)
    if img is None:
        return "unreadable"
    return int(img.shape[0]), int(img.shape[1])


def verify_images(paths: Sequence[str | Path], workers: int = 8) -> list[tuple[int, int] | str]:
    """:func:`verify_image` of every path, decoded in up to ``workers`` threads; results in order."""
    n_threads = max(1, min(workers, os.cpu_count() or 1, len(paths)))
    if n_threads == 1:
        return [verify_image(p) for p in paths]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(verify_image, paths))


CACHE_SUFFIX = ".mirrordet.cache"


def label_cache_path(source: str | Path | Sequence[str | Path]) -> Path:
    """Where the cache of a split lives: ``<labels dir>.mirrordet.cache`` for a folder, ``<list>.mirrordet.cache``
    for a .txt (a name of its own: Ultralytics writes ``<labels dir>.cache`` in the same place, and a shared name
    made each tool rebuild the other's cache on every run)."""
    if isinstance(source, (list, tuple)):
        return label_cache_path(source[0])
    src = Path(source)
    if src.is_file():
        return src.with_suffix(CACHE_SUFFIX)
    labels_dir = img2label_path(src / "_.jpg").parent
    return labels_dir.with_name(labels_dir.name + CACHE_SUFFIX)


def _check_one(im_file: Path, nc: int, segments: bool) -> tuple[tuple[int, int] | str, ParsedLabels | None]:
    shape = verify_image(im_file)
    if isinstance(shape, str):
        return shape, None
    return shape, parse_label_file(img2label_path(im_file), nc, segments)


def check_yolo_labels(
    im_files: Sequence[Path], nc: int, workers: int = 8, segments: bool = False
) -> tuple[list[dict[str, Any]], LabelReport]:
    """Verify images and parse their labels (threads). Returns records and a report.

    Each record: ``im_file`` str, ``shape`` (h, w), ``cls`` [n] int64, ``bboxes`` [n, 4] float32
    normalized xywh, and with ``segments`` the instances' polygons (data/segments.py). Corrupt images and
    bad rows are left out and noted in the report.
    """
    report = LabelReport(images=len(im_files))
    n_threads = max(1, min(workers, os.cpu_count() or 1, len(im_files)))
    if n_threads > 1:
        with ThreadPoolExecutor(n_threads) as pool:
            results = list(pool.map(lambda p: _check_one(p, nc, segments), im_files))
    else:
        results = [_check_one(p, nc, segments) for p in im_files]
    records = []
    for im_file, (shape, parsed) in zip(im_files, results):
        if parsed is None:
            report.add_corrupt(im_file.name, str(shape))
            continue
        label_name = img2label_path(im_file).name
        for kind, row in parsed.problems:
            report.add_bad(kind, f"{label_name}:{row}")
        report.ok += 1
        report.missing_labels += parsed.missing
        report.backgrounds += len(parsed.cls) == 0
        report.instances += len(parsed.cls)
        record = {"im_file": str(im_file), "shape": shape, "cls": parsed.cls, "bboxes": parsed.bboxes}
        if segments:
            record["segments"] = parsed.segments
        records.append(record)
    return records, report


def load_yolo_records(
    source: str | Path | Sequence[str | Path],
    nc: int,
    root: str | Path | None = None,
    cache: bool = True,
    prefix: str = "",
    segments: bool = False,
) -> tuple[list[dict[str, Any]], LabelReport]:
    """Records of a YOLO-format split, from the label cache when nothing changed.

    Args:
        source: folder of images, .txt list of images, or a list of those.
        nc: number of classes.
        root: dataset root for relative lines of .txt lists.
        cache: read and write the label cache (``label_cache_path(source)``).
        prefix: text put before the summary log line (e.g. ``"train: "``).
        segments: segmentation data (every row a polygon, kept in the records' ``segments``).

    Returns:
        (records, report); the report summary is logged either way.
    """
    im_files = list_images(source, root)
    extra = f"nc={nc}" + (",segments" if segments else "")
    key = files_fingerprint([p for f in im_files for p in (f, img2label_path(f))], extra=extra)
    cache_file = label_cache_path(source)
    if cache:
        hit = load_record_cache(cache_file, key)
        if hit is not None:
            records, rep = hit
            report = LabelReport.from_dict(rep)
            report.log(f"{prefix}(cache {cache_file.name}) ")
            return records, report
    records, report = check_yolo_labels(im_files, nc, segments=segments)
    if report.ok and report.missing_labels == report.ok:
        LOGGER.warning(
            f"{prefix}no label files found, e.g. {img2label_path(im_files[0])}; "
            "YOLO labels go in a 'labels' folder beside 'images'"
        )
    if cache:
        save_record_cache(cache_file, key, records, report.to_dict())
    report.log(prefix)
    return records, report
