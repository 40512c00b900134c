"""Suite fields that shape a leaderboard: extra rows, per-dataset seeds and success, and the record the store keeps."""

import pytest
import testzoo

from ganzoo.core.store import Store
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import SuiteError, parse_suite
from ganzoo.sweep import bench
from ganzoo.testing import plugin_registry


@pytest.fixture
def zoo():
    with plugin_registry({"testzoo": testzoo}) as registry:
        yield registry


def suite(**dataset):
    raw = testzoo.suite_dict()
    raw["datasets"] = [{**raw["datasets"][0], **dataset}]
    return parse_suite(raw)


def test_extra_rows_join_the_one_factor_grid_once(zoo):
    base = build_grid(suite(), zoo)
    grid = build_grid(suite(extra=[{"discriminator": "small_wide", "stack": "explode"}, {"stack": "none"}]), zoo)
    combos = {s.combination for s in grid.specs}
    assert "lin/small_wide/logistic/explode" in combos
    assert "lin/small_wide/logistic/explode" not in {s.combination for s in base.specs}
    assert len(grid.specs) == len(base.specs) + 2  # one new combination x 2 seeds; {"stack": "none"} is the baseline


def test_an_extra_row_naming_an_unknown_component_is_a_clear_error(zoo):
    with pytest.raises(SuiteError, match='extra combination .* names stack "nope"'):
        build_grid(suite(extra=[{"stack": "nope"}]), zoo)
    with pytest.raises(SuiteError, match="extra must be a list of tables"):
        suite(extra=[{"colour": "red"}])


def test_per_dataset_seeds_override_the_suites(zoo):
    grid = build_grid(suite(seeds=[3, 4, 5]), zoo)
    assert {s.seed for s in grid.specs} == {3, 4, 5}
    with pytest.raises(SuiteError, match=r"seeds must be a positive count, \{ first = N, count = K \} or a "
                                         r"non-empty list of integers"):
        suite(seeds="10")


def test_seeds_may_count_from_a_first_seed_disjoint_from_a_pilots(zoo):
    grid = build_grid(suite(seeds={"first": 100, "count": 3}, baseline_seeds={"first": 100, "count": 5}), zoo)
    by_row = {}
    for spec in grid.specs:
        by_row.setdefault(spec.combination, set()).add(spec.seed)
    assert set(map(frozenset, by_row.values())) == {frozenset({100, 101, 102}), frozenset(range(100, 105))}
    for bad in ({"first": 100}, {"first": 100, "count": 0}, {"first": 1.5, "count": 2}, {"start": 0, "count": 2}):
        with pytest.raises(SuiteError, match=r"seeds must be a positive count, \{ first = N, count = K \}"):
            suite(seeds=bad)


def test_the_baseline_may_have_more_seeds_than_the_rows_it_is_compared_with(zoo):
    grid = build_grid(suite(seeds=[0, 1], baseline_seeds=6), zoo)
    baseline = "/".join(suite().datasets[0].baseline[a] for a in ("generator", "discriminator", "loss", "stack"))
    seeds = {}
    for spec in grid.specs:
        seeds.setdefault(spec.combination, set()).add(spec.seed)
    assert seeds.pop(baseline) == set(range(6))
    assert seeds and all(row == {0, 1} for row in seeds.values())
    # --seeds gives every row, the baseline too, the same seeds.
    assert {s.seed for s in build_grid(suite(seeds=[0, 1], baseline_seeds=6), zoo, seeds=[7]).specs} == {7}


def test_rows_a_suite_tests_get_their_own_seeds_and_the_rest_one_each(zoo):
    plan = suite(seeds=1, baseline_seeds=5, row_seeds=[{"stack": "explode", "seeds": 3}]).datasets[0]
    grid = build_grid(suite(seeds=1, baseline_seeds=5, row_seeds=[{"stack": "explode", "seeds": 3}]), zoo)
    seeds = {}
    for spec in grid.specs:
        seeds.setdefault(spec.combination, []).append(spec.seed)
    baseline = "/".join(plan.baseline[a] for a in ("generator", "discriminator", "loss", "stack"))
    tested = baseline.rsplit("/", 1)[0] + "/explode"
    assert seeds.pop(baseline) == [0, 1, 2, 3, 4] and seeds.pop(tested) == [0, 1, 2]
    assert seeds and all(row == [0] for row in seeds.values())
    with pytest.raises(SuiteError, match="row_seeds names {'stack': 'explodes'}, which is no row"):
        build_grid(suite(row_seeds=[{"stack": "explodes", "seeds": 3}]), zoo)
    with pytest.raises(SuiteError, match="each row_seeds entry names one component per axis"):
        suite(row_seeds=[{"colour": "red", "seeds": 3}])


def test_a_seed_offset_replicates_the_suite_on_disjoint_seeds(zoo):
    from ganzoo.run.suite import with_seed_offset

    rows = [{"stack": "explode", "seeds": 3}]
    original = build_grid(suite(seeds=[0, 1], baseline_seeds=4, row_seeds=rows), zoo)
    replicate = build_grid(with_seed_offset(suite(seeds=[0, 1], baseline_seeds=4, row_seeds=rows), 1000), zoo)
    assert sorted((s.combination, s.seed + 1000) for s in original.specs) == sorted(
        (s.combination, s.seed) for s in replicate.specs)
    assert not {s.run_id for s in original.specs} & {s.run_id for s in replicate.specs}


def test_a_suite_may_judge_a_dataset_by_another_headline_at_its_budget(zoo, tmp_path):
    the_suite = suite(judgement={"headline": "fid", "scale": "log", "note": "log FID at this budget"})
    bench(the_suite, tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline",
          seeds=[0], filters=Filters(stabilizer=("none",)))
    store = Store(tmp_path)
    try:
        judgement = store.suite_record("tiny")["datasets"]["blobs"]["judgement"]
    finally:
        store.close()
    assert judgement["scale"] == "log" and judgement["note"] == "log FID at this budget"
    with pytest.raises(SuiteError, match="judgement must be a table of Judgement fields .* got \\['headlines'\\]"):
        suite(judgement={"headlines": "fid"})
    with pytest.raises(SuiteError, match="judgement: "):
        suite(judgement={"success": ["fid <== 3"]})


def test_success_criteria_are_checked_when_the_suite_is_read():
    assert suite(success=["fid <= 3"]).datasets[0].success == ["fid <= 3"]
    with pytest.raises(SuiteError, match='Criterion .fid <== 3. is not'):
        suite(success=["fid <== 3"])


def test_the_store_keeps_the_suites_baseline_and_judgement_for_the_report(zoo, tmp_path):
    the_suite = suite(success=["fid <= 1000"])
    bench(the_suite, tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline",
          seeds=[0, 1], filters=Filters(stabilizer=("none",)))
    store = Store(tmp_path)
    try:
        record = store.suite_record("tiny")
    finally:
        store.close()
    assert record["design"] == "one-factor"
    assert record["datasets"]["blobs"]["baseline"]["discriminator"] == "small"
    assert record["datasets"]["blobs"]["judgement"]["success"] == ["fid <= 1000"]
    board = (tmp_path / "tiny" / "leaderboard.md").read_text()
    assert "success: fid <= 1000" in board and "Baseline: lin/small/logistic/none" in board


def test_budget_overrides_keep_the_number_of_evaluations_and_refuse_the_wrong_unit(zoo):
    steps = suite(budget={"unit": "g_steps", "g_steps": 40, "eval_every_g_steps": 10, "batch_size": 8})
    budget = build_grid(steps, zoo, g_steps=8).specs[0].budget
    assert (budget.g_steps, budget.eval_every_g_steps) == (8, 2)  # 4 evaluations, as in the suite
    with pytest.raises(SuiteError, match="--kimg overrides budgets counted in kimg"):
        build_grid(steps, zoo, kimg=1.0)
    with pytest.raises(SuiteError, match="--g-steps overrides budgets counted in G steps"):
        build_grid(suite(), zoo, g_steps=8)


def test_the_real_data_row_is_recorded_once_and_shown_under_its_table(zoo, tmp_path):
    the_suite = suite()
    for _ in range(2):  # the second sweep finds the row recorded and does not evaluate it again
        bench(the_suite, tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline",
              seeds=[0], filters=Filters(stabilizer=("none",)))
    store = Store(tmp_path)
    try:
        (record,) = store.references("tiny").values()
    finally:
        store.close()
    assert record.n == 256 and record.metrics["fid"] >= 0 and "resampled" in record.note
    board = (tmp_path / "tiny" / "leaderboard.md").read_text()
    assert "| *real data* |" in board and "the data itself resampled" in board


def test_fresh_mixture_draws_are_high_quality_at_the_rate_a_2d_gaussian_gives():
    import math

    import torch

    from ganzoo_plugins.datasets.mixtures import ring8

    data = ring8(n=1000)
    samples = data.real_samples(20_000, torch.Generator().manual_seed(0))
    metrics = data.extra_metrics(samples)
    # P(|x - mean| <= 3 sigma) for an isotropic 2-D Gaussian is 1 - exp(-9/2) (a Rayleigh radius).
    assert metrics["modes"] == 8 and metrics["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.003)


def test_pac_is_kept_away_from_per_sample_gradient_penalties_and_the_plan_says_why(zoo):
    raw = testzoo.suite_dict(design="full", stacks={"pac+gp": [{"name": "pac"}, {"name": "gradient_penalty"}]})
    raw["components"].update(discriminator=["small"], stack=["none", "pac", "pac+gp"])
    grid = build_grid(parse_suite(raw), zoo)
    assert {spec.stack_name for spec in grid.specs} == {"none", "pac"}
    assert dict(grid.left_out)["blobs: lin/small/logistic/pac+gp"] == (
        'stabilizer pac cannot run with a stabilizer tagged "per_sample_gradient" (gradient_penalty is); '
        "see: ganzoo list stabilizers")


def test_a_folder_named_like_a_suite_does_not_hide_the_shipped_suite(tmp_path, monkeypatch):
    from ganzoo.run.suite import available_suites, find_suite

    (tmp_path / "mixtures-short").mkdir()  # e.g. the results folder of that suite
    monkeypatch.chdir(tmp_path)
    assert find_suite("mixtures-short") == available_suites()["mixtures-short"]
    with pytest.raises(SuiteError, match="Suite file elsewhere.toml does not exist"):
        find_suite("elsewhere.toml")
