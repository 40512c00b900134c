"""What each leaderboard table supports, in sentences generated from its statistics alone.

A hand-written summary drifts from the table it summarises; these lines cannot, because they are the table's
numbers in words: each decided difference with its interval and Holm-adjusted p, the rows a saturated headline
cannot separate, the unstable rows, the rows not separated from the baseline, and the table's power. The
Markdown and HTML reports end each table's section with them under ``### Findings``; ``findings_of_markdown``
reads them back from a written ``leaderboard.md`` (e.g. to check that a README quotes them verbatim).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

from ..api.judgement import DEFAULT_JUDGEMENT, Judgement
from .leaderboard import (
    ALPHA,
    EQUIVALENCE_CONFIDENCE,
    EQUIVALENT,
    POWER,
    TABLE_KEYS,
    UNDECIDED,
    package_text,
    row_label,
)
from .tables import metric_label, unstable_text

HEADING = "### Findings"
_SECTION = re.compile(r"^## (?P<dataset>\S+) · protocol `(?P<fingerprint>[^`]*)`$", re.MULTILINE)


def findings(board: pd.DataFrame, judgements: Mapping[str, Judgement] | None = None,
             analysis: tuple[pd.DataFrame, ...] | None = None) -> dict[tuple[str, str], str]:
    """Each table's findings: (dataset, fingerprint) -> the bullet lines (no heading), as the reports print them.

    ``analysis``: a crossed design's ``effects.effects(...)`` (effects, interactions, cells), said per table.
    """
    if board.empty:
        return {}
    return {(dataset, fingerprint): "\n".join(table_findings(table, (judgements or {}).get(dataset,
                                                                                          DEFAULT_JUDGEMENT), analysis))
            for (dataset, fingerprint), table in board.groupby(TABLE_KEYS, sort=False)}


def of_table(analysis: tuple[pd.DataFrame, ...] | None, dataset: str, fingerprint: str) -> tuple[pd.DataFrame, ...]:
    """The effects, interactions and cells of one (dataset, protocol) table; empty frames without an analysis."""
    if analysis is None:
        return ()
    return tuple(frame[(frame["dataset"] == dataset) & (frame["fingerprint"] == fingerprint)] for frame in analysis)


def findings_of_markdown(text: str) -> dict[tuple[str, str], str]:
    """The findings of each table of a written ``leaderboard.md``: (dataset, fingerprint) -> its bullet lines.

    The inverse of the report's layout: a table's section starts with ``## <dataset> · protocol `<fingerprint>```
    and its findings are the lines after its ``### Findings`` heading up to the next blank line.
    """
    out = {}
    sections = list(_SECTION.finditer(text))
    for i, match in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        body = text[match.end():end]
        if f"\n{HEADING}\n" in body:
            block = body.split(f"\n{HEADING}\n", 1)[1].lstrip("\n")
            out[(match["dataset"], match["fingerprint"])] = block.split("\n\n", 1)[0].rstrip("\n")
    return out


def table_findings(table: pd.DataFrame, judgement: Judgement,
                   analysis: tuple[pd.DataFrame, ...] | None = None) -> list[str]:
    """The bullet lines of one (dataset, protocol) table, in a fixed order and wording; a crossed design's effects
    (``analysis``, all tables' or this one's) take the place of the baseline's tests."""
    headline = metric_label(judgement.headline)
    lines = []
    note = _first(table, "scale_note")
    if note:
        lines.append(f"- The {headline} is {note}.")
    bases = table[table["is_baseline"]]
    base = bases.iloc[0] if len(bases) else None
    crossed = of_table(analysis, table["dataset"].iloc[0], table["fingerprint"].iloc[0])
    if base is None and crossed and len(crossed[0]):
        lines.extend(effects_findings(*crossed, judgement))
    elif base is None:
        lines.append("- No baseline in this table: its rows are listed by their centre but not ranked, as none is "
                     "tested against another.")
    else:
        rows = [r for _, r in table.iterrows() if not r["is_baseline"]]
        decided = [r for r in rows if r["verdict"] in ("better", "worse")]
        for row in decided:
            subject = _name(row, base) + ("," if row.get("package") else "")  # "`X`, a package (...), is ..."
            lines.append(f"- {subject} is {row['verdict']} than the baseline on {headline}: "
                         f"{_effect(row)}, p (Holm) = {row['p_holm']:.2g}, n = {row['finished']} vs "
                         f"{base['finished']} seeds.")
        equivalent = [r for r in rows if r["verdict"] == EQUIVALENT]
        if equivalent:
            lines.append(f"- Equivalent to the baseline on {headline} (the {EQUIVALENCE_CONFIDENCE:.0%} interval "
                         f"inside the margin {judgement.margin_text()}: {judgement.margin_reason}): "
                         + "; ".join(f"{_name(r, base)} {_effect_90(r)}" for r in equivalent) + ".")
        ceiling = [r for r in rows if r["verdict"] == UNDECIDED and _mostly_at_ceiling(r)]
        if ceiling:
            lines.append(_ceiling_line(ceiling, base, judgement, headline))
        few = [r for r in rows if r["verdict"] == "too few seeds"]
        if few:
            lines.append("- Too few finished seeds to test (2 are needed), so not ranked: "
                         + "; ".join(f"{_name(r, base)} {r['finished']}/{r['seeds']}" for r in few) + ".")
        undecided = [r for r in rows if r["verdict"] == UNDECIDED and not any(r is c for c in ceiling)]
        if undecided:
            inside = (f"nor inside the margin {judgement.margin_text()}" if judgement.margin is not None
                      else "and no equivalence margin is declared")
            lines.append(f"- Undecided, neither separated from the baseline (p (Holm) >= {ALPHA:g}) {inside}; the "
                         f"seeds that would decide each {POWER:.0%} of the time if its observed effect is the true "
                         "one (row, baseline): " + "; ".join(f"{_name(r, base)} {_to_decide(r)}" for r in undecided)
                         + ".")
    unstable = [r for _, r in table.iterrows() if round(r["unstable"] * r["seeds"]) > 0]
    if unstable:
        lines.append("- Unstable seeds (diverged, collapsed or degraded): "
                     + "; ".join(f"`{row_label(r)}` {unstable_text(r)}" for r in unstable) + ".")
    failed = [r for _, r in table.iterrows() if r.get("n_failed")]
    if failed:
        lines.append("- Failed seeds (crashed, no value): "
                     + "; ".join(f"`{row_label(r)}` {r['n_failed']}/{r['seeds']}" for r in failed) + ".")
    if not (crossed and len(crossed[0])):  # a crossed table's power is its effects' (effects_findings)
        lines.append(f"- {power_line(table, judgement)}")
    return lines


def power_line(table: pd.DataFrame, judgement: Judgement) -> str:
    """The table's power in one sentence (the ``mde``, ``row_sd``, ``baseline_sd``, ``mde_seeds``, ``n_compared``
    columns): for Welch's test, the one the table uses, with the rows' and the baseline's own spreads."""
    headline = metric_label(judgement.headline)
    first = table.iloc[0]
    n, sd, mde, m = int(first["mde_seeds"]), first["row_sd"], first["mde"], int(first["n_compared"])
    base_sd = first["baseline_sd"]
    n_base = int(first.get("mde_baseline_seeds", n))
    if n < 2 or pd.isna(sd):
        return "Power: not estimable (no row has 2 finished seeds)."
    log = first["scale"] == "log"
    unit = f"log {headline}" if log else headline
    size = f"×{mde:.2g} either way" if log else f"{mde:.2g} either way"
    tests = (f"with Holm across {m} comparisons" if m > 1 else
             "with one comparison" if m == 1 else "on one comparison of two rows")
    seeds = f"{n} seeds per row" + (f" ({n_base} for the baseline)" if n_base != n else "")
    spread = (f"within-row sd {sd:.2g} ({unit})" if f"{sd:.2g}" == f"{base_sd:.2g}"
              else f"within-row sd {sd:.2g}, the baseline's {base_sd:.2g} ({unit})")
    return (f"Power: {seeds}, {spread}; for Welch's test {tests} at {ALPHA:g}, a true difference of {size} is "
            f"detected {POWER:.0%} of the time; smaller differences will mostly read undecided.")


def _first(table: pd.DataFrame, column: str) -> str:
    return str(table[column].iloc[0]) if column in table and isinstance(table[column].iloc[0], str) else ""


def _name(row, base) -> str:
    """The row in backticks; a package says what it changes, so its effect is not read as one component's."""
    label = f"`{row_label(row)}`"
    return f"{label}, a package ({package_text(row, base)})" if row.get("package") else label


def _effect(row) -> str:
    if row["scale"] == "log":
        return f"×{row['ratio']:.3g} [{row['ratio_ci_low']:.3g}, {row['ratio_ci_high']:.3g}]"
    return f"{row['diff']:+.3g} [{row['diff_ci_low']:+.3g}, {row['diff_ci_high']:+.3g}]"


def _effect_90(row) -> str:
    """The effect with its 90% interval (the one the equivalence margin is read against)."""
    if row["scale"] == "log":
        return f"×{row['ratio']:.3g} [{math.exp(row['diff_90_low']):.3g}, {math.exp(row['diff_90_high']):.3g}]"
    return f"{row['diff']:+.3g} [{row['diff_90_low']:+.3g}, {row['diff_90_high']:+.3g}]"


def _to_decide(row) -> str:
    n, n_base = row["seeds_to_decide"], row["baseline_seeds_to_decide"]
    if pd.isna(n):
        return "(not estimable)"
    return "(over 1000× today's seeds)" if math.isinf(n) else f"({n:.0f}, {n_base:.0f})"


def _mostly_at_ceiling(row) -> bool:
    return row["finished"] > 0 and row["n_at_ceiling"] > row["finished"] / 2


def _ceiling_line(rows: list, base, judgement: Judgement, headline: str) -> str:
    at = f"{headline} = {judgement.ceiling:g}"
    listed = ", ".join(f"`{row_label(r)}` {r['n_at_ceiling']}/{r['finished']}" for r in rows)
    base_share = f"{base['n_at_ceiling']}/{base['finished']}"
    if _mostly_at_ceiling(base):
        return (f"- At the ceiling ({at}) on most seeds, as is the baseline ({base_share}), so {headline} cannot "
                f"separate them from it: {listed}.")
    gap = judgement.ceiling - base["center"]
    return (f"- At the ceiling ({at}) on most seeds, where {headline} saturates: {listed}; the baseline "
            f"{base_share}, so a gain over it cannot exceed {abs(gap):.3g}.")


def effects_findings(effects: pd.DataFrame, interactions: pd.DataFrame, cells: pd.DataFrame,
                     judgement: Judgement) -> list[str]:
    """The bullet lines of one table's effects analysis (``ganzoo.report.effects``): what a crossed design decides."""
    if effects.empty:
        return []
    headline = metric_label(judgement.headline)
    log = effects["scale"].iloc[0] == "log"
    lines = [f"- Crossed design: its rows are cells, not tested one by one or ranked. Each component is tested "
             f"across every run it appears in, against its axis's reference level (additive least-squares model on "
             f"{'log ' if log else ''}{headline}, HC3 standard errors, Holm within each axis)."]
    for _, e in effects[effects["verdict"].isin(["better", "worse"])].iterrows():
        lines.append(f"- `{e['component']}` ({e['axis']}) is {e['verdict']} than `{e['reference']}` on {headline} "
                     f"across {e['runs']} vs {e['reference_runs']} runs: {_component_effect(e, log)}, p (Holm) = "
                     f"{e['p_holm']:.2g}; P(a run beats the reference's) = {_poi(e)}.")
    equivalent = effects[effects["verdict"] == EQUIVALENT]
    if len(equivalent):
        lines.append(f"- Equivalent to their reference (the {EQUIVALENCE_CONFIDENCE:.0%} interval inside "
                     f"{judgement.margin_text()}: {judgement.margin_reason}): "
                     + "; ".join(f"`{e['component']}` ({e['axis']}) {_component_effect(e, log, 90)}"
                                 for _, e in equivalent.iterrows()) + ".")
    undecided = effects[effects["verdict"] == UNDECIDED]
    if len(undecided):
        lines.append(f"- Undecided; the runs of this design's size that would decide each {POWER:.0%} of the time if "
                     "its observed effect is the true one: "
                     + "; ".join(f"`{e['component']}` ({e['axis']}) {_component_effect(e, log)}, "
                                 f"{_runs(e['runs_to_decide'])}" for _, e in undecided.iterrows()) + ".")
    lost = effects[effects["verdict"] == "not estimable"]
    if len(lost):
        lines.append("- Not estimable (confounded with other components in this design): "
                     + "; ".join(f"`{e['component']}` ({e['axis']})" for _, e in lost.iterrows()) + ".")
    lines.extend(_interaction_lines(interactions, cells, log, judgement))
    lines.append(f"- {effects_power_line(effects, judgement)}")
    return lines


def effects_power_line(effects: pd.DataFrame, judgement: Judgement) -> str:
    """A crossed table's power: the effects its runs detect 80% of the time (``mde`` of each component)."""
    headline = metric_label(judgement.headline)
    mde = effects["mde"].dropna()
    if mde.empty:
        return "Power: not estimable (no component has a standard error)."
    log = effects["scale"].iloc[0] == "log"
    low, high = mde.min(), mde.max()
    size = (f"×{low:.2g}" if log else f"{low:.2g}") + ("" if f"{low:.2g}" == f"{high:.2g}" else
                                                       f" to {'×' if log else ''}{high:.2g} (by component)")
    return (f"Power: at these runs, a true effect of {size} either way on {headline} is detected {POWER:.0%} of "
            f"the time (t test of the model's coefficient at {ALPHA:g} with Holm within its axis, its standard error "
            "as measured); smaller effects will mostly read undecided.")


def _interaction_lines(interactions: pd.DataFrame, cells: pd.DataFrame, log: bool,
                       judgement: Judgement) -> list[str]:
    tested = interactions[interactions["p"].notna()] if len(interactions) else interactions
    if len(tested) == 0:
        return ["- Interactions not testable (no cell has two runs to measure the spread within it): the additive "
                "effects assume each component acts alike whatever the rest of the cell."] if len(interactions) else []
    lines = []
    for _, t in tested[tested["p_holm"] < ALPHA].iterrows():
        parts = []
        for axis, other in ((t["axis"], t["other"]), (t["other"], t["axis"])):
            for component, by_level in cells[(cells["axis"] == axis) & (cells["other"] == other)].groupby(
                    "component", sort=True):
                sizes = ", ".join(f"{_size(c['effect'], log)} with {other} `{c['level']}`"
                                  for _, c in by_level.iterrows())
                flips = " (changes sign)" if _changes_sign(by_level["effect"], log, judgement) else ""
                parts.append(f"`{component}` {sizes}{flips}")
        lines.append(f"- The effects of {t['axis']} depend on {t['other']} (F({t['df_num']:.0f}, {t['df_den']:.0f}) = "
                     f"{t['f']:.3g}, p (Holm) = {t['p_holm']:.2g}), so their additive effects are averages: "
                     + "; ".join(parts) + ".")
    if not lines:
        pairs = ", ".join(f"{t['axis']}×{t['other']}" for _, t in tested.iterrows())
        lines.append(f"- No interaction detected (F test per pair of axes, Holm: {pairs}; all p (Holm) >= {ALPHA:g}).")
    return lines


def _changes_sign(effects, log: bool, judgement: Judgement) -> bool:
    """Whether the per-level effects point both ways, each beyond the equivalence margin where the headline is on
    the log scale and declares one (x0.97 against x1.02 is not a reversal)."""
    values = [v for v in effects if not pd.isna(v)]
    centred = [math.log(v) if log else v for v in values if not log or v > 0]
    beyond = math.log(judgement.margin) if log and judgement.margin is not None else 0.0
    return any(v > beyond for v in centred) and any(v < -beyond for v in centred)


def _size(value: float, log: bool) -> str:
    if pd.isna(value):
        return "–"
    return f"×{value:.3g}" if log else f"{value:+.3g}"


def _component_effect(e, log: bool, confidence: int = 95) -> str:
    low, high = (e["low"], e["high"]) if confidence == 95 else (e["low_90"], e["high_90"])
    if log:
        return f"×{e['effect']:.3g} [{low:.3g}, {high:.3g}]"
    return f"{e['effect']:+.3g} [{low:+.3g}, {high:+.3g}]"


def _poi(e) -> str:
    return f"{e['poi']:.2f}" + ("" if pd.isna(e["poi_low"]) else f" [{e['poi_low']:.2f}, {e['poi_high']:.2f}]")


def _runs(n: float) -> str:
    if pd.isna(n):
        return "not estimable"
    return "over 1000× today's runs" if math.isinf(n) else f"about {n:.0f} runs in all"
