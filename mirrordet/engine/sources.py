"""Prediction sources: images, folders, globs, ``.txt`` lists, videos, numpy arrays and live streams (a webcam
index, RTSP / RTMP / HTTP URLs, ``.streams`` lists; engine/streams.py), one frame at a time.

``iter_frames(source, vid_stride)`` yields :class:`Frame` objects. A frame that cannot be read
(an unreadable or zero-byte image, a video that does not open) is yielded with ``image=None``
and ``error`` set, so that the caller reports it and goes on with the rest of a folder. A
source that cannot be used at all (a missing path, an unknown extension, a glob that matches
nothing) raises :class:`~mirrordet.utils.errors.DatasetError` naming it, before any work.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from mirrordet.data.image_files import IMG_SUFFIXES, imread, is_image_file
from mirrordet.engine.streams import Stream, as_stream, read_streams_file, stream_frames
from mirrordet.utils.errors import DatasetError

VID_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpeg", ".mpg", ".wmv", ".webm", ".asf", ".gif"})


@dataclass
class Frame:
    """One image to predict on.

    Attributes:
        path: image file, video file, or ``"arrayN"`` for an in-memory array.
        image: BGR uint8 [H, W, 3], or None when it could not be read (see ``error``).
        error: why the image could not be read (None when it was).
        index: position of the item in the source (0-based, counting unreadable items).
        total: number of items in the source when known (video frames after ``vid_stride``).
        frame: frame number within a video (0-based, None for images).
        fps: frames per second of the video (None for images).
        array: the image came from an in-memory array (``path`` is then ``"arrayN"``).
    """

    path: str
    image: np.ndarray | None
    error: str | None = None
    index: int = 0
    total: int | None = None
    frame: int | None = None
    fps: float | None = None
    array: bool = False

    @property
    def is_video(self) -> bool:
        return self.frame is not None

    @property
    def stem(self) -> str:
        """File name without suffix; ``<stem>_<frame>`` for video frames."""
        s = Path(self.path).stem
        return f"{s}_{self.frame}" if self.frame is not None else s


def is_video_file(path: str | Path) -> bool:
    """True when ``path`` has a video suffix (case-insensitive)."""
    return Path(path).suffix.lower() in VID_SUFFIXES


def as_bgr(img: np.ndarray, where: str) -> np.ndarray:
    """Check an in-memory image and return it as contiguous BGR uint8 [H, W, 3].

    Accepts [H, W] grayscale, [H, W, 1], [H, W, 3] BGR and [H, W, 4] BGRA arrays of uint8
    (other dtypes in [0, 255] are converted).

    Raises:
        DatasetError: wrong rank, channel count or an empty image.
    """
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise DatasetError(f"{where}: expected an image array [H, W, 3] (BGR, uint8), got shape {tuple(a.shape)}")
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    elif a.shape[2] == 4:
        a = cv2.cvtColor(a, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(a)


def _read_list(txt: Path) -> list[str]:
    """Lines of a ``.txt`` list of paths (relative lines resolved against the list's folder)."""
    out = []
    for line in txt.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line)
            out.append(str(p if p.is_absolute() else txt.parent / p))
    return out


def _usable(path: str) -> bool:
    return is_image_file(path) or is_video_file(path)


def resolve_source(source: Any) -> list[Any]:
    """Expand a source into a list of image/video paths and arrays (files are not opened yet).

    Args:
        source: an image or video path, a folder (searched recursively), a glob (``*``, ``?``,
            ``[``), a ``.txt`` file with one path a line, a numpy array, a webcam index (``0``), a stream URL
            (``rtsp://``, ``rtmp://``, ``http(s)://``), a ``.streams`` file, or a list of those.

    Returns:
        Items in order: str paths and numpy arrays. Entries of a folder, glob or ``.txt`` list
        with unknown extensions are skipped; missing ``.txt`` entries are kept (reported when read).

    Raises:
        DatasetError: a missing path, a file with an unknown extension, an empty folder or glob.
    """
    if isinstance(source, np.ndarray):
        return [source]
    stream = as_stream(source)
    if stream is not None:
        return [stream]
    if isinstance(source, (list, tuple)):
        items: list[Any] = []
        for s in source:
            items += resolve_source(s)
        return items
    if not isinstance(source, (str, Path)):
        raise DatasetError(f"source: cannot predict on a {type(source).__name__}; pass a path, a glob, a .txt list, "
                           "a numpy image array or a list of those")
    text = str(source)
    p = Path(text).expanduser()
    if p.is_dir():
        found = sorted(str(f) for f in p.rglob("*") if f.is_file() and _usable(f.name))
        if not found:
            raise DatasetError(f"source {text}: the folder has no images or videos "
                               f"(image suffixes: {' '.join(sorted(IMG_SUFFIXES))})")
        return found
    if p.is_file():
        if p.suffix.lower() == ".txt":
            return _read_list(p)
        if p.suffix.lower() == ".streams":
            return read_streams_file(p)
        if not _usable(p.name):
            raise DatasetError(f"source {text}: unknown file type {p.suffix or '(no suffix)'!r}; expected an image "
                               f"({' '.join(sorted(IMG_SUFFIXES))}), a video ({' '.join(sorted(VID_SUFFIXES))}), "
                               "a folder, a glob or a .txt list")
        return [str(p)]
    if any(c in text for c in "*?["):
        found = sorted(f for f in glob.glob(str(p), recursive=True) if Path(f).is_file() and _usable(f))
        if not found:
            raise DatasetError(f"source {text}: the pattern matches no images or videos")
        return found
    raise DatasetError(f"source {text} does not exist (expected an image, a video, a folder, a glob or a .txt list)")


def _video_frames(path: str, vid_stride: int, index: int) -> Iterator[Frame]:
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        yield Frame(path, None, f"cannot open video {path} (not a video, or no decoder for it)", index)
        return
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        total = (count + vid_stride - 1) // vid_stride if count > 0 else None
        n = 0
        while True:
            ok, img = cap.read()
            if not ok or img is None:
                if n == 0:
                    yield Frame(path, None, f"cannot read any frame of video {path}", index)
                return
            yield Frame(path, img, None, index, total, n, fps)
            n += 1
            for _ in range(vid_stride - 1):  # skip without decoding
                if not cap.grab():
                    return
                n += 1
    finally:
        cap.release()


def _stream_frames(stream: Stream, vid_stride: int, index: int) -> Iterator[Frame]:
    try:
        for n, img, fps in stream_frames(stream):
            if n % vid_stride == 0:
                yield Frame(stream.name, img, None, index, None, n, fps)
    except OSError as e:
        yield Frame(stream.name, None, str(e), index)


def iter_frames(items: Sequence[Any], vid_stride: int = 1) -> Iterator[Frame]:
    """Read the items of :func:`resolve_source` one frame at a time.

    Args:
        items: str paths and numpy arrays.
        vid_stride: use every ``vid_stride``-th video frame (frames 0, s, 2s, ...).

    Yields:
        :class:`Frame` per image / kept video frame; unreadable items come with ``image=None``.
    """
    if vid_stride < 1:
        raise DatasetError(f"vid_stride={vid_stride} must be >= 1")
    total = len(items)
    for i, item in enumerate(items):
        if isinstance(item, Stream):
            yield from _stream_frames(item, vid_stride, i)
            continue
        if isinstance(item, np.ndarray):
            yield Frame(f"array{i}", as_bgr(item, f"source array {i}"), None, i, total, array=True)
            continue
        path = str(item)
        if is_video_file(path):
            if not Path(path).is_file():
                yield Frame(path, None, f"video {path} does not exist", i, total)
            else:
                yield from _video_frames(path, vid_stride, i)
            continue
        if not Path(path).is_file():
            yield Frame(path, None, f"image {path} does not exist", i, total)
            continue
        img = imread(path)
        if img is None:
            size = Path(path).stat().st_size
            why = "the file is empty (0 bytes)" if size == 0 else "not a readable image (corrupt or wrong format)"
            yield Frame(path, None, f"cannot read image {path}: {why}", i, total)
        else:
            yield Frame(path, img, None, i, total)
