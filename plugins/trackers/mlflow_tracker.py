"""``--log mlflow[=URI]``: each run is an MLflow run in the experiment named after its suite.

The store is URI, else ``$MLFLOW_TRACKING_URI``, else the SQLite file ``RESULTS/mlflow.db`` with artifacts in
``RESULTS/mlflow-artifacts`` (offline; browse it with ``mlflow ui --backend-store-uri sqlite:///RESULTS/mlflow.db``).
The URI is resolved once, in the sweep's process, so workers and Ray tasks on other nodes log to the same store.
A resumed run continues its MLflow run (found by its ``ganzoo_run_id`` tag) rather than starting another.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from ganzoo.api.trackers import TrackedRun, Tracker

RUN_ID_TAG = "ganzoo_run_id"
BATCH = 100  # MLflow's most params per log_batch call (metrics: 1,000)
STATUSES = {"done": "FINISHED", "diverged": "FAILED"}  # anything else (stopped early): KILLED


def prepare_mlflow(target: str | None, results_dir: Path) -> str:
    """The tracking URI every run logs to; a SQLite store is created here, once, so workers never race to."""
    from mlflow.tracking import MlflowClient

    uri = target or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results_dir / 'mlflow.db'}"
    database = _sqlite_file(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates the tables of a new store
    return uri


def _sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI, else ``None``."""
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "sqlite" and parsed.path not in ("", "/:memory:") else None


class MlflowTracker(Tracker):
    def __init__(self, run: TrackedRun, target: str | None):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=target or os.environ.get("MLFLOW_TRACKING_URI"))
        database = _sqlite_file(target or "")
        # A SQLite store keeps artifacts beside it, not in the working directory (MLflow's default).
        artifacts = str(database.parent / "mlflow-artifacts") if database is not None else None
        experiment_id = self._experiment(run.experiment, artifacts)
        found = self.client.search_runs([experiment_id], filter_string=f"tags.{RUN_ID_TAG} = '{run.run_id}'",
                                        max_results=1)
        if found:  # a resumed run: the same MLflow run goes on
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(experiment_id, run_name=run.label,
                                                 tags={RUN_ID_TAG: run.run_id}).info.run_id

    def _experiment(self, name: str, artifact_location: str | None) -> str:
        from mlflow.exceptions import MlflowException

        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # another worker created it first
            existing = self.client.get_experiment_by_name(name)
            if existing is None:
                raise
            return existing.experiment_id

    def log_params(self, params: Mapping[str, str | int | float | bool]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, value, now, step) for key, value in metrics.items()])

    def log_image(self, name: str, path: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=name)

    def close(self, status: str | None) -> None:
        self.client.set_tag(self.run_id, "ganzoo_status", status or "stopped")
        self.client.set_terminated(self.run_id, status=STATUSES.get(status or "", "KILLED"))
