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
from ganzoo.report import load_runs
from ganzoo.run import artifacts
from ganzoo.run.suite import parse_suite
from ganzoo.run.train import run
from ganzoo.sweep import bench

submitit = pytest.importorskip("submitit")

LOCAL = {"cluster": "local"}


@pytest.fixture(scope="module")
def job_environment(tmp_path_factory):
    """Jobs are new interpreters that inherit this environment: they find testzoo through PYTHONPATH."""
    from ganzoo.testing import fake_distribution

    root = tmp_path_factory.mktemp("dist")
    saved = {name: os.environ.get(name) for name in ("GANZOO_PLUGINS", "PYTHONPATH")}
    os.environ["GANZOO_PLUGINS"] = "ganzoo,testzoo"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), str(Path(testzoo.__file__).parent),
                                                *filter(None, [saved["PYTHONPATH"]])])
    with fake_distribution(root, "testzoo-plugin", "from testzoo import *\n", {"testzoo": "testzoo_plugin"}):
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def quiet(**kwargs):
    from ganzoo.core.registry import build_registry

    return {"registry": build_registry(), "progress": False, "echo": lambda line: None, **kwargs}


def metrics(results_dir):
    return load_runs(results_dir).set_index("run_id")[["status", "fid", "precision", "kimg"]].sort_index()


def test_a_sweep_of_slurm_jobs_gives_the_numbers_of_inline_training_and_reruns_nothing(job_environment, tmp_path):
    import torch

    suite = parse_suite(testzoo.suite_dict(components={"loss": ["logistic"], "generator": ["lin"],
                                                       "discriminator": ["small*"], "stack": ["none"]}), source="test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a job trains with cpus_per_task (1) threads
    try:
        inline = bench(suite, tmp_path / "inline", seeds=[0], **quiet(executor="inline"))
    finally:
        torch.set_num_threads(threads)
    lines = []
    jobs = bench(suite, tmp_path / "slurm", seeds=[0], **quiet(executor="slurm", slurm_settings=LOCAL,
                                                               echo=lines.append))
    assert jobs.results == inline.results and set(jobs.results.values()) == {DONE}
    assert metrics(tmp_path / "slurm").equals(metrics(tmp_path / "inline"))
    assert any("2 jobs on processes of this machine" in line for line in lines), lines
    # The jobs wrote their run folders in the results folder, and submitit its logs beside them.
    for run_id in jobs.results:
        assert (tmp_path / "slurm" / "runs" / run_id / artifacts.CHECKPOINT).is_file()
    assert list((tmp_path / "slurm" / "slurm-logs").glob("*_log.err"))

    again = bench(suite, tmp_path / "slurm", seeds=[0], **quiet(executor="slurm", slurm_settings=LOCAL))
    assert again.results == {} and sorted(again.skipped) == sorted(jobs.results)


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


def test_slurm_settings_are_checked_before_anything_runs(tmp_path):
    from ganzoo.sweep.slurm import SlurmExecutor, parse_settings

    assert parse_settings(["partition=gpu", "gpus-per-node=2", "time=1:30:00", "mem_gb=7.5"]) == {
        "partition": "gpu", "gpus_per_node": 2, "time": 90, "mem_gb": 7.5}
    assert parse_settings(["time=2-00:00:30"]) == {"time": 2 * 1440 + 1}
    for pair, message in (("gpus=1", 'unknown SLURM setting "gpus". Known: cluster, partition'),
                          ("partition", "is not KEY=VALUE"), ("cpus_per_task=two", "expected a whole number"),
                          ("time=1h", r"expected minutes \(90\) or \[D-\]HH:MM:SS"),
                          ("array_parallelism=4", "--jobs N caps")):
        with pytest.raises(ValueError, match=message):
            parse_settings([pair])
    for device, gpus, message in (("cuda", 0, "add --slurm gpus_per_node=1"), ("cuda:1", 1, "say --device cuda"),
                                  ("cpu", 1, "drop --slurm gpus_per_node")):
        with pytest.raises(ValueError, match=message):
            SlurmExecutor(device, log_dir=tmp_path, gpus_per_node=gpus)
    assert SlurmExecutor("auto", log_dir=tmp_path, gpus_per_node=1).job_device == "cuda"
    assert SlurmExecutor("auto", log_dir=tmp_path).job_device == "cpu"
    with pytest.raises(ValueError, match='Unknown submitit cluster "debug"'):
        SlurmExecutor("cpu", log_dir=tmp_path, cluster="debug")


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
