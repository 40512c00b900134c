"""The leaderboard's tables as the reader sees them: the ranking table and the all-metrics table.

Markdown (``ganzoo.report.markdown``) and HTML (``ganzoo.report.html``) print the same cells, so both
build them here. Each function takes the rows of one (dataset, protocol) table from
``ganzoo.report.leaderboard`` and returns a DataFrame of display strings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..api.judgement import Judgement
from ..core.records import DIVERGED, ReferenceRow
from ..core.registry import metric_registry
from .leaderboard import metric_directions

KID_SCALE = 1000.0  # KID is printed x 10^3, as in the StyleGAN2-ADA and StudioGAN tables
UNSTABLE_KINDS = {"n_diverged": DIVERGED, "n_collapsed": "collapsed", "n_degraded": "degraded"}


def budget_text(group: pd.DataFrame) -> str:
    kimg, steps = group["kimg"].dropna(), group["g_steps"].dropna()
    text = f"{kimg.min():.4g} kimg" if len(kimg) and kimg.min() == kimg.max() else \
        (f"{kimg.min():.4g}–{kimg.max():.4g} kimg" if len(kimg) else "?")
    if len(steps):
        text += (f", {steps.min():,.0f} G steps" if steps.min() == steps.max()
                 else f", {steps.min():,.0f}–{steps.max():,.0f} G steps")
    batch = group["batch_size"].dropna() if "batch_size" in group else []
    return text + (f", batch {int(batch.iloc[0])}" if len(batch) else "")


def metric_label(metric: str) -> str:
    """A column's header: the label its registered metric gives it (``fid`` -> FID), else its own name."""
    for registered in metric_registry().metrics():
        if metric in registered.columns:
            return registered.label(metric)
    return metric


def _combination(group: pd.DataFrame) -> pd.DataFrame:
    ranks = group["rank"].map(lambda r: "–" if pd.isna(r) else str(int(r)))  # untested rows are not ranked
    table = pd.DataFrame({"rank": ranks, "G": group["generator"], "D": group["discriminator"],
                          "loss": group["loss"], "stack": group["stack"]})
    if group["variant"].astype(bool).any():
        table["variant"] = group["variant"]
    return table


def headline_column(group: pd.DataFrame, judgement: Judgement) -> str:
    """The ranking table's headline column: the mean, or on the log scale the geometric mean, with its 95% CI."""
    centre = "geo. mean" if _scale_of(group) == "log" else "mean"
    window = f" (last {judgement.window} evals)" if judgement.window > 1 else ""
    return f"{metric_label(judgement.headline)}{window} {centre} [95% CI]"


def effect_column(group: pd.DataFrame) -> str:
    return "ratio vs baseline [95% CI]" if _scale_of(group) == "log" else "Δ vs baseline [95% CI]"


def _scale_of(group: pd.DataFrame) -> str:
    return str(group["scale"].iloc[0]) if "scale" in group and len(group) else "linear"


def ranking_table(group: pd.DataFrame, judgement: Judgement) -> pd.DataFrame:
    table = _combination(group)
    table["seeds"] = group["finished"].astype(str) + "/" + group["seeds"].astype(str)
    centre = group["center"] if "center" in group else group["mean"]
    table[headline_column(group, judgement)] = [_ci(c, low, high) for c, low, high
                                                in zip(centre, group["ci_low"], group["ci_high"], strict=True)]
    table["median (IQR)"] = [num(r["median"]) + ("" if pd.isna(r["iqr"]) else f" ({num(r['iqr'])})")
                             for _, r in group.iterrows()]
    table["worst"] = group["worst"].map(num)
    table["success"] = [("–" if pd.isna(r["success"]) else f"{round(r['success'] * r['seeds'])}/{r['seeds']}")
                        for _, r in group.iterrows()]
    table["unstable"] = [unstable_text(r) for _, r in group.iterrows()]
    if group["is_baseline"].any():
        log = _scale_of(group) == "log"
        table["differs in"] = ["" if r["is_baseline"] else r["differs_in"] + (" (package)" if r["package"] else "")
                               for _, r in group.iterrows()]
        table[effect_column(group)] = [
            "" if r["is_baseline"] else (_ratio(r["ratio"], r["ratio_ci_low"], r["ratio_ci_high"]) if log
                                         else _ci(r["diff"], r["diff_ci_low"], r["diff_ci_high"], signed=True))
            for _, r in group.iterrows()]
        table["p (Holm)"] = group["p_holm"].map(lambda p: "" if pd.isna(p) else f"{p:.2g}")
        table["verdict"] = group["verdict"]
    return table


def unstable_text(row) -> str:
    """"k/n (i diverged, j collapsed, ...)": the unstable seeds of a row and their kinds."""
    kinds = [f"{row[column]} {label}" for column, label in UNSTABLE_KINDS.items() if row.get(column)]
    count = round(row["unstable"] * row["seeds"])
    return f"{count}/{row['seeds']}" + (f" ({', '.join(kinds)})" if kinds else "")


def metrics_table(group: pd.DataFrame, reference: ReferenceRow | None = None,
                  metrics: dict[str, bool] | None = None) -> pd.DataFrame:
    """Every metric the rows have (``metrics``, default ``metric_directions()``), its direction as an arrow."""
    table = _combination(group).astype(object)
    shown = {}  # metric -> (column, scale): the real-data row is printed in the same columns and units
    for metric, lower in (metric_directions() if metrics is None else metrics).items():
        if metric in group and group[metric].notna().any():
            scale, label = _scale(metric, group[metric])
            shown[metric] = (f"{label} {'↓' if lower else '↑'}", scale)
            stds = group.get(f"{metric}_std", pd.Series(np.nan, index=group.index))
            table[shown[metric][0]] = [_pm(m * scale, s * scale) for m, s in zip(group[metric], stds, strict=True)]
    table["G steps"] = group["g_steps"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    table["imgs/s"] = group["imgs_per_s"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    if reference:
        row = dict.fromkeys(table.columns, "") | {"rank": "–", "G": "*real data*"}
        row.update({column: num(reference.metrics[metric] * scale) for metric, (column, scale) in shown.items()
                    if metric in reference.metrics})
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    return table


def _scale(metric: str, values: pd.Series) -> tuple[float, str]:
    """KID x 10^3 where it is Inception-sized (below 1), as papers print it; raw on unnormalised features.

    The polynomial kernel grows with the features' norm, so KID on a small classifier's features is in
    the hundreds: multiplying it by 1000 would hide the scale instead of matching the papers'.
    """
    if metric != "kid_mean":
        return 1.0, metric_label(metric)
    if values.abs().max() < 1:
        return KID_SCALE, "KID×10³"
    return 1.0, "KID (raw)"


def num(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.4g}" if abs(value) < 0.01 and value != 0 else f"{value:.3g}"


def _ci(mean: float, low: float, high: float, signed: bool = False) -> str:
    if pd.isna(mean):
        return "–"
    text = (f"{mean:+.3g}" if signed else num(mean))
    return text if pd.isna(low) else f"{text} [{low:.3g}, {high:.3g}]"


def _ratio(ratio: float, low: float, high: float) -> str:
    if pd.isna(ratio):
        return "–"
    return f"×{ratio:.3g}" if pd.isna(low) else f"×{ratio:.3g} [{low:.3g}, {high:.3g}]"


def _pm(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "–"
    text = num(mean)
    return text if pd.isna(std) else f"{text} ± {std:.2g}"




def effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    """A crossed design's effects (``ganzoo.report.effects``) as printed: one row per component of each axis."""
    log = len(effects) and effects["scale"].iloc[0] == "log"
    effect = "ratio vs reference [95% CI]" if log else "Δ vs reference [95% CI]"
    return pd.DataFrame({
        "axis": effects["axis"], "component": effects["component"], "reference": effects["reference"],
        "runs": effects["runs"].astype(str) + " vs " + effects["reference_runs"].astype(str),
        effect: [_ratio(e, low, high) if log else _ci(e, low, high, signed=True)
                 for e, low, high in zip(effects["effect"], effects["low"], effects["high"], strict=True)],
        "p (Holm)": effects["p_holm"].map(lambda p: "" if pd.isna(p) else f"{p:.2g}"),
        "P(improvement) [95% CI]": [("–" if pd.isna(p) else f"{p:.2f}" if pd.isna(low) else
                                     f"{p:.2f} [{low:.2f}, {high:.2f}]")
                                    for p, low, high in zip(effects["poi"], effects["poi_low"], effects["poi_high"],
                                                            strict=True)],
        "interacts with": effects["interacts_with"].fillna(""),
        "verdict": effects["verdict"]})
