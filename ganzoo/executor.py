"""Executors run specs and hand back results; they never write the store (the driver does).

``InlineExecutor`` trains in this process, one run after another. A distributed executor (Ray) keeps
the same two calls: ``on_start(spec)`` when a run is dispatched, results yielded as they finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .registry import Registry
from .spec import RunSpec
from .train import RunResult, run

EXECUTORS = ("inline",)


class InlineExecutor:
    name = "inline"

    def __init__(self, device: str = "auto", registry: Registry | None = None):
        self.device = device
        self.registry = registry

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], None]) -> Iterator[RunResult]:
        for spec, run_dir in jobs:
            on_start(spec)
            yield run(spec, run_dir, self.device, self.registry)


def make_executor(name: str, device: str, registry: Registry | None = None):
    if name == "inline":
        return InlineExecutor(device, registry)
    raise ValueError(f'Unknown executor "{name}". Available: {", ".join(EXECUTORS)}')
