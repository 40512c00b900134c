"""Training throughput of one vectorised group as its size grows, and what it projects for the full digits grid.

For each group size K, K seeds of one default-suite experiment are built as a group
(``ganzoo.run.vectorized.group``) and timed over training steps alone (after warm-up steps), beside one single run
timed the same way. Printed per K: milliseconds per group step, member steps per second, the speed-up over
single runs one after another, and peak GPU memory. Evaluation is not timed: it stays per member.

The projection: the ``full`` design over every registered component on digits (``gpu_throughput.FULL_DIGITS``,
3 seeds), with every run's training taken at the digits baseline's measured cost per member step at the best
K, and the evaluations at the measured cost of one evaluation of the baseline. It is a projection for
combinations like the baseline (DCGAN), not a measurement of the grid.

    python benchmarks/vectorized_groups.py --device cuda --sizes 16 64 256
    python benchmarks/vectorized_groups.py --device cpu --dataset ring8 --sizes 8 16 32
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from ganzoo.core.registry import get_registry
from ganzoo.run.build import eval_generator, resolve_device
from ganzoo.run.evaluate import evaluate_generator
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import load_suite, parse_suite
from ganzoo.run.train import OneRun, d_step, g_step
from ganzoo.run.vectorized.group import Group, build_member

BASELINES = {"ring8": "mlp/mlp/ns/none", "digits": "dcgan/dcgan/ns/none"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _members(spec, k: int, device: torch.device, root: Path):
    return [build_member(replace(spec, seed=seed), root / str(seed), device, get_registry()) for seed in range(k)]


def time_single(spec, device: torch.device, steps: int, warmup: int, root: Path) -> tuple[float, float]:
    """Seconds per training step of one run, and seconds per evaluation."""
    (r,) = _members(spec, 1, device, root)
    one = OneRun(r)
    batch = spec.budget.batch_size
    for _ in range(warmup):
        d_step(one, batch), g_step(one, batch)
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        d_step(one, batch), g_step(one, batch)
    _sync(device)
    per_step = (time.perf_counter() - started) / steps
    started = time.perf_counter()
    evaluate_generator(eval_generator(r.models), r.evaluator, r.models.dataset, r.spec, device)
    _sync(device)
    return per_step, time.perf_counter() - started


def time_group(spec, k: int, device: torch.device, steps: int, warmup: int, root: Path) -> tuple[float, float]:
    """Seconds per group step of K members, and the peak GPU memory in MiB (nan on a CPU)."""
    group = Group(_members(spec, k, device, root), get_registry())
    batch = spec.budget.batch_size
    for _ in range(warmup):
        d_step(group, batch), g_step(group, batch)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(steps):
        d_step(group, batch), g_step(group, batch)
    _sync(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return (time.perf_counter() - started) / steps, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dataset", default="digits", choices=sorted(BASELINES))
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # as each worker process of a sweep runs
    grid = build_grid(load_suite("default"), get_registry(), Filters(dataset=(args.dataset,)))
    spec = next(s for s in grid.specs if s.combination == BASELINES[args.dataset])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{args.dataset} {spec.combination}, batch {spec.budget.batch_size}, on {name} (torch threads "
          f"{torch.get_num_threads()})")
    with tempfile.TemporaryDirectory() as tmp:
        single, evaluation = time_single(spec, device, args.steps, args.warmup, Path(tmp) / "single")
        print(f"single run: {single * 1e3:.2f} ms per step; one evaluation {evaluation:.2f} s")
        best = single
        for k in args.sizes:
            try:
                per_step, peak = time_group(spec, k, device, args.steps, args.warmup, Path(tmp) / f"k{k}")
            except torch.OutOfMemoryError:
                print(f"K={k}: out of memory")
                break
            best = min(best, per_step / k)
            print(f"K={k}: {per_step * 1e3:.1f} ms per group step, {k / per_step:.0f} member steps/s, "
                  f"x{single * k / per_step:.2f} over single runs one after another, peak {peak:.0f} MiB",
                  flush=True)
    if args.dataset != "digits":
        return
    full = build_grid(parse_suite(_full_digits(), source="vectorized_groups.py"), get_registry())
    budget = full.specs[0].budget  # kimg: images shown to D; one step per batch at one D step per G step
    steps_per_run = budget.g_steps if budget.unit == "g_steps" else round(budget.total / budget.batch_size)
    evals_per_run = budget.total // budget.eval_every
    seconds = len(full.specs) * (steps_per_run * best + evals_per_run * evaluation)
    print(f"projection: full digits grid, {len(full.specs)} runs of {steps_per_run} steps and {evals_per_run} "
          f"evaluations, at the best group size: {seconds / 60:.1f} min ({seconds / 60 * single / best:.1f} min "
          "one run after another)")


def _full_digits() -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from gpu_throughput import FULL_DIGITS

    return FULL_DIGITS


if __name__ == "__main__":
    main()
