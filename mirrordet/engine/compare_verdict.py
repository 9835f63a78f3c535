"""The verdict of `mirrordet compare`: is each model better or worse than the baseline, or can't we tell?

Per (model, baseline), on the task's primary metric (mAP50-95, top-1):

- paired differences: for every seed both were trained with, model minus baseline;
- a Student-t 95% interval of their mean (needs 2 or more seeds) and, as a second opinion, a percentile
  bootstrap over the seeds;
- for detection, a paired bootstrap over the val images: every replicate resamples the images once and
  scores every run of the pair on that sample with COCO's arithmetic (:mod:`mirrordet.metrics.coco_bootstrap`),
  so even a single run carries an uncertainty;
- the verdict: ``better`` when the deciding interval lies above 0, ``worse`` below 0, else ``inconclusive``.
  The t interval decides with 2 or more seeds; with one seed the image bootstrap does (it measures the
  val set's sampling noise only, not the training noise between seeds, and the report says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mirrordet.engine.compare_stats import PRIMARY_METRIC, RunResult
from mirrordet.metrics.coco_bootstrap import ImageEvals, paired_image_bootstrap
from mirrordet.metrics.stats import bootstrap_interval, bootstrap_mean, t_interval, verdict
from mirrordet.utils.log import LOGGER

Interval = tuple[float, float]


@dataclass
class Verdict:
    """The paired comparison of one model with the baseline (differences are model minus baseline)."""

    model: str
    baseline: str
    metric: str
    seeds: list[int]
    diffs: list[float]
    mean: float | None
    t_ci: Interval | None = None
    seed_boot_ci: Interval | None = None
    image_boot_ci: Interval | None = None
    decided_by: str = "none"  # "t" | "images" | "none"
    verdict: str = "inconclusive"
    notes: list[str] = field(default_factory=list)


def _image_evals(run: RunResult, cache: dict[Path, ImageEvals | None]) -> ImageEvals | None:
    """The run's per-image COCO matches from its predictions.json / ground_truth.json (None without them)."""
    if run.run_dir not in cache:
        gt, dt = run.run_dir / "ground_truth.json", run.run_dir / "predictions.json"
        try:
            cache[run.run_dir] = ImageEvals(json.loads(gt.read_text()), json.loads(dt.read_text()))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            cache[run.run_dir] = None
    return cache[run.run_dir]


def paired_verdicts(results: Sequence[RunResult], baseline: str, conf: float = 0.95, image_boot: int = 500,
                    seed: int = 0) -> list[Verdict]:
    """One :class:`Verdict` per model other than ``baseline`` (a label of ``results``), in first-seen order."""
    task = results[0].task
    metric = PRIMARY_METRIC.get(task, "")
    by_label: dict[str, dict[int, RunResult]] = {}
    for r in results:
        if r.seed is not None and r.values.get(metric) is not None:
            by_label.setdefault(r.label, {})[r.seed] = r
    base = by_label.get(baseline, {})
    cache: dict[Path, ImageEvals | None] = {}
    out = []
    for label, runs in by_label.items():
        if label == baseline:
            continue
        seeds = sorted(set(runs) & set(base))
        diffs = [float(runs[s].values[metric]) - float(base[s].values[metric]) for s in seeds]
        v = Verdict(label, baseline, metric, seeds, diffs, sum(diffs) / len(diffs) if diffs else None)
        if not seeds:
            v.notes.append("no seed in common with the baseline")
            out.append(v)
            continue
        if len(seeds) >= 2:
            _, lo, hi = t_interval(diffs, conf)
            v.t_ci = (lo, hi)
            v.seed_boot_ci = bootstrap_interval(bootstrap_mean(diffs, seed=seed), conf)
        if task == "detect" and image_boot > 0:
            pairs = [(_image_evals(runs[s], cache), _image_evals(base[s], cache)) for s in seeds]
            if all(a is not None and b is not None for a, b in pairs):
                try:
                    v.image_boot_ci = bootstrap_interval(paired_image_bootstrap(pairs, image_boot, seed), conf)
                except ValueError as e:
                    v.notes.append(str(e))
            else:
                v.notes.append("no predictions.json / ground_truth.json for the image bootstrap")
        if v.t_ci is not None:
            v.decided_by, v.verdict = "t", verdict(*v.t_ci)
        elif v.image_boot_ci is not None:
            v.decided_by, v.verdict = "images", verdict(*v.image_boot_ci)
            v.notes.append("one seed: the interval covers val-set sampling only, not seed-to-seed training noise")
        else:
            v.notes.append("one seed and no image bootstrap: no interval")
        LOGGER.info(f"{label} vs {baseline}: {metric} {v.mean:+.4f} over {len(seeds)} seed(s): {v.verdict}")
        out.append(v)
    return out


def _ci(ci: Interval | None, digits: int = 4) -> str:
    return "n/a" if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def verdict_markdown(verdicts: Sequence[Verdict], conf: float = 0.95) -> str:
    """The verdict table (one row per model) and the rule it applies."""
    if not verdicts:
        return "No model to compare with the baseline."
    pct = f"{conf:.0%}"
    lines = [f"| model | vs | seeds | Δ {verdicts[0].metric} (mean) | {pct} CI, t | {pct} CI, bootstrap over seeds "
             f"| {pct} CI, bootstrap over val images | verdict |", "|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        mean = "n/a" if v.mean is None else f"{v.mean:+.4f}"
        word = f"**{v.verdict}**" if v.verdict != "inconclusive" else v.verdict
        lines.append(f"| {v.model} | {v.baseline} | {' '.join(map(str, v.seeds)) or '-'} | {mean} | {_ci(v.t_ci)} | "
                     f"{_ci(v.seed_boot_ci)} | {_ci(v.image_boot_ci)} | {word} ({v.decided_by}) |")
    lines += ["", f"Δ = model minus baseline on the same seed. Verdict: better / worse when the deciding {pct} "
              "interval lies entirely above / below 0, else inconclusive; the t interval decides with two or "
              "more seeds (t), the paired image bootstrap with one (images)."]
    notes = [f"- {v.model}: {n}" for v in verdicts for n in dict.fromkeys(v.notes)]
    return "\n".join(lines + (["", *notes] if notes else []))


def verdict_rows(verdicts: Sequence[Verdict]) -> list[dict]:
    """compare_verdict.csv rows."""
    return [{"model": v.model, "baseline": v.baseline, "metric": v.metric, "seeds": " ".join(map(str, v.seeds)),
             "mean_diff": v.mean,
             "t_low": v.t_ci[0] if v.t_ci else None, "t_high": v.t_ci[1] if v.t_ci else None,
             "seed_boot_low": v.seed_boot_ci[0] if v.seed_boot_ci else None,
             "seed_boot_high": v.seed_boot_ci[1] if v.seed_boot_ci else None,
             "image_boot_low": v.image_boot_ci[0] if v.image_boot_ci else None,
             "image_boot_high": v.image_boot_ci[1] if v.image_boot_ci else None,
             "decided_by": v.decided_by, "verdict": v.verdict} for v in verdicts]
