"""The SLURM executor: the sweep's runs as SLURM job arrays, submitted and watched through submitit.

``pip install 'ganzoo[slurm]'``, then, on a login node, ``ganzoo bench --all --executor slurm --slurm
partition=gpu --slurm gpus_per_node=1``. It keeps the contract of the other executors (``on_start`` claims a
run just before it is submitted; results come back as values and only the driver writes the store), and adds
what a batch cluster needs:

- **Job arrays.** One job per run, submitted as arrays of at most ``array_size`` runs (SLURM refuses larger
  ones; its default ``MaxArraySize`` is 1001). ``jobs`` caps how many tasks of an array run at once
  (``sbatch --array=0-N%jobs``). Every job asks for the same resources: ``time`` minutes, ``cpus_per_task``
  CPUs (its torch threads), ``gpus_per_node`` GPUs, ``mem_gb``, in ``partition``.
- **Requeue.** A job's callable is checkpointable (``ganzoo.sweep.slurm_job``): when SLURM signals a
  preemption or the end of the time limit, submitit resubmits the same run, which resumes from the last
  checkpoint in its run folder. A timeout is requeued at most ``max_requeues`` times, a preemption always.
- **Shared folders.** Jobs write run folders in the results folder and submitit's logs and pickles under
  ``<results>/slurm-logs``: both must be on a file system every node reaches at the same path, and every
  node runs the driver's Python (the same path: a shared virtual environment).
- **Failures.** A job that ends without a result (killed, out of memory, node lost, out of requeues) has its
  run recorded failed with the job's state and the path of its stderr; the sweep goes on, and rerunning the
  same command resumes that run from its last checkpoint.
- **The same code path on one machine.** ``cluster="local"`` runs the jobs as processes on this machine
  through submitit's local executor (same callable, same pickles, same requeue-by-signal), as the tests do.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from ..api.plugins import ALLOW_ENV, BLOCK_ENV
from ..core.records import FAILED, RunResult
from ..core.spec import RunSpec
from ..run.train import RunOptions

CLUSTERS = ("slurm", "local")
LOG_FOLDER = "slurm-logs"  # under the results folder
STDERR_LINES = 20  # of a failed job's stderr kept in its run's error

# What `--slurm KEY=VALUE` may set: the key, its type, and what it means (the CLI's help and its errors).
SETTINGS: dict[str, tuple[type, str]] = {
    "cluster": (str, "slurm (default), or local: the jobs run on this machine through submitit's local executor"),
    "partition": (str, "the partition the jobs queue in (default: the cluster's)"),
    "time": (str, "each job's time limit: minutes, or [D-]HH:MM:SS (default 60); a run still training then is "
                  "requeued from its checkpoint"),
    "cpus_per_task": (int, "CPUs per job, also its torch threads (default 1)"),
    "gpus_per_node": (int, "GPUs per job (default 0; with --device auto, 1 or more trains on CUDA)"),
    "mem_gb": (float, "memory per job in GB (default: the partition's)"),
    "account": (str, "the account charged"),
    "qos": (str, "the quality of service"),
    "constraint": (str, "node features required, as sbatch --constraint"),
    "max_requeues": (int, "how often a run that reaches the time limit is requeued (default 3)"),
    "array_size": (int, "most runs per job array (default 1000; the cluster's MaxArraySize less one)"),
}


def parse_settings(pairs: Iterable[str]) -> dict:
    """``["partition=gpu", "gpus-per-node=1"]`` -> ``{"partition": "gpu", "gpus_per_node": 1}``.

    Keys are those of ``SETTINGS``; sbatch's dashed spelling is accepted too. A bad pair raises ``ValueError``
    naming it and the keys there are.
    """
    settings: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not value.strip():
            raise ValueError(f'"{pair}" is not KEY=VALUE (e.g. partition=gpu)')
        if key in ("array_parallelism", "jobs"):
            raise ValueError("--jobs N caps how many runs of an array run at once (sbatch --array=...%N)")
        if key not in SETTINGS:
            raise ValueError(f'unknown SLURM setting "{key}". Known: {", ".join(SETTINGS)}')
        kind = SETTINGS[key][0]
        try:
            settings[key] = kind(value.strip())
        except ValueError:
            raise ValueError(f'{key}={value}: expected {"a whole number" if kind is int else "a number"}') from None
    if "time" in settings:
        settings["time"] = time_minutes(settings["time"])
    if settings.get("cluster", "slurm") not in CLUSTERS:
        raise ValueError(f'cluster={settings["cluster"]}: expected one of {", ".join(CLUSTERS)}')
    return settings


def time_minutes(limit: str | int) -> int:
    """A time limit as sbatch takes it (``90``, ``1:30:00``, ``2-00:00:00``) in whole minutes, rounded up."""
    if isinstance(limit, int):
        return limit
    match = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d\d):(\d\d)|(\d+)", limit.strip())
    if not match:
        raise ValueError(f'time={limit}: expected minutes (90) or [D-]HH:MM:SS (1:30:00)')
    if match.group(5):
        return int(match.group(5))
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups()[:4])
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


class SlurmExecutor:
    name = "slurm"

    def __init__(self, device: str = "auto", *, log_dir: str | Path, jobs: int | None = None, cluster: str = "slurm",
                 partition: str | None = None, time: int | str = 60, cpus_per_task: int = 1, gpus_per_node: int = 0,
                 mem_gb: float | None = None, account: str | None = None, qos: str | None = None,
                 constraint: str | None = None, max_requeues: int = 3, array_size: int = 1000,
                 options: RunOptions = RunOptions()):
        if cluster not in CLUSTERS:
            raise ValueError(f'Unknown submitit cluster "{cluster}". Available: {", ".join(CLUSTERS)}')
        self.time = time_minutes(time)
        for name, value, least in (("time", self.time, 1), ("cpus_per_task", cpus_per_task, 1),
                                   ("gpus_per_node", gpus_per_node, 0), ("max_requeues", max_requeues, 0),
                                   ("array_size", array_size, 1), ("jobs", jobs or 1, 1)):
            if value < least:
                raise ValueError(f"SLURM setting {name} must be at least {least}, got {value}")
        if mem_gb is not None and not mem_gb > 0:
            raise ValueError(f"SLURM setting mem_gb must be positive, got {mem_gb}")
        self.device, self.log_dir, self.jobs, self.cluster = device, Path(log_dir), jobs, cluster
        self.partition, self.cpus_per_task, self.gpus_per_node = partition, cpus_per_task, gpus_per_node
        self.mem_gb = mem_gb
        self.account, self.qos, self.constraint = account, qos, constraint
        self.max_requeues, self.array_size = max_requeues, array_size
        self.job_device = _job_device(device, gpus_per_node)
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ValueError("--executor slurm: there is no sbatch on this machine's PATH. Run the sweep on a SLURM "
                             "login node, or say --slurm cluster=local to run its jobs on this machine.")
        self.options = replace(options, runs_per_device=1)  # one run per job, alone on its GPU (trackers kept)
        # How often the driver looks for finished jobs: a cluster's state comes from sacct, which submitit
        # caches; local jobs are processes of this machine.
        self.poll_s = 0.2 if cluster == "local" else 10.0

    def describe(self, todo: list[RunSpec]) -> list[str]:
        where = "SLURM" + (f" partition {self.partition}" if self.partition else "")
        if self.cluster == "local":
            where = "processes of this machine (submitit's local executor)"
        resources = [f"{self.cpus_per_task} CPU(s)", f"{self.gpus_per_node} GPU(s)"]
        resources += [f"{self.mem_gb:g} GB"] if self.mem_gb else []
        cap = f", at most {self.jobs} at a time per array" if self.jobs else ""
        return [f"{len(todo)} jobs on {where}, each {', '.join(resources)} and {self.time} min{cap}; "
                f"a job reaching its time limit is requeued from its run's checkpoint (up to {self.max_requeues} "
                f"times); logs in {self.log_dir}"]

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], bool]) -> Iterator[RunResult]:
        submitit = import_submitit()
        from .slurm_job import TrainRun  # imports submitit: only once it is known to be there

        executor = self._submitit_executor(submitit)
        plugins = {name: os.environ[name] for name in (ALLOW_ENV, BLOCK_ENV) if name in os.environ}
        pending = list(jobs)
        running: dict[str, tuple] = {}  # job id -> (submitit job, spec)
        try:
            for start in range(0, len(pending), self.array_size):
                array = pending[start:start + self.array_size]
                claimed = [(spec, run_dir) for spec, run_dir in array if on_start(spec)]
                if not claimed:
                    continue
                calls = [TrainRun(spec.canonical(), str(run_dir), self.job_device, self.cpus_per_task, self.options,
                                  plugins) for spec, run_dir in claimed]
                for job, (spec, _) in zip(executor.submit_array(calls), claimed, strict=True):
                    running[job.job_id] = (job, spec)
            while running:
                finished = [job_id for job_id, (job, _) in running.items() if job.done()]
                if not finished:
                    time.sleep(self.poll_s)
                for job_id in finished:
                    job, spec = running.pop(job_id)
                    yield self._collect(submitit, job, spec)
        finally:
            for job, _ in running.values():  # interrupted: cancel the jobs; their runs resume next time
                job.cancel(check=False)

    def _submitit_executor(self, submitit):
        executor = submitit.AutoExecutor(folder=self.log_dir, cluster=self.cluster,
                                         slurm_max_num_timeout=self.max_requeues,
                                         local_max_num_timeout=self.max_requeues)
        cluster_only = {"slurm_partition": self.partition, "slurm_account": self.account, "slurm_qos": self.qos,
                        "slurm_constraint": self.constraint, "slurm_array_parallelism": self.jobs}
        executor.update_parameters(name="ganzoo", timeout_min=self.time, cpus_per_task=self.cpus_per_task,
                                   gpus_per_node=self.gpus_per_node, tasks_per_node=1, nodes=1,
                                   mem_gb=self.mem_gb, **{k: v for k, v in cluster_only.items() if v is not None})
        return executor

    def _collect(self, submitit, job, spec: RunSpec) -> RunResult:
        if self.cluster == "local":
            # submitit waits up to 15 s for a result file that a network file system may show late; a local
            # job's file is on this machine's disk, there when its process has ended.
            job._results_timeout_s = 0
        try:
            return job.result()
        except (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError):
            tail = _tail(Path(job.paths.stderr), STDERR_LINES)
            return RunResult(spec.run_id, FAILED, error=(
                f"the {self.cluster} job {job.job_id} training this run ended without a result (state {job.state}); "
                f"the sweep went on. Its stderr: {job.paths.stderr}. Rerun the same command to retry it (it resumes "
                f"from its last checkpoint).\n\nLast lines of its stderr:\n{tail}"))


def _job_device(device: str, gpus_per_node: int) -> str:
    """The device a job trains on: the GPUs it asks for decide ``auto``; a GPU the job lacks is an error."""
    if device == "auto":
        return "cuda" if gpus_per_node else "cpu"
    if device.startswith("cuda") and device != "cuda":
        raise ValueError(f"--device {device}: SLURM gives each job its GPUs; say --device cuda")
    if device == "cuda" and not gpus_per_node:
        raise ValueError("--device cuda, but the jobs ask for no GPU: add --slurm gpus_per_node=1")
    if device == "cpu" and gpus_per_node:
        raise ValueError(f"--device cpu, but each job asks for {gpus_per_node} GPU(s) it would not use: drop "
                         "--slurm gpus_per_node, or say --device cuda")
    return device


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(unreadable: {exc})"


def import_submitit():
    try:
        import submitit
    except ImportError as exc:
        raise ImportError("The SLURM executor needs submitit: pip install 'ganzoo[slurm]' (or pip install "
                          "submitit), or use --executor processes on one machine.") from exc
    return submitit
