"""One-command performance benchmark: mirrordet vs Ultralytics on one model (``--model``, default
yolov8n.yaml; its mirror variant too when models/ has one).

Measured in one run on one machine, every tool in its own subprocess (Ultralytics from the
separate interpreter named by ``--ultralytics-python``; never a dependency of mirrordet):

- build: seconds to build the network from its YAML (nc=80), median of several builds.
- predict: single-image end-to-end latency at 640 on CPU through each tool's public predict API
  (letterbox, inference, NMS, result objects), median of many interleaved calls after warm-up
  (the protocol of bench/bench_predict.py, reused from there).
- batch: batched inference throughput (images/s), one ``predict`` call on a list of ``--batch``
  images at 640, median of several calls after warm-up.
- forward: fused eager forward time of the network alone on a 1x3x640x640 tensor (no pre/post),
  median, for CSPMirror's own cost relative to the C2f baseline.
- train: training throughput (images/s of the training pass, validation off) and peak RSS of the
  training process at each ``--train-imgsz``, on the same YOLO-format split (the built-in shapes
  set, ``--fraction`` of it), same batch, workers, seed, default optimizer and augmentation (mosaic on
  in every epoch), AMP off;
  the first epoch (data-loader start-up, allocator warm-up) is left out of the median.
- val: wall time of one validation call on the same 100-image val split at 640 with the same
  weights in both tools (mirrordet's trained weights of ``--model``, copied into Ultralytics' identical
  network), median of ``--val-runs`` after an untimed first call (label caches). mirrordet's
  validation includes the pycocotools COCO evaluation; Ultralytics' uses its own metric code.
  Pass ``--val-weights`` with a trained checkpoint: with barely trained weights almost every
  anchor passes conf 0.001, NMS dominates both tools, and Ultralytics' NMS gives up after its
  time limit (2 s + 0.05 s per image of a batch), leaving the rest of the batch without boxes.

It prints a table of mirrordet / Ultralytics ratios and, with ``--append``, appends it to
bench/RESULTS.md with the machine description.

    python bench/run.py --ultralytics-python /path/to/venv/bin/python --append bench/RESULTS.md
    python bench/run.py --model yolo11n.yaml --sections train --ultralytics-python ...
    python bench/run.py --model yolov8n-seg.yaml --data shapes-seg.yaml --sections train --ultralytics-python ...
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
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_predict  # noqa: E402  (the interleaved single-image latency protocol)
from bench_train import shapes_yolo_yaml  # noqa: E402

# Every child prints one line "BENCH <json>" with its measurements.
MIRRORDET_CHILD = r"""
import json, resource, statistics, sys, time
op, args = sys.argv[1], json.loads(sys.argv[2])
import cv2, torch
if args.get("threads"):
    torch.set_num_threads(args["threads"])
from mirrordet import Model
from mirrordet.nn.graph import build_model
out = {}
if op == "build":
    build_model(args["model"])  # first build imports and caches everything
    times = []
    for _ in range(args["n"]):
        t = time.perf_counter(); build_model(args["model"]); times.append(time.perf_counter() - t)
    out["build_ms"] = statistics.median(times) * 1e3
elif op == "batch":
    img = cv2.imread(args["image"]); model = Model(args["model"]); images = [img] * args["batch"]
    times = []
    for i in range(args["warmup"] + args["n"]):
        t = time.perf_counter(); model.predict(images, imgsz=640, batch=args["batch"], device="cpu", verbose=False)
        times.append(time.perf_counter() - t)
    out["images_per_s"] = args["batch"] / statistics.median(times[args["warmup"]:])
elif op == "forward":
    from mirrordet.nn.fuse import fuse
    net = fuse(build_model(args["model"]).eval())
    x = torch.rand(1, 3, 640, 640)
    times = []
    with torch.inference_mode():
        for i in range(args["warmup"] + args["n"]):
            t = time.perf_counter(); net(x); times.append(time.perf_counter() - t)
    out["forward_ms"] = statistics.median(times[args["warmup"]:]) * 1e3
elif op == "train":
    from mirrordet.cli import main
    rc = main(["train", f"model={args['model']}", f"data={args['data']}", f"epochs={args['epochs']}",
               f"imgsz={args['imgsz']}", f"batch={args['batch']}", f"fraction={args['fraction']}", "workers=2",
               "close_mosaic=0", "val=False", "plots=False", "verbose=False", f"project={args['project']}",
               f"name={args['name']}", "exist_ok=True", "seed=0"])
    out["rc"] = rc
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
elif op == "val":
    from mirrordet.cli import main
    times = []
    for i in range(1 + args["n"]):
        t = time.perf_counter()
        rc = main(["val", f"model={args['weights']}", f"data={args['data']}", "imgsz=640", "batch=16", "plots=False",
                   "verbose=False", f"project={args['project']}", f"name=val{i}"])
        times.append(time.perf_counter() - t)
        assert rc == 0
    out["val_s"] = statistics.median(times[1:])
    out["map50_95"] = json.loads((__import__("pathlib").Path(args["project"]) / "val1" / "metrics.json").read_text())[
        "metrics/mAP50-95"]
print("BENCH " + json.dumps(out), flush=True)
"""

ULTRALYTICS_CHILD = r"""
import json, resource, statistics, sys, time
op, args = sys.argv[1], json.loads(sys.argv[2])
import cv2, torch
if args.get("threads"):
    torch.set_num_threads(args["threads"])
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
out = {}
if op == "build":
    DetectionModel(args["model"], verbose=False)
    times = []
    for _ in range(args["n"]):
        t = time.perf_counter(); DetectionModel(args["model"], verbose=False); times.append(time.perf_counter() - t)
    out["build_ms"] = statistics.median(times) * 1e3
elif op == "batch":
    img = cv2.imread(args["image"]); model = YOLO(args["model"]); images = [img] * args["batch"]
    times = []
    for i in range(args["warmup"] + args["n"]):
        t = time.perf_counter(); model.predict(images, imgsz=640, batch=args["batch"], device="cpu", verbose=False)
        times.append(time.perf_counter() - t)
    out["images_per_s"] = args["batch"] / statistics.median(times[args["warmup"]:])
elif op == "forward":
    net = DetectionModel(args["model"], verbose=False).fuse(verbose=False).eval()
    x = torch.rand(1, 3, 640, 640)
    times = []
    with torch.inference_mode():
        for i in range(args["warmup"] + args["n"]):
            t = time.perf_counter(); net(x); times.append(time.perf_counter() - t)
    out["forward_ms"] = statistics.median(times[args["warmup"]:]) * 1e3
elif op == "train":
    model = YOLO(args["model"])
    marks = []
    model.add_callback("on_train_epoch_start", lambda tr: marks.append(["start", time.perf_counter()]))
    model.add_callback("on_train_epoch_end", lambda tr: marks.append(["end", time.perf_counter()]))
    model.train(data=args["data"], epochs=args["epochs"], imgsz=args["imgsz"], batch=args["batch"],
                fraction=args["fraction"], workers=2, close_mosaic=0, val=False, plots=False, device="cpu", amp=False,
                seed=0, project=args["project"], name=args["name"], exist_ok=True, verbose=False)
    starts = [t for k, t in marks if k == "start"]; ends = [t for k, t in marks if k == "end"]
    out["epoch_s"] = [e - s for s, e in zip(starts, ends)]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
elif op == "val":
    from mirrordet_weights import load_into  # written by bench/run.py next to the weights
    net = DetectionModel(args["model"], nc=len(args["names"]), verbose=False)
    load_into(net, args["weights_npz"])
    net.names = {int(k): v for k, v in args["names"].items()}
    model = YOLO(args["model"])
    model.model = net
    times = []
    for i in range(1 + args["n"]):
        t = time.perf_counter()
        m = model.val(data=args["data"], imgsz=640, batch=16, device="cpu", plots=False, verbose=False,
                      project=args["project"], name=f"val{i}", exist_ok=True)
        times.append(time.perf_counter() - t)
    out["val_s"] = statistics.median(times[1:])
    out["map50_95"] = float(m.box.map)
print("BENCH " + json.dumps(out), flush=True)
"""

# Loaded by the Ultralytics child: copy mirrordet's tensors ("layers.i..." names) into the
# identical Ultralytics network ("model.i..." names), checking every name and shape.
WEIGHTS_LOADER = r'''
import numpy as np, torch
def load_into(net, path):
    arrays = np.load(path)
    own = net.state_dict()
    missing = [k for k in own if k not in arrays.files]
    bad = [k for k in own if k in arrays.files and tuple(arrays[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        raise RuntimeError(f"weights do not match: missing {missing[:5]}, shape mismatch {bad[:5]}")
    net.load_state_dict({k: torch.from_numpy(arrays[k]) for k in own})
'''


def run_child(python: str, code: str, op: str, args: dict, env: dict | None = None) -> dict:
    """Run one measurement in a fresh process; returns its BENCH json."""
    proc = subprocess.run([python, "-c", code, op, json.dumps(args)], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{op} {args.get('model', '')} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][6:])


def export_weights(best_pt: Path, out: Path) -> Path:
    """mirrordet checkpoint -> .npz with Ultralytics' tensor names (``layers.`` -> ``model.``)."""
    import numpy as np
    import torch

    sd = torch.load(best_pt, map_location="cpu", weights_only=True)["model"]
    np.savez(out, **{"model." + k.removeprefix("layers."): v.numpy() for k, v in sd.items()})
    (out.parent / "mirrordet_weights.py").write_text(WEIGHTS_LOADER)
    return out


def predict_latency(tools: list[tuple[str, str, str, str]], image: Path, args) -> dict[tuple[str, str], float]:
    """Median single-image end-to-end ms per (tool, model), interleaved (bench_predict's protocol)."""
    ns = argparse.Namespace(imgsz=640, threads=args.threads, warmup=args.predict_warmup)
    children = [bench_predict.Child(tool, model, python, code, image, ns) for tool, model, python, code in tools]
    try:
        for c in children:
            c.wait_ready()
        for r in range(args.predict_rounds):
            for c in children[r % len(children):] + children[: r % len(children)]:
                c.run(5)
    finally:
        for c in children:
            c.close()
    return {(c.tool, Path(c.model).stem): statistics.median(c.wall) for c in children}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ultralytics-python", default=None, help="interpreter of a venv with ultralytics")
    ap.add_argument("--model", default="yolov8n.yaml",
                    help="the model both tools run (an Ultralytics model name, e.g. yolo11n.yaml)")
    ap.add_argument("--models", default=None,
                    help="mirrordet models (default: --model, and its -mirror variant when models/ has one)")
    ap.add_argument("--sections", default="build,predict,batch,forward,train,val")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for build/predict/batch/forward children")
    ap.add_argument("--predict-rounds", type=int, default=20)
    ap.add_argument("--predict-warmup", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16, help="images per batched-inference call and per training step")
    ap.add_argument("--train-imgsz", default="320,640")
    ap.add_argument("--train-epochs", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=0.25, help="fraction of the 400 training images used")
    ap.add_argument("--val-runs", type=int, default=3)
    ap.add_argument("--val-weights", type=Path, default=None,
                    help="a trained mirrordet checkpoint of --model for the val section (default: the 320 training run's)")
    ap.add_argument("--append", type=Path, default=None, help="append the report to this markdown file")
    ap.add_argument("--data", default="shapes.yaml",
                    help="bundled synthetic set the train and val sections use (shapes-seg.yaml for -seg models)")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    models = args.models.split(",") if args.models else default_models(args.model)
    ul = args.ultralytics_python
    peer = Path(args.model).stem  # the Ultralytics model's name in the table
    ul_job = {"model": args.model}
    rows: list[tuple[str, str, str, float, str]] = []  # (measure, tool, model, value, unit)

    def add(measure: str, tool: str, model: str, value: float, unit: str) -> None:
        rows.append((measure, tool, Path(model).stem, value, unit))
        print(f"{measure:<28} {tool:<12} {Path(model).stem:<16} {value:10.3f} {unit}", flush=True)

    threads = {"threads": args.threads}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = shapes_yolo_yaml(tmp, args.data)
        image = bench_predict.make_image(tmp / "bench.jpg")
        if "build" in sections:
            for m in models:
                add("build ms", "mirrordet", m, run_child(sys.executable, MIRRORDET_CHILD, "build",
                                                          {"model": m, "n": 5, **threads})["build_ms"], "ms")
            if ul:
                add("build ms", "ultralytics", peer, run_child(ul, ULTRALYTICS_CHILD, "build",
                                                               {"n": 5, **threads, **ul_job})["build_ms"], "ms")
        if "predict" in sections:
            tools = [("mirrordet", m, sys.executable, bench_predict.MIRRORDET_CHILD) for m in models]
            if ul:
                tools.append(("ultralytics", args.model, ul, bench_predict.ULTRALYTICS_CHILD))
            for (tool, model), ms in predict_latency(tools, image, args).items():
                add("predict ms (640, 1 image)", tool, model, ms, "ms")
        if "batch" in sections:
            job = {"image": str(image), "batch": args.batch, "warmup": 2, "n": 5, **threads}
            for m in models:
                add(f"batch img/s (640, b{args.batch})", "mirrordet", m,
                    run_child(sys.executable, MIRRORDET_CHILD, "batch", {**job, "model": m})["images_per_s"], "img/s")
            if ul:
                add(f"batch img/s (640, b{args.batch})", "ultralytics", peer,
                    run_child(ul, ULTRALYTICS_CHILD, "batch", {**job, **ul_job})["images_per_s"], "img/s")
        if "forward" in sections:
            job = {"warmup": 5, "n": 20, **threads}
            for m in models:
                add("forward ms (640, fused)", "mirrordet", m,
                    run_child(sys.executable, MIRRORDET_CHILD, "forward", {**job, "model": m})["forward_ms"], "ms")
            if ul:
                add("forward ms (640, fused)", "ultralytics", peer,
                    run_child(ul, ULTRALYTICS_CHILD, "forward", {**job, **ul_job})["forward_ms"], "ms")
        n_train = round(400 * args.fraction)
        trained: Path | None = args.val_weights
        if "train" in sections or ("val" in sections and trained is None):
            for sz in [int(s) for s in args.train_imgsz.split(",")]:
                job = {"data": str(data), "epochs": args.train_epochs, "imgsz": sz, "batch": args.batch,
                       "fraction": args.fraction, "project": str(tmp / "runs")}
                for m in models:
                    name = f"{Path(m).stem}-{sz}"
                    res = run_child(sys.executable, MIRRORDET_CHILD, "train", {**job, "model": m, "name": name})
                    import csv

                    with open(tmp / "runs" / name / "results.csv") as f:
                        epoch_s = [float(r["epoch_time"]) for r in csv.DictReader(f)]
                    add(f"train img/s ({sz})", "mirrordet", m, n_train / statistics.median(epoch_s[1:]), "img/s")
                    add(f"train peak RSS MB ({sz})", "mirrordet", m, res["peak_rss_mb"], "MB")
                    if trained is None and Path(m).stem == peer:  # weights for the val section
                        trained = tmp / "runs" / name / "weights" / "best.pt"
                    if "train" not in sections:
                        break
                if ul and "train" in sections:
                    res = run_child(ul, ULTRALYTICS_CHILD, "train", {**job, **ul_job, "name": f"ul-{sz}"})
                    add(f"train img/s ({sz})", "ultralytics", peer, n_train / statistics.median(res["epoch_s"][1:]),
                        "img/s")
                    add(f"train peak RSS MB ({sz})", "ultralytics", peer, res["peak_rss_mb"], "MB")
                if "train" not in sections:
                    break
        if "val" in sections and trained is not None:
            from mirrordet.data.dataset_yaml import load_dataset_yaml

            job = {"data": str(data), "n": args.val_runs, "project": str(tmp / "val")}
            res = run_child(sys.executable, MIRRORDET_CHILD, "val", {**job, "weights": str(trained)})
            add("val s (100 images, 640)", "mirrordet", peer, res["val_s"], "s")
            add("val mAP50-95 (same weights)", "mirrordet", peer, res["map50_95"], "")
            if ul:
                npz = export_weights(trained, tmp / "weights.npz")
                names = {str(k): v for k, v in load_dataset_yaml(str(data))["names"].items()}
                env = {**os.environ, "PYTHONPATH": str(tmp)}
                res = run_child(ul, ULTRALYTICS_CHILD, "val", {**job, **ul_job, "weights_npz": str(npz), "names": names,
                                                               "project": str(tmp / "ulval")}, env=env)
                add("val s (100 images, 640)", "ultralytics", peer, res["val_s"], "s")
                add("val mAP50-95 (same weights)", "ultralytics", peer, res["map50_95"], "")
    report = render(rows, args, time.time() - t0)
    print(report)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + report)


def default_models(model: str) -> list[str]:
    """``model`` and, when the bundled models/ has one, its mirror variant (yolov8n -> yolov8n-mirror)."""
    from mirrordet.nn.parser import resolve_model_yaml
    from mirrordet.utils.errors import ModelConfigError

    mirror = f"{Path(model).stem}-mirror.yaml"
    try:
        resolve_model_yaml(mirror)
    except ModelConfigError:
        return [model]
    return [model, mirror]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def render(rows: list[tuple[str, str, str, float, str]], args, seconds: float) -> str:
    """Markdown: every measurement, and mirrordet / Ultralytics ratios per measure."""
    ref = {r[0]: r[3] for r in rows if r[1] == "ultralytics"}
    lines = [f"## bench/run.py ({date.today().isoformat()})", "",
             f"- Machine: {machine()}.",
             f"- Command: `python bench/run.py --model {args.model} --sections {args.sections} --threads {args.threads} "
             f"--train-imgsz {args.train_imgsz} --train-epochs {args.train_epochs} --fraction {args.fraction} "
             f"--batch {args.batch}{' --data ' + args.data if args.data != 'shapes.yaml' else ''}"
             f"{' --val-weights PATH' if args.val_weights else ''}"
             f"{' --ultralytics-python PATH' if args.ultralytics_python else ''}` "
             f"({seconds / 60:.1f} min).", "",
             "| measure | tool | model | value | mirrordet / Ultralytics |", "|---|---|---|---|---|"]
    for measure, tool, model, value, unit in rows:
        ratio = f"{value / ref[measure]:.2f}" if tool == "mirrordet" and ref.get(measure) else "-"
        lines.append(f"| {measure} | {tool} | {model} | {value:.3f} {unit} | {ratio} |")
    fwd = {r[2]: r[3] for r in rows if r[0].startswith("forward") and r[1] == "mirrordet"}
    base = Path(args.model).stem
    if base in fwd and f"{base}-mirror" in fwd:
        lines.append(f"\n{base}-mirror / {base} fused forward time: {fwd[f'{base}-mirror'] / fwd[base]:.2f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
