"""Prediction benchmark: single-image end-to-end latency on CPU (preprocess + inference + NMS).

mirrordet yolov8n and yolov8n-mirror (and Ultralytics' yolov8n, built from "yolov8n.yaml" with
random weights, when ``--ultralytics-python`` names an interpreter that has it) each run in
their own persistent subprocess with the same torch thread count. The parent interleaves them:
every round, each tool predicts the same 1080x810 image ``--per-round`` times through its public
Python API (``Model(...).predict(img)`` / ``YOLO(...).predict(img)``), so all tools see the same
machine load. mirrordet's predictor runs a frozen TorchScript trace of the fused model once an
input shape has recurred (see mirrordet/engine/inference.py); ``NAME:eager`` in ``--models``
measures the eager fused model instead, and ``NAME:onnx`` the model exported to ONNX (dynamic shape, so the
same 640x480 letterbox) and predicted through ``Model("file.onnx")`` (onnxruntime backend), and ``NAME:ortraw`` that
ONNX file alone in onnxruntime on the already letterboxed input (the network's floor, no pre- or postprocessing).
``--fresh`` makes every call predict the next of ten different images in five sizes (one-off calls: a new image each
time, several input shapes; mirrordet's trace is built after 16 calls and serves each shape from its second call
on, so combine ``--fresh`` with ``NAME:eager`` and a small ``--warmup`` for the one-off path). Reported: the median
(and 10th / 90th percentiles) of the wall-clock time of those calls after warm-up, the median CPU time of the same
calls (less sensitive to other load on a shared machine), the median per-stage times each tool reports itself, and
the ratio
of each median to Ultralytics' median in the same run.

    python bench/bench_predict.py --imgsz 640 --rounds 20 --per-round 5 --threads 1 [--ultralytics-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Child protocol: print "READY" after loading and warming up; then for each line "N" on stdin run N
# timed predictions and print one JSON line {"wall": [ms], "cpu": [ms], "stages": [[pre, inf, post], ...]}
# (wall: perf_counter around the call; cpu: process_time, i.e. CPU time of all the process's threads).
# The protocol loop every child ends with (each defines once() -> (wall ms, cpu ms, [pre, inference, post] ms)).
CHILD_LOOP = """
for _ in range(warmup):
    once()
print("READY", flush=True)
for line in sys.stdin:
    out = [once() for _ in range(int(line))]
    print(json.dumps({"wall": [o[0] for o in out], "cpu": [o[1] for o in out], "stages": [o[2] for o in out]}),
          flush=True)
"""

MIRRORDET_CHILD = """
import json, os, sys, time, cv2, torch
model_name, images = sys.argv[1], [cv2.imread(p) for p in sys.argv[2].split(os.pathsep)]
imgsz, threads, warmup = (int(v) for v in sys.argv[3:6])
torch.set_num_threads(threads)
from mirrordet import Model
calls = 0
eager = model_name.endswith(":eager")  # "yolov8n.yaml:eager": never use the frozen trace
model = Model(model_name.removesuffix(":eager"))
if eager:
    model.predict(images[0], imgsz=imgsz, device="cpu", verbose=False)
    model._predict_cache["runner"][1].trace_enabled = False
def once():
    global calls
    img, calls = images[calls % len(images)], calls + 1
    t, c = time.perf_counter(), time.process_time()
    r = model.predict(img, imgsz=imgsz, device="cpu", verbose=False)[0]
    wall, cpu = (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3
    return wall, cpu, [r.speed["preprocess"], r.speed["inference"], r.speed["postprocess"]]
""" + CHILD_LOOP

# The raw network in onnxruntime: the exported file run on the letterboxed input, nothing before or after it
# (the floor a predict call could reach). Stages: [0, network, 0].
RAW_ORT_CHILD = """
import json, os, sys, time, cv2
import numpy as np, onnxruntime as ort
model_name, images = sys.argv[1], [cv2.imread(p) for p in sys.argv[2].split(os.pathsep)]
imgsz, threads, warmup = (int(v) for v in sys.argv[3:6])
from mirrordet.data.preprocess import letterbox_rect
opts = ort.SessionOptions()
opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
sess = ort.InferenceSession(model_name.removesuffix(":ortraw"), opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
inputs = [np.ascontiguousarray(letterbox_rect(im, imgsz, 32)[0][..., ::-1].transpose(2, 0, 1))[None].astype(np.float32)
          / 255 for im in images]
calls = 0
def once():
    global calls
    x, calls = inputs[calls % len(inputs)], calls + 1
    t, c = time.perf_counter(), time.process_time()
    sess.run(None, {name: x})
    wall, cpu = (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3
    return wall, cpu, [0.0, wall, 0.0]
""" + CHILD_LOOP

ULTRALYTICS_CHILD = """
import json, os, sys, time, cv2, torch
model_name, images = sys.argv[1], [cv2.imread(p) for p in sys.argv[2].split(os.pathsep)]
imgsz, threads, warmup = (int(v) for v in sys.argv[3:6])
torch.set_num_threads(threads)
from ultralytics import YOLO
calls = 0
model = YOLO(model_name)
def once():
    global calls
    img, calls = images[calls % len(images)], calls + 1
    t, c = time.perf_counter(), time.process_time()
    r = model.predict(img, imgsz=imgsz, device="cpu", verbose=False)[0]
    wall, cpu = (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3
    return wall, cpu, [r.speed["preprocess"], r.speed["inference"], r.speed["postprocess"]]
""" + CHILD_LOOP


# --fresh: image sizes (w, h) cycled through, two different images of each: photos in landscape and portrait,
# 4:3, 3:2, 16:9 and a small web image; at imgsz 640 they letterbox to five different network input shapes.
FRESH_SIZES = ((1080, 810), (1920, 1080), (810, 1080), (1200, 800), (500, 375))


def make_image(path: Path, size: tuple[int, int] = (1080, 810), seed: int = 0) -> Path:
    """A ``size`` (w, h) BGR test image: shapes on a gradient with noise (no download)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.linspace(40, 210, w, dtype=np.uint8)[None, :, None]
    img = cv2.add(img, rng.integers(0, 40, img.shape, dtype=np.uint8))
    for _ in range(12):
        x, y, s = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 100)), int(rng.integers(30, 160))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + s, y + s), color, -1)
        else:
            cv2.circle(img, (x, y), s // 2, color, -1)
    cv2.imwrite(str(path), img)
    return path


class Child:
    """One persistent benchmark process."""

    def __init__(self, tool: str, model: str, python: str, code: str, images: list[Path], args) -> None:
        self.tool, self.model = tool, model
        self.proc = subprocess.Popen([python, "-c", code, model, os.pathsep.join(map(str, images)), str(args.imgsz),
                                      str(args.threads),
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
    """``NAME:onnx`` -> the path of NAME exported to ONNX (dynamic shape) in ``tmp``; ``NAME:ortraw`` -> that path
    + ``:ortraw``; other names unchanged."""
    suffix = next((s for s in (":onnx", ":ortraw") if model.endswith(s)), None)
    if suffix is None:
        return model
    from mirrordet import Model

    path = str(Model(model.removesuffix(suffix)).export(format="onnx", imgsz=imgsz, dynamic=True, project=tmp,
                                                        name=suffix[1:]))
    return path + (":ortraw" if suffix == ":ortraw" else "")


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
    ap.add_argument("--fresh", action="store_true",
                    help="each call predicts the next of 10 different images in 5 sizes (FRESH_SIZES) instead of the "
                         "same 1080x810 image")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.fresh:
            images = [make_image(Path(tmp) / f"fresh{k}.jpg", FRESH_SIZES[k % len(FRESH_SIZES)], seed=k)
                      for k in range(2 * len(FRESH_SIZES))]
        else:
            images = [make_image(Path(tmp) / "bench.jpg")]
        children = []
        for m in args.models.split(","):
            m = exported(m, tmp, args.imgsz)
            children.append(Child("mirrordet", m, sys.executable,
                                  RAW_ORT_CHILD if m.endswith(":ortraw") else MIRRORDET_CHILD, images, args))
        if args.ultralytics_python:
            children.append(Child("ultralytics", "yolov8n.yaml", args.ultralytics_python, ULTRALYTICS_CHILD, images,
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
    shown = "10 fresh images, " + ", ".join(f"{w}x{h}" for w, h in FRESH_SIZES) if args.fresh else "1080x810"
    print(f"settings: imgsz={args.imgsz} image={shown} threads={args.threads} warmup={args.warmup} "
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
        name = Path(c.model.removesuffix(":ortraw")).stem + " (raw network, onnxruntime)" \
            if c.model.endswith(":ortraw") else name
        print(f"| {c.tool} | {name} | {med:.1f} | {pct(c.wall, 0.1):.1f} | {pct(c.wall, 0.9):.1f} | "
              f"{cpu:.1f} | {st[0]:.1f} | {st[1]:.1f} | {st[2]:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
