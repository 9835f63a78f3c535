"""The shortcut check of `mirrordet compare` for classifiers: top-1 per class and per image attribute.

A classifier can score well by learning a cue that goes with the class in the data instead of the
class itself. In shapes-cls, each class has a usual colour and 15% of the shapes get an arbitrary one,
so a colour classifier is right on the class-tinted images and wrong on the others. For datasets
whose images carry attributes (the generated shapes-cls: colour = class tint / other colour, size =
small / large, replayed by :func:`mirrordet.data.synthetic.shapes_cls_attributes`) compare.md shows
each model's top-1 per attribute value next to its top-1 per class. The per-image outcomes come from
the predictions.json that classification validation writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from mirrordet.engine.compare_stats import RunResult


def _dataset(data: Any, cache: dict[str, tuple]) -> tuple[Path | None, dict[int, str], dict[str, dict[str, str]]]:
    """(dataset root, class names, per-image attributes) of the run's dataset (no attributes: {})."""
    from mirrordet.data.dataset_yaml import load_dataset_yaml
    from mirrordet.data.synthetic import shapes_cls_attributes
    from mirrordet.utils.errors import MirrordetError

    key = str(data)
    if key not in cache:
        try:
            d = load_dataset_yaml(key)
            root = Path(d["path"])
            attrs = shapes_cls_attributes(root) if d.get("synthetic") == "shapes-cls" else {}
            cache[key] = (root, dict(d.get("names") or {}), attrs)
        except (MirrordetError, OSError, KeyError):
            cache[key] = (None, {}, {})
    return cache[key]


def shortcut_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per model: ``{"model", "<class name>": top-1, "<attribute>: <value>": top-1, ...}`` averaged
    over its runs, plus ``"n <column>"`` image counts. Empty when no run has per-image predictions."""
    cache: dict[str, tuple] = {}
    per_model: dict[str, list[dict[str, float]]] = {}
    counts: dict[str, int] = {}
    for r in results:
        preds_file = r.run_dir / "predictions.json"
        try:
            preds = json.loads(preds_file.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(preds, list):
            continue
        root, names, attrs = _dataset(r.args.get("data"), cache)
        groups: dict[str, list[bool]] = {}
        for p in preds:
            ok = p.get("cls") == p.get("pred")
            groups.setdefault(names.get(p.get("cls"), f"class {p.get('cls')}"), []).append(ok)
            rel = _relative(p.get("im_file"), root)
            for attr, value in (attrs.get(rel) or {}).items():
                groups.setdefault(f"{attr}: {value}", []).append(ok)
        per_model.setdefault(r.label, []).append({k: sum(v) / len(v) for k, v in groups.items()})
        counts.update({k: len(v) for k, v in groups.items()})
    rows = []
    for label, runs in per_model.items():
        cols = sorted({k for run in runs for k in run}, key=lambda k: (":" in k, k))
        rows.append({"model": label, **{k: sum(run.get(k, 0.0) for run in runs) / len(runs) for k in cols},
                     **{f"n {k}": counts.get(k, 0) for k in cols}})
    return rows


def _relative(im_file: Any, root: Path | None) -> str:
    if root is None or not isinstance(im_file, str):
        return ""
    try:
        return Path(im_file).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return ""


def shortcut_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table: top-1 per class and per attribute value, mean over each model's runs (image counts in the header)."""
    cols = [k for k in rows[0] if k != "model" and not k.startswith("n ")]
    head = ["model"] + [f"{k} (n={rows[0].get(f'n {k}', 0)})" for k in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["model"], *(f"{r[k]:.3f}" if k in r else "" for k in cols)]) + " |")
    lines += ["", "Top-1 on the val images of each class and of each attribute value (mean over the model's runs). "
              "A model that learned a cue that goes with the class (colour in shapes-cls) instead of the class "
              "scores much lower on `colour: other colour` than on `colour: class tint`."]
    return "\n".join(lines)
