"""GPU benchmark (issue #21): CUDA AMP training throughput, FP16 predict latency and batched throughput.

Each measurement runs in its own child process (a clean CUDA context and peak-memory counter):

- train: yolov8n from its YAML on the generated shapes set (a plain YOLO dataset YAML both tools read), AMP on,
  ``--train-epochs`` epochs, validation off; images/s of the last epoch's training pass (mirrordet: from the
  epoch callbacks; Ultralytics: from its per-epoch ``train_time`` callback), for mirrordet and, with
  ``--ultralytics-python``, for Ultralytics in the same run.
- predict: the 1080x810 test image of bench_predict.py, ``half=True``: median single-image latency over
  ``--calls`` calls after warm-up, and images/s at batch ``--batch`` (both tools, the same child code).

``--dry-run`` runs every step on the CPU at tiny sizes (imgsz 64, 1 epoch, 3 calls, float32) to prove the
script works end to end before device time is spent; its figures mean nothing.

    python bench/bench_gpu.py --device 0 [--ultralytics-python PATH]
    python bench/bench_gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_predict import make_image  # noqa: E402
from bench_train import shapes_yolo_yaml  # noqa: E402

TRAIN_CHILD = """
import json, sys, time, torch
from mirrordet import Model
data, imgsz, epochs, batch, device, amp, project = sys.argv[1:8]
times = {}
m = Model("yolov8n.yaml")
m.add_callback("on_epoch_start", lambda t, epoch, **k: times.__setitem__(epoch, [time.perf_counter()]))
m.add_callback("on_batch_end", lambda t, epoch, batch, **k: times[epoch].append(time.perf_counter()))
m.train(data=data, imgsz=int(imgsz), epochs=int(epochs), batch=int(batch), device=device, amp=amp == "1",
        val=False, plots=False, verbose=False, workers=4, project=project, name="m", exist_ok=True, close_mosaic=0)
last = times[max(times)]
n_images = (len(last) - 1) * int(batch)
peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() and device != "cpu" else 0.0
print("BENCH", json.dumps({"img_s": n_images / (last[-1] - last[0]), "peak_gpu_mb": peak}))
"""

ULTRALYTICS_TRAIN_CHILD = """
import json, sys, time, torch
from ultralytics import YOLO
data, imgsz, epochs, batch, device, amp, project = sys.argv[1:8]
epoch_s = []
model = YOLO("yolov8n.yaml")
model.add_callback("on_train_epoch_start", lambda t: epoch_s.append(time.perf_counter()))
model.add_callback("on_train_epoch_end", lambda t: epoch_s.__setitem__(-1, time.perf_counter() - epoch_s[-1]))
model.train(data=data, imgsz=int(imgsz), epochs=int(epochs), batch=int(batch), device=device, amp=amp == "1",
            val=False, plots=False, verbose=False, workers=4, project=project, name="u", exist_ok=True,
            close_mosaic=0)
n = len(model.trainer.train_loader.dataset)
print("BENCH", json.dumps({"img_s": n / epoch_s[-1], "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20}))
"""

PREDICT_CHILD = """
import json, statistics, sys, time, cv2, torch
from mirrordet import Model
image, imgsz, device, half, calls, batch = sys.argv[1:7]
img, half, calls, batch = cv2.imread(image), half == "1", int(calls), int(batch)
m = Model("yolov8n.yaml")
def sync():
    if device != "cpu":
        torch.cuda.synchronize()
def once(images):
    sync(); t = time.perf_counter()
    m.predict(images, imgsz=int(imgsz), device=device, half=half, batch=len(images), verbose=False)
    sync(); return time.perf_counter() - t
for _ in range(20 if device != "cpu" else 2):
    once(img)
lat = statistics.median(once(img) for _ in range(calls)) * 1e3
once([img] * batch)
thr = batch / statistics.median(once([img] * batch) for _ in range(max(3, calls // 10)))
print("BENCH", json.dumps({"latency_ms": lat, "batch_img_s": thr}))
"""


ULTRALYTICS_PREDICT_CHILD = PREDICT_CHILD.replace("from mirrordet import Model",
                                                  "from ultralytics import YOLO as Model")


def child(python: str, code: str, args: list[str]) -> dict:
    """Run ``code`` with ``args`` in ``python``; returns its BENCH json (or the error tail)."""
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="0")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--train-epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--ultralytics-python", default=None)
    ap.add_argument("--dry-run", action="store_true", help="tiny CPU run of every step (checks the script only)")
    args = ap.parse_args()
    if args.dry_run:
        args.device, args.imgsz, args.train_epochs, args.batch, args.calls = "cpu", 64, 1, 4, 3
    amp = "0" if args.dry_run else "1"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = str(shapes_yolo_yaml(Path(tmp)))
        train_args = [data, str(args.imgsz), str(args.train_epochs), "16" if not args.dry_run else "4", args.device,
                      amp, tmp]
        rows.append(("mirrordet", "train img/s (AMP)", child(sys.executable, TRAIN_CHILD, train_args)))
        if args.ultralytics_python:
            rows.append(("ultralytics", "train img/s (AMP)",
                         child(args.ultralytics_python, ULTRALYTICS_TRAIN_CHILD, train_args)))
        image = str(make_image(Path(tmp) / "bench.jpg"))
        pred = child(sys.executable, PREDICT_CHILD, [image, str(args.imgsz), args.device, "0" if args.dry_run else "1",
                                                     str(args.calls), str(args.batch)])
        rows.append(("mirrordet", "predict (FP16)", pred))
        if args.ultralytics_python:
            rows.append(("ultralytics", "predict (FP16)",
                         child(args.ultralytics_python, ULTRALYTICS_PREDICT_CHILD, [image, str(args.imgsz), args.device,
                               "0" if args.dry_run else "1", str(args.calls), str(args.batch)])))
    print(f"machine: {platform.processor() or platform.machine()}, device {args.device}, imgsz {args.imgsz}, "
          f"{'DRY RUN (CPU, tiny sizes; figures meaningless)' if args.dry_run else 'CUDA AMP / FP16'}")
    print("| tool | measure | result |\n|---|---|---|")
    for tool, what, res in rows:
        print(f"| {tool} | {what} | {json.dumps(res)} |")
    if any("error" in r for _, _, r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
