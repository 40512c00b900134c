"""Control plane at scale: planning a 10,000-run grid and reporting over a 10,000-run store, on the CPU.

    python benchmarks/control_plane.py                       # 10,000 runs, 20 evaluations each
    python benchmarks/control_plane.py --runs 2000 --evals 8

Planning: the default suite's one-factor design with as many seeds as it takes to reach ``--runs`` runs,
through ``ganzoo.run.grid.build_grid``, then the specs stored with ``Store.add_many`` in a fresh results folder, as
``ganzoo bench`` does before it trains. The first grid of a process imports the datasets' loaders (sklearn
for digits, about 2 s once per process); that grid counts the combinations and is not timed.

Reporting: a synthetic store of the same runs, each with ``--evals`` evaluations whose metrics look like
the shipped default suite's (ring8: modes and high-quality share; digits: FID, IS, KID, classes), some
seeds diverged, collapsed, degraded, failed or not started, plus the suite record and the real-data rows
``ganzoo bench`` writes. Building it is setup and is not timed. Then ``write_report`` (Markdown and CSV)
and ``write_html_report`` (what ``ganzoo report --format html`` adds) are timed over it, each once, on a
store opened read-only as ``ganzoo report`` opens it. No run folder exists, so each sample picture is the
"samples missing" note. The HTML report's time in its figures (``ganzoo.report.plots``, matplotlib: one learning-curve
figure per experiment, a line and a legend entry per seed) is printed apart.

Target (issue "Scale-out and speed", benchmark 3): each figure at most 5 s. Figures are wall-clock seconds,
so other work on the machine slows them: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ganzoo.core.records import DIVERGED, DONE, FAILED, PENDING, ReferenceRow
from ganzoo.core.registry import get_registry
from ganzoo.core.spec import RunSpec, run_id_of
from ganzoo.core.store import Store
from ganzoo.report import plots, write_report
from ganzoo.report.html import write_html_report
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import load_suite
from ganzoo.sweep.driver import suite_record

TARGET_S = 5.0
SUITE = "default"
# Shares of the seeds that end otherwise than done; the rest finish. Failed runs never reach an evaluator, so
# they have no protocol and form their own (dataset, no protocol) tables, as in real stores.
SHARES = {DIVERGED: 0.02, FAILED: 0.003, PENDING: 0.005}
VERSIONS = {"ganzoo": "0.1.0", "torch": "2.5.1+cpu"}
# Protocols and fingerprints as the default suite's evaluators record them (results/ganzoo.sqlite).
PROTOCOLS = {
    "ring8": ({"extractor": "identity", "extractor_hparams": {}, "weights_hash": "none",
               "reference": {"dataset": "GaussianMixture2D", "split": "reference", "n": 2500,
                             "content": "b7a5e6c9fb7ebd85"},
               "n_real": 2500, "n_fake": 2500, "metrics": ["dc", "fid", "pr"], "kid_subsets": 100,
               "kid_subset_size": 1000, "is_splits": 10, "pr_k": 3, "dc_k": 5, "seed": 2020}, "36a508ae501e"),
    "digits": ({"extractor": "digits_classifier", "extractor_hparams": {}, "weights_hash": "6fccf3fdd804",
                "reference": {"dataset": "Digits", "split": "reference", "n": 1797, "content": "8aa4a98f227fcb6c"},
                "n_real": 1797, "n_fake": 1000, "metrics": ["dc", "fid", "is", "kid", "pr"], "kid_subsets": 20,
                "kid_subset_size": 500, "is_splits": 10, "pr_k": 3, "dc_k": 5, "seed": 2020}, "f075ad12aef3"),
}
REFERENCES = {
    "ring8": ({"coverage": 0.97, "density": 1.02, "fid": 0.0006, "high_quality": 0.99, "mode_kl": 0.0017,
               "modes": 8.0, "precision": 0.98, "recall": 0.98}, 2500,
              "fresh draws from the mixture itself (not the reference points)"),
    "digits": ({"class_kl": 0.008, "classes": 10.0, "coverage": 0.97, "density": 1.21, "fid": 0.33, "is_mean": 8.76,
                "is_std": 0.24, "kid_mean": -4.3, "kid_std": 4.9, "precision": 1.0, "recall": 0.9}, 1000,
               "the data itself resampled with replacement (what a generator that memorised it scores)"),
}


# -- planning ---------------------------------------------------------------------------------------


def plan(runs: int) -> tuple[list[RunSpec], dict[str, float]]:
    """The default suite's grid with enough seeds for ``runs`` runs, timed with and without storing it."""
    suite, registry = load_suite(SUITE), get_registry()
    combinations = len(build_grid(suite, registry, Filters(), [0]).specs)  # imports the loaders; not timed
    seeds = list(range(math.ceil(runs / combinations)))
    started = time.perf_counter()
    specs = build_grid(suite, registry, Filters(), seeds).specs
    planned = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="ganzoo-control-plane-") as results:
        started = time.perf_counter()
        specs = build_grid(suite, registry, Filters(), seeds).specs
        store = Store(results)
        try:
            store.add_many(specs, suite.name)  # as ganzoo bench stores its grid
            stored = time.perf_counter() - started
        finally:
            store.close()
    return specs, {"plan": planned, "plan_and_store": stored}


# -- the synthetic store ----------------------------------------------------------------------------


def canonical_specs(specs: list[RunSpec]) -> list[dict]:
    """Each spec's canonical form; seeds of one experiment share all but the seed, so it is computed once each."""
    by_experiment: dict[str, dict] = {}
    out = []
    for spec in specs:
        key = repr(dataclasses.replace(spec, seed=0))  # everything but the seed (hparams are unhashable dicts)
        if key not in by_experiment:
            by_experiment[key] = spec.canonical()
        out.append({**by_experiment[key], "seed": spec.seed})
    return out


def ring8_curve(rng: np.random.Generator, quality: float, n: int) -> list[dict[str, float]]:
    """Modes captured rising to about ``quality`` x 8, with the other 2-D measures following."""
    t = np.linspace(0.1, 1.0, n)
    level = np.clip(quality * (1 - np.exp(-4 * t)) + rng.normal(0, 0.08, n), 0, 1)
    modes = np.round(8 * level)
    high_quality = np.clip(0.45 * level + rng.normal(0, 0.03, n), 0, 1)
    return [{"fid": float(0.05 * (1.05 - level[i]) + 0.002), "precision": float(0.3 + 0.6 * high_quality[i]),
             "recall": float(0.2 + 0.7 * level[i]), "density": float(0.2 + 0.8 * high_quality[i]),
             "coverage": float(0.05 + 0.6 * level[i] * high_quality[i]), "modes": float(modes[i]),
             "high_quality": float(high_quality[i]), "mode_kl": float(0.05 + 1.5 * (1 - level[i]))}
            for i in range(n)]


def digits_curve(rng: np.random.Generator, quality: float, n: int) -> list[dict[str, float]]:
    """FID falling from about 180 to ``60 - 40 x quality``, with IS, KID and classes following."""
    t = np.linspace(0.1, 1.0, n)
    fid = (60 - 40 * quality) + 150 * np.exp(-5 * t) + np.abs(rng.normal(0, 6, n))
    level = np.clip(1 - fid / 200, 0, 1)
    classes = np.clip(np.round(10 * level + rng.normal(0, 0.6, n)), 0, 10)
    return [{"fid": float(fid[i]), "is_mean": float(1 + 5 * level[i]), "is_std": float(0.1 + 0.2 * rng.random()),
             "kid_mean": float(fid[i] * 18), "kid_std": float(fid[i] * 3), "precision": float(0.3 + 0.2 * level[i]),
             "recall": float(0.6 * level[i]), "density": float(0.3 * level[i]), "coverage": float(0.25 * level[i]),
             "classes": float(classes[i]), "class_kl": float(2 * (1 - level[i]))} for i in range(n)]


CURVES = {"ring8": ring8_curve, "digits": digits_curve}


def status_of(rng: np.random.Generator) -> str:
    draw, cumulative = rng.random(), 0.0
    for status, share in SHARES.items():
        cumulative += share
        if draw < cumulative:
            return status
    return DONE


def result_row(spec: RunSpec, run_id: str, quality: float, n_evals: int,
               rng: np.random.Generator) -> tuple[tuple, list[dict]] | None:
    """The columns ``Store.record`` writes for one synthetic run, and its evaluations (``None``: not started)."""
    status = status_of(rng)
    if status == PENDING:
        return None
    if status == FAILED:
        error = "RuntimeError: CUDA error: an illegal memory access was encountered\n\nTraceback (most recent...)"
        return (FAILED, time.time(), error, 0.0, 0, 0, 1.5, 0.0, "cpu (1 thread)", 310.0, 0, "{}", "", "{}", "{}",
                run_id), []
    every = max(1, spec.budget.total // n_evals)  # G steps: the default suite's budgets count them
    metrics = CURVES[spec.dataset.name](rng, quality, n_evals)
    kept = n_evals if status == DONE else int(rng.integers(1, max(n_evals, 2)))  # a diverged run stops early
    images_per_step = spec.budget.batch_size * spec.optim.d_steps
    evals = [{"kimg": (i + 1) * every * images_per_step / 1000, "g_steps": (i + 1) * every,
              "d_steps": (i + 1) * every * spec.optim.d_steps, "seconds": 2.1 * (i + 1),
              "d_loss": 1.38 + 0.01 * rng.standard_normal(), "g_loss": 0.69 + 0.05 * rng.standard_normal(),
              "metrics": metrics[i]} for i in range(kept)]
    error = f"non-finite loss at G step {evals[-1]['g_steps'] + every // 2}" if status == DIVERGED else None
    protocol, fingerprint = PROTOCOLS[spec.dataset.name]
    last = evals[-1]
    artifacts = {"samples": f"results/runs/{run_id}/samples.png", "checkpoint": f"results/runs/{run_id}/checkpoint.pt"}
    return (status, time.time(), error, last["kimg"], last["g_steps"], last["d_steps"], 2.1 * kept, 4400.0,
            "cpu (1 thread)", 320.0, 0, json.dumps(protocol), fingerprint, json.dumps(last["metrics"]),
            json.dumps(artifacts), run_id), evals


def build_store(results: Path, specs: list[RunSpec], n_evals: int) -> None:
    """Every spec added, claimed and recorded as a sweep would, in one transaction (setup, not timed)."""
    canonicals = canonical_specs(specs)
    ids = [run_id_of(c) for c in canonicals]
    if any(ids[i] != specs[i].run_id for i in range(0, len(specs), max(1, len(specs) // 50))):
        raise RuntimeError("run_id_of no longer computes RunSpec.run_id: update it")
    rng = np.random.default_rng(0)
    qualities: dict[str, float] = {}  # each experiment its own level, so some differ from the baseline
    added, sweep, recorded, evals = [], [], [], []
    now = time.time()
    for spec, canonical, run_id in zip(specs, canonicals, ids, strict=True):
        experiment = json.dumps({k: v for k, v in canonical.items() if k != "seed"}, sort_keys=True)
        quality = qualities.setdefault(experiment, float(rng.uniform(0.3, 0.95)))
        added.append((run_id, json.dumps(canonical, sort_keys=True), spec.dataset.name, spec.generator.name,
                      spec.discriminator.name, spec.loss.name, spec.stack_name, spec.seed))
        sweep.append((SUITE, run_id))
        result = result_row(spec, run_id, quality, n_evals, rng)
        if result is not None:
            recorded.append((now, json.dumps(VERSIONS), *result[0]))
            evals += [(run_id, i, e["kimg"], json.dumps(e)) for i, e in enumerate(result[1])]
    store = Store(results)
    try:
        with store.db:  # the statements of Store.add, claim and record, for all runs at once
            store.db.executemany("INSERT INTO runs (run_id, spec, dataset, generator, discriminator, loss, stack, "
                                 f"seed, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{PENDING}')", added)
            store.db.executemany("INSERT INTO sweep_runs VALUES (?, ?)", sweep)
            store.db.executemany(
                "UPDATE runs SET attempts=1, started=?, versions=?, status=?, finished=?, error=?, kimg=?, g_steps=?,"
                " d_steps=?, seconds=?, imgs_per_s=?, device=?, peak_mem_mb=?, capped=?, protocol=?, fingerprint=?,"
                " metrics=?, artifacts=? WHERE run_id=?", recorded)
            store.db.executemany("INSERT INTO evals VALUES (?, ?, ?, ?)", evals)
        store.set_suite_record(SUITE, suite_record(load_suite(SUITE), get_registry()))
        for dataset, (protocol, fingerprint) in PROTOCOLS.items():
            metrics, n, note = REFERENCES[dataset]
            store.set_reference(SUITE, dataset, fingerprint, ReferenceRow(json.dumps([dataset, protocol["seed"]]),
                                                                          metrics, note, n))
    finally:
        store.close()


# -- reporting --------------------------------------------------------------------------------------


def time_reports(results: Path, out: Path, registry) -> dict[str, float]:
    """``write_report`` and ``write_html_report`` over the store, each timed alone, as ``ganzoo report`` calls them.

    The HTML report's figures (``ganzoo.report.plots``, matplotlib) are timed apart as well: one learning-curve
    figure per experiment, one line per seed.
    """
    drawing = {"seconds": 0.0}

    def timed(draw):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return draw(*args, **kwargs)
            finally:
                drawing["seconds"] += time.perf_counter() - started
        return wrapper

    originals = {name: getattr(plots, name) for name in ("learning_curves", "seed_spread", "scatter_2d")}
    store = Store(results, readonly=True)
    try:
        started = time.perf_counter()
        write_report(store, out / SUITE, suite=SUITE)
        markdown = time.perf_counter() - started
        for name, draw in originals.items():  # looked up by report_html when it draws
            setattr(plots, name, timed(draw))
        started = time.perf_counter()
        write_html_report(store, out / SUITE / "report", SUITE, registry=registry)
        html = time.perf_counter() - started
    finally:
        store.close()
        for name, draw in originals.items():
            setattr(plots, name, draw)
    return {"md_csv": markdown, "html": html, "html_figures": drawing["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="at least this many runs (whole seeds)")
    parser.add_argument("--evals", type=int, default=20, help="evaluations per finished run")
    args = parser.parse_args()
    # Hundreds of seeds make legends taller than their figures; matplotlib says so once per figure.
    warnings.filterwarnings("ignore", message="Tight layout not applied")
    tag = f"{round(args.runs / 1000)}k" if args.runs >= 1000 else str(args.runs)
    print(f"load average (1 min) before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    specs, planning = plan(args.runs)
    n_runs = len(specs)
    print(f"grid: {n_runs} runs of suite {SUITE} ({len({s.seed for s in specs})} seeds)")
    figures = {f"plan_{tag}_runs_s": planning["plan"], f"plan_and_store_{tag}_runs_s": planning["plan_and_store"]}
    for name in list(figures):
        print(f"{name}={figures[name]:.2f}")

    with tempfile.TemporaryDirectory(prefix="ganzoo-control-plane-") as tmp:
        started = time.perf_counter()
        build_store(Path(tmp) / "results", specs, args.evals)
        print(f"setup: synthetic store of {n_runs} runs x {args.evals} evaluations in "
              f"{time.perf_counter() - started:.1f} s (not timed)")
        del specs  # the reports start from the store alone, as `ganzoo report` does
        gc.collect()
        reports = time_reports(Path(tmp) / "results", Path(tmp) / "out", get_registry())
    figures[f"report_md_csv_{tag}_runs_s"] = reports["md_csv"]
    figures[f"report_html_{tag}_runs_s"] = reports["html"]
    for name in list(figures)[2:]:
        print(f"{name}={figures[name]:.2f}")
    print(f"  of which the HTML report's figures (ganzoo.report.plots, matplotlib): report_html_figures_s="
          f"{reports['html_figures']:.2f}; the rest: {reports['html'] - reports['html_figures']:.2f} s")

    print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}")
    met = [name for name, seconds in figures.items() if seconds <= TARGET_S]
    missed = [name for name in figures if name not in met]
    print(f"target <= {TARGET_S:g} s each: met by {', '.join(met) or 'none'}; missed by {', '.join(missed) or 'none'}")


if __name__ == "__main__":
    main()
