"""The built-in zoo ships the way it runs: folders, packages and entry points agree with pyproject.toml."""

import importlib.metadata
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_plugin_folder_is_a_listed_package():
    folders = {"ganzoo_plugins." + p.parent.relative_to(ROOT / "plugins").as_posix().replace("/", ".")
               for p in (ROOT / "plugins").rglob("__init__.py") if p.parent != ROOT / "plugins"}
    listed = {p for p in PYPROJECT["tool"]["setuptools"]["packages"] if p.startswith("ganzoo_plugins.")}
    assert folders == listed, "add the new folder under plugins/ to [tool.setuptools] packages (or remove it)"
    core = {"ganzoo." + p.parent.relative_to(ROOT / "ganzoo").as_posix().replace("/", ".")
            for p in (ROOT / "ganzoo").rglob("__init__.py") if p.parent != ROOT / "ganzoo"}
    assert core == {p for p in PYPROJECT["tool"]["setuptools"]["packages"] if p.startswith("ganzoo.")}


def test_installed_entry_points_match_pyproject():
    declared = PYPROJECT["project"]["entry-points"]["ganzoo"]
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="ganzoo")
                 if ep.dist is not None and ep.dist.metadata["Name"] == "ganzoo"}
    assert installed == declared, "the installed metadata is stale: run `pip install -e .` again"


def test_default_suite_ships_with_the_package():
    from ganzoo.run.suite import available_suites

    assert "default" in available_suites()
