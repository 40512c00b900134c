"""How well a sweep uses one GPU: images/s and runs/hour with 1 and with several runs packed on it, peak
memory per run, and the projected time of the whole registered grid on digits.

1. **Packing.** For each packing k, 2k runs of the digits baseline (DCGAN/NS, the default suite's protocol)
   are trained by the process executor with k workers sharing the device, as ``ganzoo bench --jobs k
   --device cuda`` does. Printed: wall seconds, runs/hour, images/s summed over the packed runs, the
   training images/s of one run, and the largest peak memory of a run (torch's allocator on CUDA).
2. **Projection.** The ``full`` design over every registered component on digits (3 seeds, 24 kimg,
   evaluated every 8 kimg) is planned; one combination per stabilizer stack, cycling through the (G, D)
   pairs, is timed by ``ganzoo.sweep.estimate`` (two short runs and one evaluation each). The mean
   seconds per run of each stack, times its runs, divided by the speed-up of the best packing over k = 1,
   is the projection. The issue's target for one H100 is 15 minutes (3 runs per second).

    python benchmarks/gpu_throughput.py --device cuda                  # packings 1, 4, 8; 24 kimg runs
    python benchmarks/gpu_throughput.py --device cpu --packs 1 2 --kimg 1 --probes 3   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from ganzoo.core.registry import get_registry
from ganzoo.run.build import resolve_device
from ganzoo.run.grid import Filters, Grid, build_grid
from ganzoo.run.suite import load_suite, parse_suite
from ganzoo.sweep import estimate
from ganzoo.sweep.executors import ProcessExecutor

FULL_DIGITS = {
    "name": "digits-full", "design": "full", "seeds": 3,
    "budget": {"kimg": 24, "eval_every_kimg": 8, "batch_size": 64},
    "eval": {"n_fake": 1000, "n_real": 1797, "metrics": ["fid", "is", "kid", "pr", "dc"], "kid_subsets": 20,
             "kid_subset_size": 500},
    "datasets": [{"name": "digits"}],
}
TARGET_MINUTES = 15


def baseline_specs(n: int, kimg: float):
    """``n`` seeds of the default suite's digits baseline at ``kimg``, evaluated once at the end."""
    filters = Filters(dataset=("digits",), generator=("dcgan",), discriminator=("dcgan",), loss=("ns",),
                      stabilizer=("none",))
    grid = build_grid(load_suite("default"), get_registry(), filters, seeds=list(range(n)))
    return [replace(s, budget=replace(s.budget, unit="kimg", kimg=kimg, g_steps=None, eval_every_g_steps=None,
                                      eval_every_kimg=None)) for s in grid.specs if s.stack_name == "none"]


def packed(k: int, kimg: float, device: str) -> dict:
    """Train 2k baseline runs with k workers sharing ``device``; their throughput and memory."""
    specs = baseline_specs(2 * k, kimg)
    with tempfile.TemporaryDirectory(prefix="ganzoo-gpu-throughput-") as tmp:
        started = time.perf_counter()
        results = list(ProcessExecutor(device, jobs=k).execute([(s, Path(tmp) / s.run_id) for s in specs],
                                                               lambda spec: True))
        wall = time.perf_counter() - started
    failed = [r.error for r in results if r.status != "done"]
    if failed:
        raise RuntimeError(f"packing {k}: {len(failed)} runs failed; first: {failed[0]}")
    return {"k": k, "runs": len(results), "wall": wall, "runs_per_hour": len(results) / wall * 3600,
            "imgs_per_s": sum(r.kimg * 1000 for r in results) / wall,
            "run_imgs_per_s": statistics.median(r.imgs_per_s for r in results),
            "peak_mb": max(r.peak_mem_mb or 0 for r in results), "device": results[0].device}


def projection(device: str, probes: int, speed_up: float) -> None:
    """Projected time of the full digits grid from timed probes of one combination per stack."""
    grid = build_grid(parse_suite(FULL_DIGITS, source="gpu_throughput.py"), get_registry())
    by_stack: dict[str, list] = {}
    for spec in grid.specs:
        by_stack.setdefault(spec.stack_name, []).append(spec)
    pairs = sorted({(s.generator.name, s.discriminator.name) for s in grid.specs})
    chosen = []
    for i, (_, specs) in enumerate(sorted(by_stack.items())[:probes]):
        pair = pairs[i % len(pairs)]
        chosen.append(next((s for s in specs if (s.generator.name, s.discriminator.name) == pair), specs[0]))
    started = time.perf_counter()
    with warnings.catch_warnings():  # the probes' tiny evaluations warn about their sample counts, rightly
        warnings.simplefilter("ignore", UserWarning)
        seconds = estimate(Grid(chosen, []), device=device).seconds
    probe_time = time.perf_counter() - started
    total = 0.0
    for spec in chosen:
        per_run = seconds[spec.run_id]
        total += per_run * len(by_stack[spec.stack_name])
        print(f"  {spec.stack_name:<18}{spec.generator.name}/{spec.discriminator.name:<24}{per_run:>8.1f} s/run "
              f"x {len(by_stack[spec.stack_name])} runs")
    probed = sum(len(by_stack[s.stack_name]) for s in chosen)
    total *= len(grid.specs) / probed  # stacks left out of the probes (--probes) count at the probed mean
    minutes = total / speed_up / 60
    combos = len({(s.generator.name, s.discriminator.name, s.loss.name, s.stack_name) for s in grid.specs})
    print(f"full digits grid: {combos} combinations x 3 seeds = {len(grid.specs)} runs at 24 kimg; probes took "
          f"{probe_time:.0f} s")
    print(f"projected: {total / 3600:.2f} h one run at a time, {minutes:.1f} min at the best packing "
          f"({speed_up:.2f}x); target {TARGET_MINUTES} min on one H100: {minutes / TARGET_MINUTES:.1f}x the target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--packs", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--kimg", type=float, default=24.0, help="budget of each packed run")
    parser.add_argument("--probes", type=int, default=14, help="stacks probed for the projection (0: none)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({name}), torch {torch.__version__}")
    rows = [packed(k, args.kimg, str(device)) for k in args.packs]
    print(f"{'runs per device':<17}{'runs':>6}{'wall s':>9}{'runs/hour':>11}{'images/s':>10}{'one run img/s':>15}"
          f"{'peak MB/run':>13}")
    for row in rows:
        print(f"{row['k']:<17}{row['runs']:>6}{row['wall']:>9.1f}{row['runs_per_hour']:>11.0f}{row['imgs_per_s']:>10.0f}"
              f"{row['run_imgs_per_s']:>15.0f}{row['peak_mb']:>13.1f}")
    best = max(rows, key=lambda row: row["runs_per_hour"])
    speed_up = best["runs_per_hour"] / rows[0]["runs_per_hour"]
    print(f"best packing: {best['k']} runs per device, {speed_up:.2f}x the runs/hour of {rows[0]['k']}")
    if args.probes:
        projection(str(device), args.probes, speed_up)


if __name__ == "__main__":
    main()
