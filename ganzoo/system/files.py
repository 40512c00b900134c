"""Replacing a file whole: the one way ganzoo writes a file that another process may read (checkpoints, the
store's exports, downloads, run folders shipped back by Ray).

It sits in the lowest layer (tests/test_layout.py), so that ``ganzoo.system.download``, which may not import the run
layer, uses it too; ``ganzoo.core.records`` re-exports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` to a temporary name beside ``path``, then rename it over ``path``.

    A kill during the write never leaves a broken file under ``path``. The temporary name carries the
    writer's PID, so two processes never rename each other's file; a failed write (a full disk) removes
    its partial file instead of leaving it to fill the disk further.

    Args:
        path: the file to replace (or create).
        write: writes the whole file at the temporary path it is given; an exception it raises leaves ``path``
            as it was and is raised again.

    Returns:
        ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
