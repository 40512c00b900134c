"""Executors run specs and hand back results; they never write the store (the driver does).

- ``InlineExecutor`` trains in this process, one run after another.
- ``ProcessExecutor`` trains ``jobs`` runs side by side in worker processes of one thread each. Zoo
  models at benchmark sizes are small enough that one thread runs them about as fast as two, so on a
  CPU-only machine N one-thread workers finish a sweep nearly N times sooner than one N-thread process.

Every executor keeps the same two calls, which a distributed executor (Ray) will keep too:
``on_start(spec)`` when a run is dispatched, results yielded as they finish. And every executor trains
against the registry it was given: workers can only rebuild a registry that comes from the entry points,
so a registry with plugins registered in process (tests, notebooks) trains inline.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import torch

from .build import resolve_device
from .records import FAILED, RunResult
from .registry import Registry
from .spec import RunSpec
from .train import run

EXECUTORS = ("auto", "inline", "processes")


class InlineExecutor:
    name = "inline"

    def __init__(self, device: str = "auto", registry: Registry | None = None, note: str = ""):
        self.device = device
        self.registry = registry
        self.note = note  # why it was chosen over worker processes, when it matters

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], None]) -> Iterator[RunResult]:
        for spec, run_dir in jobs:
            on_start(spec)
            yield run(spec, run_dir, self.device, self.registry)


class ProcessExecutor:
    """``jobs`` worker processes (spawned, one torch thread each) that load plugins from the entry points."""

    name = "processes"
    note = ""

    def __init__(self, device: str = "auto", jobs: int = 2, threads_per_job: int = 1):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.device, self.jobs, self.threads = device, jobs, threads_per_job

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], None]) -> Iterator[RunResult]:
        pending = list(jobs)
        context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
        pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init_worker,
                                   initargs=(os.getpid(), self.threads))
        running: dict[Future, RunSpec] = {}
        try:
            while pending or running:
                # Dispatch no more than there are workers, so a run the store marks running is running.
                while pending and len(running) < self.jobs:
                    spec, run_dir = pending.pop(0)
                    on_start(spec)
                    running[pool.submit(_run_in_worker, spec.canonical(), str(run_dir), self.device)] = spec
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    spec = running.pop(future)
                    try:
                        yield future.result()
                    except Exception as exc:  # the worker itself died (out of memory, killed)
                        yield RunResult(spec.run_id, FAILED,
                                        error=f"worker process failed: {type(exc).__name__}: {exc}")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _init_worker(parent_pid: int, threads: int) -> None:
    torch.set_num_threads(threads)

    # A worker whose driver was killed must not go on writing run folders that a new sweep will resume.
    def watch_parent():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()


def _run_in_worker(spec_data: dict, run_dir: str, device: str) -> RunResult:
    return run(RunSpec.from_dict(spec_data), Path(run_dir), device)


def default_jobs(device: str) -> int:
    """One job per core on a CPU (the zoo's models are small), one on a GPU."""
    if resolve_device(device).type == "cuda":
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def make_executor(name: str, device: str, registry: Registry | None = None, jobs: int | None = None):
    """``auto``: worker processes when more than one job would run (CPU with several cores), else inline.

    Worker processes load plugins from the entry points, so they train against ``registry`` only when a new
    process would rebuild it the same. Otherwise ``auto`` trains inline (``note`` says why) and an explicit
    ``processes`` is an error: either way nothing trains against components other than the ones given.
    """
    if name not in EXECUTORS:
        raise ValueError(f'Unknown executor "{name}". Available: {", ".join(EXECUTORS)}')
    why = registry.unlike_entry_points() if registry is not None else None
    if name == "processes" and why:
        raise ValueError(f"Worker processes load plugins from the entry points, but this registry {why}. "
                         "Use the inline executor, or register the plugins through an entry point.")
    if name == "auto":
        jobs = jobs or default_jobs(device)
        if jobs > 1 and why:
            return InlineExecutor(device, registry, note=f"Training inline, not in {jobs} worker processes: "
                                  f"workers load plugins from the entry points, and this registry {why}.")
        name = "processes" if jobs > 1 else "inline"
    if name == "inline":
        return InlineExecutor(device, registry)
    return ProcessExecutor(device, jobs or default_jobs(device))
