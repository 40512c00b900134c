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


def test_protocols_are_sorted_apart_and_all_diverged_sorts_last_and_untested_rows_are_not_ranked():
    board = leaderboard(runs(
        {"stack": "a", "seed": 0, "status": "done", "fid": 30.0, "fingerprint": "p1"},
        {"stack": "b", "seed": 0, "status": "done", "fid": 20.0, "fingerprint": "p1"},
        {"stack": "c", "seed": 0, "status": "diverged", "fid": math.nan, "fingerprint": "p1"},
        {"stack": "a", "seed": 0, "status": "done", "fid": 5.0, "fingerprint": "p2", "n_fake": 50000},
    ))
    p1 = board[board["fingerprint"] == "p1"]
    # One seed each and no baseline: nothing is tested, so the rows are listed by centre but none is ranked.
    assert list(p1["stack"]) == ["b", "a", "c"] and p1["rank"].isna().all()
    p2 = board[board["fingerprint"] == "p2"]
    assert list(p2["stack"]) == ["a"] and p2["rank"].isna().all()
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
    board = leaderboard(runs(*seeds("a", [6, 6]), *seeds("b", [8, 8]), *seeds("none", [7.0, 7.5]),
                             *seeds("c", [6, 6], high_quality=0.9)), RECORD, judgements={"ring8": MODES})
    assert list(board["stack"]) == ["b", "none", "c", "a"] and list(board["rank"]) == [1, 2, 3, 4]


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
    # No equivalence margin declared: what is not separated is undecided, never "the same".
    assert board.loc["x", "verdict"] == "better" and board.loc["y", "verdict"] == "undecided"
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


# --- intervals, the log scale, packages, power and findings --------------------------------------------------------

FID_LOG = Judgement(headline="fid", scale="log")
FID_RECORD = {"design": "one-factor", "datasets": {"digits": {"baseline": {
    "generator": "g", "discriminator": "d", "loss": "ns", "stack": "none"}}}}


def fid_seeds(stack, values, loss="ns", parts=None, **extra):
    return [{"stack": stack, "loss": loss, "seed": i, "status": "done", "fingerprint": "p", "fid": v,
             "stack_parts": stack if parts is None else parts, **extra} for i, v in enumerate(values)]


def test_judgement_scale_and_ceiling_round_trip_and_are_validated():
    judgement = Judgement(headline="modes", lower_is_better=False, scale="log", ceiling=8)
    assert Judgement.from_dict(judgement.as_dict()) == judgement and judgement.ceiling == 8.0
    old = {k: v for k, v in judgement.as_dict().items() if k not in ("scale", "ceiling")}
    assert Judgement.from_dict(old).scale == "linear" and Judgement.from_dict(old).ceiling is None
    with pytest.raises(ValueError, match='scale must be one of linear, log, got .Log.'):
        Judgement(scale="Log")
    with pytest.raises(ValueError, match="ceiling must be a finite number"):
        Judgement(ceiling=math.inf)


@pytest.mark.parametrize("judgement", [Judgement(headline="fid"), FID_LOG])
def test_every_rows_interval_agrees_with_its_test(judgement):
    rng = np.random.default_rng(4)
    rows = fid_seeds("none", rng.lognormal(3.3, 0.4, 5))
    for i, factor in enumerate([0.3, 0.5, 0.7, 0.9, 1.0, 1.2, 1.6, 2.5, 4.0]):
        rows += fid_seeds(f"s{i}", rng.lognormal(3.3 + math.log(factor), 0.4, 3 + i % 4))
    board = leaderboard(runs(*rows), FID_RECORD, {"digits": judgement})
    tested = board[board["p"].notna()]
    assert len(tested) == 9
    low, high = (("ratio_ci_low", "ratio_ci_high") if judgement.scale == "log" else ("diff_ci_low", "diff_ci_high"))
    null = 1.0 if judgement.scale == "log" else 0.0
    excludes = (tested[low] > null) | (tested[high] < null)
    assert list(excludes) == list(tested["p"] < 0.05)
    assert 0 < excludes.sum() < len(tested)  # both kinds of row are on the board
    # Each row's own interval is Student's t (linear) or exp of t on the logs (log), as scipy computes them.
    for _, row in board.iterrows():
        seeds = np.array([r["fid"] for r in rows if r["stack"] == row["stack"]])
        data = np.log(seeds) if judgement.scale == "log" else seeds
        expected = scipy_stats.t.interval(0.95, len(data) - 1, loc=data.mean(), scale=scipy_stats.sem(data))
        if judgement.scale == "log":
            expected = np.exp(expected)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(expected))


def test_log_scale_compares_geometric_means_and_falls_back_on_a_non_positive_value():
    import statistics

    base, better = [31.0, 206.0, 297.0], [14.0, 15.6, 16.2]
    board = leaderboard(runs(*fid_seeds("none", base), *fid_seeds("x", better)), FID_RECORD,
                        {"digits": FID_LOG}).set_index("stack")
    x = board.loc["x"]
    assert x["scale"] == "log" and x["center"] == pytest.approx(statistics.geometric_mean(better))
    assert x["ratio"] == pytest.approx(statistics.geometric_mean(better) / statistics.geometric_mean(base))
    assert x["diff"] == pytest.approx(math.log(x["ratio"]))  # the log difference, as the README says
    assert x["p"] == pytest.approx(scipy_stats.ttest_ind(np.log(better), np.log(base), equal_var=False).pvalue)
    assert x["mean"] == pytest.approx(np.mean(better))  # the arithmetic mean stays, for compatibility
    # A value <= 0 puts the whole table on the linear scale, and the report says so instead of failing.
    fallback = leaderboard(runs(*fid_seeds("none", base), *fid_seeds("x", [14.0, -0.5, 16.2])), FID_RECORD,
                           {"digits": FID_LOG})
    assert set(fallback["scale"]) == {"linear"} and fallback["ratio"].isna().all()
    markdown = to_markdown(fallback, suite_record=FID_RECORD, judgements={"digits": FID_LOG})
    assert "Scale: analysed on the linear scale: the log scale was asked for, but `g/d/ns/x` has a fid of -0.5" \
        in markdown


def test_a_row_that_changes_several_things_is_labelled_a_package():
    from ganzoo.report.findings import findings

    rows = [*fid_seeds("none", [30.0, 31.0, 29.0], parts=""), *fid_seeds("sn", [30.5, 29.0, 31.5]),
            *fid_seeds("wgan_gp", [60.0, 62.0, 59.0], loss="wasserstein", parts="gradient_penalty,d_steps,ttur"),
            *fid_seeds("combo", [45.0, 44.0, 46.5], parts="r1,ema")]
    board = leaderboard(runs(*rows), FID_RECORD).set_index("stack")
    assert (board.loc["sn", "differs_in"], bool(board.loc["sn", "package"])) == ("stack", False)
    assert (board.loc["wgan_gp", "differs_in"], bool(board.loc["wgan_gp", "package"])) == ("loss+stack", True)
    assert (board.loc["combo", "differs_in"], bool(board.loc["combo", "package"])) == ("stack", True)
    board = board.reset_index()
    markdown = to_markdown(board, suite_record=FID_RECORD)
    assert "every other row differs from it in one component" not in markdown
    assert "except packages that change several at once (`g/d/ns/combo`, `g/d/wasserstein/wgan_gp`)" in markdown
    assert "loss+stack (package)" in markdown
    text = findings(board)[("digits", "p")]
    assert ("- `g/d/wasserstein/wgan_gp`, a package (loss wasserstein + stack wgan_gp: gradient_penalty, d_steps, "
            "ttur), is worse than the baseline on FID: ") in text


def test_findings_state_decided_rows_ceilings_instability_and_power_and_read_back_from_markdown():
    from ganzoo.report import stats
    from ganzoo.report.findings import findings, findings_of_markdown

    modes = Judgement(headline="modes", lower_is_better=False, ceiling=8)
    base, worse, top = [8, 8, 7, 8, 8], [3.0, 4.0, 3.5, 2.5, 3.0], [8, 8, 8, 8, 8]
    rows = [*seeds("none", base), *seeds("bad", worse), *seeds("top", top), *seeds("mid", [8, 7, 8, 6, 8])]
    rows[7].update(collapsed=True, unstable=True)
    board = leaderboard(runs(*rows), RECORD, {"ring8": modes})
    text = findings(board, {"ring8": modes})[("ring8", "p")]
    p_holm = board.set_index("stack").loc["bad", "p_holm"]
    ci = scipy_stats.ttest_ind(worse, base, equal_var=False).confidence_interval()
    diff = np.mean(worse) - np.mean(base)
    assert (f"- `g/d/ns/bad` is worse than the baseline on modes: {diff:+.3g} [{ci.low:+.3g}, {ci.high:+.3g}], "
            f"p (Holm) = {p_holm:.2g}, n = 5 vs 5 seeds.") in text
    assert ("- At the ceiling (modes = 8) on most seeds, as is the baseline (4/5), so modes cannot separate them "
            "from it: `g/d/ns/top` 5/5, `g/d/ns/mid` 3/5.") in text
    assert "- Unstable seeds (diverged, collapsed or degraded): `g/d/ns/bad` 1/5 (1 collapsed)." in text
    # The power line: Welch's test with the baseline's own sd and the other rows' pooled sd (by hand: variances
    # weighted by df 4 each), the power of the test the table runs.
    sd = math.sqrt(np.mean([np.var(v, ddof=1) for v in (base, worse, top, [8, 7, 8, 6, 8])]))
    row_sd = math.sqrt(np.mean([np.var(v, ddof=1) for v in (worse, top, [8, 7, 8, 6, 8])]))
    base_sd = float(np.std(base, ddof=1))
    assert board["pooled_sd"].iloc[0] == pytest.approx(sd)
    assert (board["row_sd"].iloc[0], board["baseline_sd"].iloc[0]) == pytest.approx((row_sd, base_sd))
    assert board["mde"].iloc[0] == pytest.approx(stats.welch_mde(5, 5, base_sd, row_sd, m=3))
    assert text.endswith(f"- Power: 5 seeds per row, within-row sd {row_sd:.2g}, the baseline's {base_sd:.2g} "
                         f"(modes); for Welch's test with Holm across 3 comparisons at 0.05, a true difference of "
                         f"{board['mde'].iloc[0]:.2g} either way is detected 80% of the time; smaller differences "
                         "will mostly read undecided.")
    markdown = to_markdown(board, suite_record=RECORD, judgements={"ring8": modes})
    assert "\n### Findings\n\n" in markdown
    assert findings_of_markdown(markdown) == {("ring8", "p"): text}


# --- three verdicts, margins declared in the judgement, and no rank for an untested row -----------------------------

FID_MARGIN = Judgement(headline="fid", scale="log", margin=1.25, margin_reason="within the seeds' own spread")


def test_a_margin_is_validated_against_its_scale_and_needs_its_reason():
    assert FID_MARGIN.margin_bounds(30.0) == pytest.approx((-math.log(1.25), math.log(1.25)))
    linear = Judgement(headline="modes", lower_is_better=False, margin=0.1, margin_reason="a tenth of a mode")
    assert linear.margin_bounds(8.0) == pytest.approx((-0.8, 0.8)) and linear.margin_text() == "±10% of the " \
        "baseline's value"
    assert Judgement.from_dict(FID_MARGIN.as_dict()) == FID_MARGIN and Judgement().margin_bounds(1.0) is None
    with pytest.raises(ValueError, match=r"margin on the log scale must lie in \(1, 1.25\]"):
        Judgement(scale="log", margin=1.5, margin_reason="too wide")
    with pytest.raises(ValueError, match=r"margin on the linear scale must lie in \(0, 0.1\]"):
        Judgement(margin=0.2, margin_reason="too wide")
    with pytest.raises(ValueError, match="needs its margin_reason"):
        Judgement(scale="log", margin=1.1)
    # A suite that ranks by another headline drops the dataset's margin, unless it declares one of its own.
    assert linear.with_overrides({"headline": "mode_kl", "scale": "log", "lower_is_better": True}).margin is None
    own = linear.with_overrides({"headline": "mode_kl", "scale": "log", "margin": 1.2, "margin_reason": "r"})
    assert own.margin == 1.2 and linear.with_overrides({"success": ("modes >= 7",)}).margin == 0.1


def test_equivalent_needs_the_90_interval_inside_the_margin_and_undecided_says_the_seeds_it_needs():
    from ganzoo.report.findings import findings

    rng = np.random.default_rng(9)
    base = np.exp(rng.normal(math.log(30), 0.05, 8))
    rows = [*fid_seeds("none", base), *fid_seeds("same", np.exp(rng.normal(math.log(30.6), 0.05, 8))),
            *fid_seeds("vague", [24.0, 40.0, 31.0]), *fid_seeds("one", [20.0])]
    board = leaderboard(runs(*rows), FID_RECORD, {"digits": FID_MARGIN}).set_index("stack")
    same = board.loc["same"]
    # By hand: Welch's 90% interval of the log difference, inside +-log 1.25.
    a, b = np.log(base), np.log([r["fid"] for r in rows if r["stack"] == "same"])
    ci = scipy_stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.90)
    assert (same["diff_90_low"], same["diff_90_high"]) == pytest.approx((ci.low, ci.high))
    assert same["verdict"] == "equivalent" and -math.log(1.25) < ci.low and ci.high < math.log(1.25)
    assert board.loc["vague", "verdict"] == "undecided" and board.loc["vague", "seeds_to_decide"] > 3
    assert board.loc["one", "verdict"] == "too few seeds"
    # Ranks: the baseline and the two tested rows; the one-seed row is listed last without one.
    assert board.loc["one", "rank"] != board.loc["one", "rank"]  # NaN
    assert sorted(board["rank"].dropna()) == [1, 2, 3]
    text = findings(board.reset_index(), {"digits": FID_MARGIN})[("digits", "p")]
    assert ("- Equivalent to the baseline on FID (the 90% interval inside the margin ×0.8-1.25: within the seeds' "
            "own spread): `g/d/ns/same` ×") in text
    assert (f"`g/d/ns/vague` ({board.loc['vague', 'seeds_to_decide']:.0f}, "
            f"{board.loc['vague', 'baseline_seeds_to_decide']:.0f})") in text
    assert "- Too few finished seeds to test (2 are needed), so not ranked: `g/d/ns/one` 1/1." in text
    markdown = to_markdown(board.reset_index(), suite_record=FID_RECORD, judgements={"digits": FID_MARGIN})
    assert "| –      | g" in markdown  # the one-seed row's rank cell


def test_the_built_in_datasets_declare_their_margins_before_any_run():
    from ganzoo.core.registry import get_registry

    for name in ("digits", "ring8", "grid25", "mnist5k"):
        judgement = get_registry().get("dataset", name).judgement
        assert judgement.margin is not None and judgement.margin_reason, name
