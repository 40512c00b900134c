"""The reporter: aggregation over seeds, stability columns, significance, and never ranking across protocols."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from ganzoo import Judgement
from ganzoo.report import leaderboard, to_markdown


def runs(*rows):
    base = {"dataset": "digits", "generator": "g", "discriminator": "d", "loss": "ns", "kimg": 10.0,
            "imgs_per_s": 100.0, "extractor": "x", "weights_hash": "abc", "n_fake": 1000, "n_real": 1000}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_seeds_are_aggregated_with_sample_std_and_stability():
    board = leaderboard(runs(
        {"stack": "a", "seed": 0, "status": "done", "fid": 10.0, "fingerprint": "p1"},
        {"stack": "a", "seed": 1, "status": "done", "fid": 14.0, "fingerprint": "p1"},
        {"stack": "a", "seed": 2, "status": "diverged", "fid": math.nan, "fingerprint": "p1"},
    ))
    row = board.iloc[0]
    assert row["fid"] == 12.0 and row["fid_std"] == pytest.approx(2 ** 0.5 * 2)  # std of (10, 14), ddof=1
    assert (row["seeds"], row["finished"], row["n_diverged"]) == (3, 2, 1)
    assert row["unstable"] == pytest.approx(1 / 3)


def test_protocols_are_ranked_apart_and_all_diverged_ranks_last():
    board = leaderboard(runs(
        {"stack": "a", "seed": 0, "status": "done", "fid": 30.0, "fingerprint": "p1"},
        {"stack": "b", "seed": 0, "status": "done", "fid": 20.0, "fingerprint": "p1"},
        {"stack": "c", "seed": 0, "status": "diverged", "fid": math.nan, "fingerprint": "p1"},
        {"stack": "a", "seed": 0, "status": "done", "fid": 5.0, "fingerprint": "p2", "n_fake": 50000},
    ))
    p1 = board[board["fingerprint"] == "p1"]
    assert list(p1["stack"]) == ["b", "a", "c"] and list(p1["rank"]) == [1, 2, 3]
    p2 = board[board["fingerprint"] == "p2"]
    assert list(p2["rank"]) == [1]  # the lower FID of another protocol does not outrank p1's rows
    markdown = to_markdown(board)
    assert markdown.count("## digits") == 2 and "protocol `p1`" in markdown and "50000 generated" in markdown


def test_pending_and_running_runs_are_not_aggregated():
    board = leaderboard(runs({"stack": "a", "seed": 0, "status": "running", "fid": math.nan, "fingerprint": "p"}))
    assert board.empty and "No finished runs" in to_markdown(board)


MODES = Judgement(headline="modes", lower_is_better=False, tiebreak="high_quality", success=("modes >= 7",))
RECORD = {"design": "one-factor", "datasets": {"ring8": {"baseline": {
    "generator": "g", "discriminator": "d", "loss": "ns", "stack": "none"}}}}


def seeds(stack, values, dataset="ring8", **extra):
    return [{"dataset": dataset, "stack": stack, "seed": i, "status": "done", "fingerprint": "p", "modes": v,
             "high_quality": 0.5, **extra} for i, v in enumerate(values)]


def test_higher_is_better_headlines_rank_descending_with_the_tiebreak():
    board = leaderboard(runs(*seeds("a", [6, 6]), *seeds("b", [8, 8]),
                             *seeds("c", [6, 6], high_quality=0.9)), judgements={"ring8": MODES})
    assert list(board["stack"]) == ["b", "c", "a"] and list(board["rank"]) == [1, 2, 3]


def test_rows_are_compared_with_the_baseline_by_welch_and_holm():
    base, better, same = [5.0, 6.0, 5.5, 6.5, 5.0], [8.0, 7.5, 8.0, 7.0, 7.5], [5.5, 6.0, 5.0, 6.5, 6.0]
    board = leaderboard(runs(*seeds("none", base), *seeds("x", better), *seeds("y", same)), RECORD,
                        {"ring8": MODES}).set_index("stack")
    # Independent computation: scipy's Welch p values, Holm by hand for m = 2.
    p_x = scipy_stats.ttest_ind(better, base, equal_var=False).pvalue
    p_y = scipy_stats.ttest_ind(same, base, equal_var=False).pvalue
    low, high = sorted([p_x, p_y])
    holm = {low: 2 * low, high: max(2 * low, high)}
    assert board.loc["x", "p_holm"] == pytest.approx(holm[p_x])
    assert board.loc["y", "p_holm"] == pytest.approx(min(holm[p_y], 1.0))
    assert board.loc["x", "verdict"] == "better" and board.loc["y", "verdict"] == "n.s."
    assert board.loc["none", "verdict"] == "baseline"
    assert board.loc["x", "diff"] == pytest.approx(np.mean(better) - np.mean(base))
    assert board.loc["x", "diff_ci_low"] > 0  # the whole bootstrap interval is above the baseline
    markdown = to_markdown(board.reset_index(), suite_record=RECORD, judgements={"ring8": MODES})
    assert "Baseline: g/d/ns/none" in markdown and "better" in markdown


def test_unstable_counts_collapsed_and_degraded_seeds_and_success_is_a_share():
    rows = seeds("a", [8, 2, 8, 8])
    rows[1].update(collapsed=True, unstable=True)
    rows[2].update(degraded=True, unstable=True)
    board = leaderboard(runs(*rows), judgements={"ring8": MODES})
    row = board.iloc[0]
    assert (row["n_collapsed"], row["n_degraded"], row["unstable"]) == (1, 1, 0.5)
    assert "2/4 (1 collapsed, 1 degraded)" in to_markdown(board, judgements={"ring8": MODES})


def test_experiments_that_share_a_combination_are_separate_rows():
    board = leaderboard(runs(*seeds("a", [8, 8], experiment="e1", variant="stack[0].max_norm=0.5"),
                             *seeds("a", [2, 2], experiment="e2", variant="stack[0].max_norm=100")),
                        judgements={"ring8": MODES})
    assert len(board) == 2 and list(board["seeds"]) == [2, 2]
    assert "stack[0].max_norm=0.5" in to_markdown(board, judgements={"ring8": MODES})


def test_kid_is_printed_times_a_thousand():
    board = leaderboard(runs({"stack": "a", "seed": 0, "status": "done", "fid": 1.0, "kid_mean": 0.0123,
                              "fingerprint": "p"}))
    markdown = to_markdown(board)
    assert "KID×10³" in markdown and " 12.3 " in markdown and "0.0123" not in markdown
    raw = to_markdown(leaderboard(runs({"stack": "a", "seed": 0, "status": "done", "fid": 1.0, "kid_mean": 56.1,
                                        "fingerprint": "p"})))
    assert "KID (raw)" in raw and " 56.1 " in raw  # unnormalised features: x1000 would hide the scale


def test_marginals_average_each_component_over_the_rest_of_a_full_grid():
    from ganzoo.report import marginals

    # A 2 x 2 grid of (loss, stack) with one seed each: hinge's marginal is the mean of its two rows.
    rows = [{"loss": loss, "stack": stack, "seed": 0, "status": "done", "fingerprint": "p", "fid": fid}
            for loss, stack, fid in (("ns", "a", 10.0), ("ns", "b", 20.0), ("hinge", "a", 30.0),
                                     ("hinge", "b", 50.0))]
    table = marginals(leaderboard(runs(*rows))).set_index(["axis", "component"])
    assert table.loc[("loss", "hinge"), "mean"] == 40.0 and table.loc[("loss", "ns"), "mean"] == 15.0
    assert table.loc[("stack", "a"), "mean"] == 20.0 and table.loc[("stack", "b"), "rows"] == 2
    assert list(table.loc["loss"].index) == ["ns", "hinge"]  # best (lowest FID) first
