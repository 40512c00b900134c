"""What a SLURM job runs: one run of the sweep, resumable when SLURM stops the job early.

Imported only where submitit is installed (the driver once it has checked, and the job that unpickles it).
"""

from __future__ import annotations

import os
from pathlib import Path

import submitit
import torch

from ..core.records import RunResult
from ..core.spec import RunSpec
from ..run.train import RunOptions, run


class TrainRun(submitit.helpers.Checkpointable):
    """Train one run in its folder of the shared results folder, from its last checkpoint when it has one.

    Everything a requeued job needs is on disk: the run's checkpoint holds its weights, optimisers, random
    streams and evaluations so far, so the callable itself carries only the spec and where to train it.
    """

    def __init__(self, spec_data: dict, run_dir: str, device: str, threads: int, options: RunOptions,
                 plugins: dict[str, str]):
        self.spec_data, self.run_dir, self.device = spec_data, run_dir, device
        self.threads, self.options, self.plugins = threads, options, plugins

    def __call__(self) -> RunResult:
        # The driver's plugin selection, so the job builds the registry the sweep was planned with.
        os.environ.update(self.plugins)
        torch.set_num_threads(self.threads)
        return run(RunSpec.from_dict(self.spec_data), Path(self.run_dir), self.device, options=self.options)

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        """Called by submitit when SLURM signals a preemption or the time limit: resubmit this same run.

        Nothing is saved here: the run wrote its checkpoint at its last evaluation, and the requeued job
        resumes from there (the steps since are trained again, from the same random state, to the same numbers).
        """
        return submitit.helpers.DelayedSubmission(self)
