"""The SLURM executor through submitit's local executor: the code path of a cluster, with jobs run as processes here.

``cluster="local"`` changes only where submitit starts a job (a process of this machine, not sbatch): the
callable, its pickles, the results read back, and the requeue on a preemption signal are a cluster's. The
jobs see the test zoo as an installed distribution, as worker processes do. Skips when submitit is not
installed (``pip install 'ganzoo[slurm]'``).
"""

import os
import sys
from pathlib import Path

import pytest
import testzoo

from ganzoo.core.records import DONE, FAILED
from ganzoo.core.spec import ComponentRef
from ganzoo.core.store import Store
from ganzoo.run import artifacts
from ganzoo.run.suite import parse_suite
from ganzoo.run.train import run
from ganzoo.sweep import bench

submitit = pytest.importorskip("submitit")

LOCAL = {"cluster": "local"}


@pytest.fixture(scope="module")
def job_environment(tmp_path_factory):
    """Jobs are new interpreters that inherit this environment: they find testzoo through PYTHONPATH."""
    with testzoo.visible_to_new_interpreters(tmp_path_factory.mktemp("dist")):
        yield


COMPONENTS = {"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small*"], "stack": ["none"]}


def test_a_sweep_of_slurm_jobs_ends_with_the_numbers_of_inline_training_and_a_rerun_trains_nothing(job_environment,
                                                                                                     tmp_path):
    import json

    import torch
    from click.testing import CliRunner
    from test_cli import write_suite

    from ganzoo.cli import main
    from ganzoo.core.registry import build_registry
    from ganzoo.sweep.executors import InlineExecutor
    from ganzoo.testing import plugin_registry

    lines = []
    suite = parse_suite(testzoo.suite_dict(components=COMPONENTS), source="test")
    summary = bench(suite, tmp_path, seeds=[0], registry=build_registry(), progress=False, echo=lines.append,
                    executor="slurm", slurm_settings=LOCAL)
    assert list(summary.results.values()) == [DONE, DONE]
    assert any("2 jobs on processes of this machine" in line for line in lines), lines
    # The jobs wrote their run folders in the results folder, and submitit its logs beside them.
    for run_id in summary.results:
        assert (tmp_path / "runs" / run_id / artifacts.CHECKPOINT).is_file()
    assert len(list((tmp_path / "slurm-logs").glob("*_log.err"))) == 2

    # The store holds what the inline executor trains from the same specs (a job trains with 1 thread).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        inline = list(InlineExecutor("cpu", build_registry()).execute(
            [(spec, tmp_path / "inline" / spec.run_id) for spec in summary.grid.specs], lambda spec: True))
    finally:
        torch.set_num_threads(threads)
    store = Store(tmp_path, readonly=True)
    rows = {row["run_id"]: row for row in store.runs("tiny")}
    for result in inline:
        assert rows[result.run_id]["status"] == DONE
        assert rows[result.run_id]["metrics"] == json.loads(json.dumps(result.final))
        assert [(e["g_steps"], e["metrics"]) for e in store.evals(result.run_id)] == [
            (e["g_steps"], e["metrics"]) for e in json.loads(json.dumps(result.evals))]  # not their timings
    store.close()

    # The same sweep from the command line: every run is finished, so nothing is submitted.
    path = write_suite(tmp_path / "suite.toml", components=COMPONENTS)
    with plugin_registry():  # the CLI's registry, rebuilt from the entry points (testzoo's among them)
        again = CliRunner().invoke(main, ["bench", "--all", "--suite", str(path), "--seeds", "1", "--results-dir",
                                          str(tmp_path), "--executor", "slurm", "--slurm", "cluster=local",
                                          "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "Trained 0 runs" in again.output and "2 already finished" in again.output


def _execute(spec, tmp_path):
    from ganzoo.sweep.slurm import SlurmExecutor

    executor = SlurmExecutor("cpu", log_dir=tmp_path / "logs", **LOCAL)
    (result,) = executor.execute([(spec, tmp_path / "run")], lambda spec: True)
    return result


def test_a_preempted_job_is_requeued_a_killed_one_rerun_and_both_resume_from_the_checkpoint(job_environment,
                                                                                              tmp_path):
    from ganzoo.core.registry import build_registry

    # SIGUSR2 is what SLURM sends before a preemption or the time limit (submitit asks for it): the job's
    # callable resubmits its run. SIGKILL is a job killed outright (out of memory, scancel, a lost node).
    # Checkpoints are written at G steps 2, 4 and 6.
    spec = testzoo.tiny_spec(g_steps=6, eval_every_g_steps=2, stack=(ComponentRef("signal_at", {
        "at": "3:SIGUSR2 5:SIGKILL", "marker": str(tmp_path / "signalled"), "trace": str(tmp_path / "trace"),
        "driver_pid": os.getpid()}),))
    killed = _execute(spec, tmp_path)
    assert (tmp_path / "signalled.5").exists(), "the job was not killed"
    assert killed.status == FAILED
    first_line = killed.error.splitlines()[0]
    assert "ended without a result" in first_line and "Rerun the same command" in first_line
    stderr = Path(first_line.split("Its stderr: ")[1].split(". Rerun")[0])
    assert "Caught signal SIGUSR2" in stderr.read_text() and stderr.parent == tmp_path / "logs"

    resumed = _execute(spec, tmp_path)
    assert resumed.status == DONE, resumed.error
    trace = [int(line) for line in (tmp_path / "trace").read_text().split()]
    # The requeued job went on from the checkpoint at G step 2, the rerun from the one at G step 4.
    assert trace == [1, 2, 3, 3, 4, 5, 5, 6]
    # The same numbers as the spec trained straight through (its markers exist now: nothing is signalled).
    straight = run(spec, tmp_path / "straight", "cpu", build_registry())
    assert [e["metrics"] for e in resumed.evals] == [e["metrics"] for e in straight.evals]
    assert [e["g_steps"] for e in resumed.evals] == [2, 4, 6]


def test_slurm_settings_are_checked_before_anything_runs(tmp_path, monkeypatch):
    from ganzoo.sweep.slurm import SlurmExecutor, parse_settings

    assert parse_settings(["partition=gpu", "gpus-per-node=2", "time=1:30:00", "mem_gb=7.5"]) == {
        "partition": "gpu", "gpus_per_node": 2, "time": 90, "mem_gb": 7.5}
    assert parse_settings(["time=2-00:00:30"]) == {"time": 2 * 1440 + 1}
    for pair, message in (("gpus=1", 'unknown SLURM setting "gpus". Known: cluster, partition'),
                          ("partition", "is not KEY=VALUE"), ("cpus_per_task=two", "expected a whole number"),
                          ("time=1h", r"expected minutes \(90\) or \[D-\]HH:MM:SS"),
                          ("array_parallelism=4", "--jobs N caps"), ("cluster=debug", "expected one of slurm, local")):
        with pytest.raises(ValueError, match=message):
            parse_settings([pair])
    for device, gpus, message in (("cuda", 0, "add --slurm gpus_per_node=1"), ("cuda:1", 1, "say --device cuda"),
                                  ("cpu", 1, "drop --slurm gpus_per_node")):
        with pytest.raises(ValueError, match=message):
            SlurmExecutor(device, log_dir=tmp_path, gpus_per_node=gpus, **LOCAL)
    assert SlurmExecutor("auto", log_dir=tmp_path, gpus_per_node=1, **LOCAL).job_device == "cuda"
    assert SlurmExecutor("auto", log_dir=tmp_path, **LOCAL).job_device == "cpu"
    with pytest.raises(ValueError, match='Unknown submitit cluster "debug"'):
        SlurmExecutor("cpu", log_dir=tmp_path, cluster="debug")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ValueError, match="no sbatch on this machine's PATH.*--slurm cluster=local"):
        SlurmExecutor("cpu", log_dir=tmp_path)


def test_the_cli_refuses_bad_slurm_options_and_names_every_setting(tmp_path):
    from click.testing import CliRunner
    from test_cli import write_suite

    from ganzoo.cli import main
    from ganzoo.sweep.slurm import SETTINGS

    path = write_suite(tmp_path / "suite.toml")
    base = ["bench", "--all", "--suite", str(path), "--results-dir", str(tmp_path / "r")]
    refused = CliRunner().invoke(main, [*base, "--slurm", "partition=gpu"])
    assert refused.exit_code == 2 and "--slurm only applies to --executor slurm" in refused.output
    bad = CliRunner().invoke(main, [*base, "--executor", "slurm", "--slurm", "gpus=1"])
    assert bad.exit_code == 2 and 'unknown SLURM setting "gpus"' in bad.output
    assert not (tmp_path / "r").exists()
    help_text = " ".join(CliRunner().invoke(main, ["bench", "--help"]).output.split())
    assert all(key in help_text for key in SETTINGS)


def test_without_submitit_the_message_says_how_to_install_it(monkeypatch):
    from ganzoo.sweep.slurm import import_submitit

    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(ImportError, match=r"pip install 'ganzoo\[slurm\]'"):
        import_submitit()
