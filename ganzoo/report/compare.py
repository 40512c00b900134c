"""Compare two experiments of a results folder over seeds: difference, its CI, tests, and how often the order flips.

An experiment is named by its combination ``G/D/loss/stack``, by one axis changed from the suite's
baseline (``stack=r1``, ``loss=hinge``), or by its experiment key (the ``experiment`` column of
``runs.csv``), so ``ganzoo compare stack=none stack=r1`` is "does R1 help the baseline?".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..api.judgement import Judgement
from ..core.records import DONE
from . import stats
from .leaderboard import AXES, headline_values


class CompareError(ValueError):
    """A name that matches no experiment, or more than one."""


@dataclass
class Side:
    label: str
    experiment: str
    variant: str
    values: list[float]
    seeds: list[int]
    finished: int
    total: int


def resolve(name: str, runs: pd.DataFrame, baseline: dict[str, str] | None) -> pd.DataFrame:
    """The runs of the one experiment ``name`` refers to (see the module docstring for the forms)."""
    if "=" in name:
        if not baseline:
            raise CompareError(f'"{name}" changes one axis of the baseline, but this suite records no baseline '
                               "(full design, or an old store): name the whole combination G/D/loss/stack")
        combo = dict(baseline)
        for part in name.split(","):
            axis, _, value = part.partition("=")
            if axis.strip() not in AXES:
                raise CompareError(f'"{part}": the axis must be one of {", ".join(AXES)}')
            combo[axis.strip()] = value.strip()
        mask = np.logical_and.reduce([runs[a] == combo[a] for a in AXES])
    elif name.count("/") == 3:
        mask = np.logical_and.reduce([runs[a] == v for a, v in zip(AXES, name.split("/"), strict=True)])
    else:
        mask = runs["experiment"].astype(str).str.startswith(name)
    chosen = runs[mask]
    if chosen.empty:
        known = sorted(runs[AXES].astype(str).agg("/".join, axis=1).unique())
        raise CompareError(f'No experiment matches "{name}". Name one as G/D/loss/stack, axis=value (from the '
                           f"baseline) or an experiment key. Combinations here: {', '.join(known[:12])}"
                           + (" ..." if len(known) > 12 else ""))
    experiments = chosen["experiment"].unique()
    if len(experiments) > 1:
        options = "; ".join(f"{e}: {chosen[chosen['experiment'] == e]['variant'].iloc[0] or '(no variant)'}"
                            for e in experiments)
        raise CompareError(f'"{name}" matches {len(experiments)} experiments that differ in hyperparameters; '
                           f"name one by its experiment key: {options}")
    return chosen


def side(name: str, runs: pd.DataFrame, judgement: Judgement) -> Side:
    done = runs[runs["status"] == DONE]
    first = runs.iloc[0]
    return Side(label="/".join(str(first[a]) for a in AXES), experiment=str(first["experiment"]),
                variant=str(first.get("variant", "") or ""), values=headline_values(runs, judgement).tolist(),
                seeds=done["seed"].astype(int).tolist(), finished=len(done), total=len(runs))


def compare_sides(a: Side, b: Side, judgement: Judgement, n_resamples: int = 10_000) -> dict[str, Any]:
    """Every number ``ganzoo compare`` prints, as a dict (its JSON output)."""
    welch = stats.compare(a.values, b.values, judgement.lower_is_better, "welch", n_resamples)
    mann_whitney = stats.mann_whitney_p(a.values, b.values)
    return {
        "metric": judgement.headline, "lower_is_better": judgement.lower_is_better,
        "a": {**asdict(a), **stats.summarize(a.values, judgement.lower_is_better, n_resamples)},
        "b": {**asdict(b), **stats.summarize(b.values, judgement.lower_is_better, n_resamples)},
        "diff": welch.diff, "ci_low": welch.ci_low, "ci_high": welch.ci_high, "welch_p": welch.p,
        "mann_whitney_p": mann_whitney, "min_mann_whitney_p": stats.min_mann_whitney_p(len(a.values), len(b.values)),
        "cliffs_delta": welch.cliffs_delta, "flip_rate": welch.flip_rate, "b_better": welch.better,
        "significant": bool(welch.p < 0.05) if not np.isnan(welch.p) else False,
    }


def describe(result: dict[str, Any], dataset: str, fingerprint: str) -> str:
    """The comparison in a few plain lines."""
    metric, a, b = result["metric"], result["a"], result["b"]
    direction = "lower is better" if result["lower_is_better"] else "higher is better"
    lines = [f"{dataset} (protocol {fingerprint}): {metric}, {direction}"]
    for tag, s in (("A", a), ("B", b)):
        values = ", ".join(f"{v:.4g}" for v in s["values"])
        lines.append(f"{tag}  {s['label']}{' [' + s['variant'] + ']' if s['variant'] else ''}: "
                     f"{s['finished']}/{s['total']} seeds finished, mean {s['mean']:.4g} "
                     f"[95% t CI {s['ci_low']:.4g}, {s['ci_high']:.4g}]  ({values})")
    lines.append(f"B - A = {result['diff']:+.4g}, 95% CI (Welch) [{result['ci_low']:.4g}, {result['ci_high']:.4g}]")
    lines.append(f"Welch's t-test p = {result['welch_p']:.3g}; Mann-Whitney U p = {result['mann_whitney_p']:.3g} "
                 f"(the smallest it can give with {len(a['values'])} vs {len(b['values'])} seeds: "
                 f"{result['min_mann_whitney_p']:.3g})")
    lines.append(f"Cliff's delta = {result['cliffs_delta']:+.2f}; the order of the means flips in "
                 f"{result['flip_rate']:.1%} of bootstrap resamples of the seeds")
    if result["significant"]:
        verdict = "B is better than A" if result["b_better"] else "B is worse than A"
        lines.append(f"Verdict: {verdict} (Welch p < 0.05 for this one comparison; correct for multiplicity "
                     "when you test many, as the leaderboard does with Holm)")
    else:
        lines.append("Verdict: not distinguishable with these seeds (Welch p >= 0.05); more seeds may tell")
    return "\n".join(lines)
