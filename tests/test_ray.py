"""The Ray executor on a local Ray instance (no cluster): the numbers, the store, shipping, retries, packing.

One Ray instance serves the module; its workers see the test zoo as an installed distribution, as
worker processes do. Skips when Ray is not installed (``pip install 'ganzoo[ray]'``).
"""

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import testzoo

from ganzoo.core.records import DONE, FAILED
from ganzoo.core.spec import ComponentRef
from ganzoo.core.store import Store
from ganzoo.report import load_runs
from ganzoo.run import artifacts
from ganzoo.run.attempts import ATTEMPTS, read_attempts
from ganzoo.run.suite import parse_suite
from ganzoo.run.train import run
from ganzoo.sweep import bench

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """A local Ray instance of 2 CPUs whose workers load the test zoo through an entry point."""
    with testzoo.visible_to_new_interpreters(tmp_path_factory.mktemp("dist")):
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
        try:
            yield
        finally:
            ray.shutdown()


def suite(**components):
    return parse_suite(testzoo.suite_dict(components={"loss": ["logistic"], "generator": ["lin"],
                                                      "discriminator": ["small*"], "stack": ["none", "crash"],
                                                      **components}), source="test")


def quiet(**kwargs):
    from ganzoo.core.registry import build_registry

    return {"registry": build_registry(), "progress": False, "echo": lambda line: None, **kwargs}


def metrics(results_dir):
    return load_runs(results_dir).set_index("run_id")[["status", "fid", "precision", "kimg"]].sort_index()


def test_ray_gives_the_numbers_and_the_leaderboard_of_the_other_executors(ray_instance, tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Ray tasks train with one thread (cpus_per_run), as worker processes do
    try:
        inline = bench(suite(), tmp_path / "inline", **quiet(executor="inline"))
    finally:
        torch.set_num_threads(threads)
    on_ray = bench(suite(), tmp_path / "ray", **quiet(executor="ray"))
    assert on_ray.results == inline.results and sorted(on_ray.results.values()).count(FAILED) == 2
    assert metrics(tmp_path / "ray").equals(metrics(tmp_path / "inline"))
    # The leaderboard is the same but for the speed column (the tasks ran beside each other).
    board = {name: pd.read_csv(tmp_path / name / "tiny" / "leaderboard.csv").drop(columns="imgs_per_s")
             for name in ("inline", "ray")}
    pd.testing.assert_frame_equal(board["ray"], board["inline"])
    # The driver recorded every run; the tasks wrote their folders in the shared results folder.
    for row in Store(tmp_path / "ray").runs("tiny"):
        if row["status"] == DONE:
            assert (tmp_path / "ray" / "runs" / row["run_id"] / artifacts.CHECKPOINT).is_file()

    again = bench(suite(), tmp_path / "ray", **quiet(executor="ray"))  # resumable: only the failed runs again
    assert sorted(again.results.values()) == [FAILED, FAILED] and len(again.skipped) == 4


def test_shipped_run_folders_arrive_whole_at_the_driver(ray_instance, tmp_path):
    summary = bench(suite(stack=["none"], discriminator=["small"]), tmp_path,
                    **quiet(executor="ray", ray_settings={"storage": "ship"}))
    assert list(summary.results.values()) == [DONE, DONE]
    for row in Store(tmp_path).runs("tiny"):
        folder = tmp_path / "runs" / row["run_id"]
        # The attempt log was written by the driver's keeper actor, the rest shipped back.
        assert {p.name for p in folder.iterdir()} == {artifacts.CHECKPOINT, artifacts.SAMPLES, ATTEMPTS}
        assert row["attempts"] == 1 and row["resumed_from"] == 0
        assert row["artifacts"]["checkpoint"] == str(folder / artifacts.CHECKPOINT)
        state = artifacts.load_checkpoint(folder / artifacts.CHECKPOINT)
        assert state[artifacts.RESULT_KEY]["evals"] == Store(tmp_path).evals(row["run_id"])


def _execute(executor, specs, tmp_path):
    return {r.run_id: r for r in executor.execute([(s, tmp_path / s.run_id) for s in specs], lambda spec: True)}


def test_a_task_whose_worker_died_is_retried_and_resumes_to_the_same_numbers(ray_instance, tmp_path):
    from ganzoo.core.registry import build_registry
    from ganzoo.sweep.ray import RayExecutor

    marker = tmp_path / "killed-once"
    spec = testzoo.tiny_spec(g_steps=6, eval_every_g_steps=2, stack=(
        ComponentRef("kill_worker_at", {"step": 3, "marker": str(marker), "driver_pid": os.getpid()}),))
    result = _execute(RayExecutor("cpu", max_retries=1), [spec], tmp_path)[spec.run_id]
    assert marker.exists(), "the first try was not killed"
    assert result.status == DONE, result.error
    # The retry resumed from the checkpoint at G step 2: an uninterrupted run (marker present) gives the same.
    straight = run(spec, tmp_path / "straight", "cpu", build_registry())
    assert [e["metrics"] for e in result.evals] == [e["metrics"] for e in straight.evals]
    assert [e["g_steps"] for e in result.evals] == [2, 4, 6]
    assert (result.attempts, result.resumed_from) == (2, 2)
    assert [entry["resumed_from"] for entry in read_attempts(tmp_path / spec.run_id)] == [0, 2]


def test_a_task_that_dies_on_every_try_fails_alone(ray_instance, tmp_path):
    from ganzoo.sweep.ray import RayExecutor

    dies = testzoo.tiny_spec(g_steps=4, stack=(ComponentRef("kill_worker_at", {"step": 1, "driver_pid": os.getpid()}),))
    lives = testzoo.tiny_spec(g_steps=4)
    results = _execute(RayExecutor("cpu", max_retries=1), [dies, lives], tmp_path)
    assert results[lives.run_id].status == DONE
    assert results[dies.run_id].status == FAILED
    error = results[dies.run_id].error
    assert "the worker or node training this run was lost 2 times, more than --ray-max-retries 1 allows" in error
    assert "the sweep went on. Rerun the same command" in error and "resumes from its last checkpoint" in error
    assert results[dies.run_id].attempts == 2 and results[lives.run_id].attempts == 1


def test_ray_asks_for_the_resources_of_packed_runs(ray_instance):
    from ganzoo.sweep.ray import RayExecutor

    assert RayExecutor("cpu").slots({"CPU": 8.0}, gpu=False) == 8
    assert RayExecutor("cpu", cpus_per_run=2).slots({"CPU": 8.0}, gpu=False) == 4
    assert RayExecutor("cuda", runs_per_gpu=3).slots({"CPU": 16.0, "GPU": 2.0}, gpu=True) == 6
    with pytest.raises(ValueError, match=r"--device cuda, but the Ray cluster started here has no GPUs"):
        list(RayExecutor("cuda").execute([(testzoo.tiny_spec(), Path("unused"))], lambda spec: True))
    with pytest.raises(ValueError, match="runs_per_gpu must be at least 1"):
        RayExecutor("cuda", runs_per_gpu=0)


def test_the_cli_runs_a_sweep_on_ray_and_refuses_ray_settings_without_it(ray_instance, tmp_path):
    from click.testing import CliRunner
    from test_cli import write_suite

    from ganzoo.cli import main
    from ganzoo.testing import plugin_registry

    path = write_suite(tmp_path / "suite.toml", components={"loss": ["logistic"], "generator": ["lin"],
                                                            "discriminator": ["small"], "stack": ["none"]})
    with plugin_registry():  # the CLI's registry, rebuilt from the entry points (testzoo's among them)
        result = CliRunner().invoke(main, ["bench", "--all", "--suite", str(path), "--results-dir",
                                           str(tmp_path / "r"), "--executor", "ray", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "Trained 2 runs: 2 done" in result.output
    refused = CliRunner().invoke(main, ["bench", "--all", "--suite", str(path), "--runs-per-gpu", "4",
                                        "--ray-max-retries", "0"])
    assert refused.exit_code == 2 and "--runs-per-gpu, --ray-max-retries only apply to --executor ray" in refused.output


def test_without_ray_the_message_says_how_to_install_it(monkeypatch):
    from ganzoo.sweep.ray import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'ganzoo\[ray\]'"):
        import_ray()
