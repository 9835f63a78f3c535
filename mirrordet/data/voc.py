"""Pascal VOC read natively: ``VOCdevkit/VOC20xx/{Annotations/*.xml, ImageSets/Main/<split>.txt, JPEGImages}``.

A split is an ImageSets id list; each id names ``Annotations/<id>.xml`` and ``JPEGImages/<id>.jpg``. Boxes are
converted to 0-based pixels the usual way (``xmin - 1``, ``ymin - 1``, ``xmax``, ``ymax``). Objects marked
``difficult`` are kept as ignore regions (the records' ``crowd`` entry): never training targets, iscrowd=1 in
the COCO ground truth, and ignored by the VOC metric (:mod:`mirrordet.metrics.voc_eval`). A file that cannot be
used (unreadable or oversized XML, a DOCTYPE or entity declaration, missing fields, an unknown class name, a box
outside the image) is reported by name and skipped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mirrordet.data.label_report import LabelReport
from mirrordet.data.labels import verify_images
from mirrordet.ops.boxes import xyxy2xywhn
from mirrordet.utils.errors import DatasetError

MAX_XML_BYTES = 1 << 20  # a VOC annotation is a few KB


def is_voc_split(path: Path) -> bool:
    """True for a VOC id list: ``<year dir>/ImageSets/Main/<split>.txt`` beside ``Annotations/``."""
    return (path.suffix == ".txt" and path.parent.name == "Main" and path.parent.parent.name == "ImageSets"
            and (path.parent.parent.parent / "Annotations").is_dir())


def voc_root(ids_file: Path) -> Path:
    """The year folder (``VOC2007``) of an ImageSets/Main id list."""
    return ids_file.parent.parent.parent


def read_voc_xml(path: Path, names: Mapping[str, int]) -> tuple[tuple[int, int], list[tuple[int, bool, list[float]]]]:
    """((h, w), [(class index, difficult, [x1, y1, x2, y2] 0-based pixels)]) of one annotation file.

    Raises:
        ValueError: the reason the file cannot be used (the caller reports it with the file name).
    """
    raw = path.read_bytes()
    if len(raw) > MAX_XML_BYTES:
        raise ValueError(f"{len(raw)} bytes is too large for a VOC annotation")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise ValueError("DOCTYPE / entity declarations are not allowed")
    root = ET.fromstring(raw)
    size = root.find("size")
    if size is None:
        raise ValueError("no <size>")
    w, h = int(float(size.findtext("width", "0"))), int(float(size.findtext("height", "0")))
    if w <= 0 or h <= 0:
        raise ValueError(f"bad <size> {w}x{h}")
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in names:
            raise ValueError(f"unknown class {name!r}")
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"<object> {name} without <bndbox>")
        x1, y1, x2, y2 = (float(box.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax"))
        x1, y1 = x1 - 1, y1 - 1
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise ValueError(f"box {[x1, y1, x2, y2]} of {name} is empty or outside the {w}x{h} image")
        objects.append((names[name], (obj.findtext("difficult") or "0").strip() == "1", [x1, y1, x2, y2]))
    return (h, w), objects


def _normalized_xywh(boxes: list[list[float]], h: int, w: int) -> np.ndarray:
    return xyxy2xywhn(np.array(boxes, np.float32).reshape(-1, 4), w, h)


def load_voc_records(ids_files: Sequence[Path], class_names: Sequence[str], prefix: str = ""
                     ) -> tuple[list[dict[str, Any]], LabelReport]:
    """Records of one or more VOC id lists (e.g. VOC2007 and VOC2012 trainval).

    Returns:
        (records: ``im_file``, ``shape`` (h, w), ``cls`` [n] int64, ``bboxes`` [n, 4] normalized xywh,
        ``image_id`` (running index), ``crowd`` [m, 4] normalized xywh of the difficult objects when any;
        the report of kept, skipped and difficult objects).

    Raises:
        DatasetError: an id list that cannot be read.
    """
    names = {n: k for k, n in enumerate(class_names)}
    report = LabelReport()
    entries = []
    for ids_file in ids_files:
        try:
            ids = [ln.split()[0] for ln in ids_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"{ids_file}: cannot read the VOC id list ({e})") from None
        root = voc_root(ids_file)
        report.images += len(ids)
        for i in ids:
            xml = root / "Annotations" / f"{i}.xml"
            try:
                shape, objects = read_voc_xml(xml, names)
            except (OSError, ValueError, ET.ParseError) as e:
                report.add_bad("unusable VOC annotation", f"{xml.name}: {str(e)[:80]}")
                continue
            entries.append((root / "JPEGImages" / f"{i}.jpg", shape, objects))
    shapes = verify_images([f for f, _, _ in entries])
    records = []
    for (im_file, (h, w), objects), shape in zip(entries, shapes):
        if isinstance(shape, str) or shape != (h, w):
            report.add_corrupt(im_file.name, shape if isinstance(shape, str) else f"size differs from its XML {w}x{h}")
            continue
        keep = [o for o in objects if not o[1]]
        hard = [o for o in objects if o[1]]
        rec: dict[str, Any] = {"im_file": str(im_file.absolute()), "shape": (h, w),
                               "cls": np.array([o[0] for o in keep], np.int64),
                               "bboxes": _normalized_xywh([o[2] for o in keep], h, w), "image_id": len(records)}
        if hard:
            rec["crowd"] = _normalized_xywh([o[2] for o in hard], h, w)
            rec["difficult_cls"] = np.array([o[0] for o in hard], np.int64)
        report.ok += 1
        report.instances += len(keep)
        report.crowd += len(hard)
        report.backgrounds += not keep
        records.append(rec)
    report.log(f"{prefix}(VOC) ")
    return records, report
