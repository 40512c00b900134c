"""``ganzoo plan``: the seeds a suite needs, from a small store of finished runs written by hand (no training)."""

import math

import numpy as np
import testzoo
from click.testing import CliRunner

from ganzoo.api.judgement import Judgement
from ganzoo.cli import main
from ganzoo.core.records import DONE, RunResult
from ganzoo.core.spec import ComponentRef
from ganzoo.core.store import Store
from ganzoo.report import stats

BASE = [30.0, 34.0, 29.0, 33.0]
ROWS = {"none": BASE, "a": [20.0, 23.0, 19.0, 22.0], "b": [31.0, 35.0, 30.0, 32.0]}


def evaluation(fid):
    return {"kimg": 1.0, "g_steps": 2, "d_steps": 2, "seconds": 1.0, "metrics": {"fid": fid}}


FID = Judgement(headline="fid")


def write_store(results, rows=ROWS, judgement=FID, finish=True):
    store = Store(results)
    try:
        specs = {stack: [testzoo.tiny_spec(stack=() if stack == "none" else (ComponentRef(stack, {}),), seed=seed)
                         for seed in range(len(values))] for stack, values in rows.items()}
        store.add_many([s for group in specs.values() for s in group], "pilot")
        store.set_suite_record("pilot", {"design": "one-factor", "datasets": {"blobs": {
            "baseline": {"generator": "lin", "discriminator": "small", "loss": "logistic", "stack": "none"},
            "judgement": judgement.as_dict()}}})
        for stack, values in rows.items():
            for spec, value in zip(specs[stack], values, strict=True):
                if finish:
                    store.record(RunResult(spec.run_id, DONE, evals=[evaluation(value)], fingerprint="p"))
    finally:
        store.close()


def plan(results, *args):
    result = CliRunner().invoke(main, ["plan", "--suite", "pilot", "--results-dir", str(results), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_gives_the_mde_and_the_seeds_each_observed_effect_needs(tmp_path):
    write_store(tmp_path)
    output = plan(tmp_path)
    # By hand: the rows' variances weigh equally (4 seeds each); the baseline keeps its own; Holm across 2.
    sd = math.sqrt(np.mean([np.var(ROWS[k], ddof=1) for k in ("a", "b")]))
    base_sd = float(np.std(BASE, ddof=1))
    assert f"within-row sd: {sd:.3g}, the baseline's {base_sd:.3g} (FID;" in output
    assert f"detectable at 4 seeds per row (80% power, alpha 0.05, Holm across 2 comparisons): " \
           f"{stats.welch_mde(4, 4, base_sd, sd, m=2):.3g} either way" in output
    # The smallest n at which Welch's test at alpha 0.025 detects the observed effect 80% of the time.
    for stack in ("a", "b"):
        diff = np.mean(ROWS[stack]) - np.mean(BASE)
        needed = stats.welch_seeds_needed(diff, base_sd, sd, m=2)
        assert f"lin/small/logistic/{stack}" in output and f"{diff:+.3g}" in output
        row = next(line for line in output.splitlines() if f"logistic/{stack} " in line)
        assert row.split()[-1] == str(needed)
    # A large effect (d about 5) needs few seeds, a small one (d about 0.15) hundreds.
    assert stats.welch_seeds_needed(np.mean(ROWS["a"]) - np.mean(BASE), base_sd, sd, m=2) <= 4
    assert stats.welch_seeds_needed(np.mean(ROWS["b"]) - np.mean(BASE), base_sd, sd, m=2) > 100


def test_more_seeds_shrink_the_mde_and_other_levels_are_honoured(tmp_path):
    write_store(tmp_path)
    sd = math.sqrt(np.mean([np.var(ROWS[k], ddof=1) for k in ("a", "b")]))
    base_sd = float(np.std(BASE, ddof=1))
    output = plan(tmp_path, "--seeds", "10", "--power", "0.9", "--alpha", "0.01")
    assert f"detectable at 10 seeds per row (90% power, alpha 0.01, Holm across 2 comparisons): " \
           f"{stats.welch_mde(10, 10, base_sd, sd, alpha=0.01, m=2, power=0.9):.3g} either way" in output


def test_plan_on_the_log_scale_speaks_in_ratios(tmp_path):
    write_store(tmp_path, judgement=Judgement(headline="fid", scale="log"))
    output = plan(tmp_path)
    ratio = math.exp(np.mean(np.log(ROWS["a"])) - np.mean(np.log(BASE)))
    assert "fid, log scale" in output.lower() and "(log FID;" in output and f"×{ratio:.3g}" in output


def test_plan_without_finished_runs_says_there_is_no_pilot_data(tmp_path):
    write_store(tmp_path, finish=False)
    assert "no pilot data" in plan(tmp_path)


def test_plan_names_the_suites_a_store_holds(tmp_path):
    write_store(tmp_path)
    result = CliRunner().invoke(main, ["plan", "--suite", "nope", "--results-dir", str(tmp_path)])
    assert result.exit_code != 0 and 'No suite "nope"' in result.output and "pilot" in result.output


def test_plan_counts_a_larger_baseline_as_the_leaderboards_power_line_does(tmp_path):
    # A suite's baseline_seeds: the baseline has 8 seeds, the rows 4; the mde is that of 4 vs 8, not 4 vs 4.
    rows = {**ROWS, "none": BASE + [31.0, 32.0, 28.0, 35.0]}
    write_store(tmp_path, rows)
    output = plan(tmp_path)
    sd = math.sqrt(np.mean([np.var(ROWS[k], ddof=1) for k in ("a", "b")]))
    base_sd = float(np.std(rows["none"], ddof=1))
    assert f"detectable at 4 seeds per row (8 for the baseline) (80% power, alpha 0.05, Holm across 2 comparisons): " \
           f"{stats.welch_mde(8, 4, base_sd, sd, m=2):.3g} either way" in output
    assert f"{stats.welch_mde(8, 4, base_sd, sd, m=2):.3g}" != f"{stats.welch_mde(4, 4, base_sd, sd, m=2):.3g}"
