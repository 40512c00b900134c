"""`ganzoo compare`: naming experiments, the numbers it prints, and the errors for ambiguous names."""

import json

import pandas as pd
import pytest
import testzoo
from click.testing import CliRunner
from scipy import stats as scipy_stats
from test_cli import write_suite

from ganzoo.cli import main
from ganzoo.report.compare import CompareError, resolve
from ganzoo.testing import plugin_registry

BASELINE = {"generator": "g", "discriminator": "d", "loss": "ns", "stack": "none"}


def frame(*rows):
    return pd.DataFrame([{"dataset": "x", "generator": "g", "discriminator": "d", "loss": "ns", "status": "done",
                          "variant": "", **row} for row in rows])


def test_names_resolve_by_combination_axis_and_key():
    runs = frame({"stack": "none", "experiment": "aaa111", "seed": 0}, {"stack": "r1", "experiment": "bbb222",
                                                                         "seed": 0})
    assert set(resolve("stack=r1", runs, BASELINE)["experiment"]) == {"bbb222"}
    assert set(resolve("g/d/ns/none", runs, BASELINE)["experiment"]) == {"aaa111"}
    assert set(resolve("bbb", runs, BASELINE)["experiment"]) == {"bbb222"}
    with pytest.raises(CompareError, match='No experiment matches "stack=r2".*g/d/ns/none'):
        resolve("stack=r2", runs, BASELINE)
    with pytest.raises(CompareError, match="no baseline"):
        resolve("stack=r1", runs, None)


def test_two_hyperparameter_settings_of_one_combination_must_be_named_by_key():
    runs = frame({"stack": "r1", "experiment": "k1", "variant": "stack[0].hparams.gamma=1"},
                 {"stack": "r1", "experiment": "k2", "variant": "stack[0].hparams.gamma=10"})
    with pytest.raises(CompareError, match="k1: stack\\[0\\].hparams.gamma=1; k2"):
        resolve("stack=r1", runs, BASELINE)


def test_compare_command_on_a_real_sweep(tmp_path):
    with plugin_registry({"testzoo": testzoo}):
        suite = write_suite(tmp_path / "tiny.toml")
        results = tmp_path / "r"
        runner = CliRunner()
        bench = runner.invoke(main, ["bench", "--all", "--suite", str(suite), "--results-dir", str(results),
                                     "--no-progress", "--executor", "inline", "--stabilizer", "none",
                                     "--seeds", "3"], catch_exceptions=False)
        assert bench.exit_code == 0, bench.output
        args = ["compare", "lin/small/logistic/none", "discriminator=small_wide", "--suite", "tiny",
                "--results-dir", str(results)]
        text = runner.invoke(main, args, catch_exceptions=False)
        assert text.exit_code == 0, text.output
        assert "B - A =" in text.output and "Welch's t-test p =" in text.output and "Verdict:" in text.output
        result = json.loads(runner.invoke(main, args + ["--format", "json"]).output)
    # Independent check from the per-run table the report wrote: the difference of means and Welch's p.
    runs = pd.read_csv(results / "tiny" / "runs.csv")
    fid = {d: runs[(runs["discriminator"] == d) & (runs["stack"] == "none")]["fid"].to_numpy()
           for d in ("small", "small_wide")}
    assert result["metric"] == "fid" and len(result["a"]["values"]) == 3
    assert result["diff"] == pytest.approx(fid["small_wide"].mean() - fid["small"].mean())
    assert result["welch_p"] == pytest.approx(scipy_stats.ttest_ind(fid["small_wide"], fid["small"],
                                                                    equal_var=False).pvalue)
    assert result["min_mann_whitney_p"] == pytest.approx(0.1)


def test_compare_without_a_store_is_explained(tmp_path):
    result = CliRunner().invoke(main, ["compare", "a", "b", "--results-dir", str(tmp_path)])
    assert result.exit_code != 0 and "No ganzoo store" in result.output
