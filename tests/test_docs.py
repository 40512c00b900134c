"""Docs that cannot drift (as datasette does it): every hook, check, tag and command is documented, and the
code the docs show runs.

The plugin guide is docs/plugins.md; the README keeps a short plugin example, which is executed here. Claims
that name a file, a command, an option, a link or a number are checked in tests/test_docs_claims.py.
"""

import ast
import dataclasses
import inspect
import re
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

import ganzoo
from ganzoo import Component, Stabilizer, testing
from ganzoo.api import hookspecs
from ganzoo.api.components import Metric
from ganzoo.api.contracts import MODALITIES
from ganzoo.cli import main
from ganzoo.testing import check_loss, check_plugin, check_stabilizer, plugin_registry

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PLUGINS = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = [name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]

# Checks that the plugin kit adds (ganzoo new-plugin --kind, issue of the plugin kit): documented already, tested
# here once the code that provides them is on the branch.


def section(text: str, heading: str, level: str = "##") -> str:
    """The body of ``heading`` up to the next heading of the same or a higher level."""
    start = text.index(f"\n{level} {heading}\n")
    rest = text[start + len(heading) + len(level) + 2:]
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", rest)]
    return rest[: ends[0] if ends else None]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


# -- the README ------------------------------------------------------------------------------------------------

def test_the_readme_fits_on_a_few_screens():
    lines = README.count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move detail into docs/ (the README links every page)"


def test_the_readme_links_every_docs_page():
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [p for p in pages if f"](docs/{p})" not in README]
    assert not missing, f"README's Documentation section does not link {missing}"


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_in_the_readme(command):
    assert f"ganzoo {command}" in README


def test_quickstart_has_the_two_commands_and_ci_runs_them():
    assert "pip install -e . && ganzoo bench --all" in README
    assert "pip install -e '.[test]' && pytest" in README
    ci = (ROOT / ".ci" / "run").read_text()
    # What the README says CI does: the test command, then the slow tests.
    assert "pip install -e '.[test]' && pytest" in ci
    assert re.search(r"^pytest -m slow\b", ci, re.M), ".ci/run no longer runs `pytest -m slow`: fix README's claim"


def _readme_plugin_module() -> types.ModuleType:
    """The README's plugin example, executed as the module ``ganzoo_acme`` a user would write."""
    block = re.search(r"<!-- plugin-example -->\n```python\n(.*?)```\n<!-- /plugin-example -->", README, re.S)
    assert block, "README's plugin example must sit between <!-- plugin-example --> markers"
    lines = block.group(1).strip().splitlines()
    assert len(lines) <= 25, f"README's plugin example has {len(lines)} lines: keep it to about 20"
    module = types.ModuleType("ganzoo_acme")
    exec(compile(block.group(1), "README.md (plugin example)", "exec"), module.__dict__)
    return module


def test_the_readme_plugin_example_is_a_working_plugin():
    example = _readme_plugin_module()
    registry = check_plugin(example, name="acme")
    component = registry.get("loss", "acme_rahinge")
    check_loss(component.build())
    # The loss reaches the default grid beside the built-in losses, as "ganzoo bench --all --dry-run" shows it.
    from ganzoo.run.grid import Filters, build_grid
    from ganzoo.run.suite import load_suite

    with plugin_registry({"acme": example}) as with_plugin:
        grid = build_grid(load_suite("default"), with_plugin, Filters(dataset=("ring8",)), seeds=[0])
    assert "mlp/mlp/acme_rahinge/none" in {s.combination for s in grid.specs}


def test_the_readme_plugin_example_needs_the_attribute_it_sets():
    """Without ``uses_real_logits_in_g`` the G step passes ``real_logits=None``: the docs' warning is true."""
    example = _readme_plugin_module()

    class Forgotten(example.RelativisticHinge):
        uses_real_logits_in_g = False

    with pytest.raises((AssertionError, AttributeError, TypeError)):
        check_loss(Forgotten())


# -- docs/plugins.md: hooks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_with_its_signature(hook):
    signature = str(inspect.signature(getattr(hookspecs, hook)))
    assert f"### {hook}{signature}" in PLUGINS


def _signature_in(text: str, what: str) -> ast.arguments:
    match = re.search(r"`register\((.*?)\)`\.", text, re.S)
    assert match, f"docs/plugins.md must give {what}'s signature as `register(name, ..., *, ...)`."
    return ast.parse(f"def register({' '.join(match.group(1).split())}): pass").body[0].args


def _assert_documented_defaults(args: ast.arguments, fields: dict, what: str) -> None:
    documented = {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)}
    assert set(documented) == set(fields), f"docs/plugins.md's {what} must list exactly {sorted(fields)}"
    for name, default in documented.items():
        field = fields[name]
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            assert default is None, f"{name} has no default in {what}, but docs/plugins.md gives one"
            continue
        expected = field.default_factory() if field.default is dataclasses.MISSING else field.default
        assert default is not None and ast.literal_eval(default) == expected, f"docs/plugins.md's default of {name}"


def test_the_register_signature_is_components_fields_with_their_defaults():
    """Every keyword `register` takes (a Component field the plugin sets), with its default, and no other."""
    args = _signature_in(section(PLUGINS, "Hooks").split("\n### ")[0], "register")
    assert [a.arg for a in args.args] == ["name", "factory"]
    filled_in = {"kind", "name", "factory", "plugin", "distribution", "version"}  # by the registry, not the plugin
    fields = {f.name: f for f in dataclasses.fields(Component) if f.name not in filled_in}
    _assert_documented_defaults(args, fields, "register(...)")


def test_the_register_metrics_signature_is_metrics_fields_with_their_defaults():
    args = _signature_in(section(PLUGINS, "register_metrics(register)", "###"), "register_metrics")
    assert [a.arg for a in args.args] == ["name", "compute"]
    fields = {f.name: f for f in dataclasses.fields(Metric)
              if f.name not in {"name", "compute", "plugin", "distribution", "version"}}
    _assert_documented_defaults(args, fields, "register(...) of metrics")


def _hook_examples() -> types.ModuleType:
    """Every Python example under docs/plugins.md's "Hooks", executed top to bottom as one plugin module."""
    module = types.ModuleType("ganzoo_acme_docs")
    for block in python_blocks(section(PLUGINS, "Hooks")):
        exec(compile(block, "docs/plugins.md (Hooks)", "exec"), module.__dict__)
    return module


def test_the_hook_examples_are_one_working_plugin_with_a_component_of_every_kind(tmp_path):
    example = _hook_examples()
    registry = check_plugin(example, name="acme")
    for kind in ganzoo.KINDS:
        assert [c for c in registry.list(kind) if c.plugin == "acme"], f"docs/plugins.md has no example of a {kind}"
    assert registry.metric("acme_mean_gap").plugin == "acme"

    spec = registry.get("dataset", "acme_circle").build().spec
    g = registry.get("generator", "acme_tiny").build(spec)
    d = registry.get("discriminator", "acme_tiny").build(spec)
    testing.check_pair(g, d, spec)
    hinge = registry.get("loss", "acme_hinge")
    check_loss(hinge.build(), targets="targets" in hinge.tags)
    clip = registry.get("stabilizer", "acme_clip_d")
    check_stabilizer(clip.factory, clip.hparams(), "vector", tmp_path / "stabilizer")


def test_the_hook_examples_train_and_evaluate_together(tmp_path):
    """The example G, D, loss and stabilizer train on the example dataset, evaluated with the example extractor
    and metric: each piece does what its section says when the harness calls it."""
    from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec

    example = _hook_examples()
    dataset = ganzoo.build_registry({"acme": example}).get("dataset", "acme_circle")
    circle = dataset.build()
    assert dataset.factory.spec_for(**dataset.hparams()) == circle.spec
    fresh = circle.real_samples(64, __import__("torch").Generator().manual_seed(1))
    assert fresh.shape == (64, 2) and fresh.norm(dim=1).sub(1).abs().max() < 1e-5  # on the circle, not resampled

    with plugin_registry({"acme": example}) as registry:
        spec = RunSpec(dataset=ComponentRef("acme_circle", {}), generator=ComponentRef("acme_tiny", {}),
                       discriminator=ComponentRef("acme_tiny", {}), loss=ComponentRef("acme_hinge", {}),
                       stack_name="acme_clip_d", stack=(ComponentRef("acme_clip_d", {}),), seed=0,
                       budget=Budget(batch_size=16, unit="g_steps", g_steps=4, eval_every_g_steps=2), optim=Optim(),
                       protocol=ganzoo.EvalProtocol(extractor="acme_projection", n_fake=64, n_real=64,
                                                    metrics=("fid", "acme_mean_gap"), batch_size=64))
        result = testing.check_resume(spec, registry, tmp_path)
    final = result.evals[-1]
    assert final["g_steps"] == 4
    assert set(final["metrics"]) == {"fid", "acme_mean_gap"} and final["metrics"]["acme_mean_gap"] > 0


# -- docs/plugins.md: stabilizer hook points -----------------------------------------------------------------

STABILIZER_HOOKS = [name for name, _ in inspect.getmembers(Stabilizer, inspect.isfunction) if not name.startswith("_")]

# Called by a vectorised group (ganzoo.run.vectorized), not by a single run.
GROUP_HOOKS = {"stack_members", "unstack_into"}


def test_the_documented_stabilizer_hook_points_are_exactly_the_contracts():
    """Each documented hook point is a method of ganzoo.Stabilizer and each method is documented: no invented or
    forgotten hook (the harness calling every one of them is the next two tests)."""
    prose = section(PLUGINS, "register_stabilizers(register)", "###").split("Hook points")[1].split("```")[0]
    documented = set(re.findall(r"`(\w+)\(", prose))
    hooks = set(STABILIZER_HOOKS)
    assert documented == hooks, (f"documented but not hooks: {sorted(documented - hooks)}; "
                                 f"hooks not documented: {sorted(hooks - documented)}")


class _Recorder(Stabilizer):
    """Each hook point records its name when the harness calls it, then does what the base class does."""

    calls: set[str] = set()


for _hook in STABILIZER_HOOKS:
    def _recording(self, *args, _hook=_hook, **kwargs):
        _Recorder.calls.add(_hook)
        return getattr(Stabilizer, _hook)(self, *args, **kwargs)

    setattr(_Recorder, _hook, _recording)


def test_the_harness_calls_every_stabilizer_hook_point(tmp_path):
    """Not that some test calls a method of that name: ganzoo.run.train itself calls each one (resume included)."""
    _Recorder.calls.clear()
    check_stabilizer(_Recorder, {}, "vector", tmp_path)
    single_run = set(STABILIZER_HOOKS) - GROUP_HOOKS
    assert _Recorder.calls == single_run, f"never called: {sorted(single_run - _Recorder.calls)}"


def test_a_vectorised_group_calls_the_group_hook_points(tmp_path):
    """ganzoo.run.vectorized moves a stabilizer's state into the group and back out to each member."""
    from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec
    from ganzoo.testing import check_vectorized

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


# -- docs/plugins.md: testing a plugin, new-plugin ------------------------------------------------------------

@pytest.mark.parametrize("check", testing.__all__)
def test_every_public_helper_of_ganzoo_testing_is_documented(check):
    assert f"`{check}(" in section(PLUGINS, "Testing a plugin"), \
        f"docs/plugins.md's 'Testing a plugin' does not document ganzoo.testing.{check}"


@pytest.mark.parametrize("check", sorted(set(re.findall(r"^\| `(check_\w+)\(", section(PLUGINS, "Testing a plugin"),
                                                        re.M))))
def test_every_documented_check_exists(check):
    assert check in testing.__all__, f"docs/plugins.md documents ganzoo.testing.{check}, which does not exist"


def test_new_plugin_kind_is_as_documented():
    help_text = CliRunner().invoke(main, ["new-plugin", "--help"]).output
    documented = re.search(r"`--kind` takes (.*?), or `all`", PLUGINS, re.S).group(1)
    kinds = re.findall(r"`(\w+)`", documented)
    assert kinds == ["generator", "discriminator", "loss", "stabilizer", "dataset", "feature_extractor", "metric"]
    for kind in kinds:
        assert kind in help_text, f"`ganzoo new-plugin --help` does not offer --kind {kind}"


# -- docs/plugins.md: tags the core reads ----------------------------------------------------------------------

TAG_TABLE = section(PLUGINS, "Tags the core reads")


@pytest.mark.parametrize("tag", [f"default:{m}" for m in MODALITIES] + ["default", "targets", "per_sample_gradient",
                                                                                  "weight_normalisation"])
def test_every_tag_the_core_reads_is_documented(tag):
    assert f"| `{tag}`" in TAG_TABLE or f", `{tag}`" in TAG_TABLE, f"tag {tag} is not in 'Tags the core reads'"


class _SecondExtractors:
    """A plugin that claims every modality's default feature extractor a second time."""

    @ganzoo.hookimpl
    def register_feature_extractors(self, register):
        for modality in MODALITIES:
            register(f"second_{modality}", lambda: None, description="a second default",
                     tags=(f"default:{modality}",), modalities=(modality,))


class _DefaultLoss:
    """A plugin registering a loss tagged `default` under ``name``."""

    def __init__(self, name: str, factory=ganzoo.Loss):
        self.name, self.factory = name, factory

    @ganzoo.hookimpl
    def register_losses(self, register):
        register(self.name, self.factory, description="a default loss", tags=("default",))


@pytest.fixture
def tags_read(monkeypatch):
    """The (kind, tag) pairs the core asks the registry for while the test runs."""
    from ganzoo.core.registry import Registry

    asked, tagged = [], Registry.tagged

    def recording(self, kind, tag):
        asked.append((kind, tag))
        return tagged(self, kind, tag)

    monkeypatch.setattr(Registry, "tagged", recording)
    return asked


@pytest.mark.parametrize("modality", MODALITIES)
def test_the_default_extractor_is_the_one_tagged_for_its_modality(modality, tags_read):
    """'exactly one must': the built-in zoo's one tagged extractor is the default, a second one is an error."""
    from ganzoo.metrics.evaluate import default_extractor

    builtin = ganzoo.build_registry()
    (expected,) = [c.name for c in builtin.list("feature_extractor") if f"default:{modality}" in c.tags]
    assert default_extractor(modality, builtin) == expected
    with pytest.raises(ValueError, match=f"default:{modality}.*second_{modality}|second_{modality}.*default"):
        default_extractor(modality, ganzoo.build_registry({"second": _SecondExtractors()}))
    assert set(tags_read) == {("feature_extractor", f"default:{modality}")}
    assert f"`default:{modality}`" in TAG_TABLE


def test_train_without_loss_takes_the_one_loss_tagged_default(tmp_path, tags_read):
    """`ganzoo train` without --loss, on a dataset no suite has a baseline for, takes the one loss tagged `default`;
    none (the built-in zoo tags none) or two are an error that says so."""
    command = ["train", "--dataset", "acme_circle", "--generator", "acme_tiny", "--discriminator", "acme_tiny",
               "--g-steps", "1", "--results-dir", str(tmp_path), "--device", "cpu"]
    example = _hook_examples()

    def train(**plugins):
        with plugin_registry({"acme": example, **plugins}):
            return CliRunner().invoke(main, command)

    none = train()
    assert none.exit_code != 0 and 'no registered losses are tagged "default"' in none.output, none.output
    one = train(first=_DefaultLoss("first_default", example.MarginHinge))
    assert one.exit_code == 0 and "acme_tiny/acme_tiny/first_default/" in one.output, one.output
    two = train(first=_DefaultLoss("first_default"), second=_DefaultLoss("second_default"))
    assert two.exit_code != 0 and '2 registered losses are tagged "default"' in two.output, two.output
    assert ("loss", "default") in tags_read and "| `default` | a loss |" in TAG_TABLE
    documented = {t for row in re.findall(r"^\| (.*?) \|", TAG_TABLE, re.M) for t in re.findall(r"`([\w:]+)`", row)}
    assert {tag for _, tag in tags_read} <= documented, "the core read a tag that 'Tags the core reads' omits"


def test_every_shipped_suite_is_documented():
    from ganzoo.run.suite import available_suites

    benchmarks_readme = (ROOT / "benchmarks" / "README.md").read_text()
    for name in available_suites():
        assert f"| `{name}` |" in benchmarks_readme

