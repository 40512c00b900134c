"""How many seeds the default needs: expected verdicts and wall time of candidate designs, from pilot runs.

Reads the runs of pilot sweeps (``runs.csv`` as ``ganzoo report`` writes it), takes each row's headline on the
analysis scale (log for FID and mode_kl), and simulates the leaderboard's test for candidate designs: every
row gets ``rows`` seeds, the baseline ``baseline`` seeds; values are drawn normal with the pilot's row means
and a spread halfway (in variance) between the row's own and the table's pooled one (a 3-seed sd is itself
noisy); each row is compared with the baseline by Welch's test, Holm-corrected across the table, as the
leaderboard does. Printed per design: the expected number of decided rows (and of *better* ones), the chance
that the two tables together decide at least 3, and the wall time on 2 single-thread workers from the pilot
runs' own seconds. ``--shrink 0.75`` shrinks every pilot effect towards the baseline by a quarter: the rows
that looked best in a few seeds look better than they are (the winner's curse), so a design should still
decide with shrunk effects.

    python benchmarks/default_design.py --pilot ring8=results/default/runs.csv:mode_kl \\
        --pilot digits=results/default/runs.csv:fid --design ring8:5:15,digits:5:12 --shrink 0.75
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ganzoo.report import stats

AXES = ["generator", "discriminator", "loss", "stack"]


def pilot_rows(path: str, dataset: str, headline: str, baseline: str | None) -> tuple[pd.DataFrame, str]:
    """Per row: mean and sd of log(headline), seeds, seconds per run; and the baseline row's key."""
    runs = pd.read_csv(path)
    runs = runs[(runs["dataset"] == dataset) & (runs["status"] == "done")].copy()
    runs["row"] = runs[AXES].astype(str).agg("/".join, axis=1)
    runs["value"] = np.log(runs[headline].astype(float).clip(lower=1e-12))
    rows = runs.groupby("row").agg(mean=("value", "mean"), sd=("value", "std"), n=("value", "size"),
                                   seconds=("seconds", "mean"))
    if baseline is None:  # the row with the default's baseline stack and loss: the most common axes
        baseline = "/".join(runs[a].mode().iloc[0] for a in AXES)
    if baseline not in rows.index:
        raise SystemExit(f"{path}: no baseline row {baseline!r} among {sorted(rows.index)}")
    return rows, baseline


def simulate(rows: pd.DataFrame, baseline: str, n_row: int, n_base: int, shrink: float, trials: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Decided and better counts of ``trials`` simulated tables."""
    pooled = float(np.sqrt(np.nanmean(rows["sd"] ** 2)))
    sd = np.sqrt((rows["sd"].fillna(pooled) ** 2 + pooled**2) / 2)
    base_mean = rows.loc[baseline, "mean"]
    means = base_mean + shrink * (rows["mean"] - base_mean)
    others = [r for r in rows.index if r != baseline]
    decided, better = np.zeros(trials, int), np.zeros(trials, int)
    for t in range(trials):
        base = rng.normal(base_mean, sd[baseline], n_base)
        draws = {r: rng.normal(means[r], sd[r], n_row) for r in others}
        p = [stats.welch_p(base, draws[r]) for r in others]
        significant = stats.holm(p) < 0.05
        lower = np.array([draws[r].mean() < base.mean() for r in others])
        decided[t], better[t] = significant.sum(), (significant & lower).sum()  # lower is better for both headlines
    return decided, better


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pilot", action="append", required=True,
                        help="DATASET=RUNS_CSV:HEADLINE[:BASELINE G/D/loss/stack] (lower is better, log scale)")
    parser.add_argument("--design", action="append", required=True,
                        help="DATASET:ROW_SEEDS:BASELINE_SEEDS[,DATASET:...] (repeatable: one design each)")
    parser.add_argument("--test", action="append", default=[],
                        help="DATASET=ROW;ROW;...: only these rows (G/D/loss/stack) get ROW_SEEDS and a test; the "
                        "others train one seed each (a smoke run, shown but not tested, so not in Holm's family)")
    parser.add_argument("--shrink", type=float, default=1.0)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    pilots = {}
    for item in args.pilot:
        dataset, rest = item.split("=", 1)
        path, headline, *baseline = rest.split(":")
        pilots[dataset] = pilot_rows(path, dataset, headline, baseline[0] if baseline else None)
    tested = {item.split("=", 1)[0]: item.split("=", 1)[1].split(";") for item in args.test}
    for dataset, (rows, baseline) in pilots.items():
        print(f"{dataset}: baseline {baseline}, log sd pooled {np.sqrt(np.nanmean(rows['sd'] ** 2)):.3f}")
        print(rows.assign(effect=rows["mean"] - rows.loc[baseline, "mean"])
               .sort_values("effect").round(3).to_string())
    print(f"\neffects x{args.shrink:g}, {args.trials} simulated tables per design")
    print("design | per table: decided (better) | P(>= 3 decided) | wall minutes")
    for design in args.design:
        rng = np.random.default_rng(0)
        total = np.zeros(args.trials, int)
        seconds, cells = 0.0, []
        for part in design.split(","):
            dataset, n_row, n_base = part.split(":")
            rows, baseline = pilots[dataset]
            keep = [baseline, *tested[dataset]] if dataset in tested else list(rows.index)
            decided, better = simulate(rows.loc[keep], baseline, int(n_row), int(n_base), args.shrink, args.trials, rng)
            total += decided
            smoke = rows["seconds"].drop(keep).sum()  # one seed each
            seconds += (rows["seconds"].loc[keep].drop(baseline).sum() * int(n_row) + smoke
                        + rows.loc[baseline, "seconds"] * int(n_base))
            cells.append(f"{dataset} {decided.mean():.1f} ({better.mean():.1f})")
        print(f"{design} | {', '.join(cells)} | {np.mean(total >= 3):.2f} | {seconds / args.workers / 60:.1f}")


if __name__ == "__main__":
    main()
