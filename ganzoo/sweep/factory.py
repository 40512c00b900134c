"""Choosing an executor by name: the one module that imports every executor, so none imports another's."""

from __future__ import annotations

from ..core.registry import Registry
from ..run.train import RunOptions
from ..run.vectorized.plan import DEFAULT_MAX_GROUP
from .executors import InlineExecutor, ProcessExecutor, default_jobs
from .ray import RayExecutor
from .slurm import SlurmExecutor
from .vectorized import InlineGroupExecutor, VectorizedExecutor

EXECUTORS = ("auto", "inline", "processes", "vectorized", "ray", "slurm")


def make_executor(name: str, device: str, registry: Registry | None = None, jobs: int | None = None, *,
                  options: RunOptions = RunOptions(), max_group: int | None = None, **settings):
    """``auto``: worker processes when more than one job would run (CPU with several cores), else inline.

    Worker processes, Ray tasks and SLURM jobs load plugins from the entry points, so they train against
    ``registry`` only when a new process would rebuild it the same. Otherwise ``auto`` trains inline (``note``
    says why) and an explicit ``processes``, ``ray`` or ``slurm`` is an error: either way nothing trains against
    components other than the ones given. ``settings``: ``RayExecutor``'s keyword arguments (address,
    runs_per_gpu, ...) or ``SlurmExecutor``'s (log_dir, partition, gpus_per_node, ...).
    ``vectorized`` trains the seeds of each experiment as groups of at most ``max_group``
    (``ganzoo.sweep.vectorized``), in worker processes when it can, inline otherwise.
    """
    if name not in EXECUTORS:
        raise ValueError(f'Unknown executor "{name}". Available: {", ".join(EXECUTORS)}')
    why = registry.unlike_entry_points() if registry is not None else None
    if name in ("processes", "ray", "slurm") and why:
        workers = {"ray": "Ray tasks", "slurm": "SLURM jobs"}.get(name, "Worker processes")
        raise ValueError(f"{workers} load plugins from the entry points, but this registry {why}. "
                         "Use the inline executor, or register the plugins through an entry point.")
    if name == "ray":
        return RayExecutor(device, jobs=jobs, options=options, **settings)
    if name == "slurm":
        return SlurmExecutor(device, jobs=jobs, options=options, **settings)
    if name == "vectorized":
        jobs, max_group = jobs or default_jobs(device), max_group or DEFAULT_MAX_GROUP
        if jobs > 1 and not why:
            return VectorizedExecutor(device, jobs, max_group, registry, options=options)
        note = (f"Training groups inline, not in {jobs} worker processes: workers load plugins from the entry "
                f"points, and this registry {why}.") if jobs > 1 else ""
        return InlineGroupExecutor(device, max_group, registry, note=note, options=options)
    if max_group is not None:
        raise ValueError("max_group (--max-group) applies to the vectorized executor only")
    if name == "auto":
        jobs = jobs or default_jobs(device)
        if jobs > 1 and why:
            return InlineExecutor(device, registry, options=options, note=f"Training inline, not in {jobs} worker "
                                  f"processes: workers load plugins from the entry points, and this registry {why}.")
        name = "processes" if jobs > 1 else "inline"
    if name == "inline":
        return InlineExecutor(device, registry, options=options)
    return ProcessExecutor(device, jobs or default_jobs(device), options=options)
