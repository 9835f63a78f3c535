"""Dataset YAML: find, parse (bounded safe_load), validate, and resolve every path to an absolute one.

Format (keys not listed are ignored)::

    path: ../datasets/coco        # root; relative to this YAML's folder (default: that folder)
    train: images/train2017       # folder of images | .txt list | list of those |
    val: images/val2017           #   {images: DIR, annotations: FILE.json} (COCO) |
                                  #   VOC2007/ImageSets/Main/test.txt (Pascal VOC, read from its XML)
    test: ...                     # optional
    names: [person, bicycle, ...] # or {0: person, 1: bicycle, ...}
    nc: 80                        # optional; must equal the number of names
    task: detect                  # optional: detect | classify
    format: voc                   # optional: voc requires VOC id-list splits (they are detected anyway)
    defaults: {imgsz: 192}        # optional train-setting hints (scalars), passed through
    synthetic: shapes             # optional: data generated on first use (shapes | shapes-voc | shapes-cls)
    synthetic_args: {n_train: 400}  # optional generator arguments

A ``download`` key is never executed: it only earns a log line asking to fetch the data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from mirrordet.data.image_files import is_image_file
from mirrordet.data.voc import is_voc_split
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.files import bundled_dir, find_yaml
from mirrordet.utils.log import LOGGER
from mirrordet.utils.safe_yaml import MAX_CLASSES, load_yaml_file, short_repr

SPLITS = ("train", "val", "test")
SYNTHETIC_TASKS = {"shapes": "detect", "shapes-voc": "detect", "shapes-seg": "segment", "shapes-cls": "classify"}
SYNTHETIC_ARGS = {
    "shapes": ("n_train", "n_val", "imgsz", "seed"),
    "shapes-seg": ("n_train", "n_val", "imgsz", "seed"),
    "shapes-voc": ("n_train", "n_val", "imgsz", "seed"),
    "shapes-cls": ("n_train_per_class", "n_val_per_class", "imgsz", "seed"),
}


def default_cache_dir() -> Path:
    """Folder for generated data: ``$MIRRORDET_CACHE`` if set, else ``~/.cache/mirrordet``."""
    return Path(os.environ.get("MIRRORDET_CACHE") or "~/.cache/mirrordet").expanduser()


def _names(raw: dict[str, Any], file: Path) -> dict[int, str]:
    names, nc = raw.get("names"), raw.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or not 0 < nc <= MAX_CLASSES):
        raise DatasetError(f"{file}: `nc` must be a positive integer (at most {MAX_CLASSES:,}), got {short_repr(nc)}")
    if names is None:
        if nc is None:
            raise DatasetError(
                f"{file}: missing key `names` (a list of class names, or a dict {{0: name, ...}})"
            )
        return {i: f"class{i}" for i in range(nc)}
    if isinstance(names, list):
        out = {i: str(n) for i, n in enumerate(names)}
    elif isinstance(names, dict):
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in names):
            raise DatasetError(f"{file}: `names` dict keys must be integers 0..nc-1, got {list(names)[:5]}")
        if sorted(names) != list(range(len(names))):
            raise DatasetError(f"{file}: `names` dict keys must be exactly 0..{len(names) - 1} (contiguous)")
        out = {k: str(names[k]) for k in sorted(names)}
    else:
        raise DatasetError(
            f"{file}: `names` must be a list or a dict {{int: str}}, got {type(names).__name__}"
        )
    if not out:
        raise DatasetError(f"{file}: `names` is empty")
    if nc is not None and nc != len(out):
        raise DatasetError(f"{file}: `nc: {nc}` disagrees with the {len(out)} entries of `names`")
    return out


# The settings a dataset YAML's `defaults:` block may suggest: training hyperparameters,
# augmentation and evaluation thresholds. Where outputs go, what runs and on which device come from
# the user alone, so a dataset file can never redirect or overwrite another run's files.
DATASET_HINT_KEYS: frozenset[str] = frozenset({
    "epochs", "patience", "batch", "imgsz", "optimizer", "lr0", "lrf", "momentum", "weight_decay",
    "warmup_epochs", "warmup_momentum", "warmup_bias_lr", "cos_lr", "nbs", "grad_clip", "close_mosaic",
    "fraction", "box", "cls", "dfl", "label_smoothing", "hsv_h", "hsv_s", "hsv_v", "degrees", "translate",
    "aug_scale", "shear", "fliplr", "flipud", "mosaic", "mixup", "multi_scale", "conf", "iou", "max_det", "cache",
})


def _defaults(raw: dict[str, Any], file: Path) -> dict[str, Any]:
    d = raw.get("defaults")
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise DatasetError(f"{file}: `defaults` must be a mapping of setting -> value")
    refused = sorted(str(k) for k in d if k not in DATASET_HINT_KEYS)
    if refused:
        raise DatasetError(f"{file}: `defaults:` may only suggest training hyperparameters, not "
                           f"{', '.join(refused[:8])} (set those on the command line)")
    for k, v in d.items():
        if not isinstance(k, str) or not (v is None or isinstance(v, (bool, int, float, str))):
            raise DatasetError(f"{file}: `defaults.{k}` must be a scalar (number, string, bool or null)")
    return dict(d)


def _resolve(p: Any, root: Path, file: Path, key: str) -> Path:
    if not isinstance(p, (str, Path)) or not str(p):
        raise DatasetError(f"{file}: `{key}` must be a path string, got {p!r}")
    q = Path(os.path.expanduser(str(p)))
    q = q if q.is_absolute() else root / q
    if not q.exists():
        raise DatasetError(
            f"{file}: `{key}` path {q} does not exist (set `path:` to the dataset root, "
            f"or fetch the data first)"
        )
    return q.resolve()


def _split(value: Any, root: Path, file: Path, key: str, task: str = "detect") -> Path | list[Path] | dict[str, Path]:
    if isinstance(value, dict):
        missing = [k for k in ("images", "annotations") if k not in value]
        if missing:
            raise DatasetError(
                f"{file}: COCO split `{key}` needs keys `images` and `annotations` "
                f"(missing {', '.join(missing)})"
            )
        images = _resolve(value["images"], root, file, f"{key}.images")
        ann = _resolve(value["annotations"], root, file, f"{key}.annotations")
        if not images.is_dir() or not ann.is_file():
            raise DatasetError(f"{file}: `{key}` needs `images` to be a folder and `annotations` a JSON file")
        return {"images": images, "annotations": ann}
    parts = value if isinstance(value, list) else [value]
    if not parts:
        raise DatasetError(f"{file}: `{key}` is an empty list")
    paths = [_split_one(v, root, file, f"{key}[{i}]" if isinstance(value, list) else key, task)
             for i, v in enumerate(parts)]
    voc = [is_voc_split(p) for p in paths]
    if any(voc):  # Pascal VOC: ImageSets/Main id lists beside Annotations/ and JPEGImages/
        if not all(voc):
            raise DatasetError(f"{file}: `{key}` mixes VOC id lists (ImageSets/Main/*.txt) with other sources")
        return {"voc": paths}
    return paths if isinstance(value, list) else paths[0]


def _split_one(value: Any, root: Path, file: Path, key: str, task: str = "detect") -> Path:
    p = _resolve(value, root, file, key)
    if p.is_file() and p.suffix.lower() != ".txt" and task != "classify":  # classify: CIFAR batch files
        raise DatasetError(f"{file}: `{key}` {p} must be a folder of images or a .txt list of images")
    return p


def _synthetic(raw: dict[str, Any], file: Path) -> Path:
    """Resolve the root of a generated dataset and generate it when absent or stale."""
    from mirrordet.data import synthetic  # imported on use: cv2-heavy drawing code

    kind = raw["synthetic"]
    if not isinstance(kind, str) or kind not in SYNTHETIC_TASKS:
        raise DatasetError(f"{file}: unknown `synthetic: {kind}` (known: {', '.join(SYNTHETIC_TASKS)})")
    args = raw.get("synthetic_args") or {}
    if not isinstance(args, dict) or any(k not in SYNTHETIC_ARGS[kind] for k in args):
        raise DatasetError(f"{file}: `synthetic_args` accepts only {', '.join(SYNTHETIC_ARGS[kind])}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in args.values()):
        raise DatasetError(f"{file}: `synthetic_args` values must be non-negative integers")
    if raw.get("path"):
        root = Path(os.path.expanduser(str(raw["path"])))
        root = root if root.is_absolute() else file.parent / root
    elif args:  # non-default generator settings get their own folder, so datasets never overwrite each other
        tag = hashlib.sha256(repr(sorted(args.items())).encode()).hexdigest()[:8]
        root = default_cache_dir() / f"{kind}-{tag}"
    else:
        root = default_cache_dir() / kind
    root = root.absolute()
    ensure = {"shapes": synthetic.ensure_shapes, "shapes-voc": synthetic.ensure_shapes_voc,
              "shapes-seg": synthetic.ensure_shapes_seg, "shapes-cls": synthetic.ensure_shapes_cls}[kind]
    ensure(root, **args)
    return root


def is_class_folder_split(p: Path) -> bool:
    """True for an ImageFolder split: a folder with no images of its own and class subfolders holding images."""
    if not p.is_dir():
        return False
    entries = list(p.iterdir())
    subdirs = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    if not subdirs or any(e.is_file() and is_image_file(e) for e in entries):
        return False
    return any(is_image_file(f) for d in subdirs[:8] for f in list(d.iterdir())[:50])


def _suited_imgsz(split: Path, sample: int = 32) -> int:
    """The image size a folder's images suggest: the median longer side of a few of them, rounded up to a
    multiple of 32, within [32, 640] (a folder of 64 px images should not train at 640 by default)."""
    import cv2

    from mirrordet.data.preprocess import stride_multiple

    sides = []
    for d in sorted(p for p in split.iterdir() if p.is_dir()):
        for f in sorted(d.iterdir())[: max(1, sample // 8)]:
            im = cv2.imread(str(f)) if is_image_file(f) else None
            if im is not None:
                sides.append(max(im.shape[:2]))
    if not sides:
        return 224
    return min(640, stride_multiple(sorted(sides)[len(sides) // 2], 32))


def image_folder_dataset(root: Path) -> dict[str, Any] | None:
    """The dataset dict of a classification folder ``root/{train,val}/<class>/*`` (``val`` may be ``valid`` or
    ``test``), as Ultralytics users pass it with ``data=DIR``; None when ``root`` is not laid out so."""
    train = root / "train"
    val = next((root / v for v in ("val", "valid", "test") if is_class_folder_split(root / v)), None)
    if not is_class_folder_split(train) or val is None:
        return None
    names = sorted(d.name for d in train.iterdir() if d.is_dir() and not d.name.startswith("."))
    return {"yaml_file": root, "path": root, "names": dict(enumerate(names)), "nc": len(names), "task": "classify",
            "synthetic": None, "defaults": {"imgsz": _suited_imgsz(train)}, "train": train, "val": val,
            "test": root / "test" if val.name != "test" and is_class_folder_split(root / "test") else None}


def load_dataset_yaml(name_or_path: str | Path) -> dict[str, Any]:
    """Load a dataset YAML (a path, or a bundled name such as ``shapes.yaml``).

    Returns:
        dict with ``yaml_file`` (Path), ``path`` (absolute root), ``names`` ({0: str, ...}),
        ``nc`` (int), ``train``/``val`` (resolved splits), ``test`` (or None), ``task``
        ("detect" | "segment" | "classify"), ``synthetic`` (str or None) and ``defaults`` (dict of scalars).
        A split is an absolute Path (folder or .txt list), a list of those, or
        ``{"images": Path, "annotations": Path}`` for COCO JSON data.

    Raises:
        DatasetError: missing file (the message lists the bundled names), bad YAML, missing
            keys, a split path that does not exist, names/nc disagreement.
    """
    folder = Path(os.path.expanduser(str(name_or_path)))
    file = find_yaml(name_or_path, "data")
    if folder.is_dir():  # data=DIR: a classification ImageFolder, preferred over a sibling DIR.yaml
        found = image_folder_dataset(folder.resolve())
        if found is not None:
            also = f" (not {file})" if file is not None else ""
            LOGGER.info(f"data={name_or_path}: the image folder {found['path']}{also}: {found['nc']} classes, "
                        f"train={found['train'].name}, val={found['val'].name}")
            return found
        if file is None:
            raise DatasetError(f"data={name_or_path} is a folder but not a classification image folder "
                               "(train/ and val/ with one subfolder of images per class); detection data needs a "
                               "dataset YAML (path, train, val, names)")
    if file is None:
        bundled = sorted(p.name for p in bundled_dir("data").glob("*.yaml"))
        raise DatasetError(
            f"dataset YAML {str(name_or_path)!r} not found (not a file; bundled: {', '.join(bundled)})"
        )
    file = file.resolve()
    raw = load_yaml_file(file, DatasetError)  # non-UTF-8, bad YAML, anchor bombs: one-line errors
    if not isinstance(raw, dict):
        raise DatasetError(
            f"{file}: expected a mapping with keys path/train/val/names, got {type(raw).__name__}"
        )
    missing = [k for k in ("train", "val") if raw.get(k) in (None, "")]
    if missing:
        raise DatasetError(f"{file}: missing key(s) {', '.join('`' + k + '`' for k in missing)}")
    if "download" in raw:
        LOGGER.warning(
            f"{file.name}: the `download` entry is ignored (mirrordet never downloads); fetch the data yourself "
            "into the `path:` folder (see the file's comments)"
        )
    names = _names(raw, file)
    defaults = _defaults(raw, file)
    task = raw.get("task")
    synthetic = raw.get("synthetic")
    if synthetic is not None:
        root = _synthetic(raw, file)
        task = task or SYNTHETIC_TASKS[synthetic]
    else:
        p = raw.get("path")
        root = Path(os.path.expanduser(str(p))) if p else file.parent
        root = (root if root.is_absolute() else file.parent / root).resolve()
    if task is None and synthetic is None:  # Ultralytics' classify YAMLs carry no task: the layout tells
        first = raw.get("train")
        first = first[0] if isinstance(first, list) and first else first
        if isinstance(first, (str, Path)) and is_class_folder_split(_resolve(first, root, file, "train")):
            task = "classify"
    task = task or "detect"
    if task not in ("detect", "segment", "classify"):
        raise DatasetError(f"{file}: `task` must be detect, segment or classify, got {task!r}")
    out: dict[str, Any] = {
        "yaml_file": file,
        "path": root,
        "names": names,
        "nc": len(names),
        "task": task,
        "task_stated": raw.get("task") is not None or synthetic is not None,  # else inferred (detect by default)
        "synthetic": synthetic,
        "defaults": defaults,
        "test": None,
    }
    for key in SPLITS:
        if raw.get(key) not in (None, ""):
            out[key] = _split(raw[key], root, file, key, task)
            if raw.get("format") == "voc" and not (isinstance(out[key], dict) and "voc" in out[key]):
                raise DatasetError(f"{file}: `format: voc` but `{key}` is not a VOC id list "
                                   "(VOC20xx/ImageSets/Main/<split>.txt beside Annotations/ and JPEGImages/)")
    if raw.get("format") not in (None, "voc", "yolo", "coco"):
        raise DatasetError(f"{file}: `format` must be voc, yolo or coco (or left out), got {short_repr(raw['format'])}")
    return out
