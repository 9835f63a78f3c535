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

CACHE_VERSION = 3  # 3: file names stored as (bytes, lengths), not newline-joined


def _raw(s: str) -> bytes:
    """A path's bytes as the OS gave them (names that are not UTF-8 round-trip via surrogateescape)."""
    return s.encode("utf-8", "surrogateescape")


def files_fingerprint(paths: Iterable[str | Path], extra: str = "") -> str:
    """SHA-256 over (path, size, mtime_ns) of each file (missing files hash as such) plus ``extra``.

    Each path enters length-prefixed, so no byte of a name (newlines included) can make two
    different file lists hash alike.
    """
    h = hashlib.sha256(f"v{CACHE_VERSION}|{len(extra)}|".encode() + _raw(extra))
    for p in paths:
        name = _raw(str(p))
        try:
            st = os.stat(p)
            size, mtime = st.st_size, st.st_mtime_ns
        except (OSError, ValueError):  # ValueError: a NUL byte in the name
            size, mtime = -1, -1
        h.update(f"|{len(name)}|".encode() + name + f"|{size}|{mtime}".encode())
    return h.hexdigest()


def _text(s: str) -> np.ndarray:
    return np.frombuffer(_raw(s), dtype=np.uint8)


def _untext(a: np.ndarray) -> str:
    return a.tobytes().decode("utf-8", "surrogateescape")


def _texts(items: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> (concatenated bytes uint8 [sum L], lengths int64 [n]): any byte may occur in a string."""
    raw = [_raw(s) for s in items]
    return np.frombuffer(b"".join(raw), dtype=np.uint8), np.array([len(r) for r in raw], dtype=np.int64)


def _untexts(data: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Inverse of ``_texts``; ValueError when the lengths do not add up to the data."""
    if lengths.ndim != 1 or (lengths < 0).any() or int(lengths.sum()) != data.size:
        raise ValueError("file-name lengths do not match the stored bytes")
    raw, ends = data.tobytes(), np.cumsum(lengths)
    return [raw[e - n : e].decode("utf-8", "surrogateescape") for e, n in zip(ends.tolist(), lengths.tolist())]


def save_record_cache(
    path: str | Path, key: str, records: list[dict[str, Any]], report: dict[str, Any]
) -> bool:
    """Write records and report to ``path`` atomically. Returns False (with a warning) when not writable.

    Records carry ``im_file`` (str), ``shape`` (h, w), ``cls`` [n] int, ``bboxes`` [n, 4] normalized
    xywh float32 and optionally ``image_id`` (int), ``crowd`` [m, 4] normalized xywh float32 and
    ``segments`` (per instance a list of [k, 2] float32 polygons; all records or none).
    """
    n = len(records)
    has_id = n > 0 and all("image_id" in r for r in records)
    crowd = [r.get("crowd", np.zeros((0, 4), np.float32)) for r in records]
    names, name_lengths = _texts([str(r["im_file"]) for r in records])
    arrays = {
        "version": np.array(CACHE_VERSION),
        "key": _text(key),
        "im_files": names,
        "im_file_lengths": name_lengths,
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
    if n and all("segments" in r for r in records):
        arrays.update(_pack_segments([inst for r in records for inst in r["segments"]]))
    try:
        atomic_save(path, lambda f: np.savez(f, **arrays))
    except OSError as e:
        LOGGER.warning(f"label cache {path} not written ({e}); labels will be re-checked next run")
        return False
    return True


def _pack_segments(instances: list[list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Ragged polygons -> flat arrays: parts per instance, points per part, the points [P, 2]."""
    parts = [np.asarray(p, np.float32).reshape(-1, 2) for inst in instances for p in inst]
    return {"seg_parts": np.array([len(inst) for inst in instances], np.int64),
            "seg_points": np.array([len(p) for p in parts], np.int64),
            "seg_xy": np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)}


def _unpack_segments(parts: np.ndarray, points: np.ndarray, xy: np.ndarray) -> list[list[np.ndarray]]:
    """Inverse of :func:`_pack_segments`; ValueError when the counts do not add up."""
    if int(parts.sum()) != len(points) or int(points.sum()) != len(xy):
        raise ValueError("segment counts do not match the stored points")
    polys = np.split(xy, np.cumsum(points)[:-1]) if len(points) else []
    ends = np.cumsum(parts)
    return [list(polys[e - k:e]) for e, k in zip(ends.tolist(), parts.tolist())]


def load_record_cache(path: str | Path, key: str) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """Records and report from ``path`` if it exists, is readable and was written for ``key``; else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or _untext(z["key"]) != key:
                return None
            files = _untexts(z["im_files"], z["im_file_lengths"])
            shapes, counts = z["shapes"], z["counts"]
            cls, bboxes = z["cls"], z["bboxes"]
            ids, crowd_counts, crowd = z["image_ids"], z["crowd_counts"], z["crowd"]
            report = json.loads(_untext(z["report"]))
            n = len(counts)
            segments = (_unpack_segments(z["seg_parts"], z["seg_points"], z["seg_xy"]) if "seg_parts" in z.files
                        else None)
            if segments is not None and len(segments) != len(cls):
                raise ValueError("one polygon set per instance expected")
            if not (len(files) == len(shapes) == len(crowd_counts) == n and int(counts.sum()) == len(cls) == len(bboxes)
                    and int(crowd_counts.sum()) == len(crowd) and len(ids) in (0, n)):
                raise ValueError("array lengths disagree")
    except Exception as e:  # a damaged or foreign file is simply rebuilt
        LOGGER.warning(f"label cache {path} unreadable ({type(e).__name__}); rebuilding it")
        return None
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
        if segments is not None:
            r["segments"] = segments[offs[i] : offs[i + 1]]
        records.append(r)
    return records, report
