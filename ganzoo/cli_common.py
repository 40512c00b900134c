"""What every ganzoo command shares: user errors as one clear line, plugin load errors as warnings.

The command modules (``cli``, ``cli_train``, ``cli_eval``) import this module and never each other,
except that ``cli`` attaches the others' commands to the ``ganzoo`` group.
"""

from __future__ import annotations

import contextlib

import click


@contextlib.contextmanager
def user_errors():
    """Show a bad suite, name, hyperparameter or missing download as one clear message, not a traceback."""
    from .download import DownloadError
    from .registry import UnknownComponentError
    from .store import StoreError

    try:
        yield
    except (UnknownComponentError, DownloadError, StoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def warn_errors(registry) -> None:
    """One warning line per plugin that failed to load, pointing at ``ganzoo plugins``."""
    for error in registry.errors:
        click.echo(f"warning: {error} (see: ganzoo plugins)", err=True)
