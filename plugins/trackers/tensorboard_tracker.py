"""``--log tensorboard[=FOLDER]``: each run writes event files to ``FOLDER/RUN_ID`` (default: ``RESULTS/tensorboard``).

Scalars are tagged with the names the run's record uses (``fid``, ``d_loss``, ``imgs_per_s`` ...) at the G step
of their evaluation; the spec goes to the HParams dashboard; the sample grid is the image ``samples``.
Point TensorBoard at the folder: ``tensorboard --logdir RESULTS/tensorboard``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ganzoo.api.trackers import TrackedRun, Tracker

# The values every evaluation logs beside the protocol's metrics (ganzoo.run.tracking.evaluation_metrics).
RUN_VALUES = ("d_loss", "g_loss", "imgs_per_s", "kimg")


def prepare_tensorboard(target: str | None, results_dir: Path) -> str:
    """The folder every run writes its own folder in, absolute (workers may start elsewhere), created now."""
    folder = Path(target).expanduser().resolve() if target else results_dir / "tensorboard"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


class TensorBoardTracker(Tracker):
    def __init__(self, run: TrackedRun, target: str | None):
        from torch.utils.tensorboard import SummaryWriter

        self.run = run
        self.folder = Path(target or run.results_dir / "tensorboard") / run.run_id
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def log_params(self, params: Mapping[str, str | int | float | bool]) -> None:
        from torch.utils.tensorboard.summary import hparams

        # What torch's add_hparams writes, but into the run's own folder (add_hparams makes a new sub-run), and
        # with the session's end written when the run ends, with its status.
        metrics = {name: 0.0 for name in (*self.run.spec.get("protocol", {}).get("metrics", ()), *RUN_VALUES)}
        experiment, session_start, _ = hparams(dict(params), metrics)
        for summary in (experiment, session_start):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("run", f"{self.run.label} (run {self.run.run_id}, {self.run.experiment})")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, global_step=step)
        self.writer.flush()  # an evaluation is seconds apart at most a few times a run: show it now

    def log_image(self, name: str, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(name, pixels, global_step=step, dataformats="HWC")

    def close(self, status: str | None) -> None:
        self.writer.file_writer.add_summary(_session_end(status))
        self.writer.close()


def _session_end(status: str | None):
    """The HParams session's end with the run's outcome (torch's ``hparams()`` always writes success)."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    outcome = {"done": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE"}.get(status or "", "STATUS_UNKNOWN")
    content = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(outcome)),
        version=metadata.PLUGIN_DATA_VERSION)
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME,
                                                                  content=content.SerializeToString()))
    return Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=meta)])
