"""Training benchmark: yolov8n vs yolov8n-mirror (and Ultralytics' yolov8n where installed).

Each model trains in its own subprocess on the same YOLO-format dataset with the same imgsz,
epochs, batch and seed; the benchmark reports median seconds per epoch, peak RSS of the
training process, and the final mAP50 / mAP50-95 of best.pt on the val split.

    python bench/bench_train.py --epochs 10 --imgsz 192 --batch 16 [--ultralytics-python PATH]
    python bench/bench_train.py --aba --epochs 5 --imgsz 320 --ultralytics-python PATH

``--aba`` times whole training runs (process start to exit: dataset scan, every epoch, per-epoch and final
validation) in the order mirrordet, Ultralytics, mirrordet, so that a drift of the machine's speed during the
run affects both tools alike; the ratio is the mean of the two mirrordet runs over the Ultralytics run.

``--ultralytics-python`` names a Python interpreter of a separate virtual environment that has
the ``ultralytics`` package (never a dependency of mirrordet). The dataset is the built-in
synthetic shapes set, exported as a plain YOLO dataset YAML so that both tools read the same
files.
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
import time
from pathlib import Path

MIRRORDET_CHILD = """
import json, resource, sys, time
from mirrordet.cli import main
t = time.time()
rc = main(sys.argv[1:])
print("BENCH", json.dumps({"rc": rc, "wall": time.time() - t,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ULTRALYTICS_CHILD = """
import json, resource, sys, time
from ultralytics import YOLO
data, epochs, imgsz, batch, seed, project = sys.argv[1:7]
t = time.time()
model = YOLO("yolov8n.yaml")
m = model.train(data=data, epochs=int(epochs), imgsz=int(imgsz), batch=int(batch), seed=int(seed), workers=2,
                device="cpu", project=project, name="ultralytics", plots=False, amp=False, exist_ok=True,
                verbose=False)  # the metrics of its final validation of best.pt (as mirrordet's train)
print("BENCH", json.dumps({"rc": 0, "wall": time.time() - t, "map50": float(m.box.map50), "map": float(m.box.map),
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def shapes_yolo_yaml(out: Path, name: str = "shapes.yaml") -> Path:
    """Write a plain YOLO dataset YAML (absolute paths) pointing at the generated data of the bundled ``name``
    (shapes.yaml: boxes; shapes-seg.yaml: YOLO-seg polygons), readable by both tools."""
    from mirrordet.data.dataset_yaml import load_dataset_yaml

    d = load_dataset_yaml(name)
    text = (f"path: {d['path']}\ntrain: {d['train']}\nval: {d['val']}\nnames:\n"
            + "".join(f"  {k}: {v}\n" for k, v in d["names"].items()))
    path = out / f"{Path(name).stem}-yolo.yaml"
    path.write_text(text)
    return path


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    return f"machine: {cpu}, {platform.system()}, python {platform.python_version()}"


def run_child(cmd: list[str]) -> dict:
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(lines[-1][6:])
    res["wall"] = time.time() - t
    return res


def epoch_times(results_csv: Path, column: str) -> list[float]:
    with open(results_csv) as f:
        return [float(r[column]) for r in csv.DictReader(f)]


def bench_mirrordet(model: str, data: Path, args, project: Path, name: str | None = None) -> dict:
    name = name or Path(model).stem
    res = run_child([sys.executable, "-c", MIRRORDET_CHILD, "train", f"model={model}", f"data={data}",
                     f"epochs={args.epochs}", f"imgsz={args.imgsz}", f"batch={args.batch}", f"seed={args.seed}",
                     "workers=2", f"project={project}", f"name={name}", "exist_ok=True", "plots=False",
                     "verbose=False"])
    metrics = json.loads((project / name / "metrics.json").read_text())
    times = epoch_times(project / name / "results.csv", "epoch_time")
    return {"tool": "mirrordet", "model": Path(model).stem, "s_per_epoch": statistics.median(times),
            "wall": res["wall"], "peak_rss_mb": res["peak_rss_mb"], "map50": metrics["metrics/mAP50"],
            "map": metrics["metrics/mAP50-95"]}


def bench_ultralytics(python: str, data: Path, args, project: Path) -> dict:
    res = run_child([python, "-c", ULTRALYTICS_CHILD, str(data), str(args.epochs), str(args.imgsz), str(args.batch),
                     str(args.seed), str(project)])
    run = project / "ultralytics" / "results.csv"
    with open(run) as f:
        rows = list(csv.DictReader(f))
    times = [float(r["time"].strip()) for r in rows if "time" in r]  # cumulative seconds
    per_epoch = [b - a for a, b in zip([0.0, *times[:-1]], times)] if times else [res["wall"] / args.epochs]
    return {"tool": "ultralytics", "model": "yolov8n", "s_per_epoch": statistics.median(per_epoch),
            "wall": res["wall"], "peak_rss_mb": res["peak_rss_mb"], "map50": res["map50"], "map": res["map"]}


def aba(data: Path, args, project: Path) -> None:
    """mirrordet, Ultralytics, mirrordet (the first of ``--models``): whole-run wall time and peak RSS."""
    model = args.models.split(",")[0]
    rows = [bench_mirrordet(model, data, args, project, "A1"),
            bench_ultralytics(args.ultralytics_python, data, args, project),
            bench_mirrordet(model, data, args, project, "A2")]
    peer = rows[1]
    print(machine_line())
    print(f"settings: A-B-A, epochs={args.epochs} imgsz={args.imgsz} batch={args.batch} seed={args.seed} workers=2 "
          "val every epoch, device=cpu")
    print("| order | tool | model | wall s (whole run) | s/epoch (median) | peak RSS MB | mAP50 | mAP50-95 |")
    print("|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows):
        print(f"| {'ABA'[i]} | {r['tool']} | {r['model']} | {r['wall']:.1f} | {r['s_per_epoch']:.2f} | "
              f"{r['peak_rss_mb']:.0f} | {r['map50']:.3f} | {r['map']:.3f} |")
    mine = [rows[0], rows[2]]
    print(f"wall ratio mirrordet / Ultralytics: {statistics.mean(r['wall'] for r in mine) / peer['wall']:.3f} "
          f"(runs: {mine[0]['wall'] / peer['wall']:.3f}, {mine[1]['wall'] / peer['wall']:.3f}); peak RSS ratio: "
          f"{max(r['peak_rss_mb'] for r in mine) / peer['peak_rss_mb']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--imgsz", type=int, default=192)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="yolov8n.yaml,yolov8n-mirror.yaml")
    ap.add_argument("--ultralytics-python", default=None)
    ap.add_argument("--aba", action="store_true", help="whole-run wall time, mirrordet / Ultralytics / mirrordet")
    args = ap.parse_args()
    if args.aba and not args.ultralytics_python:
        ap.error("--aba needs --ultralytics-python")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = shapes_yolo_yaml(tmp)
        if args.aba:
            return aba(data, args, tmp / "runs")
        rows = [bench_mirrordet(m, data, args, tmp / "runs") for m in args.models.split(",")]
        if args.ultralytics_python:
            rows.append(bench_ultralytics(args.ultralytics_python, data, args, tmp / "runs"))
    ref = rows[0]
    print(machine_line())
    print(f"settings: epochs={args.epochs} imgsz={args.imgsz} batch={args.batch} seed={args.seed} device=cpu")
    print("| tool | model | s/epoch (median) | peak RSS MB | mAP50 | mAP50-95 | s/epoch ratio to first row |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tool']} | {r['model']} | {r['s_per_epoch']:.2f} | {r['peak_rss_mb']:.0f} | {r['map50']:.3f} | "
              f"{r['map']:.3f} | {r['s_per_epoch'] / ref['s_per_epoch']:.2f} |")


if __name__ == "__main__":
    main()
