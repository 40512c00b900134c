"""What a run leaves behind for the driver: its status and its ``RunResult``.

Statuses are named here and nowhere else, so the store, the driver, the CLI and the reporter agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"  # asked for by a suite, not started
RUNNING = "running"  # dispatched to an executor (or left so by a sweep that was killed)
DONE = "done"  # trained to the end of its budget
DIVERGED = "diverged"  # a loss or a sample became non-finite: a result about the combination
FAILED = "failed"  # an exception: usually a bug or a missing file, so it is retried next time
FINISHED = (DONE, DIVERGED)  # never trained again


@dataclass
class RunResult:
    """What a worker returns to the driver, the only writer of the store."""

    run_id: str
    status: str  # DONE, DIVERGED or FAILED
    error: str | None = None
    kimg: float = 0.0
    g_steps: int = 0
    d_steps: int = 0
    seconds: float = 0.0
    eval_seconds: float = 0.0
    imgs_per_s: float = 0.0
    device: str = ""
    peak_mem_mb: float | None = None
    capped: bool = False
    evals: list[dict[str, Any]] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any]:
        return self.evals[-1]["metrics"] if self.evals else {}
