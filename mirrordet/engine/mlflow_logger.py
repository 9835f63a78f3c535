"""MLflow logging of a training run, built on the callbacks (engine/callbacks.py).

``mirrordet train mlflow=True`` (or ``MLflowLogger().attach(callbacks)``) records one MLflow run per training
run: the settings as parameters, every loss term (``train/<name>``), validation metric and the learning rate
(``lr/pg0``) per epoch (step = epoch number, 1-based), and at the end the run folder's results, plots and
``weights/best.pt`` as artifacts. A resumed run continues the same MLflow run (its id is kept in the run
folder's ``mlflow.json``).

Where it writes: ``MLFLOW_TRACKING_URI`` when set (a tracking server or any URI MLflow accepts), else a local
store beside the run folders (:func:`local_tracking_uri`): ``<project>/mlflow.db`` (SQLite) with artifacts in
``<project>/mlartifacts`` when SQLAlchemy is installed (full ``mlflow`` brings it), else the ``file:`` store
``<project>/mlruns`` that ``mlflow-skinny`` can write (MLflow 3 keeps that store only on request, so the logger
sets ``MLFLOW_ALLOW_FILE_STORE=true`` for this process and says so). View either with ``mlflow ui
--backend-store-uri <URI>``. Experiment ``MLFLOW_EXPERIMENT_NAME``, default ``mirrordet``. Nothing is sent
anywhere unless that variable names a server. Needs the optional ``mlflow-skinny`` (or ``mlflow``) package.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from mirrordet.engine.callbacks import RunLogger
from mirrordet.utils.errors import ConfigError
from mirrordet.utils.files import atomic_write_text

RUN_ID_FILE = "mlflow.json"
ARTIFACT_SUFFIXES = (".png", ".csv", ".yaml", ".json")
DEFAULT_EXPERIMENT = "mirrordet"
MAX_PARAM_CHARS = 250  # MLflow's parameter value limit was 250 characters before 2.x raised it


def check_mlflow() -> None:
    """Raise ConfigError when the mlflow package is missing."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("mlflow=True needs MLflow: pip install mlflow-skinny (or mlflow)") from None


def local_tracking_uri(project: Path) -> tuple[str, str | None]:
    """The tracking URI of the local store in ``project``, and the artifact location its experiments get
    (None: the store's own).

    SQLite (``sqlite:///<project>/mlflow.db``, artifacts in ``<project>/mlartifacts``) when SQLAlchemy is
    importable; else the ``file:`` store ``<project>/mlruns``, enabling it for this process.
    """
    project = Path(project).resolve()
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
            from mirrordet.utils.log import LOGGER

            LOGGER.info("MLflow: no SQLAlchemy, so the local store is the file store; "
                        "set MLFLOW_ALLOW_FILE_STORE=true for this process")
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        return (project / "mlruns").as_uri(), None
    return f"sqlite:///{project / 'mlflow.db'}", (project / "mlartifacts").as_uri()


def metric_key(name: str) -> str:
    """A metric name MLflow accepts: ``metrics/mAP50(M)`` -> ``metrics/mAP50_M``.

    MLflow allows letters, digits, ``_ - . /`` and spaces; anything else becomes ``_`` (trailing ones dropped).
    """
    return re.sub(r"[^A-Za-z0-9_\-./ ]+", "_", name).rstrip("_")


class MLflowLogger(RunLogger):
    """Logs the run's settings, per-epoch scalars and final files to one MLflow run."""

    def __init__(self) -> None:
        check_mlflow()
        self.client: Any = None
        self.run_id: str | None = None

    def start(self, trainer: Any, **_: Any) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        save_dir = Path(trainer.save_dir)
        uri, artifacts = os.environ.get("MLFLOW_TRACKING_URI"), None
        if not uri:
            uri, artifacts = local_tracking_uri(save_dir.parent)
        self.client = MlflowClient(tracking_uri=uri)
        record = save_dir / RUN_ID_FILE
        if record.is_file():  # a resumed run: continue its MLflow run
            self.run_id = str(json.loads(record.read_text(encoding="utf-8"))["run_id"])
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (experiment.experiment_id if experiment
                         else self.client.create_experiment(name, artifact_location=artifacts))
        self.run_id = self.client.create_run(experiment_id, run_name=save_dir.name).info.run_id
        atomic_write_text(record, json.dumps({"run_id": self.run_id, "tracking_uri": uri}, indent=2))
        params = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in sorted(trainer.cfg.items()) if v is not None]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def epoch_end(self, trainer: Any, epoch: int, losses: dict[str, float], metrics: dict[str, Any], lr: float,
                  **_: Any) -> None:
        import time

        from mlflow.entities import Metric

        step, now = epoch + 1, int(time.time() * 1000)
        values = {f"train/{k}": v for k, v in losses.items()}
        values.update({(k if "/" in k else f"metrics/{k}"): v for k, v in metrics.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)})
        values["lr/pg0"] = lr
        self.client.log_batch(self.run_id, metrics=[Metric(metric_key(k), float(v), now, step)
                                                    for k, v in values.items()])

    def end(self, trainer: Any, **_: Any) -> None:
        save_dir = Path(trainer.save_dir)
        for path in sorted(save_dir.iterdir()):
            if path.is_file() and path.suffix in ARTIFACT_SUFFIXES:
                self.client.log_artifact(self.run_id, str(path))
        best = save_dir / "weights" / "best.pt"
        if best.is_file():
            self.client.log_artifact(self.run_id, str(best), artifact_path="weights")
        self.client.set_terminated(self.run_id)
