"""Live sources for prediction: webcams (``source=0``), RTSP / RTMP / HTTP(S) streams and ``.streams`` lists.

Each stream is read by OpenCV in a background thread into a bounded queue, so a consumer slower than the camera
never makes memory grow: for a live source the oldest waiting frame is dropped when the queue is full (what a
viewer of a live feed wants: the newest picture), a video file opened as a stream is read without drops. The
reader stops when the source ends, when it fails, or when the consumer stops iterating.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://")
QUEUE_SIZE = 4  # frames held at most per stream (bounded memory)


@dataclass(frozen=True)
class Stream:
    """A live source: a camera index or a stream URL (``live``: frames may be dropped to keep up)."""

    source: int | str
    live: bool = True

    @property
    def name(self) -> str:
        return f"camera{self.source}" if isinstance(self.source, int) else str(self.source)


def as_stream(source: object) -> Stream | None:
    """The :class:`Stream` that ``source`` names (an int or digit string, or a URL), or None."""
    if isinstance(source, bool):
        return None
    if isinstance(source, int):
        return Stream(source)
    if isinstance(source, str):
        if source.isdigit():
            return Stream(int(source))
        if source.lower().startswith(STREAM_PREFIXES):
            return Stream(source)
    return None


def read_streams_file(path: Path) -> list[Stream]:
    """The streams of a ``.streams`` file: one camera index or URL per line (``#`` comments allowed); other lines
    are taken as video paths opened as streams without drops."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(as_stream(line) or Stream(line, live=False))
    return out


def _put(frames: queue.Queue, item: object, stop: threading.Event, live: bool) -> bool:
    """Queue ``item``; a live source drops the oldest waiting frame when full. False once the consumer stopped."""
    while not stop.is_set():
        try:
            frames.put(item, block=not live, timeout=None if live else 0.1)
            return True
        except queue.Full:
            if live:
                try:
                    frames.get_nowait()
                except queue.Empty:
                    pass
    return False


def _reader(cap: cv2.VideoCapture, frames: queue.Queue, stop: threading.Event, live: bool) -> None:
    n = 0
    while not stop.is_set():
        ok, img = cap.read()
        if not ok or img is None or not _put(frames, (n, img), stop, live):
            break
        n += 1
    _put(frames, None, stop, live)  # end of stream


def stream_frames(stream: Stream, maxsize: int = QUEUE_SIZE) -> Iterator[tuple[int, np.ndarray, float]]:
    """(frame number in the source, BGR image [H, W, 3], fps) of ``stream``, read in a background thread through a
    queue of at most ``maxsize`` frames (a live source skips the frames it dropped).

    Raises:
        OSError: the stream cannot be opened (the caller reports it).
    """
    cap = cv2.VideoCapture(stream.source)
    if not cap.isOpened():
        cap.release()
        raise OSError(f"cannot open stream {stream.name}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
    stop = threading.Event()
    thread = threading.Thread(target=_reader, args=(cap, frames, stop, stream.live), daemon=True)
    thread.start()
    try:
        while True:
            item = frames.get()
            if item is None:
                return
            yield item[0], item[1], fps
    finally:
        stop.set()
        thread.join(timeout=5)
        cap.release()
