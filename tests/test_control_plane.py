"""The control plane's fast paths give what the plain ones give: bootstrap draws (against scipy's bootstrap
and Welch test), evaluation curves, suites per run.

The benchmark itself (benchmarks/control_plane.py) is checked on a small grid: it plans, builds its store and
reports over it.
"""

import gc
import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from ganzoo.core.records import DIVERGED, DONE, RunResult
from ganzoo.core.store import Store
from ganzoo.report import stats
from ganzoo.report.stability import curve

ROOT = Path(__file__).resolve().parents[1]


def scipy_bootstrap(samples, statistic, n_resamples):
    """scipy's percentile bootstrap drawing from ``default_rng(0)`` as ganzoo does (one sample after another):
    an implementation independent of ganzoo's, whose intervals and resampled statistics ganzoo must give."""
    return scipy.stats.bootstrap(samples, statistic, n_resamples=n_resamples, method="percentile", vectorized=True,
                                 random_state=np.random.default_rng(0))


def interval(result):
    return pytest.approx((result.confidence_interval.low, result.confidence_interval.high), rel=1e-12, abs=1e-15)


def mean_diff(b, a, axis=-1):
    return b.mean(axis=axis) - a.mean(axis=axis)


# scipy's standard error of a single resample (n_resamples = 1) warns; its interval is still the one value.
@pytest.mark.filterwarnings("ignore:Degrees of freedom:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize(("n", "n_resamples"), [(2, 7), (3, 10_000), (417, 1), (417, 10_000),
                                                (2**18, 7)])  # the last: blocks of one row
def test_intervals_drawn_in_blocks_are_scipys(n, n_resamples):
    """``stats`` draws resample means a block at a time; its intervals are scipy's, whose draws are one whole
    matrix, and the generator is left where that leaves it (the second group's draws come after it)."""
    values = np.random.default_rng(n).normal(size=n)
    other = np.random.default_rng(n + 1).normal(size=5)
    assert stats.bootstrap_ci(values, n_resamples=n_resamples) == interval(
        scipy_bootstrap((values,), np.mean, n_resamples))
    assert stats.bootstrap_diff_ci(other, values, n_resamples=n_resamples) == interval(
        scipy_bootstrap((values, other), mean_diff, n_resamples))  # mean(b*) - mean(a*), b drawn first


def test_one_value_has_a_point_interval():
    assert stats.bootstrap_ci(np.array([3.0]), n_resamples=10) == (3.0, 3.0)


@pytest.mark.parametrize("sizes", [(5, 5), (3, 417), (417, 2), (1, 4)])
def test_comparisons_and_intervals_equal_scipys(sizes):
    rng = np.random.default_rng(sum(sizes))
    a, b = rng.normal(10, 2, sizes[0]), rng.normal(11, 2, sizes[1])
    if len(a) > 1:
        both = scipy_bootstrap((b, a), mean_diff, 10_000)
    else:  # scipy resamples no single value; a's resample means are all a[0] and b is drawn first
        both = scipy_bootstrap((b,), lambda x, axis=-1: x.mean(axis=axis) - a[0], 10_000)
    flips = np.mean(np.abs(np.sign(both.bootstrap_distribution) - np.sign(b.mean() - a.mean()))) / 2
    welch = scipy.stats.ttest_ind(b, a, equal_var=False)
    for _ in range(2):  # the second time from the cache of b's resample means
        result = stats.compare(a, b, lower_is_better=True)  # its interval is Welch's; its flip rate a bootstrap's
        assert result.flip_rate == pytest.approx(flips, abs=1e-12)
        assert stats.bootstrap_diff_ci(a, b) == interval(both)
        assert stats.flip_rate(a, b, True) == pytest.approx(flips, abs=1e-12)
        if len(a) > 1:
            assert result.p == pytest.approx(welch.pvalue, rel=1e-12)
            assert (result.ci_low, result.ci_high) == pytest.approx(tuple(welch.confidence_interval(0.95)), rel=1e-12)
    assert stats.bootstrap_ci(b) == interval(scipy_bootstrap((b,), np.mean, 10_000))
    assert stats.bootstrap_ci(b, np.median) == interval(scipy_bootstrap((b,), np.median, 10_000))  # not cached


def test_a_board_tested_in_threads_leaves_the_warning_filters_as_they_were():
    """Rows are tested in threads, and each Welch test silences scipy's warning about a constant group only."""
    from ganzoo import Judgement
    from ganzoo.report import leaderboard

    rng = np.random.default_rng(0)
    stacks = ["none"] + [f"s{i}" for i in range(12)]
    runs = pd.DataFrame([{"dataset": "ring8", "generator": "g", "discriminator": "d", "loss": "ns", "stack": stack,
                          "seed": seed, "status": DONE, "fingerprint": "p", "modes": 8.0 if i % 2 else rng.normal(6),
                          "kimg": 1.0, "g_steps": 10, "imgs_per_s": 1.0}
                         for i, stack in enumerate(stacks) for seed in range(5)])
    record = {"design": "one-factor", "datasets": {"ring8": {"baseline": {
        "generator": "g", "discriminator": "d", "loss": "ns", "stack": "none"}}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a warning the tests did not silence would fail here
        before = list(warnings.filters)
        board = leaderboard(runs, record, {"ring8": Judgement(headline="modes", lower_is_better=False)})
        assert warnings.filters == before
    assert set(board["verdict"]) <= {"baseline", "better", "worse", "undecided"} and len(board) == len(stacks)


def evaluation(step, **metrics):
    return {"kimg": step / 10, "g_steps": step, "d_steps": step, "seconds": 1.0, "d_loss": 1.4, "g_loss": 0.7,
            "metrics": metrics}


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path)
    store.record(RunResult("a", DONE, evals=[evaluation(s, fid=30.0 / s, modes=float(s % 9)) for s in (1, 2, 3)]))
    store.record(RunResult("b", DIVERGED, evals=[evaluation(5, fid=12.5), evaluation(10, modes=3.0)]))
    store.record(RunResult("c", DONE, evals=[evaluation(7, fid=0.1 + 0.2, modes=8.0, high_quality=0.5)]))
    yield store
    store.close()


def same_curves(lean, whole, metrics):
    assert set(lean) == set(whole)
    for run_id, evals in whole.items():
        assert lean[run_id][-1] == evals[-1]  # the last evaluation is whole
        assert [e.get("g_steps") for e in lean[run_id]] == [e.get("g_steps") for e in evals]
        for metric in metrics:
            got, expected = curve(lean[run_id], metric), curve(evals, metric)
            assert [None if math.isnan(v) else v for v in got] == [None if math.isnan(v) else v for v in expected]


def test_curves_picked_out_by_sqlite_are_the_whole_evaluations_curves(store):
    whole = store.evals_by_run()
    metrics = ["fid", "modes", "high_quality", "classes"]
    lean = store.evals_by_run(metrics=metrics)
    assert lean["a"][0] == {"g_steps": 1, "fid": 30.0, "modes": 1.0, "high_quality": None, "classes": None}
    same_curves(lean, whole, metrics)
    assert set(store.evals_by_run(["a", "c"], metrics=metrics)) == {"a", "c"}
    assert store.evals_by_run(["a"], metrics=[]) == {"a": whole["a"]}


@pytest.mark.parametrize("case", ["nan", "name", "flat"])
def test_evaluations_sqlite_cannot_read_are_read_whole(store, case):
    if case == "nan":  # NaN is not JSON: SQLite refuses the payload, Python reads it
        store.record(RunResult("d", DONE, evals=[evaluation(1, fid=math.nan), evaluation(2, fid=math.inf)]))
    elif case == "flat":  # metrics at the top level of the payload
        with store.db:
            store.db.execute("""INSERT INTO evals VALUES ('e', 0, 1.0, '{"g_steps": 4, "fid": 2.0}')""")
    metrics = ["fid", "mo-des" if case == "name" else "modes"]
    whole, lean = store.evals_by_run(), store.evals_by_run(metrics=metrics)
    if case != "nan":  # a SQLite that reads NaN (3.42 and later) gives the curves, the same ones
        assert lean == whole
    same_curves(lean, whole, metrics)


def test_each_run_lists_its_suites_in_order(tmp_path):
    from ganzoo.core.registry import get_registry
    from ganzoo.run.grid import Filters, build_grid
    from ganzoo.run.suite import load_suite

    specs = build_grid(load_suite("default"), get_registry(), Filters(dataset=("ring8",), stabilizer=("none",)),
                       [0]).specs
    store = Store(tmp_path)
    try:
        for spec in specs:
            store.add(spec, "zeta")
        store.add(specs[0], "alpha")
        rows = {row["run_id"]: row for row in store.runs()}
        assert rows[specs[0].run_id]["suites"] == ["alpha", "zeta"]
        assert all(rows[spec.run_id]["suites"] == ["zeta"] for spec in specs[1:])
        assert [row["run_id"] for row in store.runs("alpha")] == [specs[0].run_id]
        assert store.runs("alpha")[0]["suites"] == ["alpha", "zeta"] == store.suites_of(specs[0].run_id)
        assert {row["run_id"] for row in store.runs("zeta")} == set(rows)
    finally:
        store.close()


def test_the_benchmark_plans_builds_and_reports_a_small_store(tmp_path):
    spec = importlib.util.spec_from_file_location("control_plane", ROOT / "benchmarks" / "control_plane.py")
    control_plane = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(control_plane)
    specs, timings = control_plane.plan(30)
    assert len(specs) >= 30 and set(timings) == {"plan", "plan_and_store"}
    control_plane.build_store(tmp_path / "results", specs, n_evals=4)
    store = Store(tmp_path / "results", readonly=True)
    try:
        from ganzoo.report import write_report

        paths = write_report(store, tmp_path / "out", suite="default")
    finally:
        store.close()
    markdown = paths[0].read_text()
    assert "p (Holm)" in markdown and "baseline" in markdown and "*real data*" in markdown
    assert gc.isenabled()  # the reporter pauses the collector while it reads, and only then


def test_values_stabilizers_report_reach_the_curves_evals_csv_and_the_html_panels(store):
    """Stabilizer.report()'s values (ADA's p) ride with each evaluation: picked out by SQLite with the curves,
    written to evals.csv, one HTML panel each; runs whose stabilizers report nothing get neither key nor panel."""
    from ganzoo.report.html import _stabilizer_panels
    from ganzoo.report.markdown import evaluations_frame

    reported = [{**evaluation(s, fid=1.0), "stabilizers": {"ada.p": p}} for s, p in ((4, 0.0), (8, 0.25), (12, 0.5))]
    store.record(RunResult("ada", DONE, evals=reported))
    lean = store.evals_by_run(metrics=["fid"])
    assert [e["stabilizers"] for e in lean["ada"]] == [{"ada.p": 0.0}, {"ada.p": 0.25}, {"ada.p": 0.5}]
    assert all("stabilizers" not in e for e in lean["a"])
    seeds = pd.DataFrame({"run_id": ["ada", "a"], "seed": [7, 8]})
    assert _stabilizer_panels(seeds, lean, "g_steps") == [("ada.p", {7: ([4, 8, 12], [0.0, 0.25, 0.5])})]
    frame = evaluations_frame(store, pd.DataFrame({"run_id": ["ada", "a"]})).set_index("run_id")
    assert frame.loc["ada", "ada.p"].tolist() == [0.0, 0.25, 0.5] and frame.loc["a", "ada.p"].isna().all()
