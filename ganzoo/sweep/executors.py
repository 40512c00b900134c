"""Executors run specs and hand back results; they never write the store (the driver does).

- ``InlineExecutor`` trains in this process, one run after another.
- ``ProcessExecutor`` trains ``jobs`` runs side by side in worker processes of one thread each. Zoo
  models at benchmark sizes are small enough that one thread runs them about as fast as two, so on a
  CPU-only machine N one-thread workers finish a sweep nearly N times sooner than one N-thread process.
  On a GPU, its ``jobs`` runs share the one GPU (a small GAN run leaves most of it idle).
- ``RayExecutor`` (``ganzoo.sweep.ray``) runs one Ray task per run, on a local instance or a cluster.

Every executor keeps the same two calls:
``on_start(spec)`` right before a run is dispatched (the driver claims it there; ``False`` means another
sweep has it, and it is skipped), results yielded as they finish. And every executor trains
against the registry it was given: workers can only rebuild a registry that comes from the entry points,
so a registry with plugins registered in process (tests, notebooks) trains inline.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import torch

from ..build import resolve_device
from ..records import FAILED, RunResult
from ..registry import Registry
from ..spec import RunSpec
from ..train import RunOptions, run

EXECUTORS = ("auto", "inline", "processes", "vectorized", "ray")


class InlineExecutor:
    name = "inline"

    def __init__(self, device: str = "auto", registry: Registry | None = None, note: str = "",
                 options: RunOptions = RunOptions()):
        self.device = device
        self.registry = registry
        self.note = note  # why it was chosen over worker processes, when it matters
        self.options = options

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], None]) -> Iterator[RunResult]:
        for spec, run_dir in jobs:
            if on_start(spec):
                yield run(spec, run_dir, self.device, self.registry, self.options)


class ProcessExecutor:
    """``jobs`` worker processes (spawned, one torch thread each) that load plugins from the entry points.

    Each worker is its own single-process pool: a worker that dies (killed, out of memory) breaks only its
    own pool, so its run is recorded failed with the signal, the slot gets a fresh worker, and the runs in
    the other workers go on untouched.
    """

    name = "processes"
    note = ""
    inline = False  # VectorizedExecutor trains in this process when worker processes cannot rebuild its registry

    def __init__(self, device: str = "auto", jobs: int = 2, threads_per_job: int = 1,
                 options: RunOptions = RunOptions()):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.device, self.jobs, self.threads = device, jobs, threads_per_job
        on_gpu = resolve_device(device).type == "cuda"
        self.options = RunOptions(options.keep_checkpoints, jobs if on_gpu else 1)  # its jobs share the GPU

    def _worker(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
        return ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker,
                                   initargs=(os.getpid(), self.threads))

    def units(self, jobs: list[tuple[RunSpec, Path]]) -> list[list[tuple[RunSpec, Path]]]:
        """What one worker trains at a time: here one run (``VectorizedExecutor``: the seeds of a group)."""
        return [[job] for job in jobs]

    def _submit(self, worker: ProcessPoolExecutor, unit: list[tuple[RunSpec, Path]]) -> Future:
        spec, run_dir = unit[0]
        return worker.submit(_run_in_worker, spec.canonical(), str(run_dir), self.device, self.options)

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], bool]) -> Iterator[RunResult]:
        pending = self.units(list(jobs))
        workers = [self._worker() for _ in range(self.jobs)]
        running: dict[Future, tuple[int, list[RunSpec]]] = {}
        processes: dict[int, list] = {}  # slot -> its worker's Process (the pool forgets it once broken)
        try:
            while pending or running:
                # Dispatch no more than there are idle workers, so a run the store marks running is running.
                busy = {slot for slot, _ in running.values()}
                idle = [slot for slot in range(self.jobs) if slot not in busy]
                while pending and idle:
                    unit = [(spec, run_dir) for spec, run_dir in pending.pop(0) if on_start(spec)]
                    if unit:
                        slot = idle.pop(0)
                        future = self._submit(workers[slot], unit)
                        running[future] = (slot, [spec for spec, _ in unit])
                        processes[slot] = list((getattr(workers[slot], "_processes", None) or {}).values())
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    slot, specs = running.pop(future)
                    try:
                        outcome = future.result()
                        yield from (outcome if isinstance(outcome, list) else [outcome])
                    except BrokenProcessPool:  # this worker died; the others are unaffected
                        why = _death(processes.get(slot, []))
                        workers[slot].shutdown(wait=False, cancel_futures=True)
                        workers[slot] = self._worker()
                        for spec in specs:
                            yield RunResult(spec.run_id, FAILED, error=f"the worker process training this run died "
                                            f"({why}); the sweep went on. Rerun the same command to retry it (it "
                                            "resumes from its last checkpoint).")
                    except Exception as exc:
                        for spec in specs:
                            yield RunResult(spec.run_id, FAILED,
                                            error=f"worker process failed: {type(exc).__name__}: {exc}")
        finally:
            if running:  # interrupted (Ctrl-C, a full disk, a kill of the driver alone): stop the workers now;
                for procs in processes.values():  # their runs resume from their last checkpoints
                    for process in procs:
                        if process.is_alive():
                            process.terminate()
            for worker in workers:
                worker.shutdown(wait=False, cancel_futures=True)


def _death(processes: list) -> str:
    """How a worker process ended, e.g. "killed by SIGKILL", from its exit code."""
    deadline = time.monotonic() + 10.0
    for process in processes:
        # The pool reports a broken worker before the kernel has always reaped it, and the pool's own thread
        # reaps it too: when that thread wins the race, waitpid here fails (ECHILD) and the exit code reads
        # None until that thread has stored it. So poll until a code appears rather than asking once.
        process.join(max(0.0, deadline - time.monotonic()))
        while process.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.exitcode is not None and process.exitcode < 0:
            return f"killed by {signal.Signals(-process.exitcode).name}"
        if process.exitcode is not None:
            return f"exit code {process.exitcode}"
    return "exit status unknown"


def _init_worker(parent_pid: int, threads: int) -> None:
    torch.set_num_threads(threads)

    # A worker whose driver was killed must not go on writing run folders that a new sweep will resume.
    def watch_parent():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()


def _run_in_worker(spec_data: dict, run_dir: str, device: str, options: RunOptions) -> RunResult:
    return run(RunSpec.from_dict(spec_data), Path(run_dir), device, options=options)


def default_jobs(device: str) -> int:
    """One job per core on a CPU (the zoo's models are small), one on a GPU."""
    if resolve_device(device).type == "cuda":
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def make_executor(name: str, device: str, registry: Registry | None = None, jobs: int | None = None, *,
                  options: RunOptions = RunOptions(), max_group: int | None = None, **ray_settings):
    """``auto``: worker processes when more than one job would run (CPU with several cores), else inline.

    Worker processes and Ray tasks load plugins from the entry points, so they train against ``registry``
    only when a new process would rebuild it the same. Otherwise ``auto`` trains inline (``note`` says why)
    and an explicit ``processes`` or ``ray`` is an error: either way nothing trains against components other
    than the ones given. ``ray_settings``: ``RayExecutor``'s keyword arguments (address, runs_per_gpu, ...).
    ``vectorized`` trains the seeds of each experiment as groups of at most ``max_group``
    (``ganzoo.sweep.vectorized``), in worker processes when it can, inline otherwise.
    """
    if name not in EXECUTORS:
        raise ValueError(f'Unknown executor "{name}". Available: {", ".join(EXECUTORS)}')
    why = registry.unlike_entry_points() if registry is not None else None
    if name in ("processes", "ray") and why:
        workers = "Ray tasks" if name == "ray" else "Worker processes"
        raise ValueError(f"{workers} load plugins from the entry points, but this registry {why}. "
                         "Use the inline executor, or register the plugins through an entry point.")
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(device, jobs=jobs, options=options, **ray_settings)
    if name == "vectorized":
        from ..vectorized.plan import DEFAULT_MAX_GROUP
        from .vectorized import VectorizedExecutor

        jobs = jobs or default_jobs(device)
        note = (f"Training groups inline, not in {jobs} worker processes: workers load plugins from the entry "
                f"points, and this registry {why}.") if jobs > 1 and why else ""
        return VectorizedExecutor(device, jobs, max_group or DEFAULT_MAX_GROUP, registry,
                                  inline=jobs == 1 or bool(why), note=note, options=options)
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
