"""The store as pandas DataFrames: one row per run, with its final metrics and its stability measures.

``load_runs`` reads a results folder; ``read_runs`` an open store, and also returns the store rows and
evaluations it was built from (the HTML report reads them once). Each run is judged under its dataset's
``Judgement`` as the suite recorded it (``ganzoo.report.stability``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..api.judgement import DEFAULT_JUDGEMENT, Judgement
from ..core.records import DIVERGED, FINISHED, ProtocolRecord, SuiteRecord
from ..core.spec import SEED_FIELDS, RunSpec, experiment_key_of
from ..core.store import Store
from .leaderboard import AXES
from .stability import RunStability, run_stability

RUN_COLUMNS = ("run_id", "dataset", "generator", "discriminator", "loss", "stack", "seed", "status", "attempts",
               "resumed_from", "kimg", "g_steps", "d_steps", "seconds", "imgs_per_s", "device", "peak_mem_mb", "capped",
               "fingerprint", "error")
STABILITY_FIELDS = tuple(f.name for f in dataclasses.fields(RunStability))


def judgements_of(store: Store, suite: str | None, datasets) -> dict[str, Judgement]:
    """Each dataset's judgement: as the suite recorded it at bench time, else the installed plugin's, else FID."""
    recorded = store.read_suite_record(suite) if suite else SuiteRecord()
    out = {}
    for name in datasets:
        if recorded.judgement(name) is not None:
            out[name] = recorded.judgement(name)
            continue
        try:
            from ..core.registry import get_registry

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
    with collector_paused():
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
def collector_paused():
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
    protocol = ProtocolRecord.from_dict(row["protocol"]) if row["protocol"] else None  # None: failed before it
    spec = RunSpec.from_dict(row["spec"])
    record = {k: row.get(k) for k in RUN_COLUMNS}  # (resumed_from: absent from a read-only store of before it)
    record.update(started=_time(row["started"]), finished=_time(row["finished"]), suites=",".join(row["suites"]),
                  # spec.experiment_key from the stored canonical form: computing that form again costs ten times more
                  experiment=experiment_key_of(row["spec"]), batch_size=spec.budget.batch_size,
                  # What the stack is made of: a named stack of several stabilizers is a package, not one factor.
                  stack_parts=",".join(ref.name for ref in spec.stack))
    record.update(extractor=protocol and protocol.extractor, weights_hash=protocol and protocol.weights_hash,
                  n_fake=protocol and protocol.n_fake, n_real=protocol and protocol.n_real)
    record.update(dict(row["metrics"] or {}))
    if row["status"] in FINISHED and (evals or row["status"] == DIVERGED):
        record.update(_stability_columns(run_stability(row["status"], evals, judgement)))
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
        flat = {e.experiment: _flatten({k: v for k, v in specs[e.run_id].items() if k not in SEED_FIELDS})
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


