"""The reporter: the store as pandas DataFrames, and leaderboards written as Markdown and CSV.

``load_runs`` gives one row per run with its final metrics and its stability measures
(``ganzoo.stability``) under its dataset's judgement; ``ganzoo.leaderboard`` aggregates experiments
over seeds; ``to_markdown`` prints one table per (dataset, protocol), headed by what it ranks by and
the protocol every number was measured with. One report covers one suite: ad-hoc ``ganzoo train``
runs are the suite ``train`` and never share a table with a sweep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .judgement import DEFAULT_JUDGEMENT, Judgement
from .leaderboard import AXES, METRICS, leaderboard, marginals
from .records import DIVERGED, FINISHED
from .stability import RunStability, run_stability
from .store import Store

__all__ = ["judgements_of", "leaderboard", "load_runs", "marginals", "read_runs", "to_markdown", "write_report"]

LABELS = {"is_mean": "IS", "kid_mean": "KID", "fid": "FID"}
KID_SCALE = 1000.0  # KID is printed x 10^3, as in the StyleGAN2-ADA and StudioGAN tables
RUN_COLUMNS = ("run_id", "dataset", "generator", "discriminator", "loss", "stack", "seed", "status", "attempts",
               "kimg", "g_steps", "d_steps", "seconds", "imgs_per_s", "device", "peak_mem_mb", "capped",
               "fingerprint", "error")
VARIANT_IGNORED = ("seed",)
UNSTABLE_KINDS = {"n_diverged": DIVERGED, "n_collapsed": "collapsed", "n_degraded": "degraded"}
STABILITY_FIELDS = tuple(f.name for f in dataclasses.fields(RunStability))


def experiment_key(spec: dict[str, Any]) -> str:
    """Hash of the resolved spec without its seed: runs with equal keys are seeds of one experiment."""
    reduced = {k: v for k, v in spec.items() if k not in VARIANT_IGNORED}
    return hashlib.sha256(json.dumps(reduced, sort_keys=True).encode()).hexdigest()[:12]


def judgements_of(store: Store, suite: str | None, datasets) -> dict[str, Judgement]:
    """Each dataset's judgement: as the suite recorded it at bench time, else the installed plugin's, else FID."""
    recorded = store.suite_record(suite).get("datasets", {}) if suite else {}
    out = {}
    for name in datasets:
        if name in recorded and recorded[name].get("judgement"):
            out[name] = Judgement.from_dict(recorded[name]["judgement"])
            continue
        try:
            from .registry import get_registry

            out[name] = get_registry().get("dataset", name).judgement or DEFAULT_JUDGEMENT
        except Exception:  # plugin not installed here: the report still renders, ranked by FID
            out[name] = DEFAULT_JUDGEMENT
    return out


def load_runs(results_dir: str | Path, suite: str | None = None) -> pd.DataFrame:
    """One row per run: identity, experiment, status, budget used, throughput, protocol, final metrics, stability."""
    store = Store(results_dir, readonly=True)
    try:
        return read_runs(store, suite)[0]
    finally:
        store.close()


def read_runs(store: Store, suite: str | None = None) -> tuple[pd.DataFrame, list[dict], dict[str, list]]:
    """``load_runs`` from an open store, with the store rows and evaluations it was built from (read once).

    Of the evaluations, each run's last is whole and the others keep ``g_steps`` and the metrics the report
    reads over training (``curve_metrics``): decoding every one whole was most of a large report's time.
    """
    with _collector_paused():
        rows = store.runs(suite)
        judgements = judgements_of(store, suite, {row["dataset"] for row in rows})
        evals = store.evals_by_run([row["run_id"] for row in rows], metrics=curve_metrics(judgements.values()))
        records = [_record(row, evals.get(row["run_id"], []), judgements[row["dataset"]]) for row in rows]
    columns = ["run_id", "dataset", "generator", "discriminator", "loss", "stack", "seed", "status"]
    runs = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
    if records:
        runs["variant"] = _variants(runs, {row["run_id"]: row["spec"] for row in rows})
    return runs, rows, evals


@contextlib.contextmanager
def _collector_paused():
    """No cyclic garbage collection inside: reading 10,000 runs makes millions of small objects, none of them in a
    cycle, and every pass of the collector walks all that are alive (a fifth of a large report's time). What
    the report leaves is freed by reference counting when it ends; any cycle waits for the next pass."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def curve_metrics(judgements) -> list[str]:
    """The metrics read over training: each judgement's headline and tiebreak (plotted, degraded, oscillation)
    and what it counts modes or classes by (dropped)."""
    return sorted({m for j in judgements for m in (j.headline, j.tiebreak, j.coverage) if m})


def _record(row: dict[str, Any], evals: list[dict[str, Any]], judgement: Judgement) -> dict[str, Any]:
    protocol = row["protocol"] or {}
    record = {k: row[k] for k in RUN_COLUMNS}
    record.update(started=_time(row["started"]), finished=_time(row["finished"]), suites=",".join(row["suites"]),
                  experiment=experiment_key(row["spec"]), batch_size=row["spec"].get("budget", {}).get("batch_size"))
    record.update(extractor=protocol.get("extractor"), weights_hash=protocol.get("weights_hash"),
                  n_fake=protocol.get("n_fake"), n_real=protocol.get("n_real"))
    record.update(dict(row["metrics"] or {}))
    if row["status"] in FINISHED and (evals or row["status"] == DIVERGED):
        record.update(_stability_columns(run_stability(row["status"], evals, judgement)))
        record.pop("headline", None)
    return record


def _stability_columns(stability: RunStability) -> dict[str, Any]:
    """``stability.as_dict()`` without ``dataclasses.asdict``'s deep copy of every field (its values are scalars),
    which cost most of the per-run time of a large report."""
    return {**{name: getattr(stability, name) for name in STABILITY_FIELDS}, "unstable": stability.unstable}


def _variants(runs: pd.DataFrame, specs: dict[str, dict[str, Any]]) -> list[str]:
    """For experiments that share a combination label, the spec entries in which they differ."""
    label = _joined(runs, ["dataset", *AXES])
    out = pd.Series("", index=runs.index)
    for _, group in runs.groupby(label):
        experiments = group.drop_duplicates("experiment")
        if len(experiments) < 2:
            continue
        flat = {e.experiment: _flatten({k: v for k, v in specs[e.run_id].items() if k not in VARIANT_IGNORED})
                for e in experiments.itertuples()}
        keys = set().union(*flat.values())
        differing = sorted(k for k in keys if len({json.dumps(f.get(k)) for f in flat.values()}) > 1)
        for index, experiment in zip(group.index, group["experiment"], strict=True):
            out[index] = ", ".join(f"{k}={flat[experiment].get(k)}" for k in differing)
    return out.tolist()


def _joined(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """The columns' values as text joined by "/", row by row: ``frame[columns].astype(str).agg("/".join, axis=1)``
    a column at a time, which is what a report over thousands of runs can afford."""
    text = frame[columns].astype(str)
    joined = text[columns[0]]
    for column in columns[1:]:
        joined = joined + "/" + text[column]
    return joined.rename(None)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, inner in enumerate(value):
            out.update(_flatten(inner, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _time(value) -> pd.Timestamp | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else pd.Timestamp(value, unit="s")


LEGEND = (
    "Each row is one experiment (runs that differ only by seed); *seeds* = finished/total. The headline "
    "statistics are over finished seeds: mean with a percentile-bootstrap 95% CI (10,000 resamples), median "
    "with its interquartile range, and the *worst* seed. *unstable* = seeds that diverged (non-finite), "
    "collapsed (the dataset's collapse criterion at the end) or degraded (final headline worse than the run's "
    "own best by more than the dataset's tolerance); *success* = seeds meeting the success criterion. "
    "*Δ vs baseline* = row mean − baseline mean with a bootstrap 95% CI; *p (Holm)* = Welch's t-test over "
    "seeds, Holm-corrected across the table; *better*/*worse* only where p (Holm) < 0.05, else *n.s.* "
    "Every value is the final checkpoint's, never the best one. KID is printed ×10³ where it is below 1 "
    "(Inception-sized, as papers print it) and raw otherwise, as its column says. Definitions: README, "
    "\"Reading a leaderboard\".\n"
)


def to_markdown(board: pd.DataFrame, title: str = "Leaderboard", suite_record: dict | None = None,
                judgements: dict[str, Judgement] | None = None,
                references: dict[tuple[str, str], dict] | None = None) -> str:
    """One ranking table and one all-metrics table per (dataset, protocol), each headed by its protocol.

    ``references``: (dataset, fingerprint) -> real data through the same protocol, shown as the last
    row of the all-metrics table (the ceiling a generator is read against).
    """
    if board.empty:
        return f"# {title}\n\nNo finished runs yet.\n"
    parts = [f"# {title}\n", LEGEND]
    for (dataset, fingerprint), group in board.groupby(["dataset", "fingerprint"], sort=False):
        judgement = (judgements or {}).get(dataset, DEFAULT_JUDGEMENT)
        reference = (references or {}).get((dataset, fingerprint))
        parts.append(_header(dataset, fingerprint, group, judgement, suite_record or {}))
        parts.append(_ranking_table(group, judgement).to_markdown(index=False) + "\n")
        parts.append("All metrics, mean ± sd over finished seeds (↓ lower is better, ↑ higher is better):\n")
        parts.append(_metrics_table(group, reference).to_markdown(index=False) + "\n")
        if reference:
            parts.append(f"*real data*: {reference['note']}, {reference['n']} samples through the same protocol; "
                         f"its {_label(judgement.headline)} is "
                         f"{_num(reference['metrics'].get(judgement.headline, float('nan')))}.\n")
    return "\n".join(parts)


def _header(dataset: str, fingerprint: str, group: pd.DataFrame, judgement: Judgement, record: dict) -> str:
    first = group.iloc[0]
    direction = "lower is better" if judgement.lower_is_better else "higher is better"
    lines = [f"## {dataset} · protocol `{fingerprint}`\n",
             f"Ranked by **{_label(judgement.headline)}** ({direction}): {judgement.note or judgement.headline}."
             + (f" Ties: {judgement.tiebreak}." if judgement.tiebreak else ""),
             f"Protocol: extractor {first.get('extractor')} (weights {first.get('weights_hash')}), "
             f"{first.get('n_fake')} generated vs {first.get('n_real') or 'all'} real samples. "
             f"Budget: {_budget(group)}.",
             f"Collapsed: {' or '.join(judgement.collapse) or 'not defined'}; degraded: final "
             f"{'above' if judgement.lower_is_better else 'below'} best × "
             f"{1 + judgement.degrade_tolerance if judgement.lower_is_better else 1 - judgement.degrade_tolerance:g}; "
             f"success: {' and '.join(judgement.success) or 'not defined'}."]
    baseline = record.get("datasets", {}).get(dataset, {}).get("baseline")
    if baseline and group["is_baseline"].any():
        lines.append(f"Baseline: {'/'.join(baseline[a] for a in AXES)}; every other row differs from it in one "
                     "component (one-factor design).")
    return "\n".join(lines) + "\n"


def _budget(group: pd.DataFrame) -> str:
    kimg, steps = group["kimg"].dropna(), group["g_steps"].dropna()
    text = f"{kimg.min():.4g} kimg" if len(kimg) and kimg.min() == kimg.max() else \
        (f"{kimg.min():.4g}–{kimg.max():.4g} kimg" if len(kimg) else "?")
    if len(steps):
        text += (f", {steps.min():,.0f} G steps" if steps.min() == steps.max()
                 else f", {steps.min():,.0f}–{steps.max():,.0f} G steps")
    batch = group["batch_size"].dropna() if "batch_size" in group else []
    return text + (f", batch {int(batch.iloc[0])}" if len(batch) else "")


def _label(metric: str) -> str:
    return LABELS.get(metric, metric)


def _combination(group: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame({"rank": group["rank"], "G": group["generator"], "D": group["discriminator"],
                          "loss": group["loss"], "stack": group["stack"]})
    if group["variant"].astype(bool).any():
        table["variant"] = group["variant"]
    return table


def _ranking_table(group: pd.DataFrame, judgement: Judgement) -> pd.DataFrame:
    table = _combination(group)
    name = _label(judgement.headline)
    table["seeds"] = group["finished"].astype(str) + "/" + group["seeds"].astype(str)
    table[f"{name} mean [95% CI]"] = [_ci(r["mean"], r["ci_low"], r["ci_high"]) for _, r in group.iterrows()]
    table["median (IQR)"] = [_num(r["median"]) + ("" if pd.isna(r["iqr"]) else f" ({_num(r['iqr'])})")
                             for _, r in group.iterrows()]
    table["worst"] = group["worst"].map(_num)
    table["success"] = [("–" if pd.isna(r["success"]) else f"{round(r['success'] * r['seeds'])}/{r['seeds']}")
                        for _, r in group.iterrows()]
    table["unstable"] = [_unstable(r) for _, r in group.iterrows()]
    if group["is_baseline"].any():
        table["Δ vs baseline [95% CI]"] = [
            "" if r["is_baseline"] else _ci(r["diff"], r["diff_ci_low"], r["diff_ci_high"], signed=True)
            for _, r in group.iterrows()]
        table["p (Holm)"] = group["p_holm"].map(lambda p: "" if pd.isna(p) else f"{p:.2g}")
        table["verdict"] = group["verdict"]
    return table


def _unstable(row) -> str:
    kinds = [f"{row[column]} {label}" for column, label in UNSTABLE_KINDS.items() if row.get(column)]
    count = round(row["unstable"] * row["seeds"])
    return f"{count}/{row['seeds']}" + (f" ({', '.join(kinds)})" if kinds else "")


def _metrics_table(group: pd.DataFrame, reference: dict | None = None) -> pd.DataFrame:
    table = _combination(group).astype(object)
    shown = {}  # metric -> (column, scale): the real-data row is printed in the same columns and units
    for metric, lower in METRICS.items():
        if metric in group and group[metric].notna().any():
            scale, label = _scale(metric, group[metric])
            shown[metric] = (f"{label} {'↓' if lower else '↑'}", scale)
            stds = group.get(f"{metric}_std", pd.Series(np.nan, index=group.index))
            table[shown[metric][0]] = [_pm(m * scale, s * scale) for m, s in zip(group[metric], stds, strict=True)]
    table["G steps"] = group["g_steps"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    table["imgs/s"] = group["imgs_per_s"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    if reference:
        row = dict.fromkeys(table.columns, "") | {"rank": "–", "G": "*real data*"}
        row.update({column: _num(reference["metrics"][metric] * scale) for metric, (column, scale) in shown.items()
                    if metric in reference["metrics"]})
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    return table


def _scale(metric: str, values: pd.Series) -> tuple[float, str]:
    """KID x 10^3 where it is Inception-sized (below 1), as papers print it; raw on unnormalised features.

    The polynomial kernel grows with the features' norm, so KID on a small classifier's features is in
    the hundreds: multiplying it by 1000 would hide the scale instead of matching the papers'.
    """
    if metric != "kid_mean":
        return 1.0, _label(metric)
    if values.abs().max() < 1:
        return KID_SCALE, "KID×10³"
    return 1.0, "KID (raw)"


def _num(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.4g}" if abs(value) < 0.01 and value != 0 else f"{value:.3g}"


def _ci(mean: float, low: float, high: float, signed: bool = False) -> str:
    if pd.isna(mean):
        return "–"
    text = (f"{mean:+.3g}" if signed else _num(mean))
    return text if pd.isna(low) else f"{text} [{low:.3g}, {high:.3g}]"


def _pm(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "–"
    text = _num(mean)
    return text if pd.isna(std) else f"{text} ± {std:.2g}"


def write_report(store: Store, out_dir: Path, suite: str | None = None) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``runs.csv`` (and ``marginals.csv`` for full designs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with _collector_paused():  # the runs read stay alive through the statistics: see _collector_paused
        runs = read_runs(store, suite)[0]
        record = store.suite_record(suite) if suite else {}
        judgements = judgements_of(store, suite, set(runs["dataset"])) if not runs.empty else {}
        board = leaderboard(runs, record, judgements)
        paths = [out_dir / "leaderboard.md", out_dir / "leaderboard.csv", out_dir / "runs.csv"]
        references = store.references(suite) if suite else {}
        markdown = to_markdown(board, f"ganzoo leaderboard: {suite or 'all suites'}", record, judgements, references)
        if record.get("design") == "full" and not board.empty:
            margins = marginals(board, judgements)
            paths.append(out_dir / "marginals.csv")
            margins.to_csv(paths[-1], index=False)
            markdown += ("\n## Marginals (full design)\n\nEach component's mean headline over the rows it appears "
                         "in:\n\n")
            markdown += margins.to_markdown(index=False, floatfmt=".4g") + "\n"
        paths[0].write_text(markdown)
        board.to_csv(paths[1], index=False)
        runs.drop(columns=["error"], errors="ignore").to_csv(paths[2], index=False)
    return paths
