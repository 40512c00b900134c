"""The ``ganzoo`` command line: list, plugins, runs here; bench, report, train, eval, stats, compare in their
modules."""

from __future__ import annotations

import json

import click

from ..api.components import KINDS, Component, Metric, kind_from_user
from ..core.records import FAILED
from ..core.registry import get_registry
from ..core.store import STORE_FILE
from .common import results_dir_option, table, user_errors, warn_errors

FORMATS = click.Choice(["table", "json"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ganzoo")
def main():
    """ganzoo: a plugin-based GAN model zoo and benchmark harness."""


@main.command("list")
@click.argument("kind", required=False)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def list_command(kind, fmt):
    """Registered components and metrics (all, or one KIND such as losses or metrics), with who registered each."""
    registry = get_registry()
    wants_metrics = kind is not None and kind.strip().lower() in ("metric", "metrics")
    try:
        kinds = [] if wants_metrics else [kind_from_user(kind)] if kind else list(KINDS)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}, metrics", param_hint="KIND") from exc
    entries = [c for k in kinds for c in registry.list(k)] + (registry.metrics() if wants_metrics or not kind else [])
    if fmt == "json":
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2, default=str))
    else:
        rows = [{"kind": getattr(e, "kind", "metric"), "name": e.name, "plugin": e.plugin,
                 "distribution": f"{e.distribution} {e.version}", "description": _description(e)} for e in entries]
        click.echo(table(rows, ["kind", "name", "plugin", "distribution", "description"]))
    warn_errors(registry)


def _description(entry: Component | Metric) -> str:
    """A component's description; a metric's with its direction, which decides how leaderboards read it."""
    if isinstance(entry, Metric):
        return f"{entry.description} ({'lower' if entry.lower_is_better else 'higher'} is better)"
    return entry.description


@main.command("plugins")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def plugins_command(fmt):
    """Installed plugins, the hooks each implements, and any that failed to load."""
    registry = get_registry()
    plugins = [{"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
                "hooks": p.hooks} for p in sorted(registry.plugins.values(), key=lambda p: p.name)]
    errors = [{"plugin": e.plugin, "distribution": e.distribution, "error": e.error} for e in registry.errors]
    if fmt == "json":
        click.echo(json.dumps({"plugins": plugins, "errors": errors}, indent=2))
        return
    click.echo(table([{**p, "hooks": ", ".join(p["hooks"])} for p in plugins],
                      ["name", "distribution", "version", "module", "hooks"]))
    if errors:
        click.echo("\nFailed to load:")
        click.echo(table(errors, ["plugin", "distribution", "error"]))


@main.command("runs")
@results_dir_option
@click.option("--suite", default=None, help="Only the runs of this suite.")
@click.option("--status", "statuses", multiple=True, help="Only runs with this status (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def runs_command(results_dir, suite, statuses, fmt):
    """Every run in the store: id, combination, dataset, seed, status, started and finished times."""
    from ..report import load_runs

    with user_errors():
        runs = load_runs(results_dir, suite)  # read-only: a folder another sweep writes, or a read-only one
    if runs.empty:
        click.echo(f"No runs in {results_dir / STORE_FILE}" + (f" for suite {suite}" if suite else "") + ".")
        return
    if statuses:
        runs = runs[runs["status"].isin(statuses)]
    if fmt == "json":
        click.echo(runs.to_json(orient="records", date_format="iso", indent=2))
    elif fmt == "csv":
        click.echo(runs.to_csv(index=False), nl=False)
    else:
        columns = ["run_id", "dataset", "generator", "discriminator", "loss", "stack", "seed", "status", "started",
                   "finished"]
        shown = runs[columns].copy()
        for col in ("started", "finished"):
            shown[col] = shown[col].map(lambda t: "" if t is None or str(t) == "NaT" else str(t)[:19])
        click.echo(table(shown.to_dict("records"), columns))
        failed = runs[runs["status"] == FAILED]
        for _, row in failed.iterrows():
            click.echo(f"\n{row['run_id']} failed:\n{row['error']}")



def _attach_subcommands() -> None:
    from .bench import bench_command
    from .compare import compare_command
    from .eval import eval_command, stats_command
    from .new_plugin import new_plugin_command
    from .plan import plan_command
    from .report import report_command
    from .train import train_command

    main.add_command(bench_command, name="bench")
    main.add_command(report_command, name="report")
    main.add_command(train_command, name="train")
    main.add_command(eval_command, name="eval")
    main.add_command(stats_command, name="stats")
    main.add_command(compare_command, name="compare")
    main.add_command(plan_command, name="plan")
    main.add_command(new_plugin_command, name="new-plugin")


_attach_subcommands()

__all__ = ["main"]
