"""How many seeds a suite needs: each table's minimum detectable difference and, per comparison, the seeds that
would detect the effect the pilot runs show (``ganzoo plan``).

Everything is read from a leaderboard (``ganzoo.report.leaderboard``): the baseline's sd and the other rows'
pooled sd on the table's analysis scale, its number of comparisons (Holm's first step divides alpha by it) and
each row's observed difference to the baseline. The answers are for the test the tables run, Welch's, with each
group's own spread (``stats.welch_mde`` and ``stats.welch_seeds_needed``). An observed effect is itself noisy at
a few seeds, so "seeds needed" is a planning figure, not a promise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..api.judgement import DEFAULT_JUDGEMENT, Judgement
from . import stats
from .leaderboard import TABLE_KEYS, row_label
from .tables import metric_label


def power_plan(board: pd.DataFrame, judgements: Mapping[str, Judgement] | None = None, power: float = 0.8,
               alpha: float = 0.05, seeds: int | None = None, max_n: int = 1000) -> list[dict[str, Any]]:
    """One entry per (dataset, protocol) table of ``board``.

    Args:
        seeds: seeds per row to quote the minimum detectable difference at; None: the table's planned count
            (the most common number of runs per row).

    Returns:
        dicts with dataset, fingerprint, headline, scale, pooled_sd (NaN: no pilot data), seeds, m (the
        comparisons Holm corrects across, at least 1), mde (headline units; a factor on the log scale) and
        comparisons: [{label, effect (diff, or the ratio on the log scale), seeds_needed}]; also row_sd and
        baseline_sd, the spreads Welch's test sees.
    """
    out = []
    if board.empty:
        return out
    for (dataset, fingerprint), table in board.groupby(TABLE_KEYS, sort=False):
        judgement = (judgements or {}).get(dataset, DEFAULT_JUDGEMENT)
        first = table.iloc[0]
        log = first["scale"] == "log"
        sd = float(first["pooled_sd"])
        row_sd, base_sd = float(first["row_sd"]), float(first["baseline_sd"])
        # The seeds the table's tests had (a tested row's and the baseline's, which may have more), as the
        # leaderboard's power line counts them; --seeds asks about equal groups of that many instead.
        n = seeds if seeds is not None else int(first["mde_seeds"])
        n_base = seeds if seeds is not None else int(first.get("mde_baseline_seeds", n))
        m = max(int(first["n_compared"]), 1)
        difference = (stats.welch_mde(n_base, n, base_sd, row_sd, alpha=alpha, m=m, power=power)
                      if min(n, n_base) >= 2 else math.nan)
        comparisons = []
        for _, row in table[table["p"].notna()].iterrows():
            needed = stats.welch_seeds_needed(row["diff"], base_sd, row_sd, alpha=alpha, m=m, power=power,
                                              max_n=max_n)
            comparisons.append({"label": row_label(row), "effect": row["ratio"] if log else row["diff"],
                                "seeds_needed": needed})
        out.append({"dataset": dataset, "fingerprint": fingerprint, "headline": metric_label(judgement.headline),
                    "scale": first["scale"], "pooled_sd": sd,
                    "row_sd": row_sd, "baseline_sd": base_sd, "seeds": n, "baseline_seeds": n_base, "m": m,
                    "mde": math.exp(difference) if log else difference, "comparisons": comparisons})
    return out
