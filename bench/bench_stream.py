"""Predict on a stream for many frames and sample the process's resident memory: it must stay flat.

    python bench/bench_stream.py [--frames 600] [--every 100]

A synthetic video (moving shapes, 320x240) is written to a temporary folder and read through the stream
reader (a ``.streams`` list: the background thread and its bounded queue, no frame dropped for a file); an
untrained yolov8n predicts every frame at imgsz 160 with ``stream=True`` and nothing saved. RSS is read from
/proc/self/status every ``--every`` frames.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_video(path: Path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for i in range(frames):
        img = np.full((240, 320, 3), 60, np.uint8)
        cv2.circle(img, (40 + (3 * i) % 240, 120), 30, (0, 0, 255), -1)
        cv2.rectangle(img, (200, 40 + (2 * i) % 150), (260, 90 + (2 * i) % 150), (0, 255, 0), -1)
        writer.write(img)
    writer.release()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--every", type=int, default=100)
    args = ap.parse_args()
    from mirrordet import Model

    with tempfile.TemporaryDirectory() as tmp:
        video, listing = Path(tmp) / "v.avi", Path(tmp) / "cam.streams"
        write_video(video, args.frames)
        listing.write_text(f"{video}\n")
        model = Model("yolov8n.yaml")
        t0, samples = time.perf_counter(), []
        for n, _ in enumerate(model.predict(str(listing), stream=True, imgsz=160, verbose=False), 1):
            if n % args.every == 0:
                samples.append((n, rss_mb(), time.perf_counter() - t0))
        print("| frames | RSS MB | seconds |\n|---:|---:|---:|")
        for n, mb, s in samples:
            print(f"| {n} | {mb:.1f} | {s:.1f} |")
        growth = samples[-1][1] - samples[0][1]
        print(f"\nRSS from frame {samples[0][0]} to {samples[-1][0]}: {growth:+.1f} MB "
              f"({args.frames} frames at {args.frames / samples[-1][2]:.1f} frames/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
