"""Ultralytics checkpoints imported by mirrordet predict what Ultralytics predicts with them.

Run from a separate virtual environment that has mirrordet and Ultralytics (``python -m venv
--system-site-packages`` over mirrordet's environment, then ``pip install ultralytics``)::

    /path/to/venv/bin/python bench/import_parity.py [--epochs 3] [--append bench/RESULTS.md]

For yolov8n, yolo11n (detect, on the built-in shapes set) and yolov8n-cls (classify, on shapes-cls)
it trains a checkpoint with Ultralytics for a few epochs (so the weights are not at init), then
predicts the same images with Ultralytics' ``YOLO(file).predict`` and with mirrordet's
``Model(file).predict`` (mirrordet reads the pickled file as inert data: nothing from it runs),
and reports per model: images, boxes matched, the largest box difference (pixels of the original
image), the largest score difference, and whether every class agrees. Images: Ultralytics' bundled
bus.jpg and zidane.jpg plus val images of the training set.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import shapes_yolo_yaml  # noqa: E402

MODELS = (("yolov8n.yaml", "detect"), ("yolo11n.yaml", "detect"), ("yolov8n-cls.yaml", "classify"))


def train_reference(model: str, data: str, imgsz: int, epochs: int, project: Path) -> Path:
    """Train ``model`` with Ultralytics; returns its best.pt."""
    from ultralytics import YOLO

    name = Path(model).stem
    best = project / name / "weights" / "best.pt"
    if best.is_file():  # --work kept it from an earlier run
        return best
    with contextlib.redirect_stdout(io.StringIO()):
        YOLO(model).train(data=data, epochs=epochs, imgsz=imgsz, batch=16, workers=0, plots=False, val=False,
                          project=str(project), name=name, exist_ok=True, amp=False, device="cpu", verbose=False)
    return project / name / "weights" / "best.pt"


def detect_rows(result) -> np.ndarray:
    """[n, 6] x1 y1 x2 y2 score class of an Ultralytics or mirrordet detection result, by descending score."""
    b = result.boxes
    rows = np.concatenate([b.xyxy.cpu().numpy(), b.conf.cpu().numpy()[:, None], b.cls.cpu().numpy()[:, None]], 1)
    return rows[np.argsort(-rows[:, 4], kind="stable")]


def compare_detect(ckpt: Path, images: list[str], imgsz: int, conf: float) -> dict:
    from ultralytics import YOLO

    from mirrordet import Model

    ref, mine = YOLO(str(ckpt)), Model(str(ckpt))
    boxes = matched = 0
    box_diff = score_diff = 0.0
    classes_equal = True
    for img in images:
        r = detect_rows(ref.predict(img, imgsz=imgsz, conf=conf, device="cpu", verbose=False)[0])
        m = detect_rows(mine.predict(img, imgsz=imgsz, conf=conf, device="cpu", verbose=False)[0])
        boxes += len(r)
        n = min(len(r), len(m))
        matched += n if len(r) == len(m) else 0
        if n:
            box_diff = max(box_diff, float(np.abs(r[:n, :4] - m[:n, :4]).max()))
            score_diff = max(score_diff, float(np.abs(r[:n, 4] - m[:n, 4]).max()))
            classes_equal &= bool((r[:n, 5] == m[:n, 5]).all()) and len(r) == len(m)
    return {"images": len(images), "boxes": boxes, "matched": matched, "box_diff": box_diff,
            "score_diff": score_diff, "classes_equal": classes_equal}


def compare_classify(ckpt: Path, images: list[str], imgsz: int) -> dict:
    from ultralytics import YOLO

    from mirrordet import Model

    ref, mine = YOLO(str(ckpt)), Model(str(ckpt))
    prob_diff, top1_equal = 0.0, True
    for img in images:
        r = ref.predict(img, imgsz=imgsz, device="cpu", verbose=False)[0].probs.data.cpu().numpy()
        m = mine.predict(img, imgsz=imgsz, device="cpu", verbose=False)[0].probs.data.cpu().numpy()
        prob_diff = max(prob_diff, float(np.abs(r - m).max()))
        top1_equal &= int(r.argmax()) == int(m.argmax())
    return {"images": len(images), "prob_diff": prob_diff, "top1_equal": top1_equal}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=160, help="training and predict size of the detectors")
    ap.add_argument("--conf", type=float, default=0.001, help="score threshold (low: barely trained weights)")
    ap.add_argument("--work", type=Path, help="keep the trained checkpoints here (reused when present)")
    ap.add_argument("--val-images", type=int, default=8, help="val images of the training set to predict")
    ap.add_argument("--append", type=Path, help="append the table to this markdown file")
    args = ap.parse_args(argv)

    import ultralytics

    from mirrordet.data.dataset_yaml import load_dataset_yaml

    logging.getLogger("ultralytics").setLevel(logging.ERROR)
    assets = Path(ultralytics.__file__).parent / "assets"
    t0 = time.perf_counter()
    lines = ["| checkpoint | task | images | boxes (Ultralytics) | same count | max box diff px | max score diff "
             "| classes equal |", "|---|---|---:|---:|---:|---:|---:|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.work or Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        det_data = str(shapes_yolo_yaml(tmp))
        cls = load_dataset_yaml("shapes-cls.yaml")
        det_val = sorted(Path(load_dataset_yaml("shapes.yaml")["val"]).glob("*.png"))[: args.val_images]
        cls_val = sorted(Path(cls["val"]).rglob("*.png"))[: args.val_images]
        for model, task in MODELS:
            if task == "detect":
                ckpt = train_reference(model, det_data, args.imgsz, args.epochs, tmp / "runs")
                images = [str(assets / "bus.jpg"), str(assets / "zidane.jpg"), *map(str, det_val)]
                r = compare_detect(ckpt, images, args.imgsz, args.conf)
                lines.append(f"| {Path(model).stem} ({args.epochs} ep, imgsz {args.imgsz}) | detect | {r['images']} | "
                             f"{r['boxes']} | {r['matched']} | {r['box_diff']:.2e} | {r['score_diff']:.2e} | "
                             f"{'yes' if r['classes_equal'] else 'NO'} |")
            else:
                ckpt = train_reference(model, str(cls["path"]), 64, args.epochs, tmp / "runs")
                r = compare_classify(ckpt, list(map(str, cls_val)), 64)
                lines.append(f"| {Path(model).stem} ({args.epochs} ep, imgsz 64) | classify | {r['images']} | - | - | - "
                             f"| {r['prob_diff']:.2e} (probabilities) | {'yes' if r['top1_equal'] else 'NO'} (top-1) |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    head = (f"Ultralytics {ultralytics.__version__}, {platform.processor() or platform.machine()}, "
            f"{date.today()}, {time.perf_counter() - t0:.0f} s, `python bench/import_parity.py --epochs {args.epochs}`")
    print(head)
    if args.append:
        with open(args.append, "a") as f:
            f.write(f"\n### Ultralytics checkpoints imported ({date.today()})\n\n{head}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
