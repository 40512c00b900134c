"""A run's headline value over its last evaluations (Judgement.window), written to runs.csv and evals.csv so that
a table can be recomputed from them; and a suite whose datasets train under designs of their own."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest
import testzoo

from ganzoo import Judgement
from ganzoo.core.records import DONE, RunResult, SuiteRecord
from ganzoo.core.registry import build_registry
from ganzoo.core.store import Store
from ganzoo.report.effects import effects
from ganzoo.report.leaderboard import headline_values
from ganzoo.report.markdown import write_report
from ganzoo.run.grid import build_grid
from ganzoo.run.suite import SuiteError, load_suite, parse_suite, with_design
from ganzoo.sweep.driver import suite_record


@pytest.mark.parametrize("window", [0, -1, 1.5, True, "4"])
def test_a_window_that_is_not_a_whole_number_of_evaluations_is_refused(window):
    with pytest.raises(ValueError, match=r"Judgement.window must be a whole number of evaluations >= 1"):
        Judgement(window=window)


CURVE = [80.0, 41.0, 23.0, 35.0, 19.0, 27.0]


@pytest.mark.parametrize("window", [2, 3, 4, 6, 10])
def test_a_log_headline_is_the_geometric_mean_of_the_last_evaluations(window):
    expected = statistics.geometric_mean(CURVE[-window:])  # the standard library's, not ganzoo's
    assert Judgement(scale="log", window=window).run_headline(CURVE) == pytest.approx(expected, rel=1e-12)
    assert Judgement(scale="linear", window=window).run_headline(CURVE) == pytest.approx(
        statistics.fmean(CURVE[-window:]), rel=1e-12)


def test_window_one_is_the_final_value_exactly_and_a_run_without_a_final_value_has_none():
    assert Judgement(scale="log").run_headline(CURVE) == CURVE[-1]
    assert math.isnan(Judgement(window=3).run_headline([20.0, 30.0, math.nan]))
    assert math.isnan(Judgement(window=3).run_headline([]))
    # an evaluation that did not measure the metric is skipped; a value <= 0 leaves no log: the plain mean
    assert Judgement(scale="log", window=3).run_headline([4.0, math.nan, 16.0]) == pytest.approx(8.0)
    assert Judgement(scale="log", window=2).run_headline([1.0, -1.0, 3.0]) == pytest.approx(1.0)


def test_the_window_is_said_as_a_table_header_says_it():
    assert Judgement(window=1).window_text() == "final evaluation"
    assert Judgement(scale="log", window=4).window_text() == "geometric mean of the last 4 evaluations"
    assert Judgement(window=2).window_text() == "mean of the last 2 evaluations"
    assert Judgement.from_dict(Judgement(window=3).as_dict()).window == 3
    assert Judgement.from_dict({"headline": "fid"}).window == 1  # a record written before the window existed


def test_headline_values_prefer_the_runs_headline_and_fall_back_on_the_final_value():
    runs = pd.DataFrame({"status": [DONE, DONE, "diverged"], "fid": [10.0, 20.0, np.nan],
                         "headline": [12.0, np.nan, np.nan]})
    assert headline_values(runs, Judgement()).tolist() == [12.0, 20.0]
    assert headline_values(runs.drop(columns="headline"), Judgement()).tolist() == [10.0, 20.0]


# A late collapse: the last evaluation of seed 2 is 5x worse; its headline moves by 5 ** (1 / 3), and the run is
# still flagged by its final evaluation.
CURVES = {0: [50.0, 30.0, 22.0, 25.0, 21.0], 1: [60.0, 35.0, 28.0, 24.0, 26.0], 2: [55.0, 32.0, 24.0, 23.0, 115.0]}
WINDOWED = Judgement(headline="fid", scale="log", window=3, collapse=("fid >= 100",), degrade_tolerance=1.0)


def test_runs_csv_carries_each_runs_headline_and_evals_csv_lets_anyone_recompute_the_table(tmp_path):
    store = Store(tmp_path / "results")
    try:
        specs = {seed: testzoo.tiny_spec(seed=seed) for seed in CURVES}
        store.add_many(list(specs.values()), "windowed")
        store.set_suite_record("windowed", {"design": "one-factor", "datasets": {"blobs": {
            "baseline": {"generator": "lin", "discriminator": "small", "loss": "logistic", "stack": "none"},
            "judgement": WINDOWED.as_dict()}}})
        for seed, spec in specs.items():
            evals = [{"kimg": i, "g_steps": 10 * (i + 1), "d_steps": 10 * (i + 1), "seconds": 1.0,
                      "metrics": {"fid": fid}} for i, fid in enumerate(CURVES[seed])]
            store.record(RunResult(spec.run_id, DONE, evals=evals, fingerprint="p"))
        paths = {p.name: p for p in write_report(store, tmp_path / "out", "windowed")}
    finally:
        store.close()
    runs, evals = pd.read_csv(paths["runs.csv"]), pd.read_csv(paths["evals.csv"])
    assert len(evals) == 15 and list(evals.groupby("run_id")["index"].max().unique()) == [4]
    # Recomputed from the two CSVs alone: the geometric mean of each run's last 3 evaluations.
    last3 = evals.sort_values(["run_id", "index"]).groupby("run_id").tail(3)
    recomputed = np.exp(np.log(last3["fid"]).groupby(last3["run_id"]).mean())
    assert runs.set_index("run_id")["headline"].to_dict() == pytest.approx(recomputed.to_dict(), rel=1e-12)
    assert runs.set_index("seed").loc[2, "fid"] == 115.0  # the final value stays in its column
    assert bool(runs.set_index("seed").loc[2, "collapsed"]) and not runs.set_index("seed").loc[0, "collapsed"]
    board = pd.read_csv(paths["leaderboard.csv"])
    assert board.loc[0, "center"] == pytest.approx(statistics.geometric_mean(runs["headline"]), rel=1e-12)
    assert board.loc[0, "headline_summary"] == "geometric mean of the last 3 evaluations"
    markdown = paths["leaderboard.md"].read_text()
    assert "each run's value: its geometric mean of the last 3 evaluations" in markdown
    assert "FID (last 3 evals) geo. mean [95% CI]" in markdown


MIXED = {
    "name": "mixed", "design": "one-factor", "seeds": 1,
    "budget": {"unit": "g_steps", "g_steps": 2, "batch_size": 8},
    "eval": {"n_fake": 32, "n_real": 64, "metrics": ["pr"]},
    "datasets": [
        {"name": "blobs", "baseline": {"generator": "lin", "discriminator": "small", "loss": "logistic",
                                       "stack": "none"},
         "components": {"discriminator": ["small", "small_wide"], "stack": ["none", "explode", "crash"]}},
        {"name": "blobs", "hparams": {"n": 256}, "design": "full",
         "components": {"discriminator": ["small", "small_wide"], "stack": ["none", "explode", "crash"]}},
    ],
    "components": {"generator": ["lin"], "loss": ["logistic"]},
}


def test_a_dataset_may_train_under_a_design_of_its_own_and_bench_design_overrides_every_one():
    registry = build_registry(extra_plugins={"testzoo": testzoo}, load_entry_points=False)
    suite = parse_suite(MIXED)
    assert [suite.design_of(plan) for plan in suite.datasets] == ["one-factor", "full"]
    grid = build_grid(suite, registry)
    designs = [(d.design, d.crossed) for d in grid.designs]
    # one-factor: the baseline, small_wide, explode, crash (4 rows); full: 2 discriminators x 3 stacks (6 cells)
    assert designs == [("one-factor", 4), ("full", 6)]
    record = suite_record(suite, registry)
    assert SuiteRecord.from_dict(record.to_dict()) == record
    assert record.design == "one-factor" and record.datasets["blobs"].design == "full"  # the second entry's
    crossed = with_design(suite, "full")
    assert crossed.name == "mixed-full" and {crossed.design_of(p) for p in crossed.datasets} == {"full"}
    with pytest.raises(SuiteError, match=r"--design one-factor needs a baseline for every axis; suite mixed"):
        with_design(suite, "one-factor")  # the crossed dataset has no baseline to vary one factor around


def test_a_crossed_dataset_needs_no_baseline_but_may_not_weigh_rows():
    with pytest.raises(SuiteError, match=r"dataset #2: baseline_seeds and row_seeds weigh the rows of a one-factor"):
        parse_suite({**MIXED, "datasets": [MIXED["datasets"][0], {**MIXED["datasets"][1], "baseline_seeds": 4}]})
    with pytest.raises(SuiteError, match=r"dataset #1: a one-factor design needs a baseline for every axis"):
        parse_suite({**MIXED, "design": "full", "datasets": [{**MIXED["datasets"][1], "design": "one-factor"}]})
    with pytest.raises(SuiteError, match=r"dataset #2: design must be one of"):
        parse_suite({**MIXED, "datasets": [MIXED["datasets"][0], {**MIXED["datasets"][1], "design": "star"}]})


def test_only_a_crossed_datasets_table_gets_an_effects_analysis():
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("ring8", "digits"):
        for loss in ("ns", "hinge"):
            for stack in ("none", "sn"):
                for seed in range(3):
                    rows.append({"dataset": dataset, "generator": "g", "discriminator": "d", "loss": loss,
                                 "stack": stack, "seed": seed, "status": DONE, "fingerprint": "p",
                                 "fid": 20 * (0.5 if stack == "sn" else 1) * math.exp(rng.normal(0, 0.1))})
    record = SuiteRecord.from_dict({"design": "one-factor", "datasets": {
        "ring8": {"baseline": {"generator": "g", "discriminator": "d", "loss": "ns", "stack": "none"}},
        "digits": {"baseline": {"generator": "g", "discriminator": "d", "loss": "ns", "stack": "none"},
                   "design": "full"}}})
    table = effects(pd.DataFrame(rows), record, {d: Judgement(scale="log") for d in ("ring8", "digits")})[0]
    assert set(table["dataset"]) == {"digits"}
    assert record.baseline("digits") is None and record.baseline("ring8") is not None
    assert record.crossed(["ring8", "digits"]) and not record.crossed(["ring8"])


def test_the_default_suite_declares_its_headline_windows():
    suite = load_suite("default")
    windows = {plan.dataset.name: plan.judgement.get("window") for plan in suite.datasets}
    assert all(isinstance(w, int) and w >= 1 for w in windows.values()), windows
