"""Fair terms of a comparison: the same recipe for every run, and the same budget for every model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mirrordet.engine.compare_stats import RunResult
from mirrordet.engine.compare_vary import Arm
from mirrordet.utils.errors import ConfigError
from mirrordet.utils.log import LOGGER

BUDGETS = ("epochs", "time", "flops")


def check_recipes(results: Sequence[RunResult], force: bool = False, varied: str | None = None) -> None:
    """Refuse finished runs whose recipes (engine/fingerprint.py) differ outside the model, the seed and the
    ``varied`` setting (``vary=KEY``).

    Raises:
        ConfigError: naming each differing setting and its value per run, unless ``force``.
    """
    from mirrordet.engine.fingerprint import recipe_differences

    diff = recipe_differences({str(r.run_dir): r.args for r in results})
    diff.pop(varied, None)
    if not diff:
        return
    text = "; ".join(f"{k}: " + ", ".join(f"{Path(run).name}={v!r}" for run, v in vals.items())
                     for k, vals in list(diff.items())[:6])
    more = f" and {len(diff) - 6} more" if len(diff) > 6 else ""
    if not force:
        raise ConfigError(f"these runs were not trained with the same recipe, so comparing them is not like for like: "
                          f"{text}{more}. Pass force=True to compare them anyway")
    LOGGER.warning(f"force=True: comparing runs whose recipes differ ({text}{more})")


def budget_epochs(budget: str | None, arms: Sequence[Arm], settings: Mapping[str, Any],
                  baseline: str) -> tuple[dict[str, dict[str, int]], str]:
    """Per-arm-label setting overrides that give every arm the same budget, and a line describing it.

    ``epochs``: the same epoch count for all. ``time``: the same ``time=`` (hours) for all, each arm's
    epochs re-fitted by the trainer (the default when ``time=`` is given, else ``epochs``). ``flops``: epochs
    scaled so every arm spends the baseline's training FLOPs (forward GFLOPs at the arm's imgsz x epochs; the
    backward pass scales with the forward).
    """
    from mirrordet.engine.setup import resolve_settings
    from mirrordet.nn.graph import build_model
    from mirrordet.nn.info import summarize

    cfg, data = resolve_settings({**settings, "model": arms[0].model})
    budget = budget or ("time" if cfg["time"] is not None else "epochs")
    if budget == "time":
        if cfg["time"] is None:
            raise ConfigError("budget=time needs time= (hours per run, e.g. time=0.25)")
        return {}, f"time: every run trains for time={cfg['time']} h (its epochs re-fitted to fit)"
    if cfg["time"] is not None:
        raise ConfigError(f"time={cfg['time']} fixes the budget in hours, which budget={budget} contradicts")
    if budget == "epochs":
        return {}, f"epochs: every run trains {cfg['epochs']} epochs"
    gflops = {a.label: summarize(build_model(a.model, nc=int(data["nc"]), scale=cfg["scale"]),
                                 a.settings.get("imgsz", cfg["imgsz"])).gflops for a in arms}
    if any(g is None or g <= 0 for g in gflops.values()):
        raise ConfigError("budget=flops needs the GFLOPs of every model, which could not be counted")
    epochs = {label: max(1, round(cfg["epochs"] * gflops[baseline] / g)) for label, g in gflops.items()}
    return ({label: {"epochs": e} for label, e in epochs.items()},
            f"flops: epochs scaled to the baseline's {cfg['epochs']} epochs x {gflops[baseline]:.3g} GFLOPs @"
            f"{cfg['imgsz']} (" + ", ".join(f"{a.label} {epochs[a.label]} epochs at {gflops[a.label]:.3g}" for a in arms)
            + ")")
