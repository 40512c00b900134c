"""register_metrics: a plugin's metric is computed by evaluations, ranked with its direction and listed."""

import json

import pandas as pd
import pytest
import testzoo
import torch
from click.testing import CliRunner

import ganzoo
from ganzoo.api.components import Metric
from ganzoo.cli import main
from ganzoo.core.spec import EvalProtocol
from ganzoo.metrics.evaluate import Evaluator
from ganzoo.report.leaderboard import metric_directions
from ganzoo.run.grid import build_grid
from ganzoo.run.suite import parse_suite
from ganzoo.sweep import bench
from ganzoo.testing import plugin_registry


def mean_gap(real, fake, protocol):
    """Distance between the real and generated feature means: what a plugin computes from the evaluation's inputs."""
    return float((real.features.double().mean(0) - fake.features.double().mean(0)).norm())


class GapPlugin:
    @ganzoo.hookimpl
    def register_metrics(self, register):
        register("mean_gap", mean_gap, lower_is_better=True, description="Distance between feature means",
                 labels={"mean_gap": "Gap"})


@pytest.fixture
def zoo():
    with plugin_registry({"testzoo": testzoo, "gap": GapPlugin()}, load_entry_points=False) as registry:
        yield registry


def test_the_built_in_metrics_register_through_the_hook_in_every_registry():
    bare = ganzoo.build_registry(load_entry_points=False)
    assert bare.metric_names() == ("fid", "is", "kid", "pr", "dc", "cond_accuracy", "intra_fid") and not bare.errors
    assert {m.plugin for m in bare.metrics()} == {"ganzoo.metrics"}
    assert metric_directions(bare) == {"fid": True, "is_mean": False, "kid_mean": True, "precision": False,
                                       "recall": False, "density": False, "coverage": False,
                                       "cond_accuracy": False, "intra_fid": True, "modes": False,
                                       "high_quality": False, "mode_kl": True, "classes": False, "class_kl": True}


def test_an_evaluation_computes_a_plugin_metric(zoo):
    dataset = zoo.get("dataset", "blobs").build()
    protocol = EvalProtocol(extractor="flat", n_fake=64, n_real=128, metrics=("mean_gap", "fid"), batch_size=64)
    evaluator = Evaluator(dataset, protocol, "cpu", registry=zoo)
    fake = torch.randn(64, *dataset.spec.shape) * 0.5 + 3.0
    result = evaluator(fake)
    expected = (dataset.reference(128).double().mean(0) - fake.double().mean(0)).norm().item()
    assert list(result) == ["fid", "mean_gap"]  # registration order: the built-in ones first
    assert result["mean_gap"] == pytest.approx(expected, rel=1e-9)
    # The plugin's version is part of the protocol, so a new release of it is never ranked with the old one.
    record = evaluator.protocol_record()
    assert record["metric_versions"] == {"mean_gap": "(registered in process)"} and "mean_gap" in record["metrics"]
    builtin = Evaluator(dataset, EvalProtocol(extractor="flat", n_fake=64, n_real=128, metrics=("fid",)), "cpu",
                        registry=zoo).protocol_record()
    assert "metric_versions" not in builtin  # the built-in metrics' fingerprints are what they were


def test_a_suite_evaluates_and_ranks_a_plugin_metric_with_its_direction(zoo, tmp_path):
    raw = testzoo.suite_dict(eval={"n_fake": 128, "n_real": 128, "metrics": ["fid", "mean_gap"]},
                             components={"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small"],
                                         "stack": ["none"]})
    raw["budget"] = {"kimg": 0.256, "batch_size": 64, "eval_every_kimg": 0.128}
    summary = bench(parse_suite(raw, source="test"), tmp_path, registry=zoo, executor="inline", seeds=[0],
                    progress=False, echo=lambda line: None)
    assert list(summary.results.values()) == ["done"]
    board = (tmp_path / "tiny" / "leaderboard.md").read_text()
    assert "Gap ↓" in board and "FID ↓" in board
    csv = pd.read_csv(tmp_path / "tiny" / "leaderboard.csv")
    assert csv["mean_gap"].notna().all() and csv["mean_gap"].iloc[0] >= 0


def test_ganzoo_list_shows_a_plugin_metric_with_its_direction(zoo):
    listed = CliRunner().invoke(main, ["list", "metrics"])
    line = next(ln for ln in listed.output.splitlines() if " mean_gap " in ln)
    assert line.startswith("metric") and "gap" in line and "(lower is better)" in line
    assert " mean_gap " in CliRunner().invoke(main, ["list"]).output
    as_json = json.loads(CliRunner().invoke(main, ["list", "metrics", "--format", "json"]).output)
    assert {"name": "mean_gap", "lower_is_better": True, "columns": ["mean_gap"]}.items() <= as_json[-1].items()


class Clashing:
    @ganzoo.hookimpl
    def register_metrics(self, register):
        register("fid", mean_gap, lower_is_better=True, description="another FID")  # a built-in name
        register("pr2", mean_gap, lower_is_better=False, description="x", columns=("precision",))  # a built-in value
        register("nodirection", mean_gap, description="no direction")
        register("updown", mean_gap, lower_is_better="yes", description="a string direction")
        register("Bad Name", mean_gap, lower_is_better=True, description="bad name")
        register("ok", mean_gap, lower_is_better=True, description="still loads")


def test_duplicate_and_malformed_metrics_are_the_plugins_errors():
    registry = ganzoo.build_registry({"clashing": Clashing()}, load_entry_points=False)
    errors = [e.error for e in registry.errors]
    assert all(str(e).startswith('Error loading plugin "clashing"') for e in registry.errors)
    assert len(errors) == 5, errors
    assert 'metric "fid": "fid" is already registered by plugin "ganzoo.metrics"' in errors[0]
    assert 'metric "pr2": "precision" is already registered by plugin "ganzoo.metrics" (ganzoo) as metric "pr"' \
        in errors[1]
    assert "missing 1 required" in errors[2] and "lower_is_better" in errors[2]
    assert "lower_is_better must be True or False" in errors[3]
    assert 'Invalid metric name "Bad Name"' in errors[4]
    assert registry.metric("fid").plugin == "ganzoo.metrics" and registry.metric("ok").plugin == "clashing"


class Odd:
    @ganzoo.hookimpl
    def register_metrics(self, register):
        register("odd", lambda real, fake, protocol: {"other": 1.0}, lower_is_better=True, description="no column")
        register("text", lambda real, fake, protocol: "high", lower_is_better=True, description="not a number")


@pytest.mark.parametrize(("metric", "message"), [
    ("odd", r'metric "odd" \(plugin odd\) returned \[\'other\'\]: its columns \[\'odd\'\] are missing'),
    ("text", r"metric \"text\" \(plugin odd\) returned 'high'; compute must return a float or a dict of floats"),
])
def test_a_metric_returning_the_wrong_thing_is_named_in_the_error(metric, message):
    with plugin_registry({"testzoo": testzoo, "odd": Odd()}, load_entry_points=False) as zoo:
        dataset = zoo.get("dataset", "blobs").build()
        protocol = EvalProtocol(extractor="flat", n_fake=16, n_real=32, metrics=(metric,), batch_size=16)
        evaluator = Evaluator(dataset, protocol, "cpu", registry=zoo)
        with pytest.raises(ValueError, match=message):
            evaluator(torch.randn(16, *dataset.spec.shape))


def test_metric_names_are_checked_against_the_registry_in_hand_not_the_process_one(zoo):
    """A protocol naming a plugin's metric is valid in the registry that has the plugin and in no other."""
    protocol = EvalProtocol(metrics=("fid", "mean_gap"))  # no registry here: only the form is checked
    assert zoo.check_metrics(protocol.metrics) == ("fid", "mean_gap")
    with pytest.raises(ValueError, match=r"eval.metrics: unknown \['mean_gap'\]"):
        ganzoo.build_registry(load_entry_points=False).check_metrics(protocol.metrics)
    raw = testzoo.suite_dict(eval={"metrics": ["fid", "mean_gapp"]})
    with pytest.raises(ValueError, match=r"eval.metrics: unknown \['mean_gapp'\]; choose among .*mean_gap"):
        build_grid(parse_suite(raw, source="test"), zoo)


def test_metric_columns_must_be_distinct():
    with pytest.raises(ValueError, match="columns must be distinct lowercase identifiers"):
        Metric("x", mean_gap, lower_is_better=True, description="d", columns=("a", "a"))


def test_unknown_metric_names_suggest_the_registered_ones(zoo):
    with pytest.raises(ValueError, match=r"eval.metrics: unknown \['mean_gapp'\]; choose among fid, is, kid, pr, dc, "
                                         r"cond_accuracy, intra_fid, mean_gap"):
        zoo.check_metrics(("fid", "mean_gapp"))
    with pytest.raises(ganzoo.UnknownComponentError, match='Did you mean "mean_gap"'):
        zoo.metric("mean_gapp")
