"""Classification benchmark: CSPMirrorNet53 vs yolov8n-cls (and Ultralytics' yolov8n-cls where installed).

Each model trains in its own subprocess on the built-in shapes-cls ImageFolder data with the same
imgsz, epochs, batch and seed; reports the median seconds of an epoch's training pass (validation
not included, for both tools: mirrordet's results.csv ``epoch_time``, Ultralytics' epoch start/end
callbacks), the wall-clock time of the whole training process, peak RSS and final top-1.

    python bench/bench_classify.py --epochs 50 --imgsz 64 --batch 16 --nbs 16 --hsv-h 0.5 [--ultralytics-python PATH]

The defaults are shapes-cls.yaml's suggested settings, so the mirrordet runs equal
``mirrordet train model=<model> data=shapes-cls.yaml``; Ultralytics gets the same values
explicitly (its classification ``hsv_h`` is also an additive hue shift).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MIRRORDET_CHILD = """
import json, resource, sys, time
from mirrordet.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:])
print("BENCH", json.dumps({"rc": rc, "wall": time.perf_counter() - t,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ULTRALYTICS_CHILD = """
import json, resource, sys, time
from ultralytics import YOLO
data, epochs, imgsz, batch, seed, project, nbs, hsv_h = sys.argv[1:9]
t = time.perf_counter()
model = YOLO("yolov8n-cls.yaml")
marks = {"start": [], "end": []}
model.add_callback("on_train_epoch_start", lambda tr: marks["start"].append(time.perf_counter()))
model.add_callback("on_train_epoch_end", lambda tr: marks["end"].append(time.perf_counter()))
model.train(data=data, epochs=int(epochs), imgsz=int(imgsz), batch=int(batch), seed=int(seed), workers=2,
            nbs=int(nbs), hsv_h=float(hsv_h),
            device="cpu", project=project, name="ultralytics", plots=False, amp=False, exist_ok=True, verbose=False)
wall = time.perf_counter() - t
m = model.val(data=data, imgsz=int(imgsz), batch=int(batch), device="cpu", plots=False, verbose=False)
print("BENCH", json.dumps({"rc": 0, "top1": float(m.top1), "wall": wall,
      "epoch_s": [e - s for s, e in zip(marks["start"], marks["end"])],
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][6:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)  # the shapes-cls.yaml defaults: epochs, imgsz, nbs, hsv_h
    ap.add_argument("--nbs", type=int, default=16)
    ap.add_argument("--hsv-h", type=float, default=0.5)
    ap.add_argument("--imgsz", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="cspmirrornet53-cls.yaml,yolov8n-cls.yaml")
    ap.add_argument("--ultralytics-python", default=None)
    args = ap.parse_args()
    from mirrordet.data.dataset_yaml import load_dataset_yaml

    root = Path(load_dataset_yaml("shapes-cls.yaml")["path"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for model in args.models.split(","):
            name = Path(model).stem
            res = run_child([sys.executable, "-c", MIRRORDET_CHILD, "train", f"model={model}", "data=shapes-cls.yaml",
                             f"epochs={args.epochs}", f"imgsz={args.imgsz}", f"batch={args.batch}", f"seed={args.seed}",
                             f"nbs={args.nbs}", f"hsv_h={args.hsv_h}",
                             "workers=2", f"project={project}", f"name={name}", "plots=False", "verbose=False"])
            with open(project / name / "results.csv") as f:
                times = [float(r["epoch_time"]) for r in csv.DictReader(f)]
            top1 = json.loads((project / name / "metrics.json").read_text())["metrics/accuracy_top1"]
            rows.append(("mirrordet", name, statistics.median(times), res["wall"], res["peak_rss_mb"], top1))
        if args.ultralytics_python:
            res = run_child([args.ultralytics_python, "-c", ULTRALYTICS_CHILD, str(root), str(args.epochs),
                             str(args.imgsz), str(args.batch), str(args.seed), str(project), str(args.nbs),
                             str(args.hsv_h)])
            rows.append(("ultralytics", "yolov8n-cls", statistics.median(res["epoch_s"]), res["wall"], res["peak_rss_mb"],
                         res["top1"]))
    print(f"machine: {platform.machine()}, {platform.system()}, python {platform.python_version()}")
    print(f"settings: data=shapes-cls epochs={args.epochs} imgsz={args.imgsz} batch={args.batch} nbs={args.nbs} "
          f"hsv_h={args.hsv_h} seed={args.seed} cpu")
    print("| tool | model | training pass s/epoch (median) | whole training s (wall) | peak RSS MB | top-1 |")
    print("|---|---|---|---|---|---|")
    for tool, model, med, total, rss, top1 in rows:
        print(f"| {tool} | {model} | {med:.2f} | {total:.0f} | {rss:.0f} | {top1:.3f} |")


if __name__ == "__main__":
    main()
