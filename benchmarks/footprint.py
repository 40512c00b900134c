"""On-disk footprint of a sweep's run folders: as they are, and as finished runs keep them now.

A finished run keeps its spec, its evaluated G and its result (``ganzoo.run.artifacts.finish_checkpoint``);
``--keep-checkpoints`` keeps D and the optimiser states too. For each run folder under RESULTS/runs this
prints nothing but the totals: bytes as they are on disk, and bytes of the lean form, which
``finish_checkpoint`` writes for a copy of each checkpoint in a temporary folder with the run's result as
the store recorded it (the run folders are not changed).

    python benchmarks/footprint.py results          # a results folder of any ganzoo version
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import shutil
import tempfile
from pathlib import Path

from ganzoo.core.records import RunResult
from ganzoo.core.store import Store
from ganzoo.run import artifacts

RESULT_FIELDS = [field.name for field in dataclasses.fields(RunResult) if field.name != "evals"]


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def lean_checkpoint_bytes(checkpoint: Path, result: RunResult) -> int:
    """Bytes of the checkpoint ``finish_checkpoint`` leaves for this run, written to a temporary copy."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(checkpoint, Path(tmp) / artifacts.CHECKPOINT)
        return artifacts.finish_checkpoint(Path(tmp), dataclasses.asdict(result)).stat().st_size


def recorded_result(store: Store, row: dict) -> RunResult:
    """The run's ``RunResult`` as the store holds it (what a finished run's checkpoint now also holds)."""
    fields = {name: row[name] for name in RESULT_FIELDS if row.get(name) is not None}
    return RunResult(**{**fields, "capped": bool(row.get("capped"))}, evals=store.evals(row["run_id"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    now, lean = collections.Counter(), collections.Counter()
    runs = collections.Counter()
    store = Store(args.results, readonly=True)
    try:
        rows = {row["run_id"]: row for row in store.runs() if row["status"] in ("done", "diverged")}
        for run_id, row in sorted(rows.items()):
            folder = store.run_dir(run_id)
            checkpoint = folder / artifacts.CHECKPOINT
            if not checkpoint.is_file():
                continue
            key = f"{row['dataset']} {row['generator']}"
            runs[key] += 1
            now[key] += folder_bytes(folder)
            lean[key] += (folder_bytes(folder) - checkpoint.stat().st_size
                          + lean_checkpoint_bytes(checkpoint, recorded_result(store, row)))
    finally:
        store.close()
    print(f"{'dataset / generator':<28}{'runs':>6}{'now MB':>10}{'lean MB':>10}{'KB/run now':>12}{'KB/run lean':>13}")
    for key in sorted(runs):
        print(f"{key:<28}{runs[key]:>6}{now[key] / 1e6:>10.1f}{lean[key] / 1e6:>10.1f}"
              f"{now[key] / runs[key] / 1e3:>12.0f}{lean[key] / runs[key] / 1e3:>13.0f}")
    total_now, total_lean, n = sum(now.values()), sum(lean.values()), sum(runs.values())
    print(f"{'all':<28}{n:>6}{total_now / 1e6:>10.1f}{total_lean / 1e6:>10.1f}{total_now / n / 1e3:>12.0f}"
          f"{total_lean / n / 1e3:>13.0f}")
    print(f"lean/now={total_lean / total_now:.3f}")


if __name__ == "__main__":
    main()
