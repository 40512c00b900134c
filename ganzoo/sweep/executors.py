"""Executors run specs and hand back results; they never write the store (the driver does).

- ``InlineExecutor`` trains in this process, one run after another.
- ``ProcessExecutor`` trains ``jobs`` runs side by side in worker processes of one thread each. Zoo
  models at benchmark sizes are small enough that one thread runs them about as fast as two, so on a
  CPU-only machine N one-thread workers finish a sweep nearly N times sooner than one N-thread process.
  On a GPU, its ``jobs`` runs share the one GPU (a small GAN run leaves most of it idle).
- ``RayExecutor`` (``ganzoo.sweep.ray``) runs one Ray task per run, on a local instance or a cluster.
- ``SlurmExecutor`` (``ganzoo.sweep.slurm``) runs one SLURM job per run, as job arrays submitted through submitit.
- ``VectorizedExecutor`` and ``InlineGroupExecutor`` (``ganzoo.sweep.vectorized``) train the seeds of an
  experiment as one stacked computation, in worker processes or in this one.

``ganzoo.sweep.factory.make_executor`` picks one by name; it is the only module that imports them all.

Every executor keeps the same calls: ``describe(todo)``, the lines the sweep prints before it trains;
``execute(jobs, on_start)``, which calls ``on_start(spec)`` right before a run is dispatched (the driver
claims it there; ``False`` means another sweep has it, and it is skipped) and yields results as they finish.
And every executor trains against the registry it was given: workers can only rebuild a registry that comes
from the entry points, so a registry with plugins registered in process (tests, notebooks) trains inline.
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
from dataclasses import replace
from pathlib import Path

import torch

from ..core.records import FAILED, RunResult
from ..core.registry import Registry
from ..core.spec import RunSpec
from ..run.build import resolve_device
from ..run.train import RunOptions, run


class InlineExecutor:
    name = "inline"

    def __init__(self, device: str = "auto", registry: Registry | None = None, note: str = "",
                 options: RunOptions = RunOptions()):
        self.device = device
        self.registry = registry
        self.note = note  # why it was chosen over worker processes, when it matters
        self.options = options

    def describe(self, todo: list[RunSpec]) -> list[str]:
        """What the sweep prints before training ``todo``: here, why it trains inline when that matters."""
        return [self.note] if self.note else []

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
    unit_name = "runs"  # what one worker trains at a time

    def __init__(self, device: str = "auto", jobs: int = 2, threads_per_job: int = 1,
                 options: RunOptions = RunOptions()):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.device, self.jobs, self.threads = device, jobs, threads_per_job
        on_gpu = resolve_device(device).type == "cuda"
        self.options = replace(options, runs_per_device=jobs if on_gpu else 1)  # its jobs share the GPU

    def describe(self, todo: list[RunSpec]) -> list[str]:
        return [f"{self.jobs} {self.unit_name} at a time in worker processes of {self.threads} thread(s) each"]

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
                        yield from future.result()  # the results of the unit's runs
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


def _run_in_worker(spec_data: dict, run_dir: str, device: str, options: RunOptions) -> list[RunResult]:
    return [run(RunSpec.from_dict(spec_data), Path(run_dir), device, options=options)]


def default_jobs(device: str) -> int:
    """One job per core on a CPU (the zoo's models are small), one on a GPU."""
    if resolve_device(device).type == "cuda":
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
