"""Runs -> leaderboard rows: one row per experiment, seed statistics, stability, and tests against the baseline.

A row is an *experiment*: runs whose resolved specs differ only by seed (hyperparameters, budget and
protocol included). Rows are ranked only within one (dataset, protocol fingerprint) table, by the
dataset's headline metric in its direction (``ganzoo.judgement``). In a one-factor suite each row is
compared with the baseline row over seeds (Welch's t-test, Holm's correction across the table, a
bootstrap CI of the difference of means); in a full design, marginal tables average each component
over the rest of the grid. Definitions: README, "Reading a leaderboard".
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ..judgement import DEFAULT_JUDGEMENT, Judgement
from ..records import DIVERGED, DONE, FAILED
from . import stats

TABLE_KEYS = ["dataset", "fingerprint"]
ROW_KEYS = ["dataset", "fingerprint", "experiment"]
AXES = ["generator", "discriminator", "loss", "stack"]
# Metrics shown beside the headline, in display order, and whether lower is better.
METRICS = {"fid": True, "is_mean": False, "kid_mean": True, "precision": False, "recall": False,
           "density": False, "coverage": False, "modes": False, "high_quality": False, "mode_kl": True,
           "classes": False, "class_kl": True}
ALPHA = 0.05
N_RESAMPLES = 10_000


def leaderboard(runs: pd.DataFrame, suite_record: Mapping[str, Any] | None = None,
                judgements: Mapping[str, Judgement] | None = None) -> pd.DataFrame:
    """Aggregate ``runs`` (from ``ganzoo.report.load_runs``) into ranked rows.

    Args:
        runs: one row per run, with the per-run stability columns ``load_runs`` adds.
        suite_record: the suite's design and baselines (``Store.suite_record``); without it no row is
            compared with a baseline.
        judgements: dataset -> ``Judgement``; missing datasets rank by FID.
    """
    if runs.empty or "status" not in runs:
        return pd.DataFrame()
    runs = runs[runs["status"].isin([DONE, DIVERGED, FAILED])].copy()
    if runs.empty:
        return pd.DataFrame()
    runs["fingerprint"] = runs["fingerprint"].fillna("")
    if "experiment" not in runs:
        runs["experiment"] = runs[AXES].astype(str).agg("/".join, axis=1)
    judgements = judgements or {}
    groups = dict(list(runs.groupby(ROW_KEYS, dropna=False, sort=False)))
    # The headline of each experiment's finished seeds, read once: the row's statistics and its test use it.
    values = {key: headline_values(group, judgements.get(key[0], DEFAULT_JUDGEMENT)) for key, group in groups.items()}
    # The bootstraps are most of a large board's time. Each draws its own seeded resamples and numpy draws
    # without holding the GIL, so rows are summarised and tested in threads: the same numbers, on all cores.
    with ThreadPoolExecutor(max_workers=_cores()) as pool:
        summaries = _summaries(values, judgements, pool)
        board = pd.DataFrame([_row(key, group, summaries[key], judgements.get(key[0], DEFAULT_JUDGEMENT))
                              for key, group in groups.items()])
        tables = []
        for (dataset, _), table in board.groupby(TABLE_KEYS, sort=True):
            judgement = judgements.get(dataset, DEFAULT_JUDGEMENT)
            table = _rank(table, judgement)
            baseline = ((suite_record or {}).get("datasets", {}).get(dataset, {}).get("baseline")
                        if (suite_record or {}).get("design", "one-factor") == "one-factor" else None)
            tables.append(_against_baseline(table, values, baseline, judgement, pool))
    return pd.concat(tables, ignore_index=True)


def _summaries(values: Mapping[tuple, np.ndarray], judgements: Mapping[str, Judgement],
               pool: Executor) -> dict[tuple, dict]:
    """``stats.summarize`` of each row's values, rows side by side in ``pool``."""
    def summary(key: tuple) -> dict:
        judgement = judgements.get(key[0], DEFAULT_JUDGEMENT)
        return stats.summarize(values[key], judgement.lower_is_better, n_resamples=N_RESAMPLES)

    return dict(zip(values, pool.map(summary, values), strict=True))


def _cores() -> int:
    """The cores this process may run on (a container's share, not the host's), at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def headline_values(runs: pd.DataFrame, judgement: Judgement) -> np.ndarray:
    """The headline metric of the runs that finished (diverged and failed seeds have none)."""
    done = runs[runs["status"] == DONE]
    return done[judgement.headline].astype(float).to_numpy() if judgement.headline in done else np.array([])


def _row(key: tuple, group: pd.DataFrame, summary: dict[str, float], judgement: Judgement) -> dict[str, Any]:
    """One experiment's row; ``summary``: ``stats.summarize`` of its finished seeds' headline."""
    done = group[group["status"] == DONE]
    first = group.iloc[0]
    row: dict[str, Any] = dict(zip(ROW_KEYS, key, strict=True))
    row.update({axis: first[axis] for axis in AXES})
    row["variant"] = first.get("variant", "") or ""
    n = len(group)
    # Seed counts: n_<state> columns, so a status name never doubles as a column name.
    row.update(seeds=n, finished=len(done), n_diverged=int((group["status"] == DIVERGED).sum()),
               n_failed=int((group["status"] == FAILED).sum()), n_collapsed=_count(group, "collapsed"),
               n_degraded=_count(group, "degraded"))
    unstable = group.get("unstable", group["status"] == DIVERGED).fillna(False).astype(bool)
    row["unstable"] = float(unstable.sum()) / n
    successes = group.get("success", pd.Series(dtype=object)).dropna()
    row["success"] = float(successes.astype(bool).sum()) / n if len(successes) else math.nan
    row["headline"] = judgement.headline
    row.update({k: summary[k] for k in ("mean", "std", "median", "q25", "q75", "iqr", "ci_low", "ci_high", "worst")})
    row["oscillation"] = _median(group.get("oscillation"))
    row["dropped"] = _mean(group.get("dropped"))
    for metric in METRICS:
        series = done[metric].astype(float) if metric in done else pd.Series(dtype=float)
        row[metric] = series.mean() if series.notna().any() else math.nan
        row[f"{metric}_std"] = series.std(ddof=1) if series.notna().sum() > 1 else math.nan
    for col in ("kimg", "g_steps"):
        row[col] = group[col].astype(float).mean() if col in group else math.nan
    row["imgs_per_s"] = done["imgs_per_s"].astype(float).mean() if len(done) and "imgs_per_s" in done else math.nan
    for col in ("extractor", "weights_hash", "n_fake", "n_real", "batch_size"):
        row[col] = group[col].dropna().iloc[0] if col in group and group[col].notna().any() else None
    return row


def _count(group: pd.DataFrame, flag: str) -> int:
    return int(group[flag].fillna(False).astype(bool).sum()) if flag in group else 0


def _median(series) -> float:
    return float(series.astype(float).median()) if series is not None and series.notna().any() else math.nan


def _mean(series) -> float:
    return float(series.astype(float).mean()) if series is not None and series.notna().any() else math.nan


def _rank(table: pd.DataFrame, judgement: Judgement) -> pd.DataFrame:
    """Best headline mean first; a row with no finished seed last; ties broken by the tiebreak metric."""
    keys, ascending = ["mean"], [judgement.lower_is_better]
    if judgement.tiebreak and judgement.tiebreak in table:
        keys.append(judgement.tiebreak)
        ascending.append(judgement.tiebreak_lower_is_better)
    table = table.sort_values(keys, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def _against_baseline(table: pd.DataFrame, values: Mapping[tuple, np.ndarray], baseline: Mapping[str, str] | None,
                      judgement: Judgement, pool: Executor) -> pd.DataFrame:
    """Welch's test of each row against the baseline row over seeds, Holm-corrected across the table; the rows'
    tests side by side in ``pool``."""
    table = table.copy()
    for col in ("diff", "diff_ci_low", "diff_ci_high", "p", "p_holm", "cliffs_delta", "flip_rate"):
        table[col] = math.nan
    table["is_baseline"] = False
    table["verdict"] = ""
    if not baseline:
        return table
    matches = table.index[(table[AXES].astype(str) == pd.Series(baseline)[AXES].astype(str)).all(axis=1)]
    if len(matches) == 0:
        return table
    base = table.loc[matches[0]]
    table.loc[matches[0], "is_baseline"] = True
    base_values = values[tuple(base[ROW_KEYS])]
    keys = dict(zip(table.index, zip(*(table[k] for k in ROW_KEYS), strict=True), strict=True))
    others = [index for index in table.index if index != matches[0]]
    results = list(pool.map(lambda index: stats.compare(
        base_values, values[keys[index]], judgement.lower_is_better, n_resamples=N_RESAMPLES), others))
    if others:  # one assignment for the table: a .loc per row costs more than a small table's tests
        table.loc[others, ["diff", "diff_ci_low", "diff_ci_high", "p", "cliffs_delta", "flip_rate"]] = [
            [r.diff, r.ci_low, r.ci_high, r.p, r.cliffs_delta, r.flip_rate] for r in results]
    table["p_holm"] = stats.holm(table["p"].to_numpy(dtype=float))
    table["verdict"] = [_verdict(is_baseline, p_holm, mean, base["mean"], judgement) for is_baseline, p_holm, mean
                        in zip(table["is_baseline"], table["p_holm"], table["mean"], strict=True)]
    return table


def _verdict(is_baseline: bool, p_holm: float, mean: float, base_mean: float, judgement: Judgement) -> str:
    if is_baseline:
        return "baseline"
    if math.isnan(p_holm):
        return "too few seeds"
    if p_holm < ALPHA:
        return "better" if judgement.better(mean, base_mean) else "worse"
    return "n.s."


def marginals(board: pd.DataFrame, judgements: Mapping[str, Judgement] | None = None) -> pd.DataFrame:
    """Full designs: each component's mean headline over every row it appears in, per axis and table.

    Each row of the board counts once (its seed mean), so an axis value's marginal is the average over
    the rest of the grid; ``rows`` says how many combinations it averages.
    """
    if board.empty:
        return pd.DataFrame()
    out = []
    for (dataset, fingerprint), table in board.groupby(TABLE_KEYS, sort=True):
        judgement = (judgements or {}).get(dataset, DEFAULT_JUDGEMENT)
        for axis in AXES:
            if table[axis].nunique() < 2:
                continue
            grouped = table.groupby(axis)["mean"].agg(["mean", "std", "count"]).reset_index()
            grouped = grouped.sort_values("mean", ascending=judgement.lower_is_better, na_position="last")
            for _, g in grouped.iterrows():
                out.append({"dataset": dataset, "fingerprint": fingerprint, "axis": axis, "component": g[axis],
                            "headline": judgement.headline, "mean": g["mean"], "std_over_rows": g["std"],
                            "rows": int(g["count"])})
    return pd.DataFrame(out)
