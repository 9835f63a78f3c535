"""`mirrordet compare`: two models trained for one epoch, tables, plots, run folders, and the runs= path."""

import csv
import math
from pathlib import Path

import pytest
import yaml

from mirrordet.cli import main
from mirrordet.engine.compare import compare, model_labels, parse_seeds
from mirrordet.engine.compare_stats import RunResult, aggregate, differing_settings
from mirrordet.engine.compare_vary import Arm, arms, parse_vary, run_label

PNG = b"\x89PNG\r\n\x1a\n"
TINY = {"imgsz": 64, "batch": 8, "workers": 0, "epochs": 1, "warmup_epochs": 0, "verbose": False}
MODELS = ("tiny-c2f", "tiny-mirror")
# two small detectors (181k parameters, strides 8/16) that differ only in the block: C2f vs CSPMirror
TINY_YAML = """nc: 4
backbone:
  - [-1, 1, Conv, [8, 3, 2]]
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, BLOCK, [16, True]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, BLOCK, [32, True]]
  - [-1, 1, Conv, [32, 3, 2]]
head:
  - [[4, 5], 1, Detect, [nc]]
"""
RUN_PLOTS = ("results.png", "labels.png", "PR_curve.png", "confusion_matrix.png", "confusion_matrix_normalized.png",
             "val_batch0.png")


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1000, path


@pytest.fixture(scope="module")
def compared(tiny_shapes_yaml, tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("compare")
    paths = []
    for name, block in zip(MODELS, ("C2f", "CSPMirror")):
        paths.append(project / f"{name}.yaml")
        paths[-1].write_text(TINY_YAML.replace("BLOCK", block))
    return compare({"models": ",".join(map(str, paths)), "data": str(tiny_shapes_yaml), "seeds": "0",
                    **TINY, "project": str(project), "name": "cmp"}, latency_runs=3)


def test_compare_csv_has_every_column(compared):
    assert compared.name == "cmp"
    rows = read_rows(compared / "compare.csv")
    assert [r["model"] for r in rows] == list(MODELS)
    cost = ("latency_cpu_ms", "latency_gpu_ms", "epoch_time_s", "train_min", "peak_rss_mb", "peak_gpu_mb")
    expected = ["model", "task", "runs", "seeds", "imgsz", "epochs", "params", "gflops",
                *(f"{c}_{s}" for c in (*cost, "mAP50", "mAP50-95") for s in ("mean", "std"))]
    assert list(rows[0]) == expected
    base, mirror = rows
    for r in rows:
        assert r["task"] == "detect" and r["runs"] == "1" and r["seeds"] == "0" and r["imgsz"] == "64"
        assert r["epochs"] == "1"
        for col in ("latency_cpu_ms_mean", "epoch_time_s_mean", "train_min_mean", "peak_rss_mb_mean"):
            assert float(r[col]) > 0, col
        assert float(r["train_min_mean"]) * 60 > float(r["epoch_time_s_mean"])  # whole run > one training pass
        for col in ("mAP50_mean", "mAP50-95_mean"):
            assert 0.0 <= float(r[col]) <= 1.0
        assert r["mAP50_std"] == ""  # one seed: no spread
    assert base["params"] == mirror["params"]  # CSPMirror keeps C2f's parameter count
    assert float(mirror["gflops"]) > float(base["gflops"])  # overlapping views cost extra FLOPs


def test_compare_runs_md_and_plots(compared):
    runs = read_rows(compared / "compare_runs.csv")
    assert [(r["model"], r["seed"]) for r in runs] == [(m, "0") for m in MODELS]
    md = (compared / "compare.md").read_text()
    assert "mirrordet compare models=" in md and "tiny-mirror.yaml" in md and "seeds=0" in md
    assert "| model | runs (seeds) | params | GFLOPs | CPU latency ms |" in md
    assert all(f"| {m} | 1 (0) |" in md for m in MODELS)
    verdict = md.index("## Verdict")  # the verdict leads: one seed, so the paired image bootstrap decides
    assert verdict < md.index("| model | runs (seeds)") and f"| {MODELS[1]} | {MODELS[0]} | 0 |" in md
    (row,) = read_rows(compared / "compare_verdict.csv")
    assert row["decided_by"] == "images" and float(row["image_boot_low"]) <= float(row["image_boot_high"])
    assert row["verdict"] in ("better", "worse", "inconclusive") and row["t_low"] == ""
    for name in ("compare.png", "compare_curves.png"):
        assert_png(compared / name)


def test_compare_run_folders_are_complete(compared):
    from mirrordet.engine.fingerprint import recipe_fingerprint
    from mirrordet.engine.weights import read_checkpoint

    prints = set()
    for m in MODELS:
        run = compared / "runs" / f"{m}-seed0"
        args = yaml.safe_load((run / "args.yaml").read_text())
        assert args["fingerprint"] == recipe_fingerprint(args) == read_checkpoint(run / "weights" / "best.pt").fingerprint
        prints.add(args["fingerprint"])
    assert len(prints) == 1  # the models differ, the recipe does not
    for m in MODELS:
        run = compared / "runs" / f"{m}-seed0"
        args = yaml.safe_load((run / "args.yaml").read_text())
        assert args["seed"] == 0 and Path(args["model"]).name == f"{m}.yaml" and args["epochs"] == 1
        assert set(args["versions"]) >= {"mirrordet", "torch", "torchvision", "numpy", "opencv", "python"}
        assert (run / "memory.json").is_file() and (run / "weights" / "best.pt").is_file()
        for name in RUN_PLOTS:
            assert_png(run / name)


def test_compare_finished_runs(compared, tmp_path, monkeypatch):
    import mirrordet.engine.profile as profile

    monkeypatch.setattr(profile, "interleaved_latency", lambda models, *a, **k: [1.0] * len(models))  # tested above
    a, b = (compared / "runs" / f"{m}-seed0" for m in MODELS)
    assert main(["compare", f"runs={a},{b},{a}", f"project={tmp_path}", "name=again"]) == 0
    rows = read_rows(tmp_path / "again" / "compare.csv")
    first = {r["model"]: r for r in read_rows(compared / "compare.csv")}
    assert [r["model"] for r in rows] == list(MODELS)
    assert rows[0]["runs"] == "2" and float(rows[0]["mAP50-95_std"]) == 0.0  # the same run given twice
    for r in rows:
        for col in ("params", "gflops", "mAP50_mean", "mAP50-95_mean", "epoch_time_s_mean", "peak_rss_mb_mean"):
            assert r[col] == first[r["model"]][col], col
    assert "runs=" in (tmp_path / "again" / "compare.md").read_text()


def test_runs_with_different_recipes_are_refused(compared, tmp_path, capsys, monkeypatch):
    import shutil

    import mirrordet.engine.profile as profile

    monkeypatch.setattr(profile, "interleaved_latency", lambda models, *a, **k: [1.0] * len(models))
    a, b = (compared / "runs" / f"{m}-seed0" for m in MODELS)
    shutil.copytree(b, tmp_path / "b")
    args = yaml.safe_load((tmp_path / "b" / "args.yaml").read_text())
    (tmp_path / "b" / "args.yaml").write_text(yaml.safe_dump({**args, "lr0": 0.02}))
    assert main(["compare", f"runs={a},{tmp_path / 'b'}", f"project={tmp_path}", "name=refused"]) == 2
    err = capsys.readouterr().err
    assert "not trained with the same recipe" in err and "lr0:" in err and "force=True" in err
    assert not (tmp_path / "refused").exists()
    assert main(["compare", f"runs={a},{tmp_path / 'b'}", "force=True", f"project={tmp_path}", "name=forced"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["models=yolov8n.yaml", "runs=x"], "not both"),
    ([], "models=a.yaml,b.yaml"),
    (["model=yolov8n.yaml"], "not model="),
    (["runs=a,b", "epochs=3"], "cannot be applied"),
    (["models=yolov8n.yaml", "seeds=0,x"], "not an integer"),
    (["models=yolov8n.yaml", "seeds=1,1"], "twice"),
    (["models=yolov8n.yaml", "seed=1", "seeds=2"], "not both"),
    (["models=yolov8n.yaml", "DATA", "epoch=3"], "did you mean 'epochs'"),
    (["runs=/nonexistent/run"], "args.yaml is missing"),
    (["models=yolov8n.yaml", "device=0,1"], "one device"),
    (["models=yolov8n.yaml", "budget=gpu"], "choose one of epochs, time, flops"),
    (["models=yolov8n.yaml", "DATA", "baseline=nope"], "is none of the compared models"),
    (["models=yolov8n.yaml", "DATA", "budget=time"], "budget=time needs time="),
    (["runs=a,b", "budget=flops"], "cannot be applied"),
    (["models=yolov8n.yaml", "DATA", "vary=mixup"], "give one setting and its values"),
    (["models=yolov8n.yaml", "DATA", "vary=epochs=1,2"], "budget"),
    (["models=yolov8n.yaml", "DATA", "vary=workers=0,2"], "does not change what a run learns"),
    (["models=yolov8n.yaml", "DATA", "vary=mixup=0.1"], "at least two values"),
    (["models=yolov8n.yaml", "DATA", "vary=mixup=0.1,0.1"], "lists a value twice"),
    (["models=yolov8n.yaml", "DATA", "vary=mixup=0,2"], "mixup"),
    (["models=yolov8n.yaml", "DATA", "vary=mixpu=0,1"], "did you mean 'mixup'"),
    (["models=yolov8n.yaml", "DATA", "mixup=0.1", "vary=mixup=0,0.1"], "give it in one place"),
    (["runs=a,b", "vary=mixup=0,0.1"], "give only the setting that differs"),
])
def test_compare_bad_input_is_clear(argv, message, tiny_shapes_yaml, tmp_path, capsys):
    argv = [f"data={tiny_shapes_yaml}" if a == "DATA" else a for a in argv]
    assert main(["compare", *argv, f"project={tmp_path / 'out'}"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written before the input is known to be good


def test_mixed_tasks_are_refused(tiny_shapes_yaml, tmp_path, capsys):
    argv = ["compare", "models=yolov8n.yaml,yolov8n-cls.yaml", f"data={tiny_shapes_yaml}", f"project={tmp_path}"]
    assert main(argv) == 2
    assert "one task" in capsys.readouterr().err


def test_aggregate_mean_and_sample_std():
    def run(label, seed, m, t):
        return RunResult(label, seed, Path(f"r{seed}"), "detect", 64, 3, 10, 1.5,
                         values={"mAP50-95": m, "epoch_time_s": t, "latency_gpu_ms": None},
                         args={"epochs": 3, "seed": seed, "model": label, "lr0": 0.01})

    runs = [run("a", 0, 0.5, 2.0), run("b", 0, 0.1, 1.0), run("a", 1, 0.7, 4.0)]
    rows = aggregate(runs)
    assert [r["model"] for r in rows] == ["a", "b"] and rows[0]["seeds"] == "0 1" and rows[0]["runs"] == 2
    assert rows[0]["mAP50-95_mean"] == pytest.approx(0.6)
    assert rows[0]["mAP50-95_std"] == pytest.approx(math.sqrt(0.02))  # n - 1 in the denominator
    assert rows[0]["epoch_time_s_mean"] == pytest.approx(3.0)
    assert rows[1]["mAP50-95_std"] is None and rows[0]["latency_gpu_ms_mean"] is None
    assert differing_settings(runs) == {}
    runs[1].args["lr0"] = 0.02
    assert differing_settings(runs) == {"lr0": [0.01, 0.02, 0.01]}


def test_labels_and_seeds_parsing():
    assert model_labels(["yolov8n.yaml", "a/yolov8n.yaml", "yolov8n-mirror.yaml"]) == [
        "yolov8n", "yolov8n-2", "yolov8n-mirror"]
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds(3) == [3] and parse_seeds([4, 5]) == [4, 5]


def test_vary_parsing_and_arms():
    assert parse_vary("mixup=0,0.1", {}) == ("mixup", [0.0, 0.1])
    assert parse_vary(["imgsz=64", 96], {}) == ("imgsz", [64, 96])  # a YAML list from the CLI reads the same
    grid = arms(["a.yaml", "b.yaml"], ["a", "b"], ("mixup", [0.0, 0.1]))
    assert [(g.label, g.model, g.settings) for g in grid] == [
        ("a mixup=0.0", "a.yaml", {"mixup": 0.0}), ("a mixup=0.1", "a.yaml", {"mixup": 0.1}),
        ("b mixup=0.0", "b.yaml", {"mixup": 0.0}), ("b mixup=0.1", "b.yaml", {"mixup": 0.1})]
    assert [g.folder for g in grid[:2]] == ["a-mixup0.0", "a-mixup0.1"]
    assert Arm("x y=a/b", "x.yaml").folder == "x-yab"  # nothing that leaves the runs folder
    assert arms(["a.yaml"], ["a"], None) == [Arm("a", "a.yaml")]
    assert run_label("a", {"mixup": 0.1}, "mixup") == "a mixup=0.1"
    assert run_label("a", {}, "mixup") == "a mixup=0.0"  # a run from before the setting existed: its default
    assert run_label("a", {"mixup": 0.1}, None) == "a"


def test_compare_varies_a_setting(tiny_shapes_yaml, tmp_path, monkeypatch):
    """vary=mixup=0,0.5: one model, two arms trained with one seed; the run folders differ in mixup alone, and the
    finished runs regroup by model and value with runs= vary=mixup (refused without it)."""
    import mirrordet.engine.profile as profile

    model = tmp_path / "tiny-c2f.yaml"
    model.write_text(TINY_YAML.replace("BLOCK", "C2f"))
    out = compare({"models": str(model), "vary": "mixup=0,0.5", "data": str(tiny_shapes_yaml), "seeds": "0",
                   **TINY, "project": str(tmp_path), "name": "vary"}, latency_runs=2)
    labels = ["tiny-c2f mixup=0.0", "tiny-c2f mixup=0.5"]
    assert [r["model"] for r in read_rows(out / "compare.csv")] == labels
    md = (out / "compare.md").read_text()
    assert "Varied on purpose: mixup" in md and "Warning" not in md  # the varied setting is not a recipe mismatch
    (verdict,) = read_rows(out / "compare_verdict.csv")
    assert (verdict["model"], verdict["baseline"]) == (labels[1], labels[0])
    runs = [out / "runs" / f"tiny-c2f-mixup{v}-seed0" for v in ("0.0", "0.5")]
    args = [yaml.safe_load((r / "args.yaml").read_text()) for r in runs]
    assert [a["mixup"] for a in args] == [0.0, 0.5] and args[0]["fingerprint"] != args[1]["fingerprint"]
    assert {k for k in args[0] if args[0][k] != args[1][k]} == {"mixup", "fingerprint", "name"}

    monkeypatch.setattr(profile, "interleaved_latency", lambda models, *a, **k: [1.0] * len(models))
    assert main(["compare", f"runs={runs[0]},{runs[1]}", f"project={tmp_path}", "name=refused"]) == 2
    assert main(["compare", f"runs={runs[0]},{runs[1]}", "vary=mixup", f"project={tmp_path}", "name=again"]) == 0
    assert [r["model"] for r in read_rows(tmp_path / "again" / "compare.csv")] == labels


    def no_training(cmd, **kw):
        raise AssertionError(f"trained again: {cmd}")

    # the same command with exist_ok=True reuses both finished runs; a changed setting trains again
    import mirrordet.engine.compare as compare_module

    monkeypatch.setattr(compare_module.subprocess, "run", no_training)
    settings = {"models": str(model), "vary": "mixup=0,0.5", "data": str(tiny_shapes_yaml), "seeds": "0",
                **TINY, "project": str(tmp_path), "name": "vary", "exist_ok": True}
    assert compare(settings, latency_runs=1) == out
    assert [r["model"] for r in read_rows(out / "compare.csv")] == labels
    with pytest.raises(AssertionError, match="trained again"):
        compare({**settings, "lr0": 0.02}, latency_runs=1)
    assert not (runs[0] / "compare_run.json").exists()  # a run being replaced is no longer marked finished
