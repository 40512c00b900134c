"""Docs that cannot drift (as datasette does it): every hook and every command is documented in the README."""

import inspect
import re
from pathlib import Path

import pytest

from ganzoo import Stabilizer, hookspecs
from ganzoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
HOOKS = [name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_readme_section_with_its_signature(hook):
    signature = str(inspect.signature(getattr(hookspecs, hook)))
    assert f"### {hook}{signature}" in README


STABILIZER_HOOKS = [name for name, _ in inspect.getmembers(Stabilizer, inspect.isfunction) if not name.startswith("_")]
TESTS = "\n".join(p.read_text() for p in sorted((ROOT / "tests").glob("test_*.py")) if p.name != "test_docs.py")


def test_the_stabilizer_contract_has_its_hook_points():
    assert len(STABILIZER_HOOKS) == 15 and {"d_loss_kwargs", "g_penalty", "state_dict"} <= set(STABILIZER_HOOKS)


@pytest.mark.parametrize("hook", STABILIZER_HOOKS)
def test_every_stabilizer_hook_point_is_documented_and_exercised_by_a_test(hook):
    section = README.split("### register_stabilizers")[1].split("\n### ")[0]
    assert f"`{hook}(" in section, f"README's register_stabilizers section does not document {hook}"
    assert re.search(rf"(\bdef |\.){hook}\(", TESTS), f"no test overrides or calls Stabilizer.{hook}"


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
