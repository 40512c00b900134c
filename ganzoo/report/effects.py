"""Crossed designs: each component's effect across every run it appears in, interactions, and improvement odds.

In a full (or fractional) design a component appears in many cells, each trained with other components, so it
is judged by an additive model on the headline's analysis scale: ordinary least squares of log headline (or the
headline, on the linear scale) on one factor per axis, treatment-coded against the axis's reference level (the
suite's baseline component, else the first level by name). A component's *effect* is its coefficient: a ratio
exp(beta) of geometric means on the log scale, a difference on the linear one. In a balanced crossed design it
equals the component's marginal mean minus its reference's on the analysis scale. Standard errors are HC3
(MacKinnon & White 1985: robust to unequal spreads across cells, and the least optimistic of the HC family at a
few runs per cell); intervals and tests use t with the residual df; Holm corrects across each axis's components.
Verdicts are the one-factor tables' (``leaderboard.verdict``): better, worse, equivalent (90% interval inside the
judgement's margin), else undecided with the runs that would decide it.

The additive model assumes a component's effect is the same whatever the rest of the cell: a nested-model F
test per pair of axes (additive vs additive + that pair's interaction) checks it, and the effect of each
component at each level of the other axis says where it changes. The probability of improvement (Agarwal et al.
2021, rliable's definition) is the chance that a run with the component beats a run with the reference level,
with a stratified bootstrap interval (``stats.probability_of_improvement``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from ..api.judgement import DEFAULT_JUDGEMENT, Judgement
from ..core.records import CROSSED_DESIGNS, DONE, SuiteRecord
from . import stats
from .leaderboard import ALPHA, AXES, EQUIVALENCE_CONFIDENCE, POWER, TABLE_KEYS, UNDECIDED, headline_values, verdict

EFFECT_COLUMNS = ["dataset", "fingerprint", "headline", "scale", "axis", "component", "reference", "runs",
                  "reference_runs", "effect", "low", "high", "low_90", "high_90", "coef", "se", "df", "p", "p_holm",
                  "verdict", "runs_to_decide", "mde", "poi", "poi_low", "poi_high", "interacts_with", "note"]
INTERACTION_COLUMNS = ["dataset", "fingerprint", "axis", "other", "f", "df_num", "df_den", "p", "p_holm"]
CELL_COLUMNS = ["dataset", "fingerprint", "axis", "component", "other", "level", "effect", "runs"]


@dataclass(frozen=True)
class Fit:
    """An ordinary least-squares fit with HC3 standard errors.

    ``params`` and ``se`` per column of the design matrix (NaN for a column dropped as collinear with earlier
    ones, or an SE where a run has leverage 1: its residual is 0 by construction and says nothing about spread);
    ``df``: residual degrees of freedom (n - rank); ``rss``: residual sum of squares.
    """

    params: np.ndarray
    se: np.ndarray
    df: int
    rss: float


def ols_hc3(x: np.ndarray, y: np.ndarray) -> Fit:
    """Least squares of ``y`` on the columns of ``x``, with heteroskedasticity-robust (HC3) standard errors.

    Columns that are linear combinations of earlier ones (a design that confounds them) are dropped and their
    coefficients reported as NaN, never as an arbitrary split.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"x must be (runs, columns) and y (runs,), got shapes {x.shape} and {y.shape}")
    kept = _independent_columns(x)
    xk = x[:, kept]
    beta, *_ = np.linalg.lstsq(xk, y, rcond=None)
    residuals = y - xk @ beta
    df = len(y) - len(kept)
    params, se = np.full(x.shape[1], np.nan), np.full(x.shape[1], np.nan)
    params[kept] = beta
    if df >= 1:
        bread = np.linalg.inv(xk.T @ xk)
        leverage = np.einsum("ij,jk,ik->i", xk, bread, xk)
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = np.where(leverage < 1 - 1e-9, residuals**2 / (1 - leverage) ** 2, np.nan)
        if not np.isnan(weights).any():
            cov = bread @ (xk.T * weights) @ xk @ bread
            se[kept] = np.sqrt(np.diag(cov))
    return Fit(params, se, df, float(residuals @ residuals))


def _independent_columns(x: np.ndarray) -> list[int]:
    """The columns left after dropping each that is a linear combination of the ones before it."""
    if np.linalg.matrix_rank(x) == x.shape[1]:  # the usual case: one decomposition, no search
        return list(range(x.shape[1]))
    kept: list[int] = []
    for j in range(x.shape[1]):
        if np.linalg.matrix_rank(x[:, kept + [j]]) == len(kept) + 1:
            kept.append(j)
    return kept


def design_matrix(frame: pd.DataFrame, references: Mapping[str, str]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """An intercept and one indicator per non-reference level of each axis in ``references`` (treatment coding).

    Returns the matrix and the (axis, level) each indicator column stands for (the intercept is column 0).
    """
    columns, names = [np.ones(len(frame))], []
    for axis, reference in references.items():
        for level in sorted(set(frame[axis].astype(str)) - {reference}):
            columns.append((frame[axis].astype(str) == level).to_numpy(dtype=float))
            names.append((axis, level))
    return np.column_stack(columns), names


def effects(runs: pd.DataFrame, suite_record: SuiteRecord | Mapping | None = None,
            judgements: Mapping[str, Judgement] | None = None, n_resamples: int = 2000,
            seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The effects analysis of every (dataset, protocol) table of ``runs`` (``load_runs``'s frame).

    Returns:
        (effects, interactions, cells): one row per (dataset, protocol, axis, component) with ``EFFECT_COLUMNS``;
        one per pair of axes with the F test of their interaction (``INTERACTION_COLUMNS``); and each
        component's effect at each level of each other axis (``CELL_COLUMNS``), on the effect's scale.
    """
    record = SuiteRecord.from_dict(suite_record)
    out = ([], [], [])
    if runs.empty or "status" not in runs:
        return tuple(pd.DataFrame(columns=c) for c in (EFFECT_COLUMNS, INTERACTION_COLUMNS, CELL_COLUMNS))
    runs = runs.copy()
    runs["fingerprint"] = runs["fingerprint"].fillna("")
    for (dataset, fingerprint), table in runs.groupby(TABLE_KEYS, sort=True):
        if suite_record is not None and record.design_of(dataset) not in CROSSED_DESIGNS:
            continue  # a one-factor table is tested row against baseline (ganzoo.report.leaderboard)
        judgement = (judgements or {}).get(dataset, DEFAULT_JUDGEMENT)
        recorded = record.datasets.get(dataset)
        baseline = dict(recorded.baseline) if recorded and recorded.baseline else {}
        for part, rows in zip(out, _table_effects(dataset, fingerprint, table, judgement, baseline, n_resamples,
                                                  seed), strict=True):
            part.extend(rows)
    return tuple(pd.DataFrame(rows, columns=c)
                 for rows, c in zip(out, (EFFECT_COLUMNS, INTERACTION_COLUMNS, CELL_COLUMNS), strict=True))


def _table_effects(dataset: str, fingerprint: str, table: pd.DataFrame, judgement: Judgement,
                   baseline: Mapping[str, str], n_resamples: int, seed: int) -> tuple[list, list, list]:
    done = table[table["status"] == DONE]
    values = headline_values(done, judgement)
    done = done[np.isfinite(values)].copy() if len(values) else done.iloc[:0]
    values = values[np.isfinite(values)] if len(values) else values
    axes = [a for a in AXES if a in done and done[a].astype(str).nunique() > 1]
    if len(done) < 3 or not axes:
        return [], [], []
    scale, note = judgement.scale, ""
    if scale == "log" and not stats.log_applicable(values):
        scale, note = "linear", f"linear scale: a {judgement.headline} <= 0 leaves no log"
    y = np.log(values) if scale == "log" else values
    references = {a: _reference(done[a].astype(str), baseline.get(a)) for a in axes}
    x, names = design_matrix(done, references)
    fit = ols_hc3(x, y)
    t95 = scipy_stats.t.ppf(0.975, fit.df) if fit.df >= 1 else math.nan
    t90 = scipy_stats.t.ppf(0.5 + EQUIVALENCE_CONFIDENCE / 2, fit.df) if fit.df >= 1 else math.nan
    interactions, cells = _interactions(dataset, fingerprint, done, y, x, fit, references, scale)
    interacting = {}
    for row in interactions:
        if row["p_holm"] < ALPHA:
            interacting.setdefault(row["axis"], []).append(row["other"])
            interacting.setdefault(row["other"], []).append(row["axis"])
    rows = []
    for axis in axes:
        reference = references[axis]
        at_reference = done[axis].astype(str) == reference
        bounds = judgement.margin_bounds(float(np.mean(values[at_reference.to_numpy()])))
        bounds = bounds if scale == judgement.scale else None
        indices = [i + 1 for i, (a, _) in enumerate(names) if a == axis]  # +1: column 0 is the intercept
        p = [2 * scipy_stats.t.sf(abs(fit.params[i] / fit.se[i]), fit.df) if fit.se[i] > 0 else math.nan
             for i in indices]
        p_holm = stats.holm(np.asarray(p, dtype=float))
        m = max(int(np.sum(~np.isnan(p))), 1)
        for i, p_i, holm_i in zip(indices, p, p_holm, strict=True):
            level = names[i - 1][1]
            coef, se = fit.params[i], fit.se[i]
            low, high = coef - t95 * se, coef + t95 * se
            low_90, high_90 = coef - t90 * se, coef + t90 * se
            decided = verdict(False, holm_i, coef, low_90, high_90, bounds, judgement)
            factor = (stats.runs_factor_to_decide(coef, se, fit.df, bounds[1] if bounds else None, ALPHA, m, POWER)
                      if decided == UNDECIDED else math.nan)
            with_level = (done[axis].astype(str) == level).to_numpy()
            poi = stats.probability_of_improvement(values[at_reference.to_numpy()], values[with_level],
                                                   judgement.lower_is_better, n_resamples=n_resamples, seed=seed)
            on_scale = (lambda v: math.exp(v)) if scale == "log" else (lambda v: v)
            rows.append({
                "dataset": dataset, "fingerprint": fingerprint, "headline": judgement.headline, "scale": scale,
                "axis": axis, "component": level, "reference": reference, "runs": int(with_level.sum()),
                "reference_runs": int(at_reference.sum()), "effect": on_scale(coef), "low": on_scale(low),
                "high": on_scale(high), "low_90": on_scale(low_90), "high_90": on_scale(high_90), "coef": coef,
                "se": se, "df": fit.df, "p": p_i, "p_holm": holm_i,
                "verdict": "not estimable" if math.isnan(coef) else decided,
                "runs_to_decide": (math.ceil(factor * len(done) - 1e-9) if math.isfinite(factor) else factor),
                "mde": on_scale(stats.t_mde(se, fit.df, ALPHA, m, POWER)),
                "poi": poi[0], "poi_low": poi[1], "poi_high": poi[2],
                "interacts_with": "+".join(sorted(interacting.get(axis, []))),
                "note": note if not math.isnan(coef) else "confounded with other components in this design"})
    return rows, interactions, cells


def _reference(levels: pd.Series, baseline_level: str | None) -> str:
    """The suite's baseline component on this axis when it was run, else the first level by name."""
    present = sorted(set(levels))
    return str(baseline_level) if baseline_level is not None and str(baseline_level) in present else present[0]


def _interactions(dataset: str, fingerprint: str, done: pd.DataFrame, y: np.ndarray, x: np.ndarray, fit: Fit,
                  references: Mapping[str, str], scale: str) -> tuple[list, list]:
    """Per pair of axes: the F test of additive vs additive + their interaction; each component's effect at each
    level of the other axis (cell means on the analysis scale, component minus reference)."""
    axes = list(references)
    tests, cells = [], []
    base_rank = len(_independent_columns(x))
    for i, axis in enumerate(axes):
        for other in axes[i + 1:]:
            a = [(done[axis].astype(str) == lv).to_numpy(float) for lv in sorted(set(done[axis].astype(str)))
                 if lv != references[axis]]
            b = [(done[other].astype(str) == lv).to_numpy(float) for lv in sorted(set(done[other].astype(str)))
                 if lv != references[other]]
            full = np.column_stack([x, *[u * v for u in a for v in b]])
            full_fit = ols_hc3(full, y)
            q = len(_independent_columns(full)) - base_rank
            f = p = math.nan
            if q >= 1 and full_fit.df >= 1 and full_fit.rss > 0:
                f = ((fit.rss - full_fit.rss) / q) / (full_fit.rss / full_fit.df)
                p = float(scipy_stats.f.sf(f, q, full_fit.df))
            tests.append({"dataset": dataset, "fingerprint": fingerprint, "axis": axis, "other": other, "f": f,
                          "df_num": q, "df_den": full_fit.df, "p": p})
    for row, p_holm in zip(tests, stats.holm(np.asarray([t["p"] for t in tests], dtype=float)), strict=True):
        row["p_holm"] = p_holm
    for axis in axes:
        for other in axes:
            if other == axis:
                continue
            for level in sorted(set(done[other].astype(str))):
                here = done[other].astype(str) == level
                ref = y[(here & (done[axis].astype(str) == references[axis])).to_numpy()]
                for component in sorted(set(done[axis].astype(str)) - {references[axis]}):
                    with_it = y[(here & (done[axis].astype(str) == component)).to_numpy()]
                    diff = with_it.mean() - ref.mean() if len(with_it) and len(ref) else math.nan
                    cells.append({"dataset": dataset, "fingerprint": fingerprint, "axis": axis,
                                  "component": component, "other": other, "level": level,
                                  "effect": math.exp(diff) if scale == "log" and not math.isnan(diff) else diff,
                                  "runs": int(len(with_it))})
    return tests, cells
