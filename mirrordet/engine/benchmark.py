"""``mirrordet benchmark model=best.pt``: the checkpoint and each of its exports validated and timed side by side.

For every format whose runtime is installed (PyTorch, TorchScript, ONNX with onnxruntime, OpenVINO), the
checkpoint is exported into the benchmark's run folder (checked against PyTorch by the exporter), then validated
with ``val`` on the same data, image size and batch as the checkpoint (the export's fixed batch size), the
exported file being the backend (:mod:`mirrordet.engine.exported_model`). One row per format: file size, the
task's accuracy figures, inference milliseconds per image (the validator's timing, batch ``batch``) and the
accuracy's difference to PyTorch, so a user sees that the exported model is as accurate as the checkpoint. A
format that fails is reported in its row; the others still run. Written atomically: ``benchmarks.md`` and ``benchmarks.json`` in runs/<task>/benchmark/<name>/.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Mapping

from mirrordet.engine.compare_stats import TASK_METRICS
from mirrordet.utils.errors import ConfigError, MirrordetError
from mirrordet.utils.files import atomic_write_text
from mirrordet.utils.log import LOGGER

RUNTIMES = {"pytorch": "torch", "torchscript": "torch", "onnx": "onnxruntime", "openvino": "openvino"}


def available_formats() -> list[str]:
    """The formats whose runtime (and, for exports through ONNX, the onnx package) is importable."""
    out = []
    for fmt, module in RUNTIMES.items():
        needs = [module] + (["onnx"] if fmt in ("onnx", "openvino") else [])
        if all(importlib.util.find_spec(m) is not None for m in needs):
            out.append(fmt)
    return out


def _size_mb(path: Path) -> float:
    files = path.rglob("*") if path.is_dir() else [path]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def benchmark(overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run the benchmark (see the module docstring); returns one row per format.

    Raises:
        ConfigError: ``model`` is not a ``.pt`` checkpoint.
    """
    from mirrordet.engine.exporter import export_model
    from mirrordet.engine.exported_model import ExportedNetwork
    from mirrordet.engine.modes import open_for_mode, trained_with, validate_model
    from mirrordet.engine.run_dir import run_dir
    from mirrordet.engine.setup import mode_settings

    model = str(overrides.get("model") or "")
    if Path(model).suffix != ".pt":
        raise ConfigError(f"benchmark reads a trained checkpoint (model=path/to/best.pt), got model={model or None}")
    net, ckpt, _ = open_for_mode(overrides, "val")
    train_args = trained_with(net, ckpt)
    cfg = mode_settings("val", dict(overrides), train_args)
    save_dir = run_dir(net.task, "benchmark", cfg["project"], cfg["name"], cfg["exist_ok"])
    common = {k: overrides[k] for k in ("data", "split", "batch", "device", "workers", "conf", "iou") if k in overrides}
    common.update(imgsz=cfg["imgsz"], plots=False, verbose=False, project=str(save_dir), exist_ok=True)
    columns = TASK_METRICS[net.task]
    rows: list[dict[str, Any]] = []
    for fmt in available_formats():
        row: dict[str, Any] = {"format": fmt}
        try:
            if fmt == "pytorch":
                backend, path = net, Path(model)
            else:
                settings = {"format": fmt, "imgsz": cfg["imgsz"], "batch": cfg["batch"], "project": str(save_dir),
                            "name": fmt, "exist_ok": True}
                path = export_model(net, settings, train_args=train_args, source=Path(model).stem).path
                backend = ExportedNetwork(path)
            metrics = validate_model(backend, {**common, "name": f"val-{fmt}"}, train_args)
            row.update(status="ok", file=str(path), size_mb=_size_mb(path),
                       inference_ms=float(metrics["speed"]["inference"]))
            for name, keys in columns:
                row[name] = next((float(metrics[k]) for k in keys if k in metrics), None)
        except MirrordetError as e:
            row.update(status=f"failed: {(str(e).splitlines() or [''])[0][:160]}")
        rows.append(row)
        LOGGER.info(f"benchmark {fmt}: {row['status']}")
    ref = next((r for r in rows if r["format"] == "pytorch" and r["status"] == "ok"), None)
    primary = columns[-1][0]
    for r in rows:
        if ref is not None and r["status"] == "ok" and r.get(primary) is not None and ref.get(primary) is not None:
            r[f"{primary} - pytorch"] = r[primary] - ref[primary]
    table = format_table(rows, [c for c, _ in columns], primary)
    LOGGER.info(f"\nBenchmark of {model} ({net.task}, imgsz {cfg['imgsz']}):\n{table}")
    atomic_write_text(save_dir / "benchmarks.md", table + "\n")
    atomic_write_text(save_dir / "benchmarks.json", json.dumps(rows, indent=2))
    LOGGER.info(f"Results saved to {save_dir}")
    return rows


def format_table(rows: list[dict[str, Any]], metrics: list[str], primary: str) -> str:
    """A Markdown table of the benchmark rows."""
    head = ["format", "status", "size MB", *metrics, f"{primary} - pytorch", "inference ms/img"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fmt = lambda v, spec: "" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        cells = [r["format"], r["status"], fmt(r.get("size_mb"), ".1f"), *(fmt(r.get(m), ".4f") for m in metrics),
                 fmt(r.get(f"{primary} - pytorch"), "+.4f"), fmt(r.get("inference_ms"), ".1f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
