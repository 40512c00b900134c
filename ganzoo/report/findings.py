"""What each leaderboard table supports, in sentences generated from its statistics alone.

A hand-written summary drifts from the table it summarises; these lines cannot, because they are the table's
numbers in words: each decided difference with its interval and Holm-adjusted p, the rows a saturated headline
cannot separate, the unstable rows, the rows not separated from the baseline, and the table's power. The
Markdown and HTML reports end each table's section with them under ``### Findings``; ``findings_of_markdown``
reads them back from a written ``leaderboard.md`` (e.g. to check that a README quotes them verbatim).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from ..judgement import DEFAULT_JUDGEMENT, Judgement
from .leaderboard import ALPHA, POWER, TABLE_KEYS, package_text, row_label
from .tables import metric_label, unstable_text

HEADING = "### Findings"
_SECTION = re.compile(r"^## (?P<dataset>\S+) · protocol `(?P<fingerprint>[^`]*)`$", re.MULTILINE)


def findings(board: pd.DataFrame, judgements: Mapping[str, Judgement] | None = None) -> dict[tuple[str, str], str]:
    """Each table's findings: (dataset, fingerprint) -> the bullet lines (no heading), as the reports print them."""
    if board.empty:
        return {}
    return {(dataset, fingerprint): "\n".join(table_findings(table, (judgements or {}).get(dataset,
                                                                                          DEFAULT_JUDGEMENT)))
            for (dataset, fingerprint), table in board.groupby(TABLE_KEYS, sort=False)}


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


def table_findings(table: pd.DataFrame, judgement: Judgement) -> list[str]:
    """The bullet lines of one (dataset, protocol) table, in a fixed order and wording."""
    headline = metric_label(judgement.headline)
    lines = []
    note = _first(table, "scale_note")
    if note:
        lines.append(f"- The {headline} is {note}.")
    bases = table[table["is_baseline"]]
    base = bases.iloc[0] if len(bases) else None
    if base is None:
        lines.append("- No baseline in this table: its rows are ranked, not tested against one another.")
    else:
        rows = [r for _, r in table.iterrows() if not r["is_baseline"]]
        decided = [r for r in rows if r["verdict"] in ("better", "worse")]
        for row in decided:
            subject = _name(row, base) + ("," if row.get("package") else "")  # "`X`, a package (...), is ..."
            lines.append(f"- {subject} is {row['verdict']} than the baseline on {headline}: "
                         f"{_effect(row)}, p (Holm) = {row['p_holm']:.2g}, n = {row['finished']} vs "
                         f"{base['finished']} seeds.")
        ceiling = [r for r in rows if r["verdict"] == "n.s." and _mostly_at_ceiling(r)]
        if ceiling:
            lines.append(_ceiling_line(ceiling, base, judgement, headline))
        few = [r for r in rows if r["verdict"] == "too few seeds"]
        if few:
            lines.append("- Too few finished seeds to test (2 are needed): "
                         + "; ".join(f"{_name(r, base)} {r['finished']}/{r['seeds']}" for r in few) + ".")
        undecided = [r for r in rows if r["verdict"] == "n.s." and not any(r is c for c in ceiling)]
        if undecided:
            lines.append(f"- Not separated from the baseline (p (Holm) >= {ALPHA:g}): "
                         + "; ".join(_name(r, base) for r in undecided) + ".")
    unstable = [r for _, r in table.iterrows() if round(r["unstable"] * r["seeds"]) > 0]
    if unstable:
        lines.append("- Unstable seeds (diverged, collapsed or degraded): "
                     + "; ".join(f"`{row_label(r)}` {unstable_text(r)}" for r in unstable) + ".")
    failed = [r for _, r in table.iterrows() if r.get("n_failed")]
    if failed:
        lines.append("- Failed seeds (crashed, no value): "
                     + "; ".join(f"`{row_label(r)}` {r['n_failed']}/{r['seeds']}" for r in failed) + ".")
    lines.append(f"- {power_line(table, judgement)}")
    return lines


def power_line(table: pd.DataFrame, judgement: Judgement) -> str:
    """The table's power in one sentence (the ``mde``, ``pooled_sd``, ``mde_seeds``, ``n_compared`` columns)."""
    headline = metric_label(judgement.headline)
    first = table.iloc[0]
    n, sd, mde, m = int(first["mde_seeds"]), first["pooled_sd"], first["mde"], int(first["n_compared"])
    n_base = int(first.get("mde_baseline_seeds", n))
    if n < 2 or pd.isna(sd):
        return "Power: not estimable (no row has 2 finished seeds)."
    log = first["scale"] == "log"
    unit = f"log {headline}" if log else headline
    size = f"×{mde:.2g} either way" if log else f"{mde:.2g} either way"
    tests = (f"with Holm across {m} comparisons" if m > 1 else
             "with one comparison" if m == 1 else "for one comparison of two rows")
    seeds = f"{n} seeds per row" + (f" ({n_base} for the baseline)" if n_base != n else "")
    return (f"Power: {seeds}, pooled within-row sd {sd:.2g} ({unit}); {tests} at {ALPHA:g}, a true "
            f"difference of {size} is detected {POWER:.0%} of the time; smaller differences will mostly read n.s.")


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
