"""Docs that cannot drift (as datasette does it): every hook and every command is documented in the README."""

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from ganzoo import Component, Stabilizer, hookspecs, testing
from ganzoo.cli import main
from ganzoo.components import Metric
from ganzoo.contracts import MODALITIES
from ganzoo.testing import check_stabilizer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
HOOKS = [name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_readme_section_with_its_signature(hook):
    signature = str(inspect.signature(getattr(hookspecs, hook)))
    assert f"### {hook}{signature}" in README


def _readme_register_signature() -> ast.arguments:
    """The ``register(...)`` signature the README's "Hooks" section gives, parsed as Python."""
    hooks = README.split("\n## Hooks\n")[1].split("\n### ")[0]
    match = re.search(r"`register\((.*?)\)`\.", hooks, re.S)
    assert match, "README's Hooks section must give register's signature as `register(name, factory, *, ...)`."
    return ast.parse(f"def register({' '.join(match.group(1).split())}): pass").body[0].args


def test_the_readme_register_signature_is_components_fields_with_their_defaults():
    """Every keyword `register` takes (a Component field the plugin sets), with its default, and no other."""
    args = _readme_register_signature()
    assert [a.arg for a in args.args] == ["name", "factory"]
    filled_in = {"kind", "name", "factory", "plugin", "distribution", "version"}  # by the registry, not the plugin
    fields = {f.name: f for f in dataclasses.fields(Component) if f.name not in filled_in}
    documented = {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)}
    assert set(documented) == set(fields), f"README's register(...) must list exactly {sorted(fields)}"
    for name, default in documented.items():
        field = fields[name]
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            assert default is None, f"{name} has no default in Component, but README gives one"
            continue
        expected = field.default_factory() if field.default is dataclasses.MISSING else field.default
        assert default is not None and ast.literal_eval(default) == expected, f"README's default of {name}"


def test_the_readme_register_metrics_signature_is_metrics_fields_with_their_defaults():
    section = README.split("\n### register_metrics(register)\n")[1].split("\n### ")[0]
    match = re.search(r"`register\((.*?)\)`\.", section, re.S)
    assert match, "README's register_metrics section must give its register's signature"
    args = ast.parse(f"def register({' '.join(match.group(1).split())}): pass").body[0].args
    assert [a.arg for a in args.args] == ["name", "compute"]
    fields = {f.name: f for f in dataclasses.fields(Metric)
              if f.name not in {"name", "compute", "plugin", "distribution", "version"}}
    documented = {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)}
    assert set(documented) == set(fields), f"README's register(...) of metrics must list exactly {sorted(fields)}"
    for name, default in documented.items():
        field = fields[name]
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            assert default is None, f"{name} has no default in Metric, but README gives one"
        else:
            expected = field.default_factory() if field.default is dataclasses.MISSING else field.default
            assert default is not None and ast.literal_eval(default) == expected, f"README's default of {name}"


STABILIZER_HOOKS = [name for name, _ in inspect.getmembers(Stabilizer, inspect.isfunction) if not name.startswith("_")]


# Called by a vectorised group (ganzoo.vectorized), not by a single run.
GROUP_HOOKS = {"stack_members", "unstack_into"}


def test_the_stabilizer_contract_has_its_hook_points():
    assert len(STABILIZER_HOOKS) == 17 and {"d_loss_kwargs", "g_penalty", "state_dict"} <= set(STABILIZER_HOOKS)
    assert GROUP_HOOKS <= set(STABILIZER_HOOKS)


@pytest.mark.parametrize("hook", STABILIZER_HOOKS)
def test_every_stabilizer_hook_point_is_documented(hook):
    section = README.split("### register_stabilizers")[1].split("\n### ")[0]
    assert f"`{hook}(" in section, f"README's register_stabilizers section does not document {hook}"


class _Recorder(Stabilizer):
    """Each hook point records its name when the harness calls it, then does what the base class does."""

    calls: set[str] = set()


for _hook in STABILIZER_HOOKS:
    def _recording(self, *args, _hook=_hook, **kwargs):
        _Recorder.calls.add(_hook)
        return getattr(Stabilizer, _hook)(self, *args, **kwargs)

    setattr(_Recorder, _hook, _recording)


def test_the_harness_calls_every_stabilizer_hook_point(tmp_path):
    """Not that some test calls a method of that name: ganzoo.train itself calls each one (resume included)."""
    _Recorder.calls.clear()
    check_stabilizer(_Recorder, {}, "vector", tmp_path)
    single_run = set(STABILIZER_HOOKS) - GROUP_HOOKS
    assert _Recorder.calls == single_run, f"never called: {sorted(single_run - _Recorder.calls)}"


def test_a_vectorised_group_calls_the_group_hook_points(tmp_path):
    """ganzoo.vectorized moves a stabilizer's state into the group and back out to each member."""
    import ganzoo
    from ganzoo.spec import Budget, ComponentRef, Optim, RunSpec
    from ganzoo.testing import check_vectorized, plugin_registry

    class Plugin:
        @ganzoo.hookimpl
        def register_stabilizers(self, register):
            register("recorder", _Recorder, description="records the hooks it is called at", vectorized=True)

    spec = RunSpec(dataset=ComponentRef("ring8", {}), generator=ComponentRef("mlp", {"width": 8, "depth": 1}),
                   discriminator=ComponentRef("mlp", {"width": 8, "depth": 1, "pieces": 1}),
                   loss=ComponentRef("ns", {}), stack_name="recorder", stack=(ComponentRef("recorder", {}),), seed=0,
                   budget=Budget(batch_size=8, unit="g_steps", g_steps=2), optim=Optim(),
                   protocol=ganzoo.EvalProtocol(n_fake=16, n_real=16, metrics=("fid",), batch_size=16))
    _Recorder.calls.clear()
    with plugin_registry({"recorder": Plugin()}) as registry:
        check_vectorized(spec, registry, steps=(2,), workdir=tmp_path)
    assert GROUP_HOOKS <= _Recorder.calls


@pytest.mark.parametrize("check", testing.__all__)
def test_every_public_helper_of_ganzoo_testing_is_documented(check):
    section = README.split("\n### Testing a plugin\n")[1].split("\n## ")[0]
    assert f"`{check}(" in section, f"README's 'Testing a plugin' does not document ganzoo.testing.{check}"


@pytest.mark.parametrize("tag", [f"default:{m}" for m in MODALITIES] + ["default", "targets", "per_sample_gradient"])
def test_every_tag_the_core_reads_is_documented(tag):
    section = README.split("\n### Tags the core reads\n")[1].split("\n## ")[0]
    assert f"| `{tag}`" in section or f", `{tag}`" in section, f"tag {tag} is not in README's 'Tags the core reads'"


def test_the_tags_the_core_reads_are_the_ones_documented():
    """A new registry.tagged(...) in the core must come with its row in the README's table."""
    core = "\n".join(p.read_text() for p in (ROOT / "ganzoo").rglob("*.py") if p.name != "testing.py")
    assert re.findall(r"\.tagged\(\s*\"(\w+)\",\s*(f?\"[^\"]+\"|\w+)", core) == [
        ("feature_extractor", "tag"), ("loss", '"default"')]
    assert 'tag = f"default:{modality}"' in core


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
