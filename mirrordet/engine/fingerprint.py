"""The recipe fingerprint: one hash of every setting that changes what a training run learns.

Two runs with equal fingerprints differ only in their model and seed (and where their files went), so
comparing them is like for like. The hash covers the data, image size, epochs / time budget, pretrained
weights, optimizer and schedule, loss gains, augmentation, validation settings and the package versions;
it leaves out the model, the seed, output folders, the device and worker count (mirrordet's epoch order and
augmentation depend on the seed and epoch alone), and predict/export settings. The trainer writes it to
args.yaml and to every checkpoint; ``mirrordet compare runs=`` recomputes it from each run's args.yaml.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

# settings that do not change what a run learns (or that a comparison varies on purpose)
NOT_RECIPE = frozenset({
    "model", "scale", "nc", "seed", "task", "mode", "project", "name", "exist_ok", "save_dir", "resume", "device",
    "workers", "save_period", "plots", "verbose", "fingerprint", "source", "save", "save_txt", "save_conf",
    "vid_stride", "format", "opset", "dynamic", "simplify", "half", "tensorboard", "mlflow", "nms",
})


def run_settings(cfg: Mapping[str, Any], imgsz: int) -> dict[str, Any]:
    """A training run's settings as args.yaml records them: ``cfg``, the used ``imgsz`` and the package
    versions (to repeat the run)."""
    from mirrordet.utils.versions import package_versions

    return {**cfg, "imgsz": imgsz, "versions": package_versions()}


def recipe(args: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``args`` (a run's args.yaml or checkpoint settings) that make up its recipe.

    Settings at their default value (``defaults``: mirrordet's own when None) are left out, so a setting added to
    mirrordet later (absent from older runs' args.yaml, present at its default in newer ones) changes no fingerprint.
    """
    if defaults is None:
        from mirrordet.cfg import load_defaults

        defaults = load_defaults()
    return {k: args[k] for k in sorted(args)
            if k not in NOT_RECIPE and not (k in defaults and _canonical(args[k]) == _canonical(defaults[k]))}


def _canonical(value: Any) -> str:
    """The JSON text a value is hashed and compared by (sorted keys; non-JSON values as text)."""
    return json.dumps(value, sort_keys=True, default=str)


def recipe_fingerprint(args: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of :func:`recipe`."""
    return hashlib.sha256(_canonical(recipe(args)).encode("utf-8")).hexdigest()[:16]


def recipe_differences(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{setting: {run: value}} for every recipe setting whose value is not the same in all ``runs`` (a run without
    the setting has its default)."""
    from mirrordet.cfg import load_defaults

    defaults = load_defaults()
    recipes = {name: recipe(args, defaults) for name, args in runs.items()}
    out = {}
    for k in sorted({k for r in recipes.values() for k in r}):
        vals = {name: r[k] if k in r else defaults.get(k) for name, r in recipes.items()}
        if len({_canonical(v) for v in vals.values()}) > 1:
            out[k] = vals
    return out
