"""The effects analysis of crossed designs: checked against an independent fit, the marginal means, known effects."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from ganzoo import Judgement
from ganzoo.report import leaderboard, to_markdown
from ganzoo.report.effects import EFFECT_COLUMNS, design_matrix, effects, ols_hc3
from ganzoo.report.findings import findings

FID = Judgement(headline="fid", scale="log", margin=1.25, margin_reason="smaller than the seeds' own spread")
BASELINE = {"generator": "dcgan", "discriminator": "dcgan", "loss": "ns", "stack": "none"}
RECORD = {"design": "full", "datasets": {"digits": {"baseline": BASELINE}}}
# Known multiplicative effects on FID, against the reference level of each axis (factor 1).
FACTORS = {"generator": {"dcgan": 1.0, "resnet": 0.5}, "loss": {"ns": 1.0, "hinge": 1.6, "wgan": 1.0},
           "stack": {"none": 1.0, "sn": 0.8}}


def crossed(seeds: int, sd: float, seed: int = 0, factors=FACTORS, interaction: float = 1.0,
            drop=lambda cell: False, spread=lambda cell: 1.0) -> pd.DataFrame:
    """Runs of a full grid with FID = 30 x the product of the levels' factors x lognormal noise.

    ``interaction`` multiplies the cells with generator resnet and loss hinge; ``drop`` leaves cells out;
    ``spread`` scales the noise per cell (unequal spreads, which HC3 standard errors are robust to).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for g, loss, stack in itertools.product(*(factors[a] for a in ("generator", "loss", "stack"))):
        cell = {"generator": g, "loss": loss, "stack": stack}
        if drop(cell):
            continue
        fid = 30 * factors["generator"][g] * factors["loss"][loss] * factors["stack"][stack]
        fid *= interaction if (g, loss) == ("resnet", "hinge") else 1.0
        for s in range(seeds):
            rows.append({"dataset": "digits", "fingerprint": "p", "discriminator": "dcgan", **cell, "seed": s,
                         "status": "done", "fid": fid * math.exp(rng.normal(0, sd * spread(cell))),
                         "kimg": 1.0, "imgs_per_s": 1.0})
    return pd.DataFrame(rows)


def test_the_fit_and_its_hc3_errors_match_statsmodels_formula_api():
    smf = pytest.importorskip("statsmodels.formula.api", reason="statsmodels is the independent fit (pip install "
                                                                  "statsmodels)")
    runs = crossed(3, 0.3, spread=lambda cell: 2.0 if cell["generator"] == "resnet" else 1.0)
    runs = runs[~((runs["loss"] == "wgan") & (runs["stack"] == "sn") & (runs["seed"] == 2))]  # unbalanced
    table = effects(runs, RECORD, {"digits": FID})[0].set_index(["axis", "component"])
    model = smf.ols("np.log(fid) ~ C(generator, Treatment('dcgan')) + C(loss, Treatment('ns')) + "
                    "C(stack, Treatment('none'))", runs).fit(cov_type="HC3", use_t=True)
    for (axis, component), row in table.iterrows():
        reference = {"generator": "dcgan", "loss": "ns", "stack": "none"}[axis]
        name = f"C({axis}, Treatment('{reference}'))[T.{component}]"
        assert row["coef"] == pytest.approx(model.params[name], abs=1e-10)
        assert row["se"] == pytest.approx(model.bse[name], rel=1e-8)
        assert row["p"] == pytest.approx(model.pvalues[name], rel=1e-6)
        low, high = np.exp(model.conf_int().loc[name])
        assert (row["low"], row["high"]) == pytest.approx((low, high), rel=1e-8)


def test_point_estimates_match_numpy_least_squares_and_the_known_effects():
    runs = crossed(6, 0.1)
    x, names = design_matrix(runs, {"generator": "dcgan", "loss": "ns", "stack": "none"})
    beta = np.linalg.lstsq(x, np.log(runs["fid"].to_numpy()), rcond=None)[0]
    fit = ols_hc3(x, np.log(runs["fid"].to_numpy()))
    assert fit.params == pytest.approx(beta, abs=1e-12)
    table = effects(runs, RECORD, {"digits": FID})[0].set_index("component")
    for axis, component in names:
        truth = FACTORS[axis][component]
        assert table.loc[component, "low"] < truth < table.loc[component, "high"]  # 95% intervals cover them
    assert table.loc["resnet", "effect"] == pytest.approx(0.5, rel=0.1)


def test_in_a_balanced_design_each_effect_is_the_marginal_mean_contrast():
    runs = crossed(2, 0.4, seed=3)
    table = effects(runs, RECORD, {"digits": FID})[0].set_index(["axis", "component"])
    logs = runs.assign(y=np.log(runs["fid"]))
    for (axis, component), row in table.iterrows():
        means = logs.groupby(axis)["y"].mean()
        assert math.log(row["effect"]) == pytest.approx(means[component] - means[row["reference"]], abs=1e-12)


def test_verdicts_holm_within_axes_and_the_csv_columns():
    runs = crossed(8, 0.15, seed=1)
    table, interactions, _ = effects(runs, RECORD, {"digits": FID})
    assert list(table.columns) == EFFECT_COLUMNS and len(table) == 4
    by = table.set_index("component")
    assert by.loc["resnet", "verdict"] == "better" and by.loc["hinge", "verdict"] == "worse"
    # wgan has no true effect: with 48 runs on each side its 90% interval sits inside x0.8-1.25.
    assert by.loc["wgan", "verdict"] == "equivalent"
    assert by.loc["wgan", "low_90"] > 0.8 and by.loc["wgan", "high_90"] < 1.25
    # Holm within the loss axis (2 components), by hand.
    p = by.loc[["hinge", "wgan"], "p"].to_numpy()
    order = np.argsort(p)
    expected = np.empty(2)
    expected[order[0]] = min(1, 2 * p[order[0]])
    expected[order[1]] = min(1, max(expected[order[0]], p[order[1]]))
    assert by.loc[["hinge", "wgan"], "p_holm"].to_numpy() == pytest.approx(expected)
    assert by.loc["resnet", "poi"] > 0.75  # halving FID wins most pairs of runs
    assert (interactions["p_holm"] >= 0.05).all()


def test_an_undecided_component_says_how_many_runs_would_decide_it():
    runs = crossed(1, 0.5, seed=2, factors={**FACTORS, "stack": {"none": 1.0, "sn": 0.85}})
    row = effects(runs, RECORD, {"digits": FID})[0].set_index("component").loc["sn"]
    assert row["verdict"] == "undecided" and row["runs_to_decide"] > len(runs)


def test_an_interaction_that_flips_a_sign_is_found_and_said():
    # resnet halves FID except with hinge, where it multiplies it by 1.6 (0.5 x 3.2): the effect changes sign.
    runs = crossed(4, 0.1, seed=4, interaction=3.2)
    analysis = effects(runs, RECORD, {"digits": FID})
    table, interactions, cells = analysis
    pair = interactions.set_index(["axis", "other"]).loc[("generator", "loss")]
    assert pair["p_holm"] < 0.001 and pair["df_num"] == 2
    assert "loss" in table.set_index("component").loc["resnet", "interacts_with"]
    at = cells[(cells["component"] == "resnet") & (cells["other"] == "loss")].set_index("level")["effect"]
    assert at["hinge"] > 1 > at["ns"]
    board = leaderboard(runs, RECORD, {"digits": FID})
    text = findings(board, {"digits": FID}, analysis)[("digits", "p")]
    assert "The effects of generator depend on loss (F(2, " in text and "(changes sign)" in text
    assert "Crossed design: its rows are cells, not tested one by one or ranked." in text
    assert board["rank"].isna().all()  # a crossed table's cells are not tested, so not ranked
    markdown = to_markdown(board, suite_record=RECORD, judgements={"digits": FID}, analysis=analysis)
    assert "| generator | resnet" in markdown and "P(improvement) [95% CI]" in markdown


def test_no_interaction_is_said_as_such_and_a_confounded_component_is_not_estimated():
    runs = crossed(3, 0.2, seed=5)
    lines = findings(leaderboard(runs, RECORD, {"digits": FID}), {"digits": FID},
                     effects(runs, RECORD, {"digits": FID}))[("digits", "p")]
    assert "- No interaction detected (F test per pair of axes, Holm: generator×loss, generator×stack, loss×stack" \
        in lines
    # sn trains exactly where resnet does: their effects cannot be told apart (the later column is dropped).
    partial = crossed(3, 0.2, seed=5, drop=lambda c: (c["stack"] == "sn") != (c["generator"] == "resnet"))
    table = effects(partial, RECORD, {"digits": FID})[0].set_index("component")
    assert table.loc["sn", "verdict"] == "not estimable" and math.isnan(table.loc["sn", "effect"])


def test_the_ols_rejects_mismatched_shapes_with_what_it_expected():
    with pytest.raises(ValueError, match=r"x must be \(runs, columns\) and y \(runs,\)"):
        ols_hc3(np.ones((3, 2)), np.ones(4))


def test_a_crossed_suites_reports_write_effects_csv_and_show_effects_and_profiles(tmp_path):
    import testzoo

    from ganzoo.core.records import DONE, RunResult
    from ganzoo.core.spec import ComponentRef
    from ganzoo.core.store import Store
    from ganzoo.report.html import write_html_report
    from ganzoo.report.markdown import write_report

    rng = np.random.default_rng(6)
    store = Store(tmp_path / "results")
    try:
        specs = {(loss, stack, seed): testzoo.tiny_spec(loss=loss, seed=seed, stack=(ComponentRef(stack, {}),)
                                                        if stack != "none" else ())
                 for loss in ("logistic", "hinge") for stack in ("none", "sn") for seed in range(3)}
        store.add_many(list(specs.values()), "crossed")
        store.set_suite_record("crossed", {"design": "full", "datasets": {"blobs": {
            "baseline": {"generator": "lin", "discriminator": "small", "loss": "logistic", "stack": "none"},
            "judgement": FID.as_dict()}}})
        for (_, stack, _), spec in specs.items():
            fid = 20 * (0.5 if stack == "sn" else 1.0) * math.exp(rng.normal(0, 0.1))
            store.record(RunResult(spec.run_id, DONE, evals=[{"kimg": 1.0, "g_steps": 2, "d_steps": 2,
                                                              "seconds": 1.0, "metrics": {"fid": fid}}],
                                   fingerprint="p"))
        paths = write_report(store, tmp_path / "md", "crossed")
        page = write_html_report(store, tmp_path / "html", "crossed")
    finally:
        store.close()
    assert [p.name for p in paths] == ["leaderboard.md", "leaderboard.csv", "runs.csv", "evals.csv", "effects.csv"]
    written = pd.read_csv(paths[-1])
    assert {"dataset", "axis", "component", "reference", "effect", "low", "high", "p_holm", "verdict"} \
        <= set(written.columns)
    written = written.set_index("component")
    assert written.loc["sn", "reference"] == "none" and written.loc["sn", "verdict"] == "better"
    assert written.loc["sn", "effect"] == pytest.approx(0.5, rel=0.15)
    markdown = paths[0].read_text()
    assert "Effects (crossed design)" in markdown and "Marginals" not in markdown
    html = page.read_text()
    assert '<table class="effects">' in html and "Performance profiles" in html
    assert (page.parent / "plots" / "blobs-p-profiles.png").read_bytes().startswith(b"\x89PNG")
    assert (page.parent / "effects.csv").exists()


def test_the_stated_power_of_an_effect_is_within_5_points_of_simulated():
    """A crossed table states the effect its runs detect 80% of the time (``mde``, from each fit's HC3 standard
    error); refitting seeded data with that true effect rejects at alpha / m that often (1,500 draws)."""
    from scipy import stats as sps

    from ganzoo.report import stats

    levels = {"generator": ["dcgan", "resnet"], "loss": ["ns", "hinge", "wgan"], "stack": ["none", "sn"]}
    grid = pd.DataFrame([dict(zip(levels, c, strict=True)) for c in itertools.product(*levels.values())
                         for _ in range(4)])
    x, names = design_matrix(grid, {"generator": "dcgan", "loss": "ns", "stack": "none"})
    column = names.index(("loss", "hinge")) + 1
    rng = np.random.default_rng(3)

    def fit(effect):
        return ols_hc3(x, rng.normal(0, 0.3, len(grid)) + effect * x[:, column])

    m = 2  # two components on the loss axis: Holm's first step tests at 0.05 / 2
    stated = float(np.median([stats.t_mde(fit(0.0).se[column], len(grid) - x.shape[1], m=m) for _ in range(200)]))
    fits = [fit(stated) for _ in range(1500)]
    t = np.array([f.params[column] / f.se[column] for f in fits])
    simulated = np.mean(2 * sps.t.sf(np.abs(t), fits[0].df) < 0.05 / m)
    assert simulated == pytest.approx(0.8, abs=0.05)
