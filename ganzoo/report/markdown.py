"""Leaderboards written as Markdown and CSV, one table set per suite.

``to_markdown`` prints one ranking table and one all-metrics table per (dataset, protocol), each headed
by what it ranks by and the protocol every number was measured with. One report covers one suite:
ad-hoc ``ganzoo train`` runs are the suite ``train`` and never share a table with a sweep.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..api.judgement import DEFAULT_JUDGEMENT, Judgement
from ..core.records import Evaluation, ReferenceRow, SuiteRecord
from ..core.store import Store
from .effects import effects
from .findings import HEADING, effects_power_line, of_table, power_line, table_findings
from .leaderboard import AXES, leaderboard, row_label
from .runs import collector_paused, judgements_of, read_runs
from .tables import budget_text, effects_table, metric_label, metrics_table, num, ranking_table

LEGEND = (
    "Each row is one experiment (runs that differ only by seed); *seeds* = finished/total. The headline "
    "statistics are over finished seeds: the mean with Student's t 95% CI, or, for a headline analysed on the log "
    "scale (FID: it behaves multiplicatively), the geometric mean with exp of the t interval of the logs; median "
    "with its interquartile range; the *worst* seed. *unstable* = seeds that diverged (non-finite), collapsed "
    "(the dataset's collapse criterion at the end) or degraded (final headline worse than the run's own best by "
    "more than the dataset's tolerance); *success* = seeds meeting the success criterion. *differs in* = the "
    "axes in which a row is not the baseline; a *package* changes several components at once (several axes, or "
    "a stack of several stabilizers), so its difference is the package's, not one component's. *Δ vs baseline* "
    "= row mean − baseline mean with Welch's 95% CI (on the log scale: *ratio vs baseline* = row / baseline "
    "geometric mean with Welch's CI of the log difference); *p (Holm)* = Welch's t-test on the same scale, "
    "Holm-corrected across the table. The CI is unadjusted and excludes 1 (ratio) or 0 (Δ) exactly when the "
    "unadjusted p < 0.05. *verdict*: *better*/*worse* where p (Holm) < 0.05; else *equivalent* where Welch's 90% "
    "interval lies inside the margin the dataset declared before its runs (at most ×0.8-1.25 on the log scale, "
    "±10% of the baseline on the linear one); else *undecided* (the Findings give the seeds that would decide it). "
    "*rank*: only rows tested against the baseline, and the baseline, are ranked; a row with one finished seed "
    "is listed unranked (–), since its order would be noise. *Power* under each table: the minimum detectable "
    "difference for Welch's test, with the rows' and the baseline's own spreads (80% power, Holm across the "
    "table) at its seed count. *Findings* close "
    "each table: its statistics in words. A run's headline is the mean of its last evaluations (the window its "
    "table's header names), every other value its final evaluation's; never the best one. KID is "
    "printed ×10³ where it is below 1 (Inception-sized, as papers print it) and raw otherwise, as its column "
    "says. Definitions: docs/reading-results.md in the ganzoo repository, \"Reading a leaderboard\" and "
    "\"Statistics\".\n"
)


def to_markdown(board: pd.DataFrame, title: str = "Leaderboard", suite_record: SuiteRecord | dict | None = None,
                judgements: dict[str, Judgement] | None = None,
                references: dict[tuple[str, str], ReferenceRow] | None = None,
                analysis: tuple[pd.DataFrame, ...] | None = None) -> str:
    """One ranking table and one all-metrics table per (dataset, protocol), each headed by its protocol.

    ``references``: (dataset, fingerprint) -> real data through the same protocol, shown as the last
    row of the all-metrics table (the ceiling a generator is read against). ``analysis``: a crossed design's
    effects (``ganzoo.report.effects.effects``), printed as each table's effects table and in its Findings.
    """
    if board.empty:
        return f"# {title}\n\nNo finished runs yet.\n"
    parts = [f"# {title}\n", LEGEND]
    for (dataset, fingerprint), group in board.groupby(["dataset", "fingerprint"], sort=False):
        judgement = (judgements or {}).get(dataset, DEFAULT_JUDGEMENT)
        reference = (references or {}).get((dataset, fingerprint))
        parts.append(_header(dataset, fingerprint, group, judgement, SuiteRecord.from_dict(suite_record)))
        parts.append(ranking_table(group, judgement).to_markdown(index=False) + "\n")
        crossed = of_table(analysis, dataset, fingerprint)
        crossed_power = crossed and len(crossed[0])
        parts.append((effects_power_line(crossed[0], judgement) if crossed_power else power_line(group, judgement))
                     + "\n")
        parts.append("All metrics, mean ± sd over finished seeds (↓ lower is better, ↑ higher is better):\n")
        parts.append(metrics_table(group, reference).to_markdown(index=False) + "\n")
        if reference:
            parts.append(f"*real data*: {reference.note}, {reference.n} samples through the same protocol; "
                         f"its {metric_label(judgement.headline)} is "
                         f"{num(reference.metrics.get(judgement.headline, float('nan')))}.\n")
        if crossed_power:
            parts.append(EFFECTS_INTRO + effects_table(crossed[0]).to_markdown(index=False) + "\n")
        parts.append(f"{HEADING}\n\n" + "\n".join(table_findings(group, judgement, analysis)) + "\n")
    return "\n".join(parts)


EFFECTS_INTRO = (
    "Effects (crossed design): each component against its axis's reference level, estimated across every run it "
    "appears in by an additive least-squares model on the headline's analysis scale (HC3 standard errors, t "
    "intervals, Holm within each axis); *P(improvement)* = the chance a run with it beats a run with the reference, "
    "with a bootstrap interval; *interacts with* = axes whose levels change its effect (F test, Holm). Every column: "
    "`effects.csv`.\n\n")


def _header(dataset: str, fingerprint: str, group: pd.DataFrame, judgement: Judgement, record: SuiteRecord) -> str:
    first = group.iloc[0]
    direction = "lower is better" if judgement.lower_is_better else "higher is better"
    lines = [f"## {dataset} · protocol `{fingerprint}`\n",
             f"Ranked by **{metric_label(judgement.headline)}** ({direction}; each run's value: its "
             f"{judgement.window_text()}): {judgement.note or judgement.headline}."
             + (f" Ties: {judgement.tiebreak}." if judgement.tiebreak else ""),
             f"Protocol: extractor {first.get('extractor')} (weights {first.get('weights_hash')}), "
             f"{first.get('n_fake')} generated vs {first.get('n_real') or 'all'} real samples. "
             f"Budget: {budget_text(group)}.",
             f"Collapsed: {' or '.join(judgement.collapse) or 'not defined'}; degraded: final "
             f"{'above' if judgement.lower_is_better else 'below'} best × "
             f"{1 + judgement.degrade_tolerance if judgement.lower_is_better else 1 - judgement.degrade_tolerance:g}; "
             f"success: {' and '.join(judgement.success) or 'not defined'}."]
    if "scale" in group and group["scale"].iloc[0] == "log":
        lines.append(f"Scale: log (geometric means; rows compared by their ratio to the baseline, tests on log "
                     f"{metric_label(judgement.headline)}).")
    elif "scale_note" in group and group["scale_note"].iloc[0]:
        lines.append(f"Scale: {group['scale_note'].iloc[0]}.")
    baseline = record.datasets[dataset].baseline if dataset in record.datasets else None
    if baseline and group["is_baseline"].any():
        lines.append(f"Baseline: {'/'.join(baseline[a] for a in AXES)}; {design_sentence(group)}")
    return "\n".join(lines) + "\n"


def design_sentence(group: pd.DataFrame) -> str:
    """How the rows relate to the baseline: one component each, unless some are packages (named)."""
    others = group[~group["is_baseline"]]
    packages = others[others["package"].astype(bool)] if "package" in others else others.iloc[:0]
    if packages.empty:
        return "every other row differs from it in one component (one-factor design)."
    named = ", ".join(f"`{row_label(r)}`" for _, r in packages.iterrows())
    which = "packages that change" if len(packages) > 1 else "a package that changes"
    return (f"the other rows differ from it in one component, except {which} several at once ({named}): a "
            "package's difference is the package's, not one component's effect.")


def write_report(store: Store, out_dir: Path, suite: str | None = None) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``runs.csv``, ``evals.csv`` (and ``effects.csv`` for crossed
    designs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with collector_paused():  # the runs read stay alive through the statistics: see collector_paused
        runs = read_runs(store, suite)[0]
        record = store.read_suite_record(suite) if suite else SuiteRecord()
        judgements = judgements_of(store, suite, set(runs["dataset"])) if not runs.empty else {}
        board = leaderboard(runs, record, judgements)
        paths = [out_dir / "leaderboard.md", out_dir / "leaderboard.csv", out_dir / "runs.csv", out_dir / "evals.csv"]
        references = store.references(suite) if suite else {}
        analysis = effects(runs, record, judgements) if record.crossed(runs["dataset"]) and not board.empty else None
        markdown = to_markdown(board, f"ganzoo leaderboard: {suite or 'all suites'}", record, judgements, references,
                               analysis)
        if analysis is not None:
            paths.append(out_dir / "effects.csv")
            analysis[0].to_csv(paths[-1], index=False)
        paths[0].write_text(markdown)
        board.to_csv(paths[1], index=False)
        runs.drop(columns=["error"], errors="ignore").to_csv(paths[2], index=False)
        evaluations_frame(store, runs).to_csv(paths[3], index=False)
    return paths


EVAL_COLUMNS = ("run_id", "index", "g_steps", "kimg", "d_steps", "seconds", "d_loss", "g_loss")


def evaluations_frame(store: Store, runs: pd.DataFrame) -> pd.DataFrame:
    """Every evaluation of ``runs``, one row each in training order (``index`` 0 first): where it was taken, the
    losses then, every metric it measured and the values its stabilizers reported (``ada.p``). With ``runs.csv``
    it is what anyone needs to recompute a run's headline value (``headline`` in ``runs.csv``) or try another
    summary of the curves."""
    run_ids = runs["run_id"].tolist() if "run_id" in runs else []
    records = []
    for run_id, evals in store.evals_by_run(run_ids).items():
        for index, payload in enumerate(evals):
            evaluation = Evaluation.from_dict(payload)
            records.append({"run_id": run_id, "index": index, "g_steps": evaluation.g_steps, "kimg": evaluation.kimg,
                            "d_steps": evaluation.d_steps, "seconds": evaluation.seconds, "d_loss": evaluation.d_loss,
                            "g_loss": evaluation.g_loss, **evaluation.metrics, **evaluation.stabilizers})
    # evals_by_run reads them ordered by run and index already
    return pd.DataFrame.from_records(records, columns=None if records else list(EVAL_COLUMNS))

