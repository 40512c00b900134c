"""Runs -> leaderboard rows: one row per experiment, seed statistics, stability, and tests against the baseline.

A row is an *experiment*: runs whose resolved specs differ only by seed (hyperparameters, budget and
protocol included). Rows are ranked only within one (dataset, protocol fingerprint) table, by the centre of
the dataset's headline metric in its direction (``ganzoo.api.judgement``): the mean with Student's t interval, or
on the log scale (``Judgement.scale``) the geometric mean with exp of the t interval of the logs. In a
one-factor suite each row is compared with the baseline row over seeds on that scale: Welch's interval of the
difference (or of the ratio of geometric means), Welch's test, Holm's correction across the table, and the
axes in which the row differs from the baseline (a *package* when several change at once). Each table's
power is its minimum detectable difference (``mde``). In a full design, marginal tables average each
component over the rest of the grid. Definitions: docs/reading-results.md, "Reading a leaderboard" and "Statistics".
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ..api.judgement import DEFAULT_JUDGEMENT, Judgement
from ..core.records import DIVERGED, DONE, FAILED, SuiteRecord
from ..core.registry import Registry, metric_registry
from ..run.suite import AXES as SUITE_AXES
from . import stats

TABLE_KEYS = ["dataset", "fingerprint"]
ROW_KEYS = ["dataset", "fingerprint", "experiment"]
AXES = list(SUITE_AXES)  # one definition of the axes (ganzoo.run.suite); a list, as pandas indexes with it
# What datasets compute themselves (Dataset.extra_metrics) and whether lower is better; the registered
# metrics' columns (ganzoo.api.components.Metric) come before them.
DATASET_METRICS = {"modes": False, "high_quality": False, "mode_kl": True, "classes": False, "class_kl": True}
ALPHA = 0.05
POWER = 0.8  # the power a table's minimum detectable difference is quoted at
N_RESAMPLES = 10_000


def metric_directions(registry: Registry | None = None) -> dict[str, bool]:
    """The metrics shown beside the headline, in display order, each with whether lower is better.

    The registered metrics' columns (built-in first, then the plugins', as registered), then the datasets' own.
    Without ``registry``: ``metric_registry()``, which reads them without importing the zoo's networks.
    """
    registry = registry or metric_registry()
    registered = {column: m.lower_is_better for m in registry.metrics() for column in m.columns}
    return registered | {k: v for k, v in DATASET_METRICS.items() if k not in registered}


def leaderboard(runs: pd.DataFrame, suite_record: SuiteRecord | Mapping[str, Any] | None = None,
                judgements: Mapping[str, Judgement] | None = None,
                metrics: Mapping[str, bool] | None = None) -> pd.DataFrame:
    """Aggregate ``runs`` (from ``ganzoo.report.load_runs``) into ranked rows.

    Args:
        runs: one row per run, with the per-run stability columns ``load_runs`` adds.
        suite_record: the suite's design and baselines (``Store.read_suite_record``, or its stored dict); without
            it no row is compared with a baseline.
        judgements: dataset -> ``Judgement``; missing datasets rank by FID.
        metrics: the columns averaged beside the headline, with their directions (default:
            ``metric_directions()``, the registered metrics' and the datasets' own).
    """
    if runs.empty or "status" not in runs:
        return pd.DataFrame()
    runs = runs[runs["status"].isin([DONE, DIVERGED, FAILED])].copy()
    if runs.empty:
        return pd.DataFrame()
    runs["fingerprint"] = runs["fingerprint"].fillna("")
    if "experiment" not in runs:
        runs["experiment"] = runs[AXES].astype(str).agg("/".join, axis=1)
    judgements, record = judgements or {}, SuiteRecord.from_dict(suite_record)
    metrics = metric_directions() if metrics is None else metrics
    groups = dict(list(runs.groupby(ROW_KEYS, dropna=False, sort=False)))
    # The headline of each experiment's finished seeds, read once: the row's statistics and its test use it.
    values = {key: headline_values(group, judgements.get(key[0], DEFAULT_JUDGEMENT)) for key, group in groups.items()}
    summaries = {key: stats.summarize(vals, judgements.get(key[0], DEFAULT_JUDGEMENT).lower_is_better)
                 for key, vals in values.items()}
    board = pd.DataFrame([_row(key, group, summaries[key], judgements.get(key[0], DEFAULT_JUDGEMENT), metrics)
                          for key, group in groups.items()])
    # The flip rates' bootstraps are most of a large board's time. Each draws its own seeded resamples and numpy
    # draws without holding the GIL, so rows are tested in threads: the same numbers, on all cores.
    with ThreadPoolExecutor(max_workers=_cores()) as pool:
        tables = []
        for (dataset, _), table in board.groupby(TABLE_KEYS, sort=True):
            judgement = judgements.get(dataset, DEFAULT_JUDGEMENT)
            table = _sort(_centers(table, values, judgement), judgement)
            table = _against_baseline(table, values, record.baseline(dataset), judgement, pool)
            tables.append(_rank(_power(table, values)))
    return pd.concat(tables, ignore_index=True)


def row_label(row) -> str:
    """How reports name a row: G/D/loss/stack, and its hyperparameter variant if it has one."""
    label = "/".join(str(row[a]) for a in AXES)
    return f"{label} ({row['variant']})" if row.get("variant") else label


def _centers(table: pd.DataFrame, values: Mapping[tuple, np.ndarray], judgement: Judgement) -> pd.DataFrame:
    """Each row's centre and 95% interval on the table's analysis scale (``scale``, ``scale_note`` columns).

    The log scale applies to a whole table or not at all, so that every row is read the same way: one value
    <= 0 anywhere puts the table on the linear scale, and ``scale_note`` says which row had it.
    """
    table = table.copy()
    keys = [tuple(k) for k in table[ROW_KEYS].itertuples(index=False)]
    scale, note = judgement.scale, ""
    if scale == "log":
        bad = [key for key in keys if not stats.log_applicable(values[key])]
        if bad:
            row = table.iloc[keys.index(bad[0])]
            worst = float(np.nanmin(values[bad[0]]))
            scale = "linear"
            note = (f"analysed on the linear scale: the log scale was asked for, but `{row_label(row)}` has a "
                    f"{judgement.headline} of {worst:.4g} (<= 0)")
    centres = [stats.center(values[key], scale) for key in keys]
    table["scale"], table["scale_note"] = scale, note
    table["center"] = [c[0] for c in centres]
    table["ci_low"] = [c[1] for c in centres]
    table["ci_high"] = [c[2] for c in centres]
    return table


def _cores() -> int:
    """The cores this process may run on (a container's share, not the host's), at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def run_values(runs: pd.DataFrame, judgement: Judgement) -> pd.Series:
    """Each run's headline value, aligned with ``runs``: the ``headline`` column ``load_runs`` writes
    (``Judgement.run_headline`` of the run's curve), else, for a run read without its evaluations, the headline
    metric's final value; NaN where neither is there."""
    final = runs[judgement.headline].astype(float) if judgement.headline in runs else None
    if "headline" not in runs:
        return final if final is not None else pd.Series(np.nan, index=runs.index)
    values = runs["headline"].astype(float)
    return values if final is None else values.fillna(final)


def headline_values(runs: pd.DataFrame, judgement: Judgement) -> np.ndarray:
    """The headline values (``run_values``) of the runs that finished (diverged and failed seeds have none)."""
    done = runs[runs["status"] == DONE]
    if "headline" not in done and judgement.headline not in done:
        return np.array([])
    return run_values(done, judgement).to_numpy()


def _row(key: tuple, group: pd.DataFrame, summary: dict[str, float], judgement: Judgement,
         metrics: Mapping[str, bool]) -> dict[str, Any]:
    """One experiment's row; ``summary``: ``stats.summarize`` of its finished seeds' headline."""
    done = group[group["status"] == DONE]
    first = group.iloc[0]
    row: dict[str, Any] = dict(zip(ROW_KEYS, key, strict=True))
    row.update({axis: first[axis] for axis in AXES})
    row["variant"] = first.get("variant", "") or ""
    parts = group["stack_parts"].dropna() if "stack_parts" in group else pd.Series(dtype=object)
    row["stack_parts"] = str(parts.iloc[0]) if len(parts) else None  # None: composition not recorded
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
    row["headline_summary"] = judgement.window_text()
    finals = done[judgement.headline].astype(float) if judgement.headline in done else pd.Series(dtype=float)
    row["n_at_ceiling"] = (int(np.isclose(finals, judgement.ceiling, rtol=0, atol=1e-9).sum())
                           if judgement.ceiling is not None else 0)
    row.update({k: summary[k] for k in ("mean", "std", "median", "q25", "q75", "iqr", "ci_low", "ci_high", "worst")})
    row["oscillation"] = _median(group.get("oscillation"))
    row["dropped"] = _mean(group.get("dropped"))
    for metric in metrics:
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


def _sort(table: pd.DataFrame, judgement: Judgement) -> pd.DataFrame:
    """Best centre (on the analysis scale) first; a row with no finished seed last; ties by the tiebreak metric."""
    keys, ascending = ["center"], [judgement.lower_is_better]
    if judgement.tiebreak and judgement.tiebreak in table:
        keys.append(judgement.tiebreak)
        ascending.append(judgement.tiebreak_lower_is_better)
    return table.sort_values(keys, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)


def _rank(table: pd.DataFrame) -> pd.DataFrame:
    """Ranks for the rows that were tested (the baseline and the rows with a test against it), in centre order;
    the others follow unranked (``rank`` NaN): with one seed, or no baseline to test against, their order is noise.
    """
    tested = table["is_baseline"] & table["p"].notna().any() | table["p"].notna()
    table = pd.concat([table[tested], table[~tested]], ignore_index=True)
    ranks = pd.Series(np.nan, index=table.index)
    ranks[: int(tested.sum())] = np.arange(1, int(tested.sum()) + 1)
    table.insert(0, "rank", ranks)
    return table


COMPARISON_COLUMNS = ("diff", "diff_ci_low", "diff_ci_high", "ratio", "ratio_ci_low", "ratio_ci_high", "p",
                      "cliffs_delta", "flip_rate", "diff_90_low", "diff_90_high", "se", "df")
EQUIVALENCE_CONFIDENCE = 0.90  # two one-sided tests at 5%: the 90% interval inside the margin


def _against_baseline(table: pd.DataFrame, values: Mapping[tuple, np.ndarray], baseline: Mapping[str, str] | None,
                      judgement: Judgement, pool: Executor) -> pd.DataFrame:
    """Each row against the baseline row over seeds on the table's scale (``stats.contrast``: Welch's interval and
    test), Holm-corrected across the table, with the axes each row changes; the rows' tests side by side in
    ``pool``."""
    table = table.copy()
    for col in (*COMPARISON_COLUMNS, "p_holm", "margin_low", "margin_high", "seeds_to_decide",
                "baseline_seeds_to_decide"):
        table[col] = math.nan
    table["is_baseline"] = False
    table["verdict"] = ""
    table["differs_in"] = ""
    table["package"] = False
    if not baseline:
        return table
    matches = table.index[(table[AXES].astype(str) == pd.Series(baseline)[AXES].astype(str)).all(axis=1)]
    if len(matches) == 0:
        return table
    base = table.loc[matches[0]]
    table.loc[matches[0], "is_baseline"] = True
    scale = base["scale"]
    base_values = values[tuple(base[ROW_KEYS])]
    keys = dict(zip(table.index, zip(*(table[k] for k in ROW_KEYS), strict=True), strict=True))
    others = [index for index in table.index if index != matches[0]]

    def compare(index) -> list[float]:
        row_values = values[keys[index]]
        result = stats.contrast(base_values, row_values, scale)
        # The flip rate reads the scale of the test: the order of geometric means is the order of mean logs.
        on_scale = np.log if scale == "log" else np.asarray
        flips = stats.flip_rate(on_scale(base_values), on_scale(row_values), judgement.lower_is_better,
                                n_resamples=N_RESAMPLES)
        on_a, on_b = on_scale(base_values), on_scale(row_values)
        low_90, high_90 = stats.welch_interval(on_a, on_b, EQUIVALENCE_CONFIDENCE)
        return [result.diff, result.diff_ci_low, result.diff_ci_high, result.ratio, result.ratio_ci_low,
                result.ratio_ci_high, result.p, stats.cliffs_delta(base_values, row_values), flips, low_90, high_90,
                *stats.welch_se_df(on_a, on_b)]

    if others:  # one assignment for the table: a .loc per row costs more than a small table's tests
        table.loc[others, list(COMPARISON_COLUMNS)] = list(pool.map(compare, others))
        differs = [differing_axes(table.loc[index], base) for index in others]
        table.loc[others, "differs_in"] = ["+".join(axes) or "hyperparameters" for axes in differs]
        table.loc[others, "package"] = [is_package(table.loc[index], axes)
                                        for index, axes in zip(others, differs, strict=True)]
    table["p_holm"] = stats.holm(table["p"].to_numpy(dtype=float))
    bounds = judgement.margin_bounds(base["center"]) if scale == judgement.scale else None
    m = max(int(table["p"].notna().sum()), 1)
    table["margin_low"], table["margin_high"] = bounds if bounds else (math.nan, math.nan)
    table["verdict"] = [verdict(r["is_baseline"], r["p_holm"], r["diff"], r["diff_90_low"], r["diff_90_high"], bounds,
                                judgement) for _, r in table.iterrows()]
    # An undecided row: the multiple of today's seeds (row and baseline alike) that would decide it, 80% of the time.
    factors = [stats.runs_factor_to_decide(r["diff"], r["se"], r["df"], bounds[1] if bounds else None, ALPHA, m, POWER)
               if r["verdict"] == UNDECIDED else math.nan for _, r in table.iterrows()]
    table["seeds_to_decide"] = [_times(f, n) for f, n in zip(factors, table["finished"], strict=True)]
    table["baseline_seeds_to_decide"] = [_times(f, base["finished"]) for f in factors]
    return table


def _times(factor: float, n: int) -> float:
    return math.ceil(factor * n - 1e-9) if math.isfinite(factor) else factor


def differing_axes(row, base) -> list[str]:
    """The axes (of ``AXES``) in which ``row`` is not the baseline ``base``."""
    return [axis for axis in AXES if str(row[axis]) != str(base[axis])]


def stack_parts(row) -> list[str]:
    """The stabilizers the row's stack is made of; just its name when the composition was not recorded."""
    parts = row.get("stack_parts")
    if parts is None or (isinstance(parts, float) and math.isnan(parts)):
        return [] if row["stack"] == "none" else [str(row["stack"])]
    return [p for p in str(parts).split(",") if p]


def is_package(row, axes: list[str]) -> bool:
    """Whether the row changes several things at once: more than one axis, or a stack of several stabilizers.

    Its difference to the baseline is then the package's, not the effect of any one component.
    """
    return len(axes) > 1 or ("stack" in axes and len(stack_parts(row)) > 1)


def package_text(row, base) -> str:
    """What a package changes, e.g. "loss wasserstein + stack wgan_gp: gradient_penalty, d_steps, ttur"."""
    out = []
    for axis in differing_axes(row, base):
        parts = stack_parts(row) if axis == "stack" else []
        out.append(f"{axis} {row[axis]}" + (f": {', '.join(parts)}" if len(parts) > 1 else ""))
    return " + ".join(out)


BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"
DECIDED = (BETTER, WORSE, EQUIVALENT)


def verdict(is_baseline: bool, p_holm: float, effect: float, low_90: float, high_90: float,
            bounds: tuple[float, float] | None, judgement: Judgement) -> str:
    """One of three verdicts on an effect (row or component minus its baseline, on the analysis scale), else why not.

    *better* / *worse*: Holm-adjusted p < ALPHA, in the headline's direction; *equivalent*: not that, and the 90%
    interval lies inside the margin the judgement declared (``bounds``); *undecided*: neither. "baseline" and
    "too few seeds" (no test) are not verdicts.
    """
    if is_baseline:
        return "baseline"
    if math.isnan(p_holm):
        return "too few seeds"
    if p_holm < ALPHA:
        return BETTER if judgement.better(effect, 0.0) else WORSE
    if bounds and bounds[0] < low_90 and high_90 < bounds[1]:
        return EQUIVALENT
    return UNDECIDED


def _power(table: pd.DataFrame, values: Mapping[tuple, np.ndarray]) -> pd.DataFrame:
    """The table's power: the minimum detectable difference at its usual seed count for Welch's test, the test the
    table uses (``stats.welch_mde``), 80% power, alpha 0.05 / m with m the rows compared with the baseline (Holm's
    first step; 1 without a baseline), from the baseline's own sd and the other rows' pooled sd on the analysis
    scale. Columns ``pooled_sd`` (all rows), ``baseline_sd``, ``row_sd``, ``mde_seeds``, ``n_compared`` and
    ``mde``: a difference in headline units on the linear scale, a factor (>= 1, either way) on the log scale."""
    table = table.copy()
    scale = table["scale"].iloc[0]
    on_scale = [np.log(v[~np.isnan(v)]) if scale == "log" else v for v in
                (values[tuple(k)] for k in table[ROW_KEYS].itertuples(index=False))]
    sd = stats.pooled_sd(on_scale)
    # Welch's test gives each group its own spread: the baseline's own sd, and the rows' pooled one.
    base_rows = [v for v, is_base in zip(on_scale, table["is_baseline"], strict=True) if is_base]
    row_sd = stats.pooled_sd([v for v, is_base in zip(on_scale, table["is_baseline"], strict=True) if not is_base])
    row_sd = sd if math.isnan(row_sd) else row_sd
    base_sd = stats.pooled_sd(base_rows) if base_rows else math.nan
    base_sd = row_sd if math.isnan(base_sd) else base_sd
    counts = table.loc[(table["finished"] >= 2) & ~table["is_baseline"], "finished"]
    n = int(counts.mode().min()) if len(counts) else 0  # the most common count; the smaller of equally common
    # A suite may give the baseline more seeds than a row (it is in every comparison): its own count then.
    base = table.loc[table["is_baseline"], "finished"]
    n_base = int(base.iloc[0]) if len(base) and base.iloc[0] >= 2 else n
    compared = int(table["p"].notna().sum())
    difference = (stats.welch_mde(n_base, n, base_sd, row_sd, alpha=ALPHA, m=max(compared, 1), power=POWER)
                  if n >= 2 else math.nan)
    table["pooled_sd"], table["mde_seeds"], table["mde_baseline_seeds"] = sd, n, n_base
    table["row_sd"], table["baseline_sd"] = row_sd, base_sd
    table["n_compared"] = compared
    table["mde"] = math.exp(difference) if scale == "log" else difference
    return table


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
