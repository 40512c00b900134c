"""``ganzoo report``: the leaderboards of a results folder, one table set per suite, in Markdown, CSV or HTML."""

from __future__ import annotations

from pathlib import Path

import click

from .common import results_dir_option, user_errors


@click.command("report")
@results_dir_option
@click.option("--suite", default=None,
              help="Only this suite (default: every suite in the store, each in its folder).")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md", show_default=True,
              help="What to print; html also writes a static report (SUITE/report/index.html, plots, samples).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write each suite's folder (SUITE/leaderboard.md, ..., SUITE/report/) here instead of in "
                   "RESULTS_DIR, e.g. when the results folder is read-only.")
def report_command(results_dir, suite, fmt, out):
    """Write the leaderboards (SUITE/leaderboard.{md,csv}), one set per suite, and print them.

    With --format html, also a static report per suite that opens in any browser, offline.
    """
    from ..core.store import Store
    from ..report import write_report

    out = out or results_dir
    with user_errors():
        store = Store(results_dir, readonly=True)  # reading only: never blocks or changes a running sweep
    try:
        suites = [suite] if suite else store.suites()
        if suite and suite not in store.suites():
            held = ", ".join(store.suites()) or "none"
            raise click.UsageError(f'No suite "{suite}" in {results_dir}; it holds: {held}')
        # One suite, one table set: runs of different budgets or of `ganzoo train` never share a ranking.
        for name in suites:
            try:
                paths = write_report(store, out / name, suite=name)
                if fmt == "html":
                    from ..report.html import write_html_report

                    paths.append(write_html_report(store, out / name / "report", name))
            except PermissionError as exc:
                raise click.ClickException(f"Cannot write the report: {exc}. Pass --out DIR to write it "
                                           "elsewhere.") from exc
            for path in paths:
                click.echo(f"wrote {path}", err=True)
            if fmt == "html":
                click.echo(paths[-1])
            else:
                click.echo(paths[0 if fmt == "md" else 1].read_text(), nl=False)
    finally:
        store.close()

