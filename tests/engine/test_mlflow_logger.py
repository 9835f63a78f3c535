"""The MLflow logger: metric names MLflow accepts, a clear error without the package, and (with mlflow-skinny
installed) a two-epoch run read back through MLflow's own client."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from mirrordet.cli import main
from mirrordet.engine.mlflow_logger import RUN_ID_FILE, MLflowLogger, local_tracking_uri, metric_key

TRAIN = ["model=yolov8n.yaml", "imgsz=64", "batch=8", "workers=0", "epochs=2", "mlflow=True"]


def test_metric_keys_are_valid_mlflow_names():
    assert metric_key("metrics/mAP50(M)") == "metrics/mAP50_M"
    assert metric_key("metrics/mAP50-95") == "metrics/mAP50-95"
    assert metric_key("train/box_loss") == "train/box_loss"
    assert metric_key("a:b*c") == "a_b_c"


def test_without_mlflow_the_error_says_what_to_install(tiny_shapes_yaml, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError, installed or not
    assert main(["train", f"data={tiny_shapes_yaml}", *TRAIN, f"project={tmp_path}", "name=nomlflow"]) == 2
    assert "pip install mlflow-skinny" in capsys.readouterr().err
    assert not (tmp_path / "nomlflow").exists()  # refused before anything is written


@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_mlflow_run_read_back(store, tiny_shapes_yaml, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    if store == "file":  # what mlflow-skinny alone can write
        monkeypatch.setitem(sys.modules, "sqlalchemy", None)
        monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    else:
        pytest.importorskip("sqlalchemy")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "shapes-test")
    assert main(["train", f"data={tiny_shapes_yaml}", *TRAIN, f"project={tmp_path}", "name=ml"]) == 0
    uri = local_tracking_uri(tmp_path)[0]
    assert uri.startswith("file:" if store == "file" else "sqlite:")
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("shapes-test").experiment_id])
    assert run.info.run_name == "ml" and run.info.status == "FINISHED"
    assert run.data.params["imgsz"] == "64" and run.data.params["epochs"] == "2"
    for key in ("train/box_loss", "metrics/mAP50-95", "lr/pg0"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2], key
    assert 0.0 <= run.data.metrics["metrics/mAP50-95"] <= 1.0
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"results.csv", "args.yaml", "weights"} <= files
    assert [f.path for f in client.list_artifacts(run.info.run_id, "weights")] == ["weights/best.pt"]


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    save_dir = tmp_path / "run"
    save_dir.mkdir()
    trainer = SimpleNamespace(save_dir=save_dir, cfg={"epochs": 3, "lr0": 0.01, "weights": None})
    first = MLflowLogger()
    first.start(trainer)
    assert (save_dir / RUN_ID_FILE).is_file()
    again = MLflowLogger()
    again.start(trainer)
    assert again.run_id == first.run_id
    artifacts = again.client.get_run(again.run_id).info.artifact_uri
    assert artifacts.startswith(tmp_path.resolve().as_uri())  # beside the run folders, never the working directory


def test_the_local_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # mlflow-skinny: no SQLAlchemy
    assert local_tracking_uri(tmp_path) == ((tmp_path / "mlruns").resolve().as_uri(), None)
    import os

    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
    monkeypatch.delitem(sys.modules, "sqlalchemy")
    pytest.importorskip("sqlalchemy")
    uri, artifacts = local_tracking_uri(tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}" and artifacts == (tmp_path / "mlartifacts").resolve().as_uri()
