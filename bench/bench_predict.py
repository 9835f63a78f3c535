"""Prediction benchmark: single-image end-to-end latency on CPU (preprocess + inference + NMS).

mirrordet yolov8n and yolov8n-mirror (and Ultralytics' yolov8n, built from "yolov8n.yaml" with
random weights, when ``--ultralytics-python`` names an interpreter that has it) each run in
their own persistent subprocess with the same torch thread count. The parent interleaves them:
every round, each tool predicts the same 1080x810 image ``--per-round`` times through its public
Python API (``Model(...).predict(img)`` / ``YOLO(...).predict(img)``), so all tools see the same
machine load. mirrordet's predictor runs a frozen TorchScript trace of the fused model once an
input shape has recurred (see mirrordet/engine/inference.py); ``NAME:eager`` in ``--models``
measures the eager fused model instead, and ``NAME:onnx`` the model exported to ONNX (dynamic shape, so the
same 640x480 letterbox) and predicted through ``Model("file.onnx")`` (onnxruntime backend). Reported: the median (and 10th / 90th percentiles) of
the wall-clock time of those calls after warm-up, the median CPU time of the same calls (less
sensitive to other load on a shared machine), the median per-stage times each tool reports
itself, and the ratio of each median to Ultralytics' median in the same run.

    python bench/bench_predict.py --imgsz 640 --rounds 20 --per-round 5 --threads 1 [--ultralytics-python PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Child protocol: print "READY" after loading and warming up; then for each line "N" on stdin run N
# timed predictions and print one JSON line {"wall": [ms], "cpu": [ms], "stages": [[pre, inf, post], ...]}
# (wall: perf_counter around the call; cpu: process_time, i.e. CPU time of all the process's threads).
MIRRORDET_CHILD = """
import json, sys, time, cv2, torch
model_name, image = sys.argv[1], sys.argv[2]
imgsz, threads, warmup = (int(v) for v in sys.argv[3:6])
torch.set_num_threads(threads)
from mirrordet import Model
img = cv2.imread(image)
eager = model_name.endswith(":eager")  # "yolov8n.yaml:eager": never use the frozen trace
model = Model(model_name.removesuffix(":eager"))
if eager:
    model.predict(img, imgsz=imgsz, device="cpu", verbose=False)
    model._predict_cache["runner"][1].trace_enabled = False
def once():
    t, c = time.perf_counter(), time.process_time()
    r = model.predict(img, imgsz=imgsz, device="cpu", verbose=False)[0]
    wall, cpu = (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3
    return wall, cpu, [r.speed["preprocess"], r.speed["inference"], r.speed["postprocess"]]
for _ in range(warmup):
    once()
print("READY", flush=True)
for line in sys.stdin:
    out = [once() for _ in range(int(line))]
    print(json.dumps({"wall": [o[0] for o in out], "cpu": [o[1] for o in out], "stages": [o[2] for o in out]}),
          flush=True)
"""

ULTRALYTICS_CHILD = """
import json, sys, time, cv2, torch
model_name, image = sys.argv[1], sys.argv[2]
imgsz, threads, warmup = (int(v) for v in sys.argv[3:6])
torch.set_num_threads(threads)
from ultralytics import YOLO
img = cv2.imread(image)
model = YOLO(model_name)
def once():
    t, c = time.perf_counter(), time.process_time()
    r = model.predict(img, imgsz=imgsz, device="cpu", verbose=False)[0]
    wall, cpu = (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3
    return wall, cpu, [r.speed["preprocess"], r.speed["inference"], r.speed["postprocess"]]
for _ in range(warmup):
    once()
print("READY", flush=True)
for line in sys.stdin:
    out = [once() for _ in range(int(line))]
    print(json.dumps({"wall": [o[0] for o in out], "cpu": [o[1] for o in out], "stages": [o[2] for o in out]}),
          flush=True)
"""


def make_image(path: Path) -> Path:
    """A 1080x810 (w x h) BGR test image: shapes on a gradient with noise (no download)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    img = np.empty((810, 1080, 3), np.uint8)
    img[:] = np.linspace(40, 210, 1080, dtype=np.uint8)[None, :, None]
    img = cv2.add(img, rng.integers(0, 40, img.shape, dtype=np.uint8))
    for _ in range(12):
        x, y, s = int(rng.integers(0, 980)), int(rng.integers(0, 710)), int(rng.integers(30, 160))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + s, y + s), color, -1)
        else:
            cv2.circle(img, (x, y), s // 2, color, -1)
    cv2.imwrite(str(path), img)
    return path


class Child:
    """One persistent benchmark process."""

    def __init__(self, tool: str, model: str, python: str, code: str, image: Path, args) -> None:
        self.tool, self.model = tool, model
        self.proc = subprocess.Popen([python, "-c", code, model, str(image), str(args.imgsz), str(args.threads),
                                      str(args.warmup)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.stages: list[list[float]] = []

    def wait_ready(self) -> None:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.tool} {self.model}: child exited ({self.proc.wait()})")
            if line.strip() == "READY":
                return

    def run(self, n: int) -> None:
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.tool} {self.model}: child exited ({self.proc.wait()})")
            if line.startswith("{"):
                out = json.loads(line)
                self.wall += out["wall"]
                self.cpu += out["cpu"]
                self.stages += out["stages"]
                return

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def exported(model: str, tmp: str, imgsz: int) -> str:
    """``NAME:onnx`` -> the path of NAME exported to ONNX (dynamic shape) in ``tmp``; other names unchanged."""
    if not model.endswith(":onnx"):
        return model
    from mirrordet import Model

    return str(Model(model.removesuffix(":onnx")).export(format="onnx", imgsz=imgsz, dynamic=True, project=tmp,
                                                         name="onnx"))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=30, help="untimed calls first (mirrordet traces after 16)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads in every child")
    ap.add_argument("--models", default="yolov8n.yaml,yolov8n-mirror.yaml,yolov8n.yaml:eager",
                    help="mirrordet models; NAME:eager keeps the eager module (no frozen trace); NAME:onnx predicts "
                         "with its ONNX export (onnxruntime)")
    ap.add_argument("--ultralytics-python", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = make_image(Path(tmp) / "bench.jpg")
        children = [Child("mirrordet", exported(m, tmp, args.imgsz), sys.executable, MIRRORDET_CHILD, image, args)
                    for m in args.models.split(",")]
        if args.ultralytics_python:
            children.append(Child("ultralytics", "yolov8n.yaml", args.ultralytics_python, ULTRALYTICS_CHILD, image,
                                  args))
        try:
            for c in children:  # children load one at a time so their warm-ups do not overlap
                c.wait_ready()
            for r in range(args.rounds):
                order = children[r % len(children):] + children[: r % len(children)]  # rotate who goes first
                for c in order:
                    c.run(args.per_round)
        finally:
            for c in children:
                c.close()
    ref = next((c for c in children if c.tool == "ultralytics"), None)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, "
          f"python {platform.python_version()}")
    print(f"settings: imgsz={args.imgsz} image=1080x810 threads={args.threads} warmup={args.warmup} "
          f"runs={args.rounds}x{args.per_round} per tool, interleaved, device=cpu")
    print("| tool | model | end-to-end ms (median) | p10 | p90 | CPU ms (median) | preprocess | inference | "
          "postprocess | ratio to Ultralytics (wall / CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in children:
        med, cpu = statistics.median(c.wall), statistics.median(c.cpu)
        st = [statistics.median(s[k] for s in c.stages) for k in range(3)]
        ratio = (f"{med / statistics.median(ref.wall):.2f} / {cpu / statistics.median(ref.cpu):.2f}" if ref else "-")
        name = Path(c.model.removesuffix(":eager")).stem + (" (eager)" if c.model.endswith(":eager") else "")
        name = name + " (onnx, onnxruntime)" if c.model.endswith(".onnx") else name
        print(f"| {c.tool} | {name} | {med:.1f} | {pct(c.wall, 0.1):.1f} | {pct(c.wall, 0.9):.1f} | "
              f"{cpu:.1f} | {st[0]:.1f} | {st[1]:.1f} | {st[2]:.1f} | {ratio} |")

if __name__ == "__main__":
    main()
