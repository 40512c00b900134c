"""How many seeds the default needs: expected verdicts and wall time of candidate designs, from pilot runs.

Reads a pilot sweep as ``ganzoo report`` writes it (``runs.csv``, and ``evals.csv`` for a headline over the last
evaluations), takes each run's headline on the analysis scale (log, for FID and mode_kl: the mean of the logs of
its last ``--window`` evaluations, as ``Judgement.run_headline`` reads it), and simulates the leaderboard's test
for candidate designs. A design names, per dataset, the baseline's seeds and the tested rows with theirs
(``ROW@SEEDS``); every other row trains one seed, shown but never tested (not in Holm's family). Values are drawn
normal with the pilot's row means, shrunk towards the baseline (``--shrink`` for rows the pilot ran on several
seeds, ``--shrink-single`` for one-seed rows, whose difference is mostly that seed's luck: the winner's curse),
and a spread halfway (in variance) between the row's own and the table's pooled one (the pooled one for a
one-seed row). Each tested row is compared with the baseline by Welch's test, Holm-corrected across its table,
as the leaderboard does. Printed per design: each table's expected decided rows, the chance of at least
``--want`` decided in all and of at least 2 per table, and the wall time on ``--workers`` single-thread workers
from the pilot runs' own seconds, with the seeds of a tested row trained as one vectorised group where
``--vectorized DATASET=FACTOR`` says how much faster a member of a group trains than a single run.

    python benchmarks/default_design.py --runs benchmarks/pilots/default-8x16-runs.csv \\
        --evals benchmarks/pilots/default-8x16-evals.csv --window ring8=2 --window digits=4 \\
        --headline ring8=mode_kl --headline digits=fid \\
        --design "ring8:12:mlp/mlp/ns/ema@6;mlp/mlp/ns/ttur@6,digits:6:dcgan/resnet_sngan/ns/none@3"
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ganzoo.api.judgement import Judgement
from ganzoo.report import stats

AXES = ["generator", "discriminator", "loss", "stack"]


def run_headlines(runs: pd.DataFrame, evals: pd.DataFrame | None, headline: str, window: int,
                  scale: str = "log") -> pd.Series:
    """Each finished run's headline on the analysis scale: the mean (of the logs, on the log scale) of its last
    ``window`` evaluations (the final value in runs.csv when there are no evaluations or the window is 1)."""
    to_scale = np.log if scale == "log" else (lambda values: values)
    if evals is None or window == 1:
        return to_scale(runs.set_index("run_id")[headline].astype(float))
    tail = evals[evals["run_id"].isin(runs["run_id"])].sort_values(["run_id", "index"]).groupby("run_id").tail(window)
    return to_scale(tail[headline].astype(float)).groupby(tail["run_id"]).mean()


def pilot_rows(runs: pd.DataFrame, evals: pd.DataFrame | None, dataset: str, headline: str, window: int,
               baseline: str | None, scale: str = "log") -> tuple[pd.DataFrame, str]:
    """Per row: mean and sd of the headline on its scale, seeds, seconds per run; and the baseline row's key."""
    runs = runs[(runs["dataset"] == dataset) & (runs["status"] == "done")].copy()
    runs["row"] = runs[AXES].astype(str).agg("/".join, axis=1)
    runs["value"] = runs["run_id"].map(run_headlines(runs, evals, headline, window, scale))
    rows = runs.groupby("row").agg(mean=("value", "mean"), sd=("value", "std"), n=("value", "size"),
                                   seconds=("seconds", "mean"))
    if baseline is None:  # the row with the default's baseline stack and loss: the most common axes
        baseline = "/".join(runs[a].mode().iloc[0] for a in AXES)
    if baseline not in rows.index:
        raise SystemExit(f"{dataset}: no baseline row {baseline!r} among {sorted(rows.index)}")
    return rows, baseline


def simulate(rows: pd.DataFrame, baseline: str, seeds: dict[str, int], n_base: int, shrink: float,
             shrink_single: float, trials: int, rng: np.random.Generator, lower_is_better: bool = True,
             few: int = 1,
             margin: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decided and better counts of ``trials`` simulated tables; ``seeds``: tested row -> its seeds. A row is
    decided when Holm's p < 0.05 (better or worse) or, given an equivalence ``margin`` (low, high) on the
    analysis scale, when Welch's 90% interval of its difference lies inside it (equivalent), as the
    leaderboard decides."""
    pooled = float(np.sqrt(np.nanmean(rows["sd"] ** 2)))
    sd = np.sqrt((rows["sd"].fillna(pooled) ** 2 + pooled**2) / 2)
    base_mean = rows.loc[baseline, "mean"]
    factor = np.where(rows["n"] > few, shrink, shrink_single)
    means = base_mean + factor * (rows["mean"] - base_mean)
    decided, better = np.zeros(trials, int), np.zeros(trials, int)
    for t in range(trials):
        base = rng.normal(base_mean, sd[baseline], n_base)
        draws = {r: rng.normal(means[r], sd[r], n) for r, n in seeds.items()}
        p = [stats.welch_p(base, draws[r]) for r in seeds]
        significant = stats.holm(p) < 0.05
        equivalent = np.zeros(len(seeds), bool)
        if margin is not None:
            low, high = np.array([stats.welch_interval(base, draws[r], 0.90) for r in seeds]).T
            equivalent = ~significant & (low > margin[0]) & (high < margin[1])
        improves = np.array([(draws[r].mean() < base.mean()) == lower_is_better for r in seeds])
        decided[t], better[t] = (significant | equivalent).sum(), (significant & improves).sum()
    return decided, better


def parse_design(text: str) -> dict[str, tuple[int, dict[str, int]]]:
    """``ring8:12:ROW@6;ROW@6,digits:6:ROW@3`` -> {dataset: (baseline seeds, {row: seeds})}."""
    out = {}
    for part in text.split(","):
        dataset, n_base, tested = part.split(":", 2)
        rows = dict(item.rsplit("@", 1) for item in tested.split(";") if item)
        out[dataset] = (int(n_base), {row: int(n) for row, n in rows.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", action="append", required=True,
                        help="a pilot's runs.csv (repeatable: the runs of several sweeps of one protocol pool)")
    parser.add_argument("--evals", action="append", default=[],
                        help="a pilot's evals.csv (needed for --window above 1; one per --runs)")
    parser.add_argument("--window", action="append", default=[],
                        help="DATASET=K: the evaluations averaged into a run's headline on DATASET (default 1)")
    parser.add_argument("--headline", action="append", required=True,
                        help="DATASET=METRIC[:BASELINE G/D/loss/stack] (lower is better, log scale unless "
                        "--scale and --higher say otherwise)")
    parser.add_argument("--scale", action="append", default=[], help="DATASET=log|linear (default log)")
    parser.add_argument("--higher", action="append", default=[], help="DATASET whose headline is higher-is-better")
    parser.add_argument("--margin", action="append", default=[],
                        help="DATASET=M: the equivalence margin (a ratio, e.g. 1.25, on the log scale; a share of "
                        "the baseline's value, e.g. 0.1, on the linear one); without it no row is equivalent")
    parser.add_argument("--design", action="append", required=True,
                        help="DATASET:BASELINE_SEEDS:ROW@SEEDS;ROW@SEEDS[,DATASET:...] (repeatable: one design each)")
    parser.add_argument("--vectorized", action="append", default=[],
                        help="DATASET=FACTOR: a tested row's seeds train as one group, each member FACTOR times as "
                        "fast as a single run (benchmarks/vectorized_groups.py measures it)")
    parser.add_argument("--shrink", type=float, default=0.75)
    parser.add_argument("--shrink-single", type=float, default=0.5)
    parser.add_argument("--few", type=int, default=1,
                        help="rows with at most this many pilot seeds take --shrink-single (default 1)")
    parser.add_argument("--want", type=int, default=10)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    runs = pd.concat([pd.read_csv(path) for path in args.runs], ignore_index=True)
    evals = pd.concat([pd.read_csv(path) for path in args.evals], ignore_index=True) if args.evals else None
    scales = {item.split("=")[0]: item.split("=")[1] for item in args.scale}
    margins = {item.split("=")[0]: float(item.split("=")[1]) for item in args.margin}
    windows = {item.split("=")[0]: int(item.split("=")[1]) for item in args.window}
    if any(k > 1 for k in windows.values()) and evals is None:
        parser.error("--window above 1 needs --evals")
    speedup = {item.split("=")[0]: float(item.split("=")[1]) for item in args.vectorized}
    pilots = {}
    for item in args.headline:
        dataset, rest = item.split("=", 1)
        headline, *baseline = rest.split(":")
        pilots[dataset] = pilot_rows(runs, evals, dataset, headline, windows.get(dataset, 1),
                                     baseline[0] if baseline else None, scales.get(dataset, "log"))
    for dataset, (rows, baseline) in pilots.items():
        print(f"{dataset}: baseline {baseline}, window {windows.get(dataset, 1)}, "
              f"{scales.get(dataset, 'log')} sd pooled {np.sqrt(np.nanmean(rows['sd'] ** 2)):.3f}")
        print(rows.assign(effect=rows["mean"] - rows.loc[baseline, "mean"]).sort_values("effect").round(3).to_string())
    print(f"\neffects x{args.shrink:g} (one-seed rows x{args.shrink_single:g}), {args.trials} simulated tables per "
          "design")
    print(f"design | per table: decided (better) | P(>= {args.want} decided) | P(>= 2 in every table) | wall minutes")
    for text in args.design:
        design = parse_design(text)
        rng = np.random.default_rng(0)
        total, every_two = np.zeros(args.trials, int), np.ones(args.trials, bool)
        seconds, cells = 0.0, []
        for dataset, (n_base, seeds) in design.items():
            rows, baseline = pilots[dataset]
            unknown = sorted(set(seeds) - set(rows.index))
            if unknown:
                raise SystemExit(f"{dataset}: no pilot row {unknown}; rows: {sorted(rows.index)}")
            margin = None
            if dataset in margins:  # the leaderboard's own bounds, around the pilot baseline's mean
                margin = Judgement(scale=scales.get(dataset, "log"), margin=margins[dataset],
                                   margin_reason="simulated").margin_bounds(rows.loc[baseline, "mean"])
            decided, better = simulate(rows, baseline, seeds, n_base, args.shrink, args.shrink_single, args.trials,
                                       rng, dataset not in args.higher, args.few, margin)
            total += decided
            every_two &= decided >= 2
            group = speedup.get(dataset, 1.0)
            tested = [baseline, *seeds]
            seconds += rows["seconds"].drop(tested).sum()  # one seed each, trained alone
            seconds += sum(rows.loc[row, "seconds"] * n / (group if n > 1 else 1.0)
                           for row, n in [(baseline, n_base), *seeds.items()])
            cells.append(f"{dataset} {decided.mean():.1f} ({better.mean():.1f})")
        print(f"{text} | {', '.join(cells)} | {np.mean(total >= args.want):.2f} | {np.mean(every_two):.2f} | "
              f"{seconds / args.workers / 60:.1f}")


if __name__ == "__main__":
    main()
