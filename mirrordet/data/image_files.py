"""Image files of a split: listing, reading, and the image -> label path rule."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mirrordet.utils.errors import DatasetError

IMG_SUFFIXES = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` has an image suffix mirrordet reads (case-insensitive)."""
    return Path(path).suffix.lower() in IMG_SUFFIXES


def list_images(source: str | Path | Sequence[str | Path], root: str | Path | None = None) -> list[Path]:
    """Image files of a split, sorted within each source, duplicates removed.

    Args:
        source: a folder (searched recursively), a ``.txt`` file with one image path a line
            (relative lines are resolved against ``root``, else against the list's folder),
            a single image file, or a list of those.
        root: dataset root used for relative lines of ``.txt`` lists.

    Returns:
        Absolute image paths. Missing list entries are kept (the label checker reports them).

    Raises:
        DatasetError: a source that does not exist; a .txt list that is unreadable, not UTF-8
            or holds a NUL byte.
    """
    if isinstance(source, (list, tuple)):
        out: list[Path] = []
        seen: set[Path] = set()
        for s in source:
            for p in list_images(s, root):
                if p not in seen:
                    seen.add(p)
                    out.append(p)
        return out
    src = Path(source)
    if src.is_dir():
        found = []
        for dirpath, _, files in os.walk(src):
            found.extend(Path(dirpath) / f for f in files if is_image_file(f))
        return sorted(p.absolute() for p in found)
    if src.is_file() and src.suffix.lower() == ".txt":
        base = Path(root) if root is not None else src.parent
        try:
            text = src.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DatasetError(f"image list {src} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise DatasetError(f"image list {src} cannot be read ({e.strerror or e})") from None
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if "\x00" in line:
                raise DatasetError(f"image list {src}:{n} holds a NUL byte, which no file name can contain")
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line)
            if not p.is_absolute():
                p = base / (line[2:] if line.startswith("./") else line)
            out.append(p.absolute())
        return out
    if src.is_file() and is_image_file(src):
        return [src.absolute()]
    raise DatasetError(
        f"image source {src} does not exist (expected a folder of images, a .txt list or an image)"
    )


def img2label_path(im_file: str | Path) -> Path:
    """YOLO label file of an image: the LAST ``images`` path component becomes ``labels``, suffix ``.txt``.

    ``/d/images/train/a.jpg`` -> ``/d/labels/train/a.txt``. An image path without an ``images``
    component keeps its folder (``/d/a.jpg`` -> ``/d/a.txt``).
    """
    parts = list(Path(im_file).parts)
    for k in range(len(parts) - 2, -1, -1):  # the file name itself is never replaced
        if parts[k] == "images":
            parts[k] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def imread(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """Read an image as BGR uint8 [H, W, 3] (any path encoding); None when unreadable or empty."""
    try:
        buf = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if buf.size == 0:
        return None
    img = cv2.imdecode(buf, flags)
    if img is None or img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    return img
