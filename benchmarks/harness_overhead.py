"""What ganzoo's harness costs: a ganzoo run against a hand-written loop with the same modules, loss, data and batch.

For each baseline of the default suite (MLP/NS on ring8, DCGAN/NS on digits) at its full budget, this trains
the same spec twice per round in this process, alternately:

- **ganzoo**: ``ganzoo.run.train.run`` as a sweep calls it (stabilizer hooks, divergence checks, evaluation
  marks, checkpoint, samples), with one evaluation at the end whose seconds are subtracted: evaluation
  is the protocol's cost, not the harness's.
- **plain**: the modules built by ``ganzoo.run.build.build_models`` (the same initial weights), two Adam
  optimisers and the textbook loop: D step on a real and a detached fake batch, G step, nothing else.

Both draw real batches and latents from one generator seeded the same, so both do exactly the same
arithmetic; the script checks that the final G weights are equal. Each round runs both back to back (in
alternating order), and the ratio of the pair is the measurement: a shared CPU's speed drifts by 10% and
more over minutes, which a ratio of separate medians would carry. Printed per dataset: median seconds of
each, and the median and range of the paired ratios for the whole run (build, loop, checkpoint and
samples; evaluation excluded) and for the training loop alone. The last line is the larger of the two
datasets' whole-run median ratios: ``ratio=<ganzoo time / plain time>``.

    python benchmarks/harness_overhead.py                # both baselines, 5 rounds, default budgets
    python benchmarks/harness_overhead.py --dataset ring8 --g-steps 500 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from ganzoo.core.registry import get_registry
from ganzoo.run import artifacts
from ganzoo.run.build import build_models, resolve_device
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import load_suite
from ganzoo.run.train import RunOptions, run


def baseline_spec(dataset: str, g_steps: int | None):
    """The default suite's baseline on ``dataset``, seed 0, evaluated once at the end on a small sample."""
    suite = load_suite("default")
    plan = next(p for p in suite.datasets if p.dataset.name == dataset)
    base = plan.baseline
    filters = Filters(generator=(base["generator"],), discriminator=(base["discriminator"],), loss=(base["loss"],),
                      stabilizer=(base["stack"],), dataset=(dataset,))
    spec = next(s for s in build_grid(suite, get_registry(), filters, seeds=[0]).specs if s.stack_name == "none")
    budget = replace(spec.budget, g_steps=g_steps or spec.budget.g_steps, eval_every_g_steps=None)
    protocol = replace(spec.protocol, n_fake=500, metrics=("fid",))
    return replace(spec, budget=budget, protocol=protocol)


def ganzoo_run(spec, device) -> tuple[float, float, dict]:
    """(whole-run seconds less evaluation, training-loop seconds, final G weights) of ``ganzoo.run.train.run``."""
    with tempfile.TemporaryDirectory(prefix="ganzoo-overhead-") as tmp:
        started = time.perf_counter()
        result = run(spec, Path(tmp), device, options=RunOptions(keep_checkpoints=True))
        wall = time.perf_counter() - started
        if result.status != "done":
            raise RuntimeError(f"ganzoo run {result.status}: {result.error}")
        weights = artifacts.load_checkpoint(Path(tmp) / artifacts.CHECKPOINT)["generator"]
    return wall - result.eval_seconds, result.seconds - result.eval_seconds, weights


def plain_run(spec, device) -> tuple[float, float, dict]:
    """(whole seconds, loop seconds, final G weights) of the textbook loop on the same modules and data."""
    started = time.perf_counter()
    m = build_models(spec, get_registry(), device)
    g, d, loss, data, batch = m.generator, m.discriminator, m.loss, m.dataset, spec.budget.batch_size
    opt_g = torch.optim.Adam(g.parameters(), lr=m.optim.lr_g, betas=m.optim.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=m.optim.lr_d, betas=m.optim.betas)
    rng = torch.Generator(device=device).manual_seed(spec.seed)
    loop_started = time.perf_counter()
    for _ in range(spec.budget.g_steps):
        for _ in range(m.optim.d_steps):
            real = data.sample(batch, rng)
            z = torch.randn(batch, g.latent_dim, generator=rng, device=device)
            with torch.no_grad():
                fake = g(z)
            d_loss = loss.d_loss(d(real).view(-1), d(fake).view(-1))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        z = torch.randn(batch, g.latent_dim, generator=rng, device=device)
        g_loss = loss.g_loss(d(g(z)).view(-1), None)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    ended = time.perf_counter()
    return ended - started, ended - loop_started, {k: v.detach().clone() for k, v in g.state_dict().items()}


def measure(dataset: str, g_steps: int | None, rounds: int, device) -> float:
    """The median over rounds of the paired ratio ganzoo / plain (each round runs both, in alternating order)."""
    spec = baseline_spec(dataset, g_steps)
    short = replace(spec, budget=replace(spec.budget, g_steps=10))
    ganzoo_run(short, device), plain_run(short, device)  # warm-up: lazy imports (the 2-D scatter's matplotlib)
    whole, loop, same = [], [], True
    for i in range(rounds):
        if i % 2:  # alternate the order, so that a drift of the machine's speed favours neither
            theirs, ours = plain_run(spec, device), ganzoo_run(spec, device)
        else:
            ours, theirs = ganzoo_run(spec, device), plain_run(spec, device)
        whole.append((ours[0], theirs[0]))
        loop.append((ours[1], theirs[1]))
        same = same and all(torch.equal(ours[2][k], theirs[2][k]) for k in theirs[2])
    print(f"{dataset} ({spec.combination}, {spec.budget.g_steps} G steps, batch {spec.budget.batch_size}, "
          f"{rounds} rounds):")
    for label, pairs in (("whole run less evaluation", whole), ("training loop alone", loop)):
        ratios = sorted(a / b for a, b in pairs)
        print(f"  {label + ':':<27} ganzoo {statistics.median(a for a, _ in pairs):.2f} s, plain "
              f"{statistics.median(b for _, b in pairs):.2f} s (medians); paired ratio median "
              f"{statistics.median(ratios):.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}")
    print(f"  same final G weights: {same}")
    if not same:
        raise SystemExit("the two loops did different work: the comparison is void")
    return statistics.median(a / b for a, b in whole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["ring8", "digits"], action="append",
                        help="repeatable; default: both")
    parser.add_argument("--g-steps", type=int, default=None, help="default: the suite's budget")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as a sweep's worker processes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {device}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}")
    ratios = [measure(dataset, args.g_steps, args.rounds, device) for dataset in args.dataset or ["ring8", "digits"]]
    print(f"ratio={max(ratios):.3f}")


if __name__ == "__main__":
    main()
