"""What `mirrordet compare` computes over finished runs: one :class:`RunResult` per run, rows
aggregated per model, and the settings that differ (shared by compare.py and compare_report.py)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

# (column name, candidate keys in metrics.json) of the accuracy figures of each task
TASK_METRICS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "detect": (("mAP50", ("metrics/mAP50",)), ("mAP50-95", ("metrics/mAP50-95",))),
    "segment": (("mAP50", ("metrics/mAP50",)), ("mAP50-95", ("metrics/mAP50-95",)),
                ("mask mAP50", ("metrics/mAP50(M)",)), ("mask mAP50-95", ("metrics/mAP50-95(M)",))),
    "classify": (("top1", ("metrics/accuracy_top1",)), ("top5", ("metrics/accuracy_top5",))),
}
PRIMARY_METRIC = {"detect": "mAP50-95", "segment": "mask mAP50-95", "classify": "top1"}
COST_COLUMNS = ("latency_cpu_ms", "latency_gpu_ms", "epoch_time_s", "train_min", "peak_rss_mb", "peak_gpu_mb")


@dataclass
class RunResult:
    """What one finished run contributes to a comparison.

    Attributes:
        label: model name the run is grouped under. seed: its seed (None if unknown).
        values: cost and accuracy figures (``COST_COLUMNS`` + the task's metric names; None = not measured).
        curves: numeric results.csv columns (including ``epoch``), one value per epoch.
        args: the run's args.yaml.
    """

    label: str
    seed: int | None
    run_dir: Path
    task: str
    imgsz: int
    epochs: int
    params: int
    gflops: float | None
    values: dict[str, float | None] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)


# ---- settings ------------------------------------------------------------------------------
def aggregate(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per model label (in first-seen order): constants, then ``<col>_mean`` / ``<col>_std`` over runs.

    The std is the sample standard deviation (n - 1); None with fewer than 2 values.
    """
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.label, []).append(r)
    rows = []
    for label, runs in groups.items():
        first = runs[0]
        row: dict[str, Any] = {"model": label, "task": first.task, "runs": len(runs),
                               "seeds": " ".join("?" if r.seed is None else str(r.seed) for r in runs),
                               "imgsz": first.imgsz, "epochs": first.epochs, "params": first.params,
                               "gflops": first.gflops}
        for col in value_columns(first.task):
            vals = [r.values.get(col) for r in runs]
            vals = [float(v) for v in vals if v is not None]
            row[f"{col}_mean"] = statistics.fmean(vals) if vals else None
            row[f"{col}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        rows.append(row)
    return rows


def value_columns(task: str) -> list[str]:
    """Columns reported as mean/std: costs, then the task's accuracy metrics."""
    return [*COST_COLUMNS, *(name for name, _ in TASK_METRICS.get(task, ()))]


def differing_settings(results: Sequence[RunResult]) -> dict[str, list[Any]]:
    """Recipe settings (engine/fingerprint.py: not the model, seed, outputs or device) whose values differ between
    runs; a run without a setting (older than it) has its default."""
    from mirrordet.engine.fingerprint import recipe_differences

    diff = recipe_differences({str(i): r.args for i, r in enumerate(results)})
    return {k: [v[str(i)] for i in range(len(results))] for k, v in diff.items()}
