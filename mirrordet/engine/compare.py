"""`mirrordet compare`: train several models with identical settings and seeds, then tabulate and plot.

Two ways in:

- ``models=a.yaml,b.yaml seeds=0,1,2`` (default seeds 0,1,2) plus any ``mirrordet train`` setting,
  ``baseline=`` (default the first model) and ``budget=epochs|time|flops`` (the same epochs, the same
  ``time=``, or epochs scaled to the baseline's training FLOPs): every (model, seed) is
  trained with exactly the same settings, each in a process of its own
  (:mod:`mirrordet.engine.compare_worker`), seed-major (seed 0 of every model, then seed 1, ...) so
  an interrupted comparison still holds matched pairs. Every run ends with the trainer's own
  validation of its best.pt: one validator for all. An interrupted comparison continues: the same command
  with ``exist_ok=True`` reuses every run that finished with the same settings and package versions
  (``compare_run.json`` in its folder) and trains the rest. ``vary=KEY=V1,V2`` adds a settings axis
  (engine/compare_vary.py): every model is trained once per value, e.g. ``vary=mixup=0,0.1``.
- ``runs=dir1,dir2,...``: finished run folders (args.yaml, results.csv, metrics.json,
  weights/best.pt), grouped by the ``model`` recorded in their args.yaml (and the value of ``vary=KEY``). Runs
  whose recipes differ (engine/fingerprint.py: any training setting other than model, seed and the ``vary=``
  key) are refused unless ``force=True``.

compare.md leads with the verdict of each model against the baseline (engine/compare_verdict.py: paired
differences over seeds, a t interval, bootstraps over seeds and over val images).

Outputs in ``runs/compare/<name>/`` (``project=``/``name=`` as for any run): compare.csv (one row per
model: mean and sample std over seeds), compare_runs.csv (one row per run), compare.md (the command,
the settings and both tables), compare.png (accuracy vs GFLOPs and vs latency) and
compare_curves.png (training curves overlaid, mean +/- std over seeds). The training runs
themselves live in ``runs/compare/<name>/runs/<model>-seed<k>/``.

Costs: parameters and GFLOPs of best.pt at the run's imgsz (:func:`mirrordet.nn.info.summarize`);
single-image latency of every best.pt, timed in one process in interleaved rounds (CPU, and CUDA
when available); epoch time = median of results.csv ``epoch_time`` (the training pass); total
training minutes (setup, every epoch with its validation, final validation) and peak memory from
the run's memory.json (written by the worker process).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from mirrordet.cfg import get_cfg
from mirrordet.engine.compare_recipe import BUDGETS, budget_epochs, check_recipes
from mirrordet.engine.compare_stats import TASK_METRICS, RunResult
from mirrordet.engine.compare_vary import arms, parse_vary, run_label, vary_key
from mirrordet.engine.compare_worker import MEMORY_FILE
from mirrordet.engine.run_dir import claim_dir
from mirrordet.utils.errors import ConfigError, MirrordetError
from mirrordet.utils.log import LOGGER
from mirrordet.utils.results_table import numeric_columns, read_table
from mirrordet.utils.safe_yaml import load_yaml_file

COMPARE_KEYS = ("models", "seeds", "runs", "baseline", "budget", "force", "vary")
DEFAULT_SEEDS = [0, 1, 2]  # paired differences over three seeds: the smallest t interval worth reading
OUTPUT_KEYS = ("project", "name", "exist_ok")
RUN_RECORD = "compare_run.json"  # in each run folder: the settings it was trained with (see finished_run)


def parse_list(value: Any, key: str) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (empty items dropped)."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    out = [str(v).strip() for v in items if str(v).strip()]
    if not out:
        raise ConfigError(f"'{key}=' is empty; give a comma-separated list, e.g. {key}=a,b")
    return out


def parse_seeds(value: Any) -> list[int]:
    """``"0,1,2"``, ``[0, 1]`` or ``3`` -> list of non-negative ints (duplicates are an error)."""
    seeds = []
    for s in parse_list(value, "seeds"):
        try:
            seed = int(s)
        except ValueError:
            raise ConfigError(f"seeds={value!r}: {s!r} is not an integer (e.g. seeds=0,1,2)") from None
        if seed < 0:
            raise ConfigError(f"seeds={value!r}: seeds must be >= 0")
        seeds.append(seed)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds={value!r} lists a seed twice")
    return seeds


def model_labels(models: Sequence[str]) -> list[str]:
    """Short unique names: the file stem, with ``-2``, ``-3`` ... appended to repeats."""
    labels: list[str] = []
    for m in models:
        base = label = Path(m).stem
        k = 2
        while label in labels:
            label, k = f"{base}-{k}", k + 1
        labels.append(label)
    return labels


def command_line(overrides: Mapping[str, Any]) -> str:
    """The `mirrordet compare ...` command that repeats a comparison."""
    def text(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return "mirrordet compare " + " ".join(f"{k}={text(v)}" for k, v in overrides.items())


# ---- run folders ---------------------------------------------------------------------------
def _read_curves(path: Path) -> dict[str, list[float]]:
    """results.csv -> {column: values}; columns that are not numbers are left out.

    Raises:
        ConfigError: the file is not UTF-8 CSV text.
    """
    import csv

    try:
        header, rows = read_table(path)
    except (UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{path}: not a readable results.csv ({e})") from None
    return numeric_columns(header, rows) if rows else {}


def _read_json_object(path: Path) -> dict[str, Any]:
    """A run's JSON file (metrics.json, the memory record) as a dict.

    Raises:
        ConfigError: not UTF-8, not JSON, or not an object.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"{path}: not readable JSON ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _number(d: Mapping[str, Any], key: str) -> float | None:
    """``d[key]`` as a float when it is a JSON number (not a bool); else None."""
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _metric(metrics: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for k in keys:
        if (v := _number(metrics, k)) is not None:
            return v
    return None


def collect_run(run_dir: str | Path, label: str | None = None) -> RunResult:
    """Read a finished run folder; parameters and GFLOPs of its best.pt at the run's imgsz.

    Latency is measured afterwards for all runs together (:func:`measure_latencies`).

    Raises:
        ConfigError: a required file is missing, or args.yaml is unreadable or out of bounds.
    """
    from mirrordet.engine.weights import load_weights
    from mirrordet.nn.info import summarize

    run = Path(run_dir)
    for name in ("args.yaml", "results.csv", "metrics.json", "weights/best.pt"):
        if not (run / name).is_file():
            raise ConfigError(f"{run} is not a finished run folder: {name} is missing "
                              "(runs= takes folders written by `mirrordet train`)")
    args_file = run / "args.yaml"
    args = load_yaml_file(args_file, ConfigError)  # bounded: a hand-edited args.yaml cannot hang compare
    if not isinstance(args, dict):
        raise ConfigError(f"{args_file}: expected a mapping of settings, got {type(args).__name__}")
    try:
        imgsz = get_cfg({"imgsz": args.get("imgsz") or 640})["imgsz"]  # the same bounds as imgsz=
    except ConfigError as e:
        raise ConfigError(f"{args_file}: {e}") from None
    metrics = _read_json_object(run / "metrics.json")
    curves = _read_curves(run / "results.csv")
    model, _ = load_weights(run / "weights" / "best.pt")
    summary = summarize(model, imgsz)
    memory = _read_json_object(run / MEMORY_FILE) if (run / MEMORY_FILE).is_file() else {}
    wall_s = _number(memory, "wall_s")
    times = [t for t in curves.get("epoch_time", []) if not math.isnan(t)]
    values: dict[str, float | None] = {
        "latency_cpu_ms": None, "latency_gpu_ms": None,
        "epoch_time_s": statistics.median(times) if times else None,
        "peak_rss_mb": _number(memory, "peak_rss_mb"), "peak_gpu_mb": _number(memory, "peak_gpu_mb"),
        "train_min": wall_s / 60 if wall_s is not None else None,
    }
    for name, keys in TASK_METRICS.get(model.task, ()):
        values[name] = _metric(metrics, keys)
    seed = args.get("seed")
    return RunResult(label=label or Path(str(args.get("model", run.name))).stem,
                     seed=int(seed) if isinstance(seed, int) else None, run_dir=run, task=model.task, imgsz=imgsz,
                     epochs=len(curves.get("epoch", [])), params=summary.params, gflops=summary.gflops,
                     values=values, curves=curves, args=args)


def measure_latencies(results: Sequence[RunResult], runs: int = 30) -> None:
    """Fill ``latency_cpu_ms`` (and ``latency_gpu_ms`` when CUDA is available) of every run in place.

    All best.pt files are timed in interleaved rounds in this one process
    (:func:`mirrordet.engine.profile.interleaved_latency`), so load changes hit every model alike.
    """
    import torch

    from mirrordet.engine.profile import interleaved_latency
    from mirrordet.engine.weights import load_weights

    models = [load_weights(r.run_dir / "weights" / "best.pt")[0] for r in results]
    sizes = [r.imgsz for r in results]
    devices = [("latency_cpu_ms", "cpu")] + ([("latency_gpu_ms", "cuda")] if torch.cuda.is_available() else [])
    for key, device in devices:
        for r, ms in zip(results, interleaved_latency(models, sizes, device, runs=runs)):
            r.values[key] = ms


# ---- training ------------------------------------------------------------------------------
def check_models(models: Sequence[str], settings: Mapping[str, Any]) -> str:
    """Build every model for the dataset once (fails fast on a bad YAML); returns their common task."""
    from mirrordet.engine.setup import resolve_settings
    from mirrordet.engine.weights import is_checkpoint_path, load_weights
    from mirrordet.nn.graph import build_model

    cfg, data = resolve_settings({**settings, "model": models[0]})
    tasks = {}
    for m in models:
        if is_checkpoint_path(m):
            tasks[m] = load_weights(m)[0].task
        else:
            tasks[m] = build_model(m, nc=int(data["nc"]), scale=cfg["scale"]).task
    if len(set(tasks.values())) > 1:
        raise ConfigError("compare needs models of one task; got " + ", ".join(f"{m} ({t})" for m, t in tasks.items()))
    return next(iter(tasks.values()))


def _baseline(given: Any, labels: Sequence[str], models: Sequence[str]) -> str:
    """The label of the baseline: ``baseline=`` as a label or as the model it names (its first arm); default
    the first arm."""
    if given is None:
        return labels[0]
    for label in labels:
        if str(given) == label:
            return label
    for label, model in zip(labels, models):
        if str(given) in (model, Path(model).name, Path(model).stem):
            return label
    raise ConfigError(f"baseline={given!r} is none of the compared models ({', '.join(dict.fromkeys(labels))})")


def _run_record(settings: Mapping[str, Any]) -> str:
    """The JSON text that identifies a compare run: its settings and the package versions."""
    from mirrordet.utils.versions import package_versions

    return json.dumps({"settings": dict(settings), "versions": package_versions()}, sort_keys=True, indent=2,
                      default=str)


def finished_run(settings: Mapping[str, Any]) -> bool:
    """True when ``project/name`` holds a run that this comparison trained to the end with exactly ``settings``
    and the same package versions (its ``compare_run.json``, written after the run's memory record), so an
    interrupted comparison re-run with ``exist_ok=True`` reuses it instead of training it again."""
    run = Path(settings["project"]) / settings["name"]
    record = run / RUN_RECORD
    try:
        return record.is_file() and (run / MEMORY_FILE).is_file() and record.read_text("utf-8") == _run_record(settings)
    except (OSError, UnicodeDecodeError):
        return False


def train_run(settings: Mapping[str, Any]) -> Path:
    """Train once in a child process (:mod:`mirrordet.engine.compare_worker`), unless :func:`finished_run`;
    returns the run folder.

    ``settings`` must name ``project`` and ``name``; the run folder is ``project/name``.
    """
    from mirrordet.utils.files import atomic_write_text

    run = Path(settings["project"]) / settings["name"]
    if finished_run(settings):
        LOGGER.info(f"{run}: finished earlier with these settings, reused")
        return run
    (run / RUN_RECORD).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "mirrordet.engine.compare_worker", json.dumps(dict(settings))]
    code = subprocess.run(cmd, check=False).returncode
    if code != 0:
        raise MirrordetError(f"training {settings['model']} with seed {settings['seed']} failed (exit code {code}); "
                             f"see its log above. Finished runs are kept in {run.parent}; the same command with "
                             "exist_ok=True reuses them")
    atomic_write_text(run / RUN_RECORD, _run_record(settings))
    return run


def _split(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """overrides -> (compare keys, output keys, training settings)."""
    own = {k: v for k, v in overrides.items() if k in COMPARE_KEYS}
    out = {k: v for k, v in overrides.items() if k in OUTPUT_KEYS}
    rest = {k: v for k, v in overrides.items() if k not in COMPARE_KEYS and k not in OUTPUT_KEYS}
    if "model" in rest:
        raise ConfigError("compare takes models=a.yaml,b.yaml (a comma-separated list), not model=")
    if "models" in own and "runs" in own:
        raise ConfigError("give models=a.yaml,b.yaml (train them) or runs=dir1,dir2 (finished run folders), not both")
    if "models" not in own and "runs" not in own:
        raise ConfigError("compare needs models=a.yaml,b.yaml (train them) or runs=dir1,dir2 (finished run folders)")
    if "resume" in rest:
        raise ConfigError("compare cannot resume runs; train the missing run, then compare with runs=")
    if "," in str(rest.get("device") or ""):
        raise ConfigError(f"device={rest['device']}: compare trains every run on one device (e.g. device=0), "
                          "so that epoch times and memory are comparable")
    if "runs" in own and (rest or "seeds" in own or "budget" in own):
        extra = [*rest, *(k for k in own if k in ("seeds", "budget"))]
        raise ConfigError(f"runs= compares finished runs as they are: {', '.join(extra)} cannot be applied "
                          "(only project=, name=, exist_ok=, baseline=, force=, vary=)")
    if own.get("budget", "epochs") not in BUDGETS:
        raise ConfigError(f"budget={own['budget']!r}: choose one of {', '.join(BUDGETS)}")
    if "force" in own and not isinstance(own["force"], bool):
        raise ConfigError(f"force={own['force']!r}: give force=True or force=False")
    if "seed" in rest:
        if "seeds" in own:
            raise ConfigError("give seeds=0,1,2 or seed=0, not both")
        own["seeds"] = rest.pop("seed")
    get_cfg(out)  # type-check project/name/exist_ok
    return own, out, rest


def compare(overrides: Mapping[str, Any], latency_runs: int = 30) -> Path:
    """Run a comparison (see the module docstring); returns the output folder.

    Args:
        overrides: ``models`` or ``runs``, optional ``seeds``, ``project``/``name``/``exist_ok`` of the
            output folder, and any training setting (applied to every run).
        latency_runs: timed single-image forward passes per run and device (the median is kept).
    """
    from mirrordet.engine.compare_report import write_reports

    own, out, settings = _split(overrides)
    root = Path(out.get("project") or Path("runs") / "compare")
    base, exist_ok = root / (out.get("name") or "compare"), bool(out.get("exist_ok"))
    results: list[RunResult] = []
    budget_text = ""
    if "runs" in own:
        if "=" in str(own.get("vary", "")):
            raise ConfigError(f"vary={own['vary']}: with runs= give only the setting that differs (vary=KEY); "
                              "its values are read from each run's args.yaml")
        varied: str | None = vary_key(str(own["vary"]), {}) if "vary" in own else None
        results = [collect_run(d) for d in parse_list(own["runs"], "runs")]
        for r in results:
            r.label = run_label(r.label, r.args, varied)
        check_recipes(results, force=bool(own.get("force", False)), varied=varied)
        baseline = _baseline(own.get("baseline"), [r.label for r in results], [str(r.args.get("model")) for r in results])
        save_dir = claim_dir(base, exist_ok)
    else:
        models = parse_list(own["models"], "models")
        seeds = parse_seeds(own["seeds"]) if "seeds" in own else list(DEFAULT_SEEDS)
        vary = parse_vary(own["vary"], settings) if "vary" in own else None
        varied = vary[0] if vary else None
        grid = arms(models, model_labels(models), vary)
        check_models(models, settings)
        baseline = _baseline(own.get("baseline"), [a.label for a in grid], [a.model for a in grid])
        epochs, budget_text = budget_epochs(own.get("budget"), grid, settings, baseline)
        save_dir = claim_dir(base, exist_ok)
        LOGGER.info(f"Comparing {', '.join(a.label for a in grid)} over seeds {seeds}: {len(grid) * len(seeds)} "
                    f"training runs into {save_dir / 'runs'}; baseline {baseline}; budget {budget_text}")
        for seed in seeds:
            for arm in grid:
                run = train_run({**settings, **arm.settings, **epochs.get(arm.label, {}), "model": arm.model,
                                 "seed": seed, "project": str(save_dir / "runs"), "name": f"{arm.folder}-seed{seed}",
                                 "exist_ok": True})
                results.append(collect_run(run, label=arm.label))
    tasks = {r.task for r in results}
    if len(tasks) > 1:
        raise ConfigError("compare needs runs of one task; got "
                          + ", ".join(f"{r.run_dir} ({r.task})" for r in results))
    LOGGER.info(f"Timing {len(results)} best.pt files: {latency_runs} single-image passes each, interleaved")
    measure_latencies(results, latency_runs)
    write_reports(save_dir, results, command_line(overrides), baseline=baseline, budget=budget_text, varied=varied)
    LOGGER.info(f"Comparison saved to {save_dir}")
    return save_dir
