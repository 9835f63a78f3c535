"""Deterministic synthetic datasets: "shapes" (detection, YOLO layout), "shapes-voc" (the same images in Pascal
VOC layout), "shapes-seg" (the same images with YOLO-seg polygons) and "shapes-cls" (ImageFolder).

``shapes``: 4 classes (circle, square, triangle, star) with per-class colour tints (sometimes an
arbitrary colour), 1-6 objects an image sized ~8%-50% of the side, textured noisy backgrounds,
unlabelled clutter (lines, small flat blobs), limited overlap. Layout::

    root/images/{train,val}/000000.png     root/labels/{train,val}/000000.txt
    root/synthetic.json                    # generator name, version and arguments

Each dataset is generated into a temporary sibling folder and renamed into place, so an
interrupted generation never leaves a half dataset. Same arguments -> identical bytes.

Only a folder that is missing, empty, or made by this module (it holds ``synthetic.json`` naming a
known generator) is ever replaced; any other folder is left untouched and a :class:`DatasetError`
says so. A folder that was regenerated gets the permissions of a new folder (umask), not 0700.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from mirrordet.data.synthetic_draw import (
    SHAPE_NAMES,
    add_clutter,
    add_noise,
    background,
    draw_shape,
    shape_color,
    shape_color_kind,
    shape_extent,
)
from mirrordet.data.segments import circle_polygon, largest_outline
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.log import LOGGER

GENERATOR_VERSION = 1
META_FILE = "synthetic.json"
MIN_FRAC, MAX_FRAC = 0.08, 0.5  # object size range, fraction of the image side
MAX_OVERLAP = 0.25  # intersection / smaller box area allowed between two objects
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 3]
_SPLIT_CODE = {"train": 0, "val": 1}


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(smaller, 1e-9)


def render_detection_image(
    rng: np.random.Generator, imgsz: int
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One "shapes" image and its objects.

    Returns:
        (img BGR uint8 [imgsz, imgsz, 3], [(class, box [4] xyxy pixels), ...]).
    """
    img, objects = render_shapes_image(rng, imgsz)
    return img, [(cls, box) for cls, box, _ in objects]


def render_shapes_image(
    rng: np.random.Generator, imgsz: int
) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
    """One "shapes" image and its objects with their outlines (the draws of :func:`render_detection_image`).

    Returns:
        (img BGR uint8 [imgsz, imgsz, 3], [(class, box [4] xyxy pixels, outline [k, 2] pixels (x, y)), ...]);
        circles are outlined by a 64-gon (within 0.12% of the radius). Objects are drawn in list order, so a
        later object covers an earlier one where they overlap.
    """
    img = background(rng, imgsz)
    add_clutter(img, rng, n_lines=int(rng.integers(0, 4)), n_blobs=int(rng.integers(0, 3)))
    objects: list[tuple[int, np.ndarray, np.ndarray]] = []
    n = int(rng.integers(1, 7))
    sizes = np.exp(rng.uniform(math.log(MIN_FRAC), math.log(MAX_FRAC), n)) * imgsz
    for size in sorted(sizes, reverse=True):  # big first: small ones are placed into the gaps
        cls = int(rng.integers(0, len(SHAPE_NAMES)))
        poly, ext = shape_extent(cls, float(size), rng)
        w, h = ext[2] - ext[0], ext[3] - ext[1]
        if w >= imgsz - 2 or h >= imgsz - 2:
            continue
        for _ in range(30):
            cx = rng.uniform(1 - ext[0], imgsz - 1 - ext[2])
            cy = rng.uniform(1 - ext[1], imgsz - 1 - ext[3])
            box = ext + [cx, cy, cx, cy]
            if all(_overlap(box, b) < MAX_OVERLAP for _, b, _ in objects):
                draw_shape(img, cls, (cx, cy), float(size), poly, shape_color(cls, rng))
                outline = circle_polygon(cx, cy, float(size) / 2) if poly is None else poly + [cx, cy]
                objects.append((cls, box, outline))
                break
    return add_noise(img, rng, sigma=float(rng.uniform(4, 12))), objects


def _write_detection_split(root: Path, split: str, n: int, imgsz: int, seed: int, segments: bool = False) -> None:
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLIT_CODE[split], i])
        img, objects = render_shapes_image(rng, imgsz)
        name = f"{i:06d}"
        cv2.imwrite(str(root / "images" / split / f"{name}.png"), img, _PNG)
        rows = _polygon_rows(objects, imgsz) if segments else _box_rows(objects, imgsz)
        (root / "labels" / split / f"{name}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")


def _box_rows(objects: list[tuple[int, np.ndarray, np.ndarray]], imgsz: int) -> list[str]:
    """YOLO rows ``class cx cy w h`` of the objects' boxes."""
    rows = []
    for cls, (x1, y1, x2, y2), _ in objects:
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, imgsz), min(y2, imgsz)
        rows.append(
            f"{cls} {(x1 + x2) / 2 / imgsz:.6f} {(y1 + y2) / 2 / imgsz:.6f} "
            f"{(x2 - x1) / imgsz:.6f} {(y2 - y1) / imgsz:.6f}"
        )
    return rows


def _polygon_rows(objects: list[tuple[int, np.ndarray, np.ndarray]], imgsz: int) -> list[str]:
    """YOLO-seg rows ``class x1 y1 x2 y2 ...`` of what is visible of each object.

    An object that no later one covers is written as its drawn outline (sub-pixel exact); a partly covered
    one as the outline of its visible pixels (the largest part), rasterized in drawing order.
    """
    from pycocotools import mask as mask_utils

    full = [mask_utils.decode(mask_utils.frPyObjects([o.reshape(-1).tolist()], imgsz, imgsz))[:, :, 0].astype(bool)
            for _, _, o in objects]
    rows = []
    for k, (cls, _, outline) in enumerate(objects):
        visible = full[k].copy()
        for later in full[k + 1:]:
            visible &= ~later
        if not visible.any():
            continue
        if visible.sum() != full[k].sum():
            outline = largest_outline(visible)
        xy = (np.asarray(outline, np.float64) / imgsz).clip(0, 1).reshape(-1)
        rows.append(f"{cls} " + " ".join(f"{v:.6f}" for v in xy))
    return rows


def _meta(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"generator": kind, "version": GENERATOR_VERSION, "args": args, "names": list(SHAPE_NAMES)}


def _read_meta(root: Path) -> Any:
    """The parsed ``synthetic.json`` of ``root``, or None when it is missing or unreadable."""
    try:
        return json.loads((root / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(root: Path, meta: dict[str, Any]) -> bool:
    return _read_meta(root) == meta


def _made_here(root: Path) -> bool:
    """True if ``root`` holds this module's metadata file (so it is ours to regenerate)."""
    meta = _read_meta(root)
    return isinstance(meta, dict) and meta.get("generator") in ("shapes", "shapes-cls", "shapes-voc", "shapes-seg")


def check_replaceable(root: str | Path) -> None:
    """Refuse to generate into a folder mirrordet did not create.

    Raises:
        DatasetError: ``root`` is a file, or a non-empty folder without this module's ``synthetic.json``.
    """
    root = Path(root)
    if not root.exists():
        return
    if not root.is_dir():
        raise DatasetError(f"cannot generate the synthetic dataset at {root}: it is a file")
    if any(root.iterdir()) and not _made_here(root):
        raise DatasetError(f"cannot generate the synthetic dataset into {root}: the folder is not empty and was not "
                           f"made by mirrordet (no {META_FILE}); nothing was changed. Point `path:` to a new or "
                           "empty folder")


def _mkdtemp_public(prefix: str, parent: Path) -> Path:
    """``tempfile.mkdtemp`` with the permissions of an ordinary new folder (mkdtemp makes 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _generate_atomically(root: Path, meta: dict[str, Any], fill: Callable[[Path], None]) -> Path:
    """Run ``fill(tmp)`` on a fresh temp sibling of ``root``, then swap it into place.

    Raises:
        DatasetError: ``root`` exists and is not ours to replace (see :func:`check_replaceable`).
    """
    root = Path(root).absolute()
    check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = _mkdtemp_public(f".{root.name}.tmp-", root.parent)
    try:
        fill(tmp)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        old = None
        if root.exists():
            check_replaceable(root)  # again, just before the swap: the folder may have changed meanwhile
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, old / "d")
        try:
            os.replace(tmp, root)
        except OSError:
            if not _is_current(root, meta):  # another process did not win the race with the same data
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def generate_shapes(
    root: str | Path, n_train: int = 400, n_val: int = 100, imgsz: int = 160, seed: int = 0
) -> Path:
    """Generate the "shapes" detection dataset at ``root``, YOLO layout.

    ``root`` must be missing, empty, or an earlier output of this module (which is replaced).

    Args:
        root: dataset root to create.
        n_train, n_val: images per split.
        imgsz: square image side in pixels.
        seed: random seed; equal arguments give byte-identical files.

    Returns:
        root (absolute).
    """
    args = {"n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed}

    def fill(tmp: Path) -> None:
        _write_detection_split(tmp, "train", n_train, imgsz, seed)
        _write_detection_split(tmp, "val", n_val, imgsz, seed)

    return _generate_atomically(Path(root), _meta("shapes", args), fill)


VOC_DIFFICULT_FRAC = 0.1  # shapes-voc: objects whose longer side is under this fraction of the image are "difficult"


def _voc_xml(name: str, imgsz: int, objects: list[tuple[int, np.ndarray]]) -> str:
    """A Pascal VOC annotation (1-based inclusive integer pixels) of one shapes image."""
    rows = []
    for cls, (x1, y1, x2, y2) in objects:
        x1, y1 = max(int(round(x1)), 0) + 1, max(int(round(y1)), 0) + 1
        x2, y2 = min(int(round(x2)), imgsz), min(int(round(y2)), imgsz)
        hard = int(max(x2 - x1 + 1, y2 - y1 + 1) < VOC_DIFFICULT_FRAC * imgsz)
        rows.append(f"  <object>\n    <name>{SHAPE_NAMES[cls]}</name>\n    <pose>Unspecified</pose>\n"
                    f"    <truncated>0</truncated>\n    <difficult>{hard}</difficult>\n    <bndbox>\n"
                    f"      <xmin>{x1}</xmin>\n      <ymin>{y1}</ymin>\n      <xmax>{x2}</xmax>\n"
                    f"      <ymax>{y2}</ymax>\n    </bndbox>\n  </object>\n")
    return (f"<annotation>\n  <folder>VOC2007</folder>\n  <filename>{name}.jpg</filename>\n  <size>\n"
            f"    <width>{imgsz}</width>\n    <height>{imgsz}</height>\n    <depth>3</depth>\n  </size>\n"
            f"  <segmented>0</segmented>\n{''.join(rows)}</annotation>\n")


def generate_shapes_voc(
    root: str | Path, n_train: int = 400, n_val: int = 100, imgsz: int = 160, seed: int = 0
) -> Path:
    """The "shapes" images (the same draws) in Pascal VOC layout: ``root/VOC2007/{JPEGImages/*.jpg,
    Annotations/*.xml, ImageSets/Main/{train,val}.txt}``; objects smaller than 10% of the side are marked
    ``difficult``. Returns root (absolute)."""
    args = {"n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed}

    def fill(tmp: Path) -> None:
        year = tmp / "VOC2007"
        for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (year / d).mkdir(parents=True)
        for split, n in (("train", n_train), ("val", n_val)):
            ids = []
            for i in range(n):
                img, objects = render_detection_image(np.random.default_rng([seed, _SPLIT_CODE[split], i]), imgsz)
                name = f"{split}_{i:06d}"
                cv2.imwrite(str(year / "JPEGImages" / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
                (year / "Annotations" / f"{name}.xml").write_text(_voc_xml(name, imgsz, objects), encoding="utf-8")
                ids.append(name)
            (year / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")

    return _generate_atomically(Path(root), _meta("shapes-voc", args), fill)


def ensure_shapes_voc(root: str | Path, **kwargs: int) -> Path:
    """``generate_shapes_voc(root, **kwargs)`` unless ``root`` already holds exactly that dataset."""
    return _ensure("shapes-voc", generate_shapes_voc, {"n_train": 400, "n_val": 100, "imgsz": 160, "seed": 0},
                   root, kwargs)


def _ensure(kind: str, generate: Callable[..., Path], defaults: dict[str, int], root: str | Path,
            kwargs: dict[str, int]) -> Path:
    """``generate(root, **args)`` unless ``root`` already holds exactly that dataset."""
    args = defaults | kwargs
    if not _is_current(Path(root), _meta(kind, args)):
        check_replaceable(root)  # before any output: a refused folder gets one error line only
        LOGGER.info(f"generating the synthetic '{kind}' dataset in {root} ...")
        generate(root, **args)
    return Path(root).absolute()


def ensure_shapes(root: str | Path, **kwargs: int) -> Path:
    """``generate_shapes(root, **kwargs)`` unless ``root`` already holds exactly that dataset."""
    return _ensure("shapes", generate_shapes, {"n_train": 400, "n_val": 100, "imgsz": 160, "seed": 0}, root, kwargs)


def generate_shapes_seg(
    root: str | Path, n_train: int = 400, n_val: int = 100, imgsz: int = 160, seed: int = 0
) -> Path:
    """The "shapes" images (the same draws) with YOLO-seg labels: one polygon per object, of what is visible
    of it (see :func:`_polygon_rows`). Layout as :func:`generate_shapes`. Returns root (absolute)."""
    args = {"n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed}

    def fill(tmp: Path) -> None:
        _write_detection_split(tmp, "train", n_train, imgsz, seed, segments=True)
        _write_detection_split(tmp, "val", n_val, imgsz, seed, segments=True)

    return _generate_atomically(Path(root), _meta("shapes-seg", args), fill)


def ensure_shapes_seg(root: str | Path, **kwargs: int) -> Path:
    """``generate_shapes_seg(root, **kwargs)`` unless ``root`` already holds exactly that dataset."""
    return _ensure("shapes-seg", generate_shapes_seg, {"n_train": 400, "n_val": 100, "imgsz": 160, "seed": 0},
                   root, kwargs)


def render_classification_image(rng: np.random.Generator, cls: int, imgsz: int) -> np.ndarray:
    """One centred-ish shape of class ``cls`` on a textured background: BGR uint8 [imgsz, imgsz, 3]."""
    return _render_classification(rng, cls, imgsz)[0]


def _render_classification(rng: np.random.Generator, cls: int, imgsz: int) -> tuple[np.ndarray, dict[str, str]]:
    """(image, its attributes ``{"colour": "class tint" | "other colour", "size": "small" | "large"}``)."""
    img = background(rng, imgsz)
    add_clutter(img, rng, n_lines=int(rng.integers(0, 3)), n_blobs=int(rng.integers(0, 2)))
    frac = float(rng.uniform(0.4, 0.8))
    size = frac * imgsz
    poly, ext = shape_extent(cls, size, rng)
    cx = float(np.clip(imgsz / 2 + rng.uniform(-0.1, 0.1) * imgsz, -ext[0], imgsz - ext[2]))
    cy = float(np.clip(imgsz / 2 + rng.uniform(-0.1, 0.1) * imgsz, -ext[1], imgsz - ext[3]))
    color, arbitrary = shape_color_kind(cls, rng)
    draw_shape(img, cls, (cx, cy), size, poly, color)
    attrs = {"colour": "other colour" if arbitrary else "class tint", "size": "small" if frac < 0.6 else "large"}
    return add_noise(img, rng, sigma=float(rng.uniform(4, 12))), attrs


def shapes_cls_attributes(root: str | Path) -> dict[str, dict[str, str]]:
    """Per-image attributes of a generated shapes-cls folder, replayed from its ``synthetic.json`` (the
    generator's draws are a function of (seed, split, class, index)): ``{"val/circle/00003.png":
    {"colour": ..., "size": ...}}``; {} for a folder this module did not generate."""
    meta = _read_meta(Path(root))
    if not isinstance(meta, dict) or meta.get("generator") != "shapes-cls" or meta.get("version") != GENERATOR_VERSION:
        return {}
    a = meta["args"]
    out = {}
    for split, n in (("train", a["n_train_per_class"]), ("val", a["n_val_per_class"])):
        for cls, name in enumerate(SHAPE_NAMES):
            for i in range(n):
                rng = np.random.default_rng([a["seed"], 10 + _SPLIT_CODE[split], cls, i])
                out[f"{split}/{name}/{i:05d}.png"] = _render_classification(rng, cls, a["imgsz"])[1]
    return out


def generate_shapes_cls(
    root: str | Path, n_train_per_class: int = 100, n_val_per_class: int = 25, imgsz: int = 64, seed: int = 0
) -> Path:
    """Generate the "shapes-cls" classification dataset: ``root/{train,val}/<class>/*.png``.

    ``root`` must be missing, empty, or an earlier output of this module (which is replaced).

    Returns:
        root (absolute).
    """
    args = {
        "n_train_per_class": n_train_per_class,
        "n_val_per_class": n_val_per_class,
        "imgsz": imgsz,
        "seed": seed,
    }

    def fill(tmp: Path) -> None:
        for split, n in (("train", n_train_per_class), ("val", n_val_per_class)):
            for cls, name in enumerate(SHAPE_NAMES):
                d = tmp / split / name
                d.mkdir(parents=True)
                for i in range(n):
                    rng = np.random.default_rng([seed, 10 + _SPLIT_CODE[split], cls, i])
                    cv2.imwrite(str(d / f"{i:05d}.png"), render_classification_image(rng, cls, imgsz), _PNG)

    return _generate_atomically(Path(root), _meta("shapes-cls", args), fill)


def ensure_shapes_cls(root: str | Path, **kwargs: int) -> Path:
    """``generate_shapes_cls(root, **kwargs)`` unless ``root`` already holds exactly that dataset."""
    defaults = {"n_train_per_class": 100, "n_val_per_class": 25, "imgsz": 64, "seed": 0}
    return _ensure("shapes-cls", generate_shapes_cls, defaults, root, kwargs)
