"""Where prediction results go: annotated images / videos, YOLO label files, predictions.json, log lines.

Files land in the run folder (runs/<task>/predict/<name>/), which is created only when the first
file is written. Images and label files are written atomically; an annotated video is streamed
with ``cv2.VideoWriter`` (mp4v) and closed at the end of the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import cv2

from mirrordet.engine.results import Result
from mirrordet.engine.sources import Frame
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.files import atomic_write_bytes, atomic_write_text


def log_line(f: Frame, r: Result, n_items: int) -> str:
    """``image 2/5 a.jpg: 480x640 2 circles, 1 star, 41.0ms`` (video: ``video 1/1 (frame 3/40) v.mp4: ...``)."""
    ms = sum(r.speed.values())
    h, w = r.orig_shape
    if f.is_video:
        of = f"/{f.total}" if f.total else ""
        head = f"video {f.index + 1}/{n_items} (frame {f.frame + 1}{of}) {f.path}"
    else:
        head = f"image {f.index + 1}/{n_items} {f.path}"
    return f"{head}: {h}x{w} {r.verbose()}, {ms:.1f}ms"


def coco_image_id(stem: str) -> int | str:
    """COCO image id of a file: its stem as an int when it is all digits, else the stem."""
    return int(stem) if stem.isdigit() else stem


class PredictOutputs:
    """Annotated images/videos, label files and predictions.json of one prediction run.

    Args:
        get_dir: returns the run folder (creating it on first call).
        on: a run folder was requested at all. save, save_txt, save_conf, save_json: what to write.
    """

    def __init__(self, get_dir: Callable[[], Path | None], on: bool, save: bool, save_txt: bool, save_conf: bool,
                 save_json: bool) -> None:
        self._get_dir = get_dir
        self.save, self.save_txt, self.save_json = on and save, on and save_txt, on and save_json
        self.save_conf = save_conf
        self.videos: dict[str, tuple[cv2.VideoWriter, Path]] = {}
        self.names: dict[tuple[str, int], str] = {}  # (path, item index) -> unique output stem
        self.used: set[str] = set()
        self.records: list[dict[str, Any]] = []
        self.n_labels, self.wrote = 0, False

    @property
    def dir(self) -> Path:
        return self._get_dir()

    def _stem(self, f: Frame) -> str:
        """Output stem of a source file, unique within the run (``name_2`` for a second ``name``)."""
        key = (f.path, f.index)
        if key not in self.names:
            base = f"image{f.index}" if f.array else Path(f.path).stem
            stem, k = base, 2
            while stem in self.used:
                stem, k = f"{base}_{k}", k + 1
            self.used.add(stem)
            self.names[key] = stem
        return self.names[key]

    def write(self, f: Frame, r: Result) -> None:
        if not (self.save or self.save_txt or self.save_json):
            return
        stem = self._stem(f)
        frame_stem = f"{stem}_{f.frame}" if f.is_video else stem
        if self.save:
            self._save_image(f, r, stem)
        if self.save_txt:
            r.save_txt(self.dir / "labels" / f"{frame_stem}.txt", self.save_conf)
            self.n_labels += 1
        if self.save_json:
            self.records += r.coco_records(coco_image_id(frame_stem))
        self.wrote = True

    def _save_image(self, f: Frame, r: Result, stem: str) -> None:
        img = r.plot()
        if f.is_video:
            key = f"{f.path}#{f.index}"
            if key not in self.videos:
                out = self.dir / f"{stem}.mp4"
                h, w = img.shape[:2]
                vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), float(f.fps or 30.0), (w, h))
                if not vw.isOpened():
                    raise DatasetError(f"cannot write the annotated video {out} (no mp4v encoder in this OpenCV build)")
                self.videos[key] = (vw, out)
            self.videos[key][0].write(img)
            return
        suffix = ".jpg" if f.array else Path(f.path).suffix.lower()
        if suffix not in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"):
            suffix = ".jpg"
        ok, buf = cv2.imencode(suffix, img)
        if not ok:
            ok, buf = cv2.imencode(".jpg", img)
            suffix = ".jpg"
        atomic_write_bytes(self.dir / f"{stem}{suffix}", buf.tobytes())

    def close(self) -> None:
        for vw, _ in self.videos.values():
            vw.release()
        self.videos.clear()
        if self.save_json and self.wrote:
            atomic_write_text(self.dir / "predictions.json", json.dumps(self.records))
