"""On-disk cache of verified per-image records (.npz written atomically; no pickle).

The cache holds what the label checker produced (image sizes, classes, boxes, the problem
report) under a key that hashes the paths, sizes and modification times of every image and
label file, so a second run with unchanged files skips decoding and parsing entirely.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mirrordet.utils.files import atomic_save
from mirrordet.utils.log import LOGGER

CACHE_VERSION = 2


def files_fingerprint(paths: Iterable[str | Path], extra: str = "") -> str:
    """SHA-256 over (path, size, mtime_ns) of each file (missing files hash as such) plus ``extra``."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{extra}\n".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|-1|-1\n".encode())
    return h.hexdigest()


def _text(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)


def _untext(a: np.ndarray) -> str:
    return a.tobytes().decode("utf-8")


def save_record_cache(
    path: str | Path, key: str, records: list[dict[str, Any]], report: dict[str, Any]
) -> bool:
    """Write records and report to ``path`` atomically. Returns False (with a warning) when not writable.

    Records carry ``im_file`` (str), ``shape`` (h, w), ``cls`` [n] int, ``bboxes`` [n, 4] normalized
    xywh float32 and optionally ``image_id`` (int) and ``crowd`` [m, 4] normalized xywh float32.
    """
    n = len(records)
    has_id = n > 0 and all("image_id" in r for r in records)
    crowd = [r.get("crowd", np.zeros((0, 4), np.float32)) for r in records]
    arrays = {
        "version": np.array(CACHE_VERSION),
        "key": _text(key),
        "im_files": _text("\n".join(str(r["im_file"]) for r in records)),
        "shapes": np.array([r["shape"] for r in records], dtype=np.int64).reshape(n, 2),
        "counts": np.array([len(r["cls"]) for r in records], dtype=np.int64),
        "cls": np.concatenate([np.asarray(r["cls"], np.int64) for r in records])
        if n
        else np.zeros(0, np.int64),
        "bboxes": (
            np.concatenate([np.asarray(r["bboxes"], np.float32).reshape(-1, 4) for r in records])
            if n
            else np.zeros((0, 4), np.float32)
        ),
        "image_ids": np.array([r["image_id"] for r in records] if has_id else [], dtype=np.int64),
        "crowd_counts": np.array([len(c) for c in crowd], dtype=np.int64),
        "crowd": np.concatenate(crowd).astype(np.float32) if n else np.zeros((0, 4), np.float32),
        "report": _text(json.dumps(report)),
    }
    try:
        atomic_save(path, lambda f: np.savez(f, **arrays))
    except OSError as e:
        LOGGER.warning(f"label cache {path} not written ({e}); labels will be re-checked next run")
        return False
    return True


def load_record_cache(path: str | Path, key: str) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """Records and report from ``path`` if it exists, is readable and was written for ``key``; else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or _untext(z["key"]) != key:
                return None
            files = _untext(z["im_files"]).split("\n")
            shapes, counts = z["shapes"], z["counts"]
            cls, bboxes = z["cls"], z["bboxes"]
            ids, crowd_counts, crowd = z["image_ids"], z["crowd_counts"], z["crowd"]
            report = json.loads(_untext(z["report"]))
    except Exception as e:  # a damaged or foreign file is simply rebuilt
        LOGGER.warning(f"label cache {path} unreadable ({type(e).__name__}); rebuilding it")
        return None
    n = len(counts)
    if n == 0:
        return [], report
    offs = np.concatenate([[0], np.cumsum(counts)])
    coffs = np.concatenate([[0], np.cumsum(crowd_counts)])
    records = []
    for i in range(n):
        r: dict[str, Any] = {
            "im_file": files[i],
            "shape": (int(shapes[i, 0]), int(shapes[i, 1])),
            "cls": cls[offs[i] : offs[i + 1]].copy(),
            "bboxes": bboxes[offs[i] : offs[i + 1]].copy(),
        }
        if len(ids) == n:
            r["image_id"] = int(ids[i])
        if crowd_counts[i]:
            r["crowd"] = crowd[coffs[i] : coffs[i + 1]].copy()
        records.append(r)
    return records, report
