"""A run's attempt log: one line in its folder each time it starts training, written before it trains.

An executor can start a run more than once: a sweep killed and run again, a Ray task retried after its worker
or node died (Ray runs a task at least once). The checkpoint says where a run stands; this log says how it got
there. Each start appends one JSON line (``attempts.jsonl`` beside the checkpoint) and syncs it to disk before
any training, so a start that is killed a moment later is still counted. A line holds:

- ``started``: Unix time of the start;
- ``resumed_from``: the G step of the checkpoint it resumed from, 0 when it started from scratch;
- ``host`` and ``pid``: where it ran, and any entries the executor adds (Ray: ``node``, the node's id).

A run's ``RunResult.attempts`` is the number of lines, ``RunResult.resumed_from`` its last line's.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ATTEMPTS = "attempts.jsonl"

# How an executor records a start: (the run's folder, the entry) -> the number of starts logged, this one included.
AttemptLog = Callable[[Path, Mapping[str, Any]], int]


def attempt_entry(resumed_from: int, **where: Any) -> dict[str, Any]:
    """One start's line: when, from which checkpoint, on which host and process, and ``where`` (e.g. a Ray node)."""
    return {"started": time.time(), "resumed_from": resumed_from, "host": socket.gethostname(), "pid": os.getpid(),
            **where}


def append_attempt(run_dir: Path, entry: Mapping[str, Any]) -> int:
    """Append ``entry`` to ``run_dir``'s log and sync it; returns how many starts the log holds now."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ATTEMPTS
    # A writer killed mid-line leaves no newline; the next line must not be glued to its fragment.
    torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "ab") as log:
        log.write((b"\n" if torn else b"") + json.dumps(dict(entry), sort_keys=True).encode() + b"\n")
        log.flush()
        os.fsync(log.fileno())
    return len(read_attempts(run_dir))


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    """Every start ``run_dir``'s log holds, oldest first (none for a folder without a log); a torn line is skipped."""
    try:
        lines = (Path(run_dir) / ATTEMPTS).read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the fragment of a writer killed mid-line: that start is not counted
    return [entry for entry in entries if isinstance(entry, dict)]


def record_start(run_dir: Path, resumed_from: int, log: AttemptLog | None = None, **where: Any) -> int:
    """Log one start of the run in ``run_dir`` (through ``log``, else in the folder itself); returns its number."""
    return (log or append_attempt)(Path(run_dir), attempt_entry(resumed_from, **where))
