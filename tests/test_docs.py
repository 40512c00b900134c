"""Docs that cannot drift (as datasette does it): every hook and every command is documented in the README."""

import inspect
from pathlib import Path

import pytest

from ganzoo import hookspecs
from ganzoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
HOOKS = [name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_readme_section_with_its_signature(hook):
    signature = str(inspect.signature(getattr(hookspecs, hook)))
    assert f"### {hook}{signature}" in README


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_in_the_readme(command):
    assert f"ganzoo {command}" in README


def test_quickstart_has_the_two_commands():
    assert "pip install -e . && ganzoo bench --all" in README
    assert "pip install -e '.[test]' && pytest" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && pytest" in ci


def test_every_shipped_suite_is_documented():
    from ganzoo.suite import available_suites

    benchmarks_readme = (ROOT / "benchmarks" / "README.md").read_text()
    for name in available_suites():
        assert f"| `{name}` |" in benchmarks_readme
