"""Grid throughput: runs per hour of a slice of the default suite, inline vs worker processes vs Ray.

The same slice (digits, the DCGAN/NS baseline over the default suite's three stacks, 4 seeds: 12 runs) is
swept in fresh results folders with each executor in turn, round after round, in this process; the whole
``ganzoo bench`` is timed (planning, store, training, real-data row, leaderboard). Ray starts a local
instance per sweep, as ``ganzoo bench --executor ray`` does without ``--address``: its start-up is
counted, and stated.

    python benchmarks/grid_throughput.py                    # 12 runs of 250 G steps, 2 rounds, every executor
    python benchmarks/grid_throughput.py --g-steps 1000 --rounds 1 --executor processes --executor ray
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from ganzoo.core.registry import get_registry
from ganzoo.run.grid import Filters
from ganzoo.run.suite import load_suite
from ganzoo.sweep import bench
from ganzoo.sweep.executors import default_jobs

# Digits with the baseline G and D over the suite's three stacks (none, diffaugment, consistency) x 4 seeds.
SLICE = Filters(dataset=("digits",), generator=("dcgan",), discriminator=("dcgan",), loss=("ns",))
SEEDS = [0, 1, 2, 3]


def sweep_seconds(executor: str, jobs: int | None, g_steps: int) -> tuple[float, int]:
    """(wall seconds, runs trained) of one sweep of the slice in a fresh results folder."""
    with tempfile.TemporaryDirectory(prefix="ganzoo-grid-throughput-") as results:
        started = time.perf_counter()
        summary = bench(load_suite("default"), results, registry=get_registry(), filters=SLICE, seeds=SEEDS,
                        g_steps=g_steps, executor=executor, jobs=jobs, progress=False, echo=lambda line: None)
        seconds = time.perf_counter() - started
    failed = [run_id for run_id, status in summary.results.items() if status == "failed"]
    if failed:
        raise RuntimeError(f"{executor}: runs failed: {failed}")
    return seconds, len(summary.results)


def ray_start_seconds() -> float:
    """Seconds to start and stop a local Ray instance: the part of a Ray sweep that is not training."""
    import ray

    started = time.perf_counter()
    ray.init(include_dashboard=False, configure_logging=False)
    ray.shutdown()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g-steps", type=int, default=250, help="budget of each run (the suite's is 1,000)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--executor", action="append", choices=["inline", "processes", "ray"],
                        help="repeatable; default: all three (ray only when installed)")
    args = parser.parse_args()
    executors = args.executor or ["inline", "processes", "ray"]
    if "ray" in executors and not args.executor:
        try:
            import ray  # noqa: F401
        except ImportError:
            executors.remove("ray")
            print("ray is not installed (pip install 'ganzoo[ray]'): skipping the ray executor")
    jobs = default_jobs("cpu")
    labels = {"inline": f"inline (1 process, {torch.get_num_threads()} threads)",
              "processes": f"processes ({jobs} workers, 1 thread each)",
              "ray": f"ray (local instance, {jobs} CPUs, 1 per task)"}
    times: dict[str, list[float]] = {name: [] for name in executors}
    runs = 0
    for _ in range(args.rounds):
        for name in executors:
            seconds, runs = sweep_seconds(name, None if name == "inline" else jobs, args.g_steps)
            times[name].append(seconds)
    first = min(times[executors[0]])
    print(f"{runs} runs of {args.g_steps} G steps (digits DCGAN/NS x 3 stacks x 4 seeds) on the CPU, "
          f"best of {args.rounds}")
    print(f"{'executor':<44}{'best s':>9}{'median s':>10}{'runs/hour':>11}{'vs ' + executors[0]:>12}")
    for name in executors:
        best = min(times[name])
        print(f"{labels[name]:<44}{best:>9.1f}{statistics.median(times[name]):>10.1f}{runs / best * 3600:>11.0f}"
              f"{first / best:>11.2f}x")
    if "ray" in executors:
        print(f"(a local Ray instance takes {ray_start_seconds():.1f} s to start and stop; a sweep on a running "
              "cluster, --address, does not pay it)")


if __name__ == "__main__":
    main()
