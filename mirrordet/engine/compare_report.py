"""Files of `mirrordet compare`: compare.csv, compare_runs.csv, compare.md, compare.png, compare_curves.png."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mirrordet.engine.compare_stats import PRIMARY_METRIC, RunResult, aggregate, differing_settings, value_columns
from mirrordet.utils.files import atomic_write_text
from mirrordet.utils.log import LOGGER

# column -> (markdown header, decimals)
HEADERS = {
    "latency_cpu_ms": ("CPU latency ms", 1), "latency_gpu_ms": ("GPU latency ms", 2),
    "epoch_time_s": ("epoch s", 2), "train_min": ("train min", 1), "peak_rss_mb": ("peak RSS MB", 0),
    "peak_gpu_mb": ("peak GPU MB", 0),
}
SETTINGS_SHOWN = ("data", "epochs", "time", "imgsz", "batch", "optimizer", "lr0", "device", "workers", "amp",
                  "deterministic")


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return format(v, ".6g")
    return str(v)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Rows (dicts with the same keys) -> CSV, written atomically; None cells stay empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = list(rows[0]) if rows else []
    writer.writerow(keys)
    writer.writerows([[_cell(r[k]) for k in keys] for r in rows])
    return atomic_write_text(path, buf.getvalue())


def _pm(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def run_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per run: model, seed, folder, epochs, params, GFLOPs and every measured value."""
    return [{"model": r.label, "seed": r.seed, "run": str(r.run_dir), "epochs": r.epochs, "imgsz": r.imgsz,
             "params": r.params, "gflops": r.gflops, **{c: r.values.get(c) for c in value_columns(r.task)}}
            for r in results]


def markdown_table(rows: Sequence[dict[str, Any]], task: str) -> str:
    """The per-model table: mean ± std over seeds (columns never measured in any row are left out)."""
    cols = [c for c in value_columns(task) if any(r.get(f"{c}_mean") is not None for r in rows)]
    head = ["model", "runs (seeds)", "params", "GFLOPs"] + [HEADERS.get(c, (c, 3))[0] for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        gf = "n/a" if r["gflops"] is None else f"{r['gflops']:.3g}"
        cells = [f"{r['model']}", f"{r['runs']} ({r['seeds']})", f"{r['params']:,}", gf]
        cells += [_pm(r[f"{c}_mean"], r[f"{c}_std"], HEADERS.get(c, (c, 3))[1]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(results: Sequence[RunResult], rows: Sequence[dict[str, Any]], command: str, verdict_md: str = "",
              budget: str = "", shortcut_md: str = "", varied: str | None = None) -> str:
    task, first = results[0].task, results[0]
    diff = differing_settings(results)
    varied_values = diff.pop(varied, None) if varied else None
    metrics = [c for c in value_columns(task) if c not in HEADERS]
    settings = ", ".join(f"{k}={'null' if first.args[k] is None else first.args[k]}"
                         for k in SETTINGS_SHOWN if k in first.args)
    versions = first.args.get("versions")
    if not versions:
        from mirrordet.utils.versions import package_versions

        versions = package_versions()
    import torch

    lines = [
        "# mirrordet compare", "",
        f"```bash\n{command}\n```", "",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; task: {task}; "
        f"{len(results)} runs of {len(rows)} models.",
        f"- Settings{'' if diff else ' (the same for every run)'}: {settings}.",
        *([f"- Varied on purpose: {varied} (" + ", ".join(str(r["model"]) for r in rows) + ")."]
          if varied_values is not None else []),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        f"- Accuracy ({', '.join(metrics)}): the run's final validation of its best.pt (metrics.json). "
        "Cells are mean ± sample std over the runs of a model.",
        f"- Latency: median of single-image forward passes (batch 1, imgsz {first.imgsz}, torch.inference_mode"
        f"{', no NMS' if task == 'detect' else ''}) of every best.pt, timed in one process in interleaved rounds; "
        f"CPU: {torch.get_num_threads()} torch thread(s)"
        + ("; GPU: CUDA, synchronized" if any(r.values.get("latency_gpu_ms") is not None for r in results)
           else "; no CUDA device here, so no GPU latency") + ".",
        "- Epoch time: median over the epochs of a run of the training pass (results.csv `epoch_time`; "
        "validation not included). Train min: wall-clock minutes of the whole training process (setup, epochs, "
        "validations, final validation). Peak RSS: the training process (data-loader workers not included). "
        "Both n/a for runs not trained by compare.",
        *([f"- Budget: {budget}."] if budget else []),
        "",
    ]
    if verdict_md:
        lines += ["## Verdict", "", verdict_md, ""]
    if shortcut_md:
        lines += ["## Shortcut check", "", shortcut_md, ""]
    if verdict_md or shortcut_md:
        lines += ["## Models", ""]
    if diff:
        lines += ["**Warning: these settings differ between the runs, so the comparison is not like for like:** "
                  + "; ".join(f"{k}: {v}" for k, v in diff.items()), ""]
    lines += [markdown_table(rows, task), "", "## Runs", ""]
    cols = ["epoch_time_s", "train_min", "peak_rss_mb", *metrics]
    head = ["model", "seed", "run", "epochs"] + [HEADERS.get(c, (c, 3))[0] for c in cols]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.label, str(r.seed), f"`{r.run_dir}`", str(r.epochs)]
        cells += [_pm(r.values.get(c), None, HEADERS.get(c, (c, 3))[1]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![accuracy vs cost](compare.png)", "", "![training curves](compare_curves.png)", ""]
    return "\n".join(lines)


def _curves(results: Sequence[RunResult]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """label -> column -> (epochs, mean, std) over the label's runs, aligned by epoch number."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.label, []).append(r)
    for label, runs in groups.items():
        cols = [c for c in runs[0].curves if c.startswith(("train/", "metrics/"))]
        per: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for c in cols:
            by_epoch: dict[float, list[float]] = {}
            for r in runs:
                for e, v in zip(r.curves.get("epoch", []), r.curves.get(c, [])):
                    if not math.isnan(v):
                        by_epoch.setdefault(e, []).append(v)
            epochs = np.array(sorted(by_epoch))
            vals = [np.array(by_epoch[e]) for e in epochs]
            per[c] = (epochs, np.array([v.mean() for v in vals]),
                      np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in vals]))
        out[label] = per
    return out


def write_reports(save_dir: Path, results: Sequence[RunResult], command: str, baseline: str | None = None,
                  budget: str = "", image_boot: int = 500, varied: str | None = None) -> dict[str, Path]:
    """Write every output file of a comparison into ``save_dir``; returns {kind: path}.

    ``baseline``: the model label the others are judged against (default: the first); ``budget``: a line on
    how the runs' training budgets were set; ``image_boot``: replicates of the per-image bootstrap (0 = off);
    ``varied``: the setting the comparison varies on purpose (``vary=``), reported as such rather than as a
    difference between recipes.
    """
    from mirrordet.engine.compare_verdict import paired_verdicts, verdict_markdown, verdict_rows
    from mirrordet.plotting.compare import plot_curves, plot_tradeoff

    rows = aggregate(results)
    task = results[0].task
    paths = {"csv": write_csv(save_dir / "compare.csv", rows),
             "runs_csv": write_csv(save_dir / "compare_runs.csv", run_rows(results))}
    verdicts = paired_verdicts(results, baseline or results[0].label, image_boot=image_boot)
    if verdicts:
        paths["verdict_csv"] = write_csv(save_dir / "compare_verdict.csv", verdict_rows(verdicts))
    shortcut_md = ""
    if task == "classify":
        from mirrordet.engine.compare_shortcuts import shortcut_markdown, shortcut_rows

        shortcuts = shortcut_rows(results)
        if shortcuts:
            paths["shortcut_csv"] = write_csv(save_dir / "compare_shortcuts.csv", shortcuts)
            shortcut_md = shortcut_markdown(shortcuts)
    verdict_md = verdict_markdown(verdicts) if verdicts else ""
    md = _markdown(results, rows, command, verdict_md, budget, shortcut_md, varied)
    paths["md"] = atomic_write_text(save_dir / "compare.md", md)
    metric = PRIMARY_METRIC.get(task) or next(c for c in value_columns(task) if c not in HEADERS)
    xs = {"GFLOPs": ([r["gflops"] for r in rows], None)}
    for col, name in (("latency_cpu_ms", "CPU latency (ms)"), ("latency_gpu_ms", "GPU latency (ms)")):
        if any(r[f"{col}_mean"] is not None for r in rows):
            xs[name] = ([r[f"{col}_mean"] for r in rows], [r[f"{col}_std"] for r in rows])
    paths["png"] = plot_tradeoff([r["model"] for r in rows], [r[f"{metric}_mean"] for r in rows],
                                 [r[f"{metric}_std"] for r in rows], xs, metric, save_dir / "compare.png",
                                 imgsz=results[0].imgsz)
    paths["curves"] = plot_curves(_curves(results), save_dir / "compare_curves.png")
    LOGGER.info(markdown_table(rows, task))
    if verdict_md:
        LOGGER.info(verdict_md)
    return paths
