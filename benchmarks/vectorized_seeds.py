"""Runs per hour of the default suite's experiments: vectorised seed groups vs one single-thread worker per core.

Both sides train the same runs (the default suite's grid for each dataset, its own budgets unless --g-steps
shortens them) on this machine, one after the other in this process, each into a fresh results folder:

- processes: ``ganzoo bench --executor processes`` with one single-thread worker per core (the default on a CPU);
- vectorized: ``ganzoo bench --executor vectorized`` with as many single-thread workers, each training one group
  of seeds at a time (runs that cannot be grouped, such as the suite's one-seed rows, train alone in them).

It prints, per dataset, the wall time and runs per hour of each side and their ratio; the last line is
``ratio=<vectorized / processes>`` for ring8. Usage::

    python benchmarks/vectorized_seeds.py                      # ring8 and digits at the default's budgets
    python benchmarks/vectorized_seeds.py --datasets ring8 --g-steps 500
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ganzoo.core.records import DONE
from ganzoo.core.registry import get_registry
from ganzoo.run.grid import Filters
from ganzoo.run.suite import load_suite
from ganzoo.sweep import bench
from ganzoo.system.cpu import describe_cpu


def timed_bench(suite, dataset: str, executor: str, jobs: int, g_steps: int | None, root: Path) -> tuple[float, int]:
    started = time.perf_counter()
    summary = bench(suite, root / executor, registry=get_registry(), filters=Filters(dataset=(dataset,)),
                    g_steps=g_steps, device="cpu", executor=executor, jobs=jobs, progress=False,
                    echo=lambda *_: None)
    seconds = time.perf_counter() - started
    done = sum(status == DONE for status in summary.results.values())
    if done != len(summary.results):
        raise SystemExit(f"{dataset} {executor}: only {done} of {len(summary.results)} runs finished")
    return seconds, len(summary.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ring8,digits", help="comma-separated; ring8 is the one ratio= is for")
    parser.add_argument("--g-steps", type=int, default=None, help="shorten every run to this many G steps")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="workers on each side")
    args = parser.parse_args()
    suite = load_suite("default")
    budget = f"{args.g_steps} G steps" if args.g_steps else "the default's budgets"
    print(f"default suite, {budget}; {args.jobs} single-thread workers per side; {describe_cpu(1)}")
    ratios = {}
    for dataset in args.datasets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            processes, n = timed_bench(suite, dataset, "processes", args.jobs, args.g_steps, Path(tmp))
            vectorized, _ = timed_bench(suite, dataset, "vectorized", args.jobs, args.g_steps, Path(tmp))
        ratios[dataset] = processes / vectorized
        print(f"{dataset}: {n} runs; processes {processes:.0f} s ({n / processes * 3600:.0f} runs/h), "
              f"vectorized {vectorized:.0f} s ({n / vectorized * 3600:.0f} runs/h): x{ratios[dataset]:.2f}",
              flush=True)
    print(f"ratio={ratios.get('ring8', float('nan')):.2f}")


if __name__ == "__main__":
    main()
