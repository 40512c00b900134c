"""Everything a user types is checked before training: suite fields, CLI values, run ids (property-based too)."""

import math

import pytest
import testzoo
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ganzoo.cli import main
from ganzoo.core.spec import Budget, ComponentRef, EvalProtocol, Optim, RunSpec
from ganzoo.run.suite import SuiteError, parse_suite


def suite_with(**changes):
    """The tiny test suite with top-level keys or nested "section.key" values replaced."""
    raw = testzoo.suite_dict()
    for key, value in changes.items():
        if "." in key:
            section, field = key.split(".")
            raw[section] = {**raw.get(section, {}), field: value}
        else:
            raw[key] = value
    return raw


@pytest.mark.parametrize(("changes", "message"), [
    ({"budget.max_seconds": -1}, r"budget.max_seconds must be > 0, got -1"),
    ({"budget.kimg": math.nan}, r"budget.kimg must be finite, got nan"),
    ({"budget.kimg": math.inf}, r"budget.kimg must be finite"),
    ({"budget.kimg": "10"}, r"budget.kimg must be a number, got '10' \(str\)"),
    ({"budget.batch_size": 2.5}, r"budget.batch_size must be a whole number, got 2.5"),
    ({"seeds": "10"}, r"seeds must be a positive count, \{ first = N, count = K \} or a non-empty list of "
                      r"integers, got '10'"),
    ({"seeds": 2.5}, r"seeds must be a positive count"),
    ({"seeds": 0}, r"seeds must be a positive count"),
    ({"name": 5}, r"name must be letters, digits, '_', '.' or '-' .it names the results folder., got 5"),
    ({"name": "../elsewhere"}, r"name must be letters"),
    ({"eval.metrics": "fid"}, r"eval.metrics must be a non-empty list"),
    ({"eval.n_fake": 1}, r"eval.n_fake must be at least 6, got 1"),
    ({"eval.n_real": 0}, r"eval.n_real must be at least 2"),
    ({"optim": {"lr_g": -1}}, r"optim.lr_g must be > 0, got -1"),
    ({"optim": {"lr_d": math.nan}}, r"optim.lr_d must be finite"),
    ({"optim": {"betas": [0.5]}}, r"optim.betas must be two numbers"),
    ({"optim": {"betas": [0.5, 1.0]}}, r"optim.betas\[1\] must be in \[0, 1\), got 1.0"),
    ({"optim": {"d_steps": 0}}, r"optim.d_steps must be at least 1"),
])
def test_each_bad_suite_value_is_one_error_naming_the_field(changes, message):
    with pytest.raises(SuiteError, match=message):
        parse_suite(suite_with(**changes))


def test_a_misspelt_metric_is_refused_when_the_grid_meets_the_registry():
    """Metric names are checked against the registry (plugins add metrics), before any run is planned."""
    from ganzoo.run.grid import build_grid
    from ganzoo.testing import plugin_registry

    suite = parse_suite(suite_with(**{"eval.metrics": ["fld"]}))  # the form is fine; the name is not known yet
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as zoo, \
            pytest.raises(ValueError, match=r"eval.metrics: unknown \['fld'\]; choose among fid, is, kid, pr, dc"):
        build_grid(suite, zoo)


@pytest.mark.parametrize(("args", "message"), [
    (["--kimg", "nan"], "'nan' is not a finite number > 0"),
    (["--kimg", "inf"], "'inf' is not a finite number > 0"),
    (["--device", "gpu"], 'Unknown device "gpu": use auto, cpu, cuda or cuda:N'),
    (["--device", "cuda:x"], 'Unknown device "cuda:x"'),
])
def test_bad_cli_values_are_refused_before_anything_is_written(args, message, tmp_path):
    result = CliRunner().invoke(main, ["bench", "--all", "--results-dir", str(tmp_path / "r"), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_an_empty_grid_is_an_error_with_what_each_filter_keeps_alone(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--all", "--dataset", "digits", "--generator", "mlp",
                                       "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    assert "No run of suite default" in result.output and "filters on different axes must all match" in result.output
    assert "--generator mlp: keeps" in result.output and "--dataset digits: keeps" in result.output
    assert not (tmp_path / "r").exists()


# -- property-based: any value either parses into a sane suite or is a SuiteError -------------------

ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=5), st.lists(st.integers(-2, 5), max_size=3))
FIELDS = ["budget.kimg", "budget.batch_size", "budget.eval_every_kimg", "budget.max_seconds", "eval.n_fake",
          "eval.n_real", "eval.kid_subsets", "eval.batch_size", "seeds", "name"]


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS), value=ANY_VALUE)
def test_any_value_of_a_suite_field_parses_sanely_or_is_a_suite_error(field, value):
    try:
        suite = parse_suite(suite_with(**{field: value}))
    except SuiteError:
        return
    plan = suite.datasets[0]
    budget, protocol = plan.budget, plan.protocol
    assert isinstance(budget.batch_size, int) and budget.batch_size >= 1
    assert math.isfinite(budget.kimg) and budget.kimg > 0
    assert budget.max_seconds is None or (math.isfinite(budget.max_seconds) and budget.max_seconds > 0)
    assert isinstance(protocol.n_fake, int) and protocol.n_fake >= 6
    assert suite.seeds and all(isinstance(s, int) for s in suite.seeds)
    assert isinstance(suite.name, str) and "/" not in suite.name


HPARAM = st.one_of(st.integers(-100, 100), st.floats(allow_nan=False, allow_infinity=False, width=32),
                   st.text(max_size=4), st.booleans(), st.lists(st.integers(0, 9), max_size=3))


def spec_with(hparams, seed=0, lr=2e-4):
    return RunSpec(dataset=ComponentRef("blobs", {"n": 512}), generator=ComponentRef("lin", dict(hparams)),
                   discriminator=ComponentRef("small", {}), loss=ComponentRef("logistic", {}), stack_name="none",
                   stack=(), seed=seed, budget=Budget(kimg=1.0), optim=Optim(lr_g=lr, lr_d=lr),
                   protocol=EvalProtocol())


@settings(max_examples=200, deadline=None)
@given(hparams=st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=6), HPARAM, max_size=5),
       seed=st.integers(0, 2**31 - 1))
def test_run_ids_survive_a_round_trip_ignore_key_order_and_change_with_any_value(hparams, seed):
    spec = spec_with(hparams, seed)
    assert RunSpec.from_dict(spec.canonical()).run_id == spec.run_id
    assert spec_with(dict(reversed(list(hparams.items()))), seed).run_id == spec.run_id
    assert spec_with(hparams, seed + 1).run_id != spec.run_id
    assert spec_with({**hparams, "extra_key": 1}, seed).run_id != spec.run_id
    assert spec_with(hparams, seed, lr=3e-4).run_id != spec.run_id
