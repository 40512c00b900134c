"""The harness end to end on the test zoo: grid, store, skipping, failures, divergence, determinism, resume."""

import pytest
import testzoo
import torch

from ganzoo.core.records import DONE
from ganzoo.core.store import Store
from ganzoo.report import leaderboard, load_runs, to_markdown
from ganzoo.run import artifacts
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import SuiteError, parse_suite
from ganzoo.run.train import run
from ganzoo.sweep import bench
from ganzoo.testing import plugin_registry


@pytest.fixture(scope="module")
def registry():
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as reg:
        yield reg


def tiny_suite(**overrides):
    return parse_suite(testzoo.suite_dict(**overrides), source="test")


def test_one_factor_grid_and_what_it_leaves_out(registry):
    grid = build_grid(tiny_suite(), registry)
    combos = sorted({s.combination for s in grid.specs})
    # baseline + one D variant + the stacks that can run on vectors with this loss
    assert combos == ["lin/small/logistic/crash", "lin/small/logistic/explode", "lin/small/logistic/none",
                      "lin/small_wide/logistic/none"]
    assert len(grid.specs) == 2 * len(combos)
    reasons = dict(grid.left_out)
    assert "supports image data, not vector" in reasons["blobs: stack image_only"]
    assert 'requires a loss tagged "hinge-like"' in reasons["blobs: lin/small/logistic/needs_hinge"]


def test_full_design_is_the_cross_product(registry):
    grid = build_grid(tiny_suite(design="full"), registry, seeds=[0])
    assert len(grid.specs) == 1 * 2 * 1 * 3  # G x D x loss x runnable stacks


def test_filters_and_overrides(registry):
    grid = build_grid(tiny_suite(), registry, Filters(discriminator=("small_wide",)), seeds=[5], kimg=0.5)
    assert [(s.discriminator.name, s.seed, s.budget.kimg) for s in grid.specs] == [("small_wide", 5, 0.5)]
    assert grid.specs[0].budget.eval_every_kimg == pytest.approx(0.25)  # as many evaluations as before


def test_run_ids_hash_resolved_hyperparameters(registry):
    a = build_grid(tiny_suite(), registry).specs[0]
    b = build_grid(tiny_suite(), registry).specs[0]
    c = build_grid(tiny_suite(hparams={"generator": {"lin": {"width": 8}}}), registry).specs[0]
    assert a.run_id == b.run_id and a.run_id != c.run_id
    assert a.generator.hparams == {"latent_dim": 2, "width": 16}


@pytest.mark.parametrize("change, message", [
    ({"design": "random"}, "design must be one of"),
    ({"budget": {"batch_size": 64}}, "needs kimg"),
    ({"budget": {"kimg": 1, "batch": 64}}, "unexpected keyword argument 'batch'"),
    ({"seed": 3}, "unknown keys ['seed']"),
    ({"datasets": [{"name": "blobs", "baseline": {"generator": "lin"}}]}, "needs a baseline for every axis"),
])
def test_bad_suites_are_explained(change, message):
    with pytest.raises(SuiteError) as info:
        parse_suite(testzoo.suite_dict(**change), source="my.toml")
    assert message in str(info.value) and "my.toml" in str(info.value)


def test_unknown_hparam_in_suite(registry):
    with pytest.raises(ValueError, match='"lin" has no hyperparameter "widht". Known: latent_dim, width'):
        build_grid(tiny_suite(hparams={"generator": {"lin": {"widht": 8}}}), registry)


def test_bench_end_to_end_then_nothing_to_do(registry, tmp_path):
    summary = bench(tiny_suite(), tmp_path, registry=registry, executor="inline", progress=False, echo=lambda s: None)
    statuses = {s.combination: summary.results[s.run_id] for s in summary.grid.specs}
    assert statuses == {"lin/small/logistic/none": "done", "lin/small_wide/logistic/none": "done",
                        "lin/small/logistic/explode": "diverged", "lin/small/logistic/crash": "failed"}
    runs = load_runs(tmp_path, "tiny")
    failed = runs[runs["status"] == "failed"]
    assert all("crash stabilizer: deliberate failure" in e and "Traceback" in e for e in failed["error"])
    done = runs[runs["status"] == "done"]
    assert (done["kimg"] >= 1.024).all() and (done["imgs_per_s"] > 0).all() and done["fid"].notna().all()
    assert all(device.startswith("cpu (1 thread; ") for device in done["device"])  # conftest: one thread
    store = Store(tmp_path)
    evals = store.evals(done["run_id"].iloc[0])
    store.close()
    assert [e["kimg"] for e in evals] == [0.512, 1.024]
    assert {"fid", "precision", "recall", "density", "coverage", "modes"} <= set(evals[-1]["metrics"])

    store = Store(tmp_path)
    board = leaderboard(runs, store.read_suite_record("tiny"))
    store.close()
    assert len(board) == 4
    row = board.set_index("stack").loc["explode"]
    assert row["unstable"] == 1.0 and row["n_diverged"] == 2
    # Every seed diverged, so no FID and no test: it is listed after the tested rows of its table, unranked.
    table = board[board["fingerprint"] == row["fingerprint"]].reset_index(drop=True)
    assert row["fid"] != row["fid"] and table["fid"].notna().sum() == 2 and len(table) == 3
    assert list(table["stack"])[-1] == "explode" and list(table["rank"][:2]) == [1, 2] and row["rank"] != row["rank"]
    markdown = (tmp_path / "tiny" / "leaderboard.md").read_text()
    assert "Protocol" in markdown and "flat" in markdown and "lin" in markdown
    assert to_markdown(board).count("|") > 20

    # Second invocation: finished runs (done, diverged) are skipped; the failed ones are retried.
    again = bench(tiny_suite(), tmp_path, registry=registry, executor="inline", progress=False, echo=lambda s: None)
    assert len(again.skipped) == 6 and set(again.results.values()) == {"failed"}
    assert load_runs(tmp_path).set_index("run_id").loc[failed["run_id"], "attempts"].eq(2).all()


def test_same_spec_same_numbers(registry, tmp_path):
    spec = build_grid(tiny_suite(), registry, seeds=[3]).specs[0]
    a = run(spec, tmp_path / "a", "cpu", registry)
    b = run(spec, tmp_path / "b", "cpu", registry)
    assert a.status == b.status == "done"
    assert a.evals[-1]["metrics"] == b.evals[-1]["metrics"] and a.evals[-1]["d_loss"] == b.evals[-1]["d_loss"]
    c = run(build_grid(tiny_suite(), registry, seeds=[4]).specs[0], tmp_path / "c", "cpu", registry)
    assert c.evals[-1]["metrics"] != a.evals[-1]["metrics"]


def test_interrupted_run_resumes_to_the_same_numbers(registry, tmp_path, monkeypatch):
    spec = build_grid(tiny_suite(), registry, seeds=[1]).specs[0]
    reference = run(spec, tmp_path / "straight", "cpu", registry)

    real_save = artifacts.save_checkpoint

    def save_then_die(state, run_dir):
        real_save(state, run_dir)
        raise KeyboardInterrupt  # as if killed right after the first checkpoint

    monkeypatch.setattr(artifacts, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "resumed", "cpu", registry)
    monkeypatch.setattr(artifacts, "save_checkpoint", real_save)
    first = artifacts.load_checkpoint(tmp_path / "resumed" / artifacts.CHECKPOINT)
    assert first["images"] == 512 and len(first["evals"]) == 1
    resumed = run(spec, tmp_path / "resumed", "cpu", registry)
    assert resumed.status == "done"

    def trajectory(r):
        return [(e["kimg"], e["d_loss"], e["g_loss"], e["metrics"]) for e in r.evals]

    assert trajectory(resumed) == trajectory(reference)
    assert (resumed.g_steps, resumed.d_steps) == (reference.g_steps, reference.d_steps)


def test_checkpoints_load_safely(registry, tmp_path):
    spec = build_grid(tiny_suite(), registry, seeds=[0]).specs[0]
    run(spec, tmp_path, "cpu", registry)
    state = artifacts.load_checkpoint(tmp_path / artifacts.CHECKPOINT)
    assert state["spec"]["generator"]["name"] == "lin"
    assert (tmp_path / artifacts.SAMPLES).stat().st_size > 0


def test_load_generator_gives_the_evaluated_generator(registry, tmp_path):
    from ganzoo.run.build import load_generator

    spec = build_grid(tiny_suite(), registry, seeds=[0]).specs[0]
    run(spec, tmp_path, "cpu", registry)
    generator, loaded_spec = load_generator(tmp_path / artifacts.CHECKPOINT, "cpu", registry)
    assert loaded_spec.run_id == spec.run_id
    state = artifacts.load_checkpoint(tmp_path / artifacts.CHECKPOINT)
    for key, value in generator.state_dict().items():
        assert torch.equal(value, state["generator_eval"][key])
    with pytest.raises(ValueError, match="not a ganzoo run checkpoint"):
        torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
        load_generator(tmp_path / "other.pt", "cpu", registry)


def test_worker_processes_give_the_inline_numbers(tmp_path, monkeypatch):
    """Two one-thread workers train what one one-thread process trains, to the same numbers."""
    from ganzoo.core.registry import build_registry
    from ganzoo.testing import fake_distribution

    monkeypatch.setenv("GANZOO_PLUGINS", "ganzoo,testzoo")
    (tmp_path / "dist").mkdir()
    with fake_distribution(tmp_path / "dist", "testzoo-plugin", "from testzoo import *\n",
                           {"testzoo": "testzoo_plugin"}):
        registry = build_registry()
        suite = tiny_suite(components={"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small*"],
                                       "stack": ["none", "crash"]})
        quiet = {"registry": registry, "progress": False, "echo": lambda s: None}
        inline = bench(suite, tmp_path / "inline", executor="inline", **quiet)
        pooled = bench(suite, tmp_path / "pooled", executor="processes", jobs=2, **quiet)
    assert inline.results == pooled.results and len(pooled.results) == 6

    def metrics(d):
        return load_runs(d).set_index("run_id")[["status", "fid", "precision", "kimg"]]

    assert metrics(tmp_path / "inline").sort_index().equals(metrics(tmp_path / "pooled").sort_index())


def test_executors_train_against_the_registry_they_are_given(registry, tmp_path):
    """Workers rebuild the registry from the entry points, so a registry with in-process plugins trains inline."""
    from ganzoo.core.registry import build_registry
    from ganzoo.sweep.executors import InlineExecutor, ProcessExecutor
    from ganzoo.sweep.factory import make_executor
    from ganzoo.sweep.vectorized import InlineGroupExecutor, VectorizedExecutor

    chosen = make_executor("auto", "cpu", registry, jobs=2)
    assert isinstance(chosen, InlineExecutor) and "testzoo" in chosen.note
    with pytest.raises(ValueError, match=r"registered in process \(testzoo\).*inline executor"):
        make_executor("processes", "cpu", registry, jobs=2)
    assert isinstance(make_executor("auto", "cpu", build_registry(), jobs=2), ProcessExecutor)
    grouped = make_executor("vectorized", "cpu", registry, jobs=2)
    assert isinstance(grouped, InlineGroupExecutor) and "Training groups inline" in grouped.note
    assert isinstance(make_executor("vectorized", "cpu", build_registry(), jobs=2), VectorizedExecutor)
    assert make_executor("vectorized", "cpu", build_registry(), jobs=1).note == ""  # one job: inline, nothing to say

    said = []
    suite = tiny_suite(seeds=1, components={"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small"],
                                           "stack": ["none"]})
    summary = bench(suite, tmp_path, registry=registry, jobs=2, progress=False, echo=said.append)
    assert list(summary.results.values()) == [DONE]  # trained with testzoo's components, not the entry points'
    assert any("Training inline, not in 2 worker processes" in line for line in said)
