"""On-disk footprint of a sweep's run folders: as they are, and as finished runs keep them now.

A finished run keeps its spec, its evaluated G and its result (``ganzoo.artifacts.finish_checkpoint``);
``--keep-checkpoints`` keeps D and the optimiser states too. For each run folder under RESULTS/runs this
prints nothing but the totals: bytes as they are on disk, and bytes of the lean form, computed by
writing each checkpoint's lean form to a temporary file (the run folders are not changed).

    python benchmarks/footprint.py results          # a results folder of any ganzoo version
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

from ganzoo import artifacts


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def lean_checkpoint_bytes(checkpoint: Path) -> int:
    state = artifacts.load_checkpoint(checkpoint)
    lean = {key: state[key] for key in (*artifacts.KEPT_WHEN_FINISHED, artifacts.RESULT_KEY) if key in state}
    with tempfile.TemporaryDirectory() as tmp:
        return artifacts.save_checkpoint(lean, Path(tmp)).stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    now, lean = collections.Counter(), collections.Counter()
    runs = collections.Counter()
    for folder in sorted(p for p in (args.results / "runs").iterdir() if p.is_dir()):
        checkpoint = folder / artifacts.CHECKPOINT
        if not checkpoint.is_file():
            continue
        spec = artifacts.load_checkpoint(checkpoint).get(artifacts.SPEC_KEY, {})
        key = f"{spec.get('dataset', {}).get('name', '?')} {spec.get('generator', {}).get('name', '?')}"
        runs[key] += 1
        now[key] += folder_bytes(folder)
        lean[key] += folder_bytes(folder) - checkpoint.stat().st_size + lean_checkpoint_bytes(checkpoint)
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
