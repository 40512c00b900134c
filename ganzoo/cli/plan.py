"""``ganzoo plan``: how many seeds a suite needs, from the runs it has finished (its pilot)."""

from __future__ import annotations

import math

import click
from tabulate import tabulate

from .common import results_dir_option, user_errors


@click.command("plan")
@click.option("--suite", required=True, help="The suite whose finished runs are the pilot data.")
@results_dir_option
@click.option("--power", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.8, show_default=True,
              help="The probability of detecting a true difference.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="The level of the test, before Holm's correction across each table.")
@click.option("--seeds", type=click.IntRange(min=2), default=None,
              help="Seeds per row to quote the minimum detectable difference at (default: the suite's).")
def plan_command(suite, results_dir, power, alpha, seeds):
    """For each table of SUITE: the rows' and the baseline's sd, the minimum detectable difference at its seed
    count, and for each comparison with the baseline the observed effect and the seeds per group that would detect
    it (Welch's two-sided test, the one the tables run, Holm across the table)."""
    from ..core.store import Store
    from ..report import judgements_of, leaderboard, read_runs
    from ..report.power import power_plan

    with user_errors():
        store = Store(results_dir, readonly=True)
    try:
        if suite not in store.suites():
            held = ", ".join(store.suites()) or "none"
            raise click.UsageError(f'No suite "{suite}" in {results_dir}; it holds: {held}')
        runs = read_runs(store, suite)[0]
        record = store.read_suite_record(suite)
        judgements = judgements_of(store, suite, set(runs["dataset"])) if not runs.empty else {}
        with user_errors():
            plans = power_plan(leaderboard(runs, record, judgements), judgements, power, alpha, seeds)
    finally:
        store.close()
    if not plans:
        click.echo(f"{suite}: no pilot data (no finished runs in {results_dir}).")
        return
    for i, plan in enumerate(plans):
        click.echo(("\n" if i else "") + describe(plan, power, alpha))


def describe(plan: dict, power: float, alpha: float) -> str:
    """One table's plan as a few lines and a table of comparisons."""
    log = plan["scale"] == "log"
    unit = f"log {plan['headline']}" if log else plan["headline"]
    lines = [f"{plan['dataset']} · protocol {plan['fingerprint']} · {plan['headline']}, {plan['scale']} scale"]
    if math.isnan(plan["pooled_sd"]):
        lines.append("  no pilot data: no row has 2 finished seeds")
        return "\n".join(lines)
    holm = f"Holm across {plan['m']} comparisons" if plan["m"] > 1 else "one comparison"
    size = f"×{plan['mde']:.3g} either way" if log else f"{plan['mde']:.3g} either way"
    lines.append(f"  within-row sd: {plan['row_sd']:.3g}, the baseline's {plan['baseline_sd']:.3g} ({unit}; Welch's "
                 "test gives each its own)")
    base = plan.get("baseline_seeds", plan["seeds"])
    seeds = f"{plan['seeds']} seeds per row" + (f" ({base} for the baseline)" if base != plan["seeds"] else "")
    lines.append(f"  detectable at {seeds} ({power:.0%} power, alpha {alpha:g}, {holm}): {size}")
    if plan["comparisons"]:
        rows = [{"comparison": c["label"], "observed": _effect(c["effect"], log),
                 "seeds per group needed": _needed(c["seeds_needed"])} for c in plan["comparisons"]]
        columns = ["comparison", "observed", "seeds per group needed"]
        # As text: tabulate would read "+0.5" as a number and drop its sign.
        body = tabulate([[r[c] for c in columns] for r in rows], headers=columns, disable_numparse=True)
        lines.append("\n".join("  " + line for line in body.splitlines()))
    return "\n".join(lines)


def _effect(value: float, log: bool) -> str:
    if math.isnan(value):
        return "–"
    return f"×{value:.3g}" if log else f"{value:+.3g}"


def _needed(n: float) -> str:
    if math.isnan(n):
        return "–"
    return "> 1000" if math.isinf(n) else str(int(n))
