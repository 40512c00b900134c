"""Which per-run summary of the evaluation curve gives a table the most power: the measurement behind each
dataset's ``Judgement.window``.

Reads a sweep as ``ganzoo report`` writes it (``runs.csv`` and ``evals.csv``) and, for each dataset, headline
metric and window (the mean over a run's last K evaluations on the metric's scale; K = 1 is the final value),
prints the pooled within-row sd, the baseline's sd, each tested row's difference from the baseline with Welch's
p, and the mean standardised difference of those rows (|difference| / pooled sd: the power per seed a window
buys). A window may not reach into the first half of training: a mean over the whole curve measures how fast a
run learned, not where it got to. A late collapse moves a window-K headline by its K-th root, and the run's
state (collapsed, degraded) is still read at its final evaluation, whatever the window.

    python benchmarks/headline_windows.py --runs benchmarks/pilots/default-8x16-runs.csv \\
        --evals benchmarks/pilots/default-8x16-evals.csv --metric ring8=mode_kl:log --metric ring8=high_quality \\
        --metric digits=fid:log --windows 1 2 3 4
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ganzoo.report import stats

AXES = ["generator", "discriminator", "loss", "stack"]


def windowed(evals: pd.DataFrame, metric: str, window: int, log: bool) -> pd.Series:
    """run_id -> the mean of its last ``window`` values of ``metric`` (of the logs on the log scale)."""
    tail = evals.sort_values(["run_id", "index"]).groupby("run_id").tail(window)
    values = np.log(tail[metric].astype(float)) if log else tail[metric].astype(float)
    return values.groupby(tail["run_id"]).mean()


def table(runs: pd.DataFrame, evals: pd.DataFrame, dataset: str, metric: str, log: bool, window: int,
          baseline: str) -> tuple[dict, list[tuple[str, float, float, int]]]:
    done = runs[(runs["dataset"] == dataset) & (runs["status"] == "done")].copy()
    done["row"] = done[AXES].astype(str).agg("/".join, axis=1)
    done["value"] = done["run_id"].map(windowed(evals[evals["run_id"].isin(done["run_id"])], metric, window, log))
    groups = {row: g["value"].to_numpy() for row, g in done.groupby("row")}
    tested = {row: v for row, v in groups.items() if len(v) > 1}
    base = groups[baseline]
    pooled = stats.pooled_sd(list(tested.values()))
    rows = [(row, float(v.mean() - base.mean()), stats.welch_p(v, base) if len(v) > 1 else float("nan"), len(v))
            for row, v in groups.items() if row != baseline]
    standardised = [abs(d) / pooled for row, d, _, n in rows if n > 1]
    return {"pooled_sd": pooled, "baseline_sd": float(np.std(base, ddof=1)),
            "mean_abs_d": float(np.mean(standardised)) if standardised else float("nan")}, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", action="append", required=True,
                        help="a sweep's runs.csv (repeatable: sweeps of the same specs pool, e.g. a suite and its "
                        "replicate)")
    parser.add_argument("--evals", action="append", required=True, help="a sweep's evals.csv (one per --runs)")
    parser.add_argument("--metric", action="append", required=True,
                        help="DATASET=METRIC[:log] (log: compared on the log scale, as FID and mode_kl are)")
    parser.add_argument("--baseline", action="append", default=[],
                        help="DATASET=G/D/loss/stack (default: the row with the most seeds)")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    runs = pd.concat([pd.read_csv(path) for path in args.runs], ignore_index=True)
    evals = pd.concat([pd.read_csv(path) for path in args.evals], ignore_index=True)
    baselines = dict(item.split("=", 1) for item in args.baseline)
    n_evals = evals.groupby("run_id")["index"].max().max() + 1
    print(f"{len(runs)} runs, {n_evals} evaluations each at most; windows above {n_evals // 2} reach into the first "
          "half of training")
    for item in args.metric:
        dataset, spec = item.split("=", 1)
        metric, _, scale = spec.partition(":")
        done = runs[(runs["dataset"] == dataset) & (runs["status"] == "done")]
        rows = done[AXES].astype(str).agg("/".join, axis=1)
        baseline = baselines.get(dataset) or rows.value_counts().index[0]
        print(f"\n{dataset} {metric} ({scale or 'linear'} scale), baseline {baseline}")
        print("window | pooled sd | baseline sd | mean |d| of tested rows | tested rows: difference (Welch p)")
        for window in args.windows:
            summary, diffs = table(runs, evals, dataset, metric, scale == "log", window, baseline)
            tested = "; ".join(f"{row.replace('/', ' ')} {d:+.2f} (p {p:.3f})" for row, d, p, n in diffs if n > 1)
            print(f"{window} | {summary['pooled_sd']:.3f} | {summary['baseline_sd']:.3f} | "
                  f"{summary['mean_abs_d']:.2f} | {tested}")


if __name__ == "__main__":
    main()
