"""The built-in experiment trackers, ``--log tensorboard`` and ``--log mlflow``, registered as any tracker plugin is.

Neither library is a dependency of ganzoo: each tracker imports its own when a run builds it, and ``--log NAME``
checks that it is installed (``pip install 'ganzoo[tensorboard]'``, ``'ganzoo[mlflow]'``) before anything trains.
"""

from ganzoo import hookimpl

from .mlflow_tracker import MlflowTracker, prepare_mlflow
from .tensorboard_tracker import TensorBoardTracker, prepare_tensorboard


@hookimpl
def register_trackers(register):
    register("tensorboard", TensorBoardTracker, prepare=prepare_tensorboard, modules=("tensorboard",),
             install="pip install 'ganzoo[tensorboard]'",
             description="TensorBoard event files, one folder per run (default: RESULTS/tensorboard/RUN_ID)")
    register("mlflow", MlflowTracker, prepare=prepare_mlflow, modules=("mlflow",),
             install="pip install 'ganzoo[mlflow]'",
             description="MLflow runs (default: $MLFLOW_TRACKING_URI, else the SQLite store RESULTS/mlflow.db)")
