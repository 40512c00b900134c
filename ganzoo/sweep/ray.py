"""The Ray executor: one Ray task per run, on a local Ray instance or an existing cluster.

``pip install 'ganzoo[ray]'``, then ``ganzoo bench --all --executor ray [--address ADDR]``. It keeps the
contract of the other executors (``on_start`` claims a run just before it is dispatched; results come
back as values and only the driver writes the store), and adds what a cluster needs:

- **Resources.** Each task asks Ray for ``cpus_per_run`` CPUs and, on GPUs, ``1 / runs_per_gpu`` of a GPU,
  so Ray packs that many small runs on each GPU. No more runs are dispatched than the cluster can run at
  once (``jobs`` overrides the count), so a run the store marks running is running.
- **Run folders.** ``storage="shared"``: tasks write their folders in the results folder, which every node
  must reach at the same path (a network file system); a retried task resumes from its last checkpoint.
  ``storage="ship"``: a task trains in a temporary folder on its node and sends the finished run's files
  back to the driver, which writes them (small, since a finished run keeps only its evaluated G); a
  retried task starts its run again from zero.
- **Dying workers.** A task whose worker died (killed, out of memory, node lost) is retried by Ray up to
  ``max_retries`` times (``--ray-max-retries``); after that its run is recorded failed, saying so, and the sweep
  goes on. A run can therefore start more than once: each start is logged before it trains
  (``ganzoo.run.attempts``, with the node's id), so its record says how many times it started (``attempts``) and
  from which checkpoint its last start resumed (``resumed_from``). With ``ship`` storage a small actor on the
  driver's node keeps that log in the driver's run folder, where it survives the loss of any other node.
- **The same plugins everywhere.** Tasks build their registry from the entry points, like worker processes,
  with the driver's plugin selection (``GANZOO_PLUGINS``, ``GANZOO_BLOCK_PLUGINS``) passed along. Every
  node needs ganzoo and the plugins installed.

On a CPU, a task trains with ``cpus_per_run`` torch threads: with one, its numbers are those of the
inline and process executors at one thread.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import torch

from ..api.plugins import ALLOW_ENV, BLOCK_ENV
from ..core.records import FAILED, RunResult, atomic_write
from ..core.spec import RunSpec
from ..run.attempts import append_attempt, read_attempts
from ..run.train import RunOptions, run

STORAGES = ("shared", "ship")


class RayExecutor:
    name = "ray"

    def __init__(self, device: str = "auto", *, address: str | None = None, jobs: int | None = None,
                 runs_per_gpu: int = 1, cpus_per_run: int = 1, max_retries: int = 2, storage: str = "shared",
                 options: RunOptions = RunOptions()):
        if storage not in STORAGES:
            raise ValueError(f'Unknown Ray storage "{storage}". Available: {", ".join(STORAGES)}')
        for name, value, least in (("runs_per_gpu", runs_per_gpu, 1), ("cpus_per_run", cpus_per_run, 1),
                                   ("max_retries", max_retries, 0), ("jobs", jobs or 1, 1)):
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        self.device, self.address, self.jobs = device, address, jobs
        self.runs_per_gpu, self.cpus_per_run, self.max_retries = runs_per_gpu, cpus_per_run, max_retries
        self.storage, self.options = storage, options

    def describe(self, todo: list[RunSpec]) -> list[str]:
        return []  # how many runs at a time is known once Ray is connected

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], bool]) -> Iterator[RunResult]:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, configure_logging=False)
        try:
            yield from self._execute(ray, list(jobs), on_start)
        finally:
            if started_here:
                ray.shutdown()

    def _execute(self, ray, pending: list[tuple[RunSpec, Path]], on_start) -> Iterator[RunResult]:
        resources = ray.cluster_resources()
        gpu = _wants_gpu(self.device, resources, self.address)
        options = replace(self.options, runs_per_device=self.runs_per_gpu if gpu else 1)
        keeper = _attempt_keeper(ray) if self.storage == "ship" else None
        task = ray.remote(_train_task).options(
            num_cpus=self.cpus_per_run, num_gpus=1 / self.runs_per_gpu if gpu else 0,
            max_retries=self.max_retries, retry_exceptions=False, runtime_env=_plugin_selection())
        slots = self.jobs or self.slots(resources, gpu)
        running: dict = {}  # object ref -> (spec, run folder)
        try:
            while pending or running:
                while pending and len(running) < slots:
                    spec, run_dir = pending.pop(0)
                    if on_start(spec):
                        ref = task.remote(spec.canonical(), str(run_dir), "cuda" if gpu else "cpu",
                                          self.cpus_per_run, options, keeper)
                        running[ref] = (spec, run_dir)
                if not running:
                    continue
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    spec, run_dir = running.pop(ref)
                    yield self._collect(ray, ref, spec, run_dir)
        finally:
            for ref in running:  # interrupted: stop the tasks; with shared storage they resume next time
                ray.cancel(ref, force=True)

    def slots(self, resources: dict, gpu: bool) -> int:
        """How many runs the cluster can train at once with the resources each task asks for."""
        if gpu:
            return max(1, int(resources.get("GPU", 0) * self.runs_per_gpu))
        return max(1, int(resources.get("CPU", 1) // self.cpus_per_run))

    def _collect(self, ray, ref, spec: RunSpec, run_dir: Path) -> RunResult:
        try:
            result, files = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker died on every try, the node was lost, a cancel
            return self._lost(ray, exc, spec, run_dir)
        if files:
            _write_run_folder(run_dir, files)
        return result

    def _lost(self, ray, exc: Exception, spec: RunSpec, run_dir: Path) -> RunResult:
        """The failed record of a run whose task died on every try Ray gave it."""
        first_line = (str(exc).strip().splitlines() or [""])[0]
        tries = self.max_retries + 1
        what = "node" if isinstance(exc, ray.exceptions.NodeDiedError) else "worker or node"
        again = ("it resumes from its last checkpoint" if self.storage == "shared" else
                 "it starts again from zero: with --ray-storage ship an unfinished run keeps no checkpoint")
        started = read_attempts(run_dir)  # the driver sees the log: shared storage, or the keeper wrote it here
        return RunResult(spec.run_id, FAILED, attempts=len(started),
                         resumed_from=started[-1].get("resumed_from") if started else None, error=(
            f"the {what} training this run was lost {tries} time{'s' if tries > 1 else ''}, more than "
            f"--ray-max-retries {self.max_retries} allows (last: {type(exc).__name__}: {first_line}); the sweep went "
            f"on. Rerun the same command to train it again ({again})."))


def _train_task(spec_data: dict, run_dir: str, device: str, threads: int, options: RunOptions,
                keeper=None) -> tuple[RunResult, dict[str, bytes]]:
    """Runs on a Ray worker: train one run, in its folder (shared storage) or in a temporary one shipped back to
    the driver (``keeper``: the driver's ``AttemptKeeper``, which logs the run's starts in its real folder)."""
    torch.set_num_threads(threads)
    spec = RunSpec.from_dict(spec_data)
    log = NodeAttemptLog(import_ray().get_runtime_context().get_node_id(), keeper, run_dir)
    if keeper is None:
        return run(spec, Path(run_dir), device, options=options, attempt_log=log), {}
    with tempfile.TemporaryDirectory(prefix="ganzoo-ray-") as tmp:
        result = run(spec, Path(tmp), device, options=options, attempt_log=log)
        files = {path.name: path.read_bytes() for path in Path(tmp).iterdir() if path.is_file()}
    result.artifacts = {key: str(Path(run_dir) / Path(path).name) for key, path in result.artifacts.items()}
    return result, files


class NodeAttemptLog:
    """Logs a start of a run with the id of the Ray node it runs on: in the run's folder (shared storage), or
    through the driver's ``AttemptKeeper`` into the run's folder on the driver's node (shipped runs train in a
    temporary folder that a lost node takes with it)."""

    def __init__(self, node: str, keeper=None, run_dir: str = ""):
        self.node, self.keeper, self.run_dir = node, keeper, run_dir

    def __call__(self, run_dir: Path, entry) -> int:
        entry = {**entry, "node": self.node}
        if self.keeper is None:
            return append_attempt(run_dir, entry)
        return import_ray().get(self.keeper.append.remote(self.run_dir, entry))


class AttemptKeeper:
    """A Ray actor on the driver's node that appends shipped runs' starts to their logs in the driver's folders.

    ``cwd``: the driver's working directory, which a relative results folder is relative to (not the actor's).
    """

    def __init__(self, cwd: str):
        self.cwd = Path(cwd)

    def append(self, run_dir: str, entry: dict) -> int:
        return append_attempt(self.cwd / run_dir, entry)


def _attempt_keeper(ray):
    """An ``AttemptKeeper`` pinned to the driver's node (it needs no CPU: the head may offer none)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    return ray.remote(AttemptKeeper).options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(os.getcwd())


def _write_run_folder(run_dir: Path, files: dict[str, bytes]) -> None:
    """The driver writes a shipped run's files, each to a temporary name first, then renamed into place."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        atomic_write(run_dir / name, lambda tmp, content=content: tmp.write_bytes(content))


def _wants_gpu(device: str, resources: dict, address: str | None) -> bool:
    """Whether tasks ask for GPUs: on ``cuda``, or on ``auto`` when the cluster has any."""
    gpus = resources.get("GPU", 0)
    if device.startswith("cuda"):
        if not gpus:
            where = f"at {address}" if address else "started here"
            raise ValueError(f"--device {device}, but the Ray cluster {where} has no GPUs ({resources.get('CPU', 0):g} "
                             "CPUs). Use --device cpu, or point --address at a cluster with GPUs.")
        if device != "cuda":
            raise ValueError(f"--device {device}: Ray chooses the GPU of each task; say --device cuda")
        return True
    return device == "auto" and gpus > 0


def _plugin_selection() -> dict | None:
    """The driver's plugin selection, so that tasks on every node build the registry it planned with."""
    env = {name: os.environ[name] for name in (ALLOW_ENV, BLOCK_ENV) if name in os.environ}
    return {"env_vars": env} if env else None


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError("The Ray executor needs Ray: pip install 'ganzoo[ray]' (or pip install ray), "
                          "or use --executor processes on one machine.") from exc
    return ray
