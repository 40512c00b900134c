"""The reporter: the store as pandas DataFrames, aggregated over seeds into leaderboards.

Rows are only ranked against rows of the same dataset and the same evaluation protocol
(extractor, weights hash, sample counts): the protocol fingerprint is part of the grouping key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .store import Store

KEYS = ["dataset", "fingerprint", "generator", "discriminator", "loss", "stack"]
# Leaderboard metrics, in display order, and whether lower is better.
METRICS = {"fid": True, "is_mean": False, "kid_mean": True, "precision": False, "recall": False,
           "density": False, "coverage": False, "modes": False, "high_quality": False, "mode_kl": True,
           "classes": False, "class_kl": True}
LABELS = {"is_mean": "is", "kid_mean": "kid"}


def load_runs(results_dir: str | Path, suite: str | None = None) -> pd.DataFrame:
    """One row per run: identity, status, budget used, throughput, protocol and final metrics."""
    store = Store(results_dir)
    try:
        rows = store.runs(suite)
    finally:
        store.close()
    records = []
    for row in rows:
        protocol = row["protocol"] or {}
        record = {k: row[k] for k in ("run_id", "dataset", "generator", "discriminator", "loss", "stack", "seed",
                                      "status", "attempts", "kimg", "g_steps", "d_steps", "seconds", "imgs_per_s",
                                      "device", "peak_mem_mb", "capped", "fingerprint", "error")}
        record.update(started=_time(row["started"]), finished=_time(row["finished"]), suites=",".join(row["suites"]))
        record.update(extractor=protocol.get("extractor"), weights_hash=protocol.get("weights_hash"),
                      n_fake=protocol.get("n_fake"), n_real=protocol.get("n_real"))
        record.update({k: v for k, v in (row["metrics"] or {}).items()})
        records.append(record)
    columns = ["run_id", "dataset", "generator", "discriminator", "loss", "stack", "seed", "status"]
    return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)


def _time(value) -> pd.Timestamp | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else pd.Timestamp(value, unit="s")


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Aggregate seeds: mean and std of each metric over runs that finished, plus stability columns.

    ``unstable`` is the share of seeds that diverged or failed. Rows are ranked by mean FID within
    (dataset, protocol); a combination whose every seed diverged ranks last.
    """
    if runs.empty:
        return pd.DataFrame()
    runs = runs[runs["status"].isin(["done", "diverged", "failed"])].copy()
    if runs.empty:
        return pd.DataFrame()
    runs["fingerprint"] = runs["fingerprint"].fillna("")
    rows = []
    for key, group in runs.groupby(KEYS, dropna=False, sort=False):
        done = group[group["status"] == "done"]
        row = dict(zip(KEYS, key, strict=True))
        row.update(seeds=len(group), done=len(done), diverged=int((group["status"] == "diverged").sum()),
                   failed=int((group["status"] == "failed").sum()))
        row["unstable"] = (row["diverged"] + row["failed"]) / row["seeds"]
        for metric in METRICS:
            values = done[metric].astype(float) if metric in done else pd.Series(dtype=float)
            row[metric] = values.mean() if len(values) else np.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        row["kimg"] = group["kimg"].mean()
        row["imgs_per_s"] = done["imgs_per_s"].mean() if len(done) else np.nan
        for col in ("extractor", "weights_hash", "n_fake", "n_real"):
            row[col] = group[col].dropna().iloc[0] if col in group and group[col].notna().any() else None
        rows.append(row)
    board = pd.DataFrame(rows)
    board = board.dropna(axis=1, how="all")  # metrics no run measured (no IS on vectors, ...)
    sort_by = ["dataset", "fingerprint"] + (["fid"] if "fid" in board else [])
    board = board.sort_values(sort_by, na_position="last").reset_index(drop=True)
    board.insert(0, "rank", board.groupby(["dataset", "fingerprint"]).cumcount() + 1)
    return board


def to_markdown(board: pd.DataFrame, title: str = "Leaderboard") -> str:
    """One table per (dataset, protocol), each headed by the protocol it was measured with."""
    if board.empty:
        return f"# {title}\n\nNo finished runs yet.\n"
    parts = [f"# {title}\n", "Mean ± standard deviation over seeds that finished; *unstable* = share of seeds "
             "that diverged or failed; *imgs/s* = training throughput (evaluation excluded).\n"]
    for (dataset, fingerprint), group in board.groupby(["dataset", "fingerprint"], sort=False):
        first = group.iloc[0]
        parts.append(f"## {dataset}\n\nProtocol `{fingerprint}`: extractor {first.get('extractor')} "
                     f"(weights {first.get('weights_hash')}), {first.get('n_fake')} generated vs "
                     f"{first.get('n_real') or 'all'} real samples, budget {first['kimg']:.4g} kimg.\n")
        table = pd.DataFrame({"rank": group["rank"], "G": group["generator"], "D": group["discriminator"],
                              "loss": group["loss"], "stack": group["stack"],
                              "seeds": group["done"].astype(str) + "/" + group["seeds"].astype(str),
                              "unstable": group["unstable"].map(lambda v: f"{v:.0%}")})
        for metric in METRICS:
            if metric in group and group[metric].notna().any():  # e.g. no IS on 2-D data, no modes on digits
                stds = group.get(f"{metric}_std", [np.nan] * len(group))
                table[LABELS.get(metric, metric)] = [_pm(m, s) for m, s in zip(group[metric], stds, strict=True)]
        table["imgs/s"] = group["imgs_per_s"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
        parts.append(table.to_markdown(index=False) + "\n")
    return "\n".join(parts)


def _pm(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "–"
    digits = 4 if abs(mean) < 0.01 else 3
    text = f"{mean:.{digits}g}"
    return text if pd.isna(std) else f"{text} ± {std:.2g}"


def write_report(store: Store, out_dir: Path, suite: str | None = None) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv`` and ``runs.csv`` for ``suite`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = load_runs(store.results_dir, suite)
    board = leaderboard(runs)
    paths = [out_dir / "leaderboard.md", out_dir / "leaderboard.csv", out_dir / "runs.csv"]
    paths[0].write_text(to_markdown(board, title=f"ganzoo leaderboard: {suite or 'all suites'}"))
    board.to_csv(paths[1], index=False)
    runs.drop(columns=["error"], errors="ignore").to_csv(paths[2], index=False)
    return paths
