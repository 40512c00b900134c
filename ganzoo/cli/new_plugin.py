"""``ganzoo new-plugin NAME [--kind KIND ...]``: a package that installs, registers one component of each kind asked
for, and tests them with ``ganzoo.testing``. The files come from ``ganzoo.cli.plugin_template``."""

from __future__ import annotations

from pathlib import Path

import click

from .plugin_template import PLUGIN_KINDS, TRAINABLE_KINDS, kinds_from_user, plugin_names, render_plugin, summary_of

# The committed example (examples/ganzoo-example-plugin): the template with every kind. Regenerate it with
#   ganzoo new-plugin ganzoo-example-plugin --kind all --directory examples --force
EXAMPLE_NAME, EXAMPLE_KINDS = "ganzoo-example-plugin", PLUGIN_KINDS


def write_plugin(name: str, parent: Path, kinds: tuple[str, ...] = TRAINABLE_KINDS, force: bool = False) -> Path:
    """Write the package ``parent / name`` (pyproject.toml, the module, README.md, tests/); returns its folder.

    Args:
        name: the distribution (``ganzoo-acme``).
        parent: the folder to create it in.
        kinds: one component of each (``ganzoo.cli.plugin_template.PLUGIN_KINDS``, or ``"all"``).
        force: rewrite the template's files in an existing folder (other files there are left alone).

    Raises:
        ValueError: a bad name or kind, or the folder exists already and ``force`` is not set.
    """
    files = render_plugin(name, kinds)
    root = Path(parent) / name
    if root.exists() and not force:
        raise ValueError(f"{root} exists already; choose another NAME or --directory, or --force to rewrite the "
                         "template's files in it (nothing was written)")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", "-k", "kinds", multiple=True, metavar="KIND",
              help=f"A component kind to scaffold, repeatable: {', '.join(PLUGIN_KINDS)}, or all. "
                   f"Default: {', '.join(TRAINABLE_KINDS)}.")
@click.option("--directory", "-d", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where the package folder NAME/ is created.")
@click.option("--force", is_flag=True, help="Rewrite the template's files in an existing NAME/ folder.")
def new_plugin_command(name, kinds, directory, force):
    """Write a plugin package NAME/ (e.g. ganzoo-acme): one component of each --kind, an entry point in the
    "ganzoo" group, and tests that run ganzoo.testing's contract checks on them.
    """
    try:
        chosen = kinds_from_user(kinds)
        root = write_plugin(name, directory, chosen, force)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Wrote {root}: {summary_of(chosen, plugin_names(name))}.\n"
               f"Next: pip install -e {root}  then  ganzoo list  and  pytest {root / 'tests'}")
