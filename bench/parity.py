"""Refactor parity: record what fixed training runs produce, then check a later commit reproduces it.

    python bench/parity.py record --out parity-before.json            # on the old commit
    python bench/parity.py check  --ref parity-before.json            # on the new commit
    python bench/parity.py compare --ref parity-before.json --out parity-after.json  # two records

Each job is one `mirrordet train` run in a fresh process (same seed, data, workers, ONE thread:
with two intra-op threads, yolov8 runs of one commit were seen to differ from run to run).
``record`` stores, per job, results.csv without its time columns and a SHA-256 of every tensor
of last.pt's model, EMA and optimizer state. ``check`` reruns the jobs and reports, per job,
whether results.csv and every tensor are bit-identical; where they are not, the largest relative
difference of the epoch-1 losses and of the final weights.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

COMMON = ["seed=0", "workers=2", "device=cpu", "plots=False"]
# (job name, extra `mirrordet train` arguments)
JOBS: list[tuple[str, list[str]]] = [
    ("default-3ep", ["epochs=3"]),
    ("yolov8n-mirror", ["model=yolov8n-mirror.yaml", "epochs=2", "fraction=0.25"]),
    ("retinanet-cspmirror", ["model=retinanet-cspmirror.yaml", "epochs=2", "fraction=0.25", "imgsz=128"]),
    ("fcos-regnetx400mf", ["model=fcos-regnetx400mf.yaml", "epochs=2", "fraction=0.25", "imgsz=128"]),
    ("faster-rcnn-cspmirror", ["model=faster-rcnn-cspmirror.yaml", "epochs=2", "fraction=0.25", "imgsz=128"]),
    ("yolov8n-cls", ["model=yolov8n-cls.yaml", "data=shapes-cls.yaml", "epochs=2", "fraction=0.25"]),
]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, skipinitialspace=True))
    return [{k.strip(): v.strip() for k, v in r.items() if k and "time" not in k} for r in rows]


def _tensors(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Every tensor of the model, EMA and optimizer entries, keyed by a dotted path."""
    out: dict[str, torch.Tensor] = {}

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, torch.Tensor):
            out[prefix] = v
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}", x)
        elif isinstance(v, (list, tuple)):
            for k, x in enumerate(v):
                walk(f"{prefix}.{k}", x)

    for key in ("model", "ema", "optimizer", "train_weights"):
        walk(key, ckpt.get(key))
    return out


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().cpu().numpy().tobytes()).hexdigest()


def run_job(name: str, extra: list[str], root: Path) -> dict[str, Any]:
    """Train one job in a fresh process; its results.csv rows and tensors of last.pt."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MIRRORDET_CACHE": str(root / "cache")}
    cmd = [sys.executable, "-m", "mirrordet", "train", *COMMON, *extra, f"project={root / name}", "name=run"]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    run = root / name / "run"
    ckpt = torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=True)
    return {"rows": _csv_rows(run / "results.csv"), "tensors": _tensors(ckpt)}


def _record_entry(res: dict[str, Any]) -> dict[str, Any]:
    return {"rows": res["rows"], "digests": {k: _digest(t) for k, t in res["tensors"].items()}}


def record(out: Path, jobs: list[tuple[str, list[str]]], keep: Path | None) -> None:
    root = Path(keep or tempfile.mkdtemp(prefix="parity-"))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                      text=True).stdout.strip():
        commit += "+uncommitted"
    data = {"commit": commit, "jobs": {name: _record_entry(run_job(name, extra, root)) for name, extra in jobs}}
    out.write_text(json.dumps(data, indent=1))
    print(f"recorded {len(jobs)} jobs of {commit[:10]} in {out} (runs under {root})")


def _rel(a: str, b: str) -> float:
    x, y = float(a), float(b)
    return abs(x - y) / max(abs(x), abs(y), 1e-12)


def check(ref_file: Path, jobs: list[tuple[str, list[str]]], keep: Path | None,
          recorded: Path | None = None) -> bool:
    """Rerun ``jobs`` (or read them from the record ``recorded``) and compare with ``ref_file``."""
    ref = json.loads(ref_file.read_text())
    other = json.loads(recorded.read_text()) if recorded is not None else None
    root = Path(keep or tempfile.mkdtemp(prefix="parity-"))
    ok_all = True
    for name, extra in jobs:
        if name not in ref["jobs"] or (other is not None and name not in other["jobs"]):
            print(f"{name}: not in both records, skipped")
            continue
        want = ref["jobs"][name]
        if other is None:
            got = run_job(name, extra, root)
            got = {"rows": got["rows"], "digests": {k: _digest(t) for k, t in got["tensors"].items()}}
        else:
            got = other["jobs"][name]
        digests = got["digests"]
        same_keys = set(digests) == set(want["digests"])
        differing = [k for k in digests if want["digests"].get(k) != digests[k]]
        rows_equal = got["rows"] == want["rows"]
        ok = rows_equal and same_keys and not differing
        ok_all &= ok
        line = f"{name}: results.csv {'identical' if rows_equal else 'DIFFERS'}; " \
               f"{len(digests) - len(differing)}/{len(digests)} tensors identical"
        if not same_keys:
            line += f"; tensor keys differ ({sorted(set(digests) ^ set(want['digests']))[:4]})"
        if not rows_equal and got["rows"] and want["rows"]:
            r0, w0 = got["rows"][0], want["rows"][0]
            losses = [k for k in r0 if "loss" in k and k in w0]
            worst = max((_rel(r0[k], w0[k]) for k in losses), default=float("nan"))
            line += f"; epoch-1 losses max relative difference {worst:.2e}"
        print(line, flush=True)
    print(f"parity against {ref['commit'][:10]}: {'IDENTICAL' if ok_all else 'DIFFERENT'}")
    return ok_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["record", "check", "compare"])
    ap.add_argument("--out", type=Path, default=Path("parity.json"))
    ap.add_argument("--ref", type=Path, default=Path("parity.json"))
    ap.add_argument("--jobs", nargs="*", help="job names (default: all)")
    ap.add_argument("--keep", type=Path, help="folder for the runs (default: a temporary one)")
    a = ap.parse_args()
    jobs = [j for j in JOBS if not a.jobs or j[0] in a.jobs]
    if a.action == "record":
        record(a.out, jobs, a.keep)
    else:
        sys.exit(0 if check(a.ref, jobs, a.keep, a.out if a.action == "compare" else None) else 1)


if __name__ == "__main__":
    main()
