"""What every ganzoo command shares: user errors as one clear line, plugin load errors as warnings.

The command modules (``cli``, ``cli_train``, ``cli_eval``) import this module and never each other,
except that ``cli`` attaches the others' commands to the ``ganzoo`` group.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import click

# Where runs go unless --results-dir says otherwise. Not ``results/``: that folder holds the committed
# leaderboards, which a user's own sweep (other seeds, another machine) must not overwrite.
RESULTS_DIR = Path("ganzoo-results")

results_dir_option = click.option(
    "--results-dir", type=click.Path(file_okay=False, path_type=Path), default=RESULTS_DIR, show_default=True,
    help="The store and run folders (and each suite's leaderboards under SUITE/).")


def _check_log(ctx, param, values: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """``--log`` values as (tracker, target) pairs; an unknown tracker or a missing library fails here."""
    if not values:
        return []
    from ..core.registry import UnknownComponentError, get_registry
    from ..run.tracking import parse_log

    try:
        return parse_log(values, get_registry())
    except (UnknownComponentError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from exc


log_option = click.option(
    "--log", "trackers", multiple=True, metavar="TRACKER[=TARGET]", callback=_check_log,
    help="Log every run to an experiment tracker as it trains (repeatable): tensorboard (event files in "
    "RESULTS/tensorboard, or TARGET), mlflow (TARGET, else $MLFLOW_TRACKING_URI, else RESULTS/mlflow.db), or one "
    "a plugin registers. A tracker that fails is reported and turned off; the run goes on.")


@contextlib.contextmanager
def user_errors():
    """Show a bad suite, name, hyperparameter or missing download as one clear message, not a traceback."""
    from ..core.registry import UnknownComponentError
    from ..core.store import StoreError
    from ..system.download import DownloadError

    try:
        yield
    except (UnknownComponentError, DownloadError, StoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def warn_errors(registry) -> None:
    """One warning line per plugin that failed to load, pointing at ``ganzoo plugins``."""
    for error in registry.errors:
        click.echo(f"warning: {error} (see: ganzoo plugins)", err=True)


class FinitePositive(click.ParamType):
    """A float > 0 that is a number: click's FloatRange lets nan and inf through."""

    name = "float"

    def convert(self, value, param, ctx):
        number = value if isinstance(value, float) else click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} is not a finite number > 0", param, ctx)
        return number


FINITE_POSITIVE = FinitePositive()


def check_device(ctx, param, value: str) -> str:
    """Refuse a device string torch cannot use here, before anything is built or written."""
    from ..run.build import resolve_device

    try:
        resolve_device(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


def table(rows: list[dict], columns: list[str]) -> str:
    """Rows as a plain-text table with ``columns`` as headers (missing values blank)."""
    from tabulate import tabulate

    return tabulate([[r.get(c, "") for c in columns] for r in rows], headers=columns)
