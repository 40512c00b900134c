"""``ganzoo compare A B``: is B better than A on this results folder, and how sure can we be?"""

from __future__ import annotations

import json

import click

from .common import results_dir_option, user_errors


@click.command("compare")
@click.argument("a")
@click.argument("b")
@results_dir_option
@click.option("--suite", default="default", show_default=True, help="The suite whose runs and baseline to use.")
@click.option("--dataset", default=None, help="Which dataset (needed when the suite has several).")
@click.option("--resamples", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Bootstrap resamples for the CI and the flip rate.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def compare_command(a, b, results_dir, suite, dataset, resamples, fmt):
    """Compare experiments A and B over seeds on the dataset's headline metric.

    A and B: a combination G/D/loss/stack (dcgan/dcgan/ns/r1), one axis changed from the suite's
    baseline (stack=r1, loss=hinge), or an experiment key from runs.csv.
    """
    from ..core.store import STORE_FILE, Store
    from ..report import judgements_of, load_runs
    from ..report.compare import compare_sides, describe, resolve, side

    if not (results_dir / STORE_FILE).exists():
        raise click.UsageError(f"No ganzoo store in {results_dir}. Run `ganzoo bench --all` first or pass "
                               "--results-dir.")
    with user_errors():
        runs = load_runs(results_dir, suite)
        if runs.empty:
            raise ValueError(f'Suite "{suite}" has no runs in {results_dir}; see: ganzoo runs')
        datasets = sorted(runs["dataset"].unique())
        if dataset is None and len(datasets) > 1:
            raise ValueError(f"Suite {suite} has several datasets ({', '.join(datasets)}): choose one with --dataset")
        dataset = dataset or datasets[0]
        if dataset not in datasets:
            raise ValueError(f'Suite {suite} has no runs on "{dataset}"; its datasets: {", ".join(datasets)}')
        store = Store(results_dir, readonly=True)
        try:
            record = store.read_suite_record(suite)
            judgement = judgements_of(store, suite, [dataset])[dataset]
        finally:
            store.close()
        runs = runs[runs["dataset"] == dataset]
        baseline = record.baseline(dataset)
        chosen = [resolve(name, runs, baseline) for name in (a, b)]
        fingerprints = {tuple(sorted(c["fingerprint"].dropna().unique())) for c in chosen}
        if len(fingerprints) > 1:
            raise ValueError("A and B were evaluated under different protocols (fingerprints "
                             f"{' vs '.join(map(str, fingerprints))}); their numbers are not comparable")
        result = compare_sides(side(a, chosen[0], judgement), side(b, chosen[1], judgement), judgement, resamples)
    fingerprint = ", ".join(next(iter(fingerprints))) or "unknown"
    if fmt == "json":
        click.echo(json.dumps({"dataset": dataset, "fingerprint": fingerprint, **result}, indent=2, default=float))
    else:
        click.echo(describe(result, dataset, fingerprint))
