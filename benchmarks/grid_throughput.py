"""Sweep wall time: the inline executor (one process, torch's default threads) vs worker processes.

The same slice of the default suite is trained twice in fresh results folders, alternately, in this
process; the ratio is what `--executor auto` buys on this machine.

    python benchmarks/bench_executor.py                 # 12 digits runs of 8 kimg, 2 rounds
    python benchmarks/bench_executor.py --kimg 24 --rounds 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from ganzoo.bench import bench
from ganzoo.executor import default_jobs
from ganzoo.grid import Filters
from ganzoo.registry import get_registry
from ganzoo.suite import load_suite


def sweep_seconds(executor: str, jobs: int | None, kimg: float, filters: Filters) -> float:
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-executor-") as results:
        started = time.perf_counter()
        summary = bench(load_suite("default"), results, registry=get_registry(), filters=filters, seeds=[0, 1, 2],
                        kimg=kimg, executor=executor, jobs=jobs, progress=False, echo=lambda line: None)
        seconds = time.perf_counter() - started
    failed = [run_id for run_id, status in summary.results.items() if status == "failed"]
    if failed:
        raise RuntimeError(f"{executor}: runs failed: {failed}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    # Digits with the baseline G and D over four stacks: 4 combinations x 3 seeds = 12 runs.
    filters = Filters(dataset=("digits",), generator=("dcgan",), discriminator=("dcgan",), loss=("ns",),
                      stabilizer=("none", "spectral_norm", "r1", "ema"))
    jobs = default_jobs("cpu")
    times: dict[str, list[float]] = {"inline": [], "processes": []}
    for _ in range(args.rounds):
        times["inline"].append(sweep_seconds("inline", None, args.kimg, filters))
        times["processes"].append(sweep_seconds("processes", jobs, args.kimg, filters))
    inline, pooled = min(times["inline"]), min(times["processes"])
    print(f"12 runs of {args.kimg:g} kimg on the CPU, best of {args.rounds}")
    print(f"{'executor':<44}{'best s':>9}{'median s':>10}{'speed-up':>10}")
    print(f"{'inline (1 process, ' + str(torch.get_num_threads()) + ' threads)':<44}{inline:>9.1f}"
          f"{statistics.median(times['inline']):>10.1f}{1.0:>9.2f}x")
    print(f"{'processes (' + str(jobs) + ' workers, 1 thread each)':<44}{pooled:>9.1f}"
          f"{statistics.median(times['processes']):>10.1f}{inline / pooled:>9.2f}x")


if __name__ == "__main__":
    main()
