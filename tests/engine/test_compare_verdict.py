"""compare's verdict (paired differences, t interval, bootstraps), recipe fingerprints and equal budgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mirrordet.engine.compare_recipe import budget_epochs, check_recipes
from mirrordet.engine.compare_stats import RunResult
from mirrordet.engine.compare_verdict import paired_verdicts, verdict_markdown
from mirrordet.engine.fingerprint import recipe_differences, recipe_fingerprint
from mirrordet.utils.errors import ConfigError


def _runs(table: dict[str, list[float]], task: str = "detect", args: dict | None = None) -> list[RunResult]:
    metric = "mAP50-95" if task == "detect" else "top1"
    return [RunResult(label=label, seed=s, run_dir=Path(f"/nowhere/{label}-{s}"), task=task, imgsz=64, epochs=3,
                      params=1, gflops=1.0, values={metric: v}, args=dict(args or {}, model=f"{label}.yaml", seed=s))
            for label, vals in table.items() for s, v in enumerate(vals)]


def test_clearly_better_worse_and_noise():
    runs = _runs({"base": [0.70, 0.71, 0.69], "good": [0.75, 0.761, 0.739], "bad": [0.60, 0.62, 0.58],
                  "noise": [0.71, 0.69, 0.70]})
    v = {x.model: x for x in paired_verdicts(runs, "base", image_boot=0)}
    assert [v[m].verdict for m in ("good", "bad", "noise")] == ["better", "worse", "inconclusive"]
    assert all(x.decided_by == "t" and x.seeds == [0, 1, 2] for x in v.values())
    assert v["good"].diffs == pytest.approx([0.05, 0.051, 0.049]) and v["good"].mean == pytest.approx(0.05)
    md = verdict_markdown(list(v.values()))
    assert "| good | base | 0 1 2 | +0.0500 |" in md and "**better** (t)" in md and "inconclusive (t)" in md


def test_t_interval_equals_scipy():
    stats = pytest.importorskip("scipy.stats")
    runs = _runs({"base": [0.5, 0.52, 0.49, 0.51], "m": [0.53, 0.52, 0.50, 0.56]}, task="classify")
    (v,) = paired_verdicts(runs, "base")
    d = np.array(v.diffs)
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert v.t_ci == pytest.approx((lo, hi), abs=1e-9) and v.metric == "top1"
    assert v.seed_boot_ci[0] >= d.min() - 1e-12 and v.seed_boot_ci[1] <= d.max() + 1e-12


def test_one_seed_without_predictions_has_no_interval():
    (v,) = paired_verdicts(_runs({"base": [0.7], "m": [0.9]}), "base")
    assert v.verdict == "inconclusive" and v.decided_by == "none" and v.t_ci is None
    assert any("no predictions.json" in n for n in v.notes)


def test_only_common_seeds_are_paired():
    runs = _runs({"base": [0.5, 0.5], "m": [0.6, 0.6, 0.9]})
    (v,) = paired_verdicts(runs, "base", image_boot=0)
    assert v.seeds == [0, 1] and v.mean == pytest.approx(0.1)


def test_fingerprint_ignores_model_seed_and_outputs_but_not_the_recipe():
    a = {"model": "a.yaml", "seed": 0, "epochs": 30, "lr0": 0.01, "project": "x", "device": "cpu", "workers": 2,
         "versions": {"torch": "2.14"}}
    same = dict(a, model="b.yaml", seed=5, project="y", device="0", workers=8, fingerprint="abc")
    assert recipe_fingerprint(a) == recipe_fingerprint(same)
    for change in ({"lr0": 0.02}, {"epochs": 15}, {"versions": {"torch": "2.13"}}, {"data": "coco.yaml"}):
        assert recipe_fingerprint(dict(a, **change)) != recipe_fingerprint(a)
    assert recipe_differences({"r1": a, "r2": dict(a, lr0=0.02)}) == {"lr0": {"r1": 0.01, "r2": 0.02}}
    # a setting added to mirrordet later: absent from an old run, at its default in a new one: same recipe
    assert recipe_fingerprint(a) == recipe_fingerprint(dict(a, mixup=0.0, multi_scale=False, rect=False))
    assert recipe_fingerprint(a) != recipe_fingerprint(dict(a, mixup=0.1))


def test_runs_with_different_recipes_are_refused_with_the_settings_named():
    runs = _runs({"a": [0.5]}, args={"epochs": 30, "imgsz": 192}) + _runs({"b": [0.6]}, args={"epochs": 15, "imgsz": 192})
    with pytest.raises(ConfigError, match=r"epochs: a-0=30, b-0=15\. Pass force=True"):
        check_recipes(runs)
    check_recipes(runs, force=True)  # compares anyway, with a warning
    check_recipes(_runs({"a": [0.5], "b": [0.6]}, args={"epochs": 30}))  # same recipe: accepted


def test_budgets(tiny_shapes_yaml):
    from mirrordet.engine.compare_vary import Arm

    settings = {"data": str(tiny_shapes_yaml), "imgsz": 64, "epochs": 10}
    arms = [Arm("yolov8n", "yolov8n.yaml"), Arm("yolov8s", "yolov8s.yaml")]
    assert budget_epochs(None, arms, settings, "yolov8n")[0] == {}
    per, text = budget_epochs("flops", arms, settings, "yolov8n")
    assert per["yolov8n"] == {"epochs": 10} and 1 <= per["yolov8s"]["epochs"] < 10 and "flops" in text
    with pytest.raises(ConfigError, match="budget=time needs time="):
        budget_epochs("time", arms, settings, "yolov8n")
    assert budget_epochs(None, arms, {**settings, "time": 0.1}, "yolov8n")[1].startswith("time")
    with pytest.raises(ConfigError, match="contradicts"):
        budget_epochs("flops", arms, {**settings, "time": 0.1}, "yolov8n")
    # a varied image size is part of an arm's FLOPs: the larger arm gets fewer epochs for the same budget
    sized = [Arm("yolov8n imgsz=64", "yolov8n.yaml", {"imgsz": 64}), Arm("yolov8n imgsz=128", "yolov8n.yaml", {"imgsz": 128})]
    per, _ = budget_epochs("flops", sized, settings, "yolov8n imgsz=64")
    assert per["yolov8n imgsz=64"] == {"epochs": 10} and per["yolov8n imgsz=128"]["epochs"] < 5


def test_shortcut_check_for_classifiers(tmp_path):
    """A classify comparison on generated shapes-cls data reports top-1 per class and per colour / size."""
    import csv

    from mirrordet.engine.compare import compare

    data = tmp_path / "cls.yaml"
    data.write_text("synthetic: shapes-cls\npath: cls\nsynthetic_args: {n_train_per_class: 6, n_val_per_class: 5, "
                    "imgsz: 32, seed: 0}\ntrain: train\nval: val\nnames: [circle, square, triangle, star]\n")
    out = compare({"models": "yolov8n-cls.yaml", "data": str(data), "seeds": "0", "imgsz": 32, "epochs": 1, "batch": 8,
                   "workers": 0, "verbose": False, "project": str(tmp_path), "name": "c"}, latency_runs=1)
    md = (out / "compare.md").read_text()
    assert "## Shortcut check" in md
    (row,) = list(csv.DictReader(open(out / "compare_shortcuts.csv")))
    assert {"circle", "star", "colour: class tint", "colour: other colour", "size: small", "size: large"} <= set(row)
    assert int(row["n circle"]) == 5 and int(row["n colour: class tint"]) + int(row["n colour: other colour"]) == 20
    preds = __import__("json").loads((out / "runs" / "yolov8n-cls-seed0" / "predictions.json").read_text())
    assert len(preds) == 20 and {"im_file", "cls", "pred", "score"} <= set(preds[0])
    acc = sum(p["cls"] == p["pred"] for p in preds if "/circle/" in p["im_file"]) / 5
    assert float(row["circle"]) == pytest.approx(acc)


def test_shapes_cls_attributes_replay_the_generator(tmp_path):
    import cv2
    import numpy as np

    from mirrordet.data.synthetic import generate_shapes_cls, render_classification_image, shapes_cls_attributes

    root = generate_shapes_cls(tmp_path / "s", n_train_per_class=3, n_val_per_class=40, imgsz=32)
    attrs = shapes_cls_attributes(root)
    assert len(attrs) == 4 * 43 and attrs["val/star/00039.png"].keys() == {"colour", "size"}
    other = sum(a["colour"] == "other colour" for a in attrs.values()) / len(attrs)
    assert 0.05 < other < 0.3  # RANDOM_COLOR_P = 0.15
    rng = np.random.default_rng([0, 11, 1, 5])  # (seed, val split, class, index): the generator's own draws
    assert np.array_equal(render_classification_image(rng, 1, 32), cv2.imread(str(root / "val/square/00005.png")))
    assert shapes_cls_attributes(tmp_path) == {}
