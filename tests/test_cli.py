"""The command line, in process (CliRunner) and, for kill-and-resume, as a real subprocess."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testzoo
from click.testing import CliRunner

from ganzoo.cli import main
from ganzoo.core.store import STORE_FILE
from ganzoo.testing import fake_distribution, plugin_registry

TESTS = Path(__file__).parent


def write_suite(path: Path, **overrides) -> Path:
    import tomllib  # noqa: F401 - only to make sure the format we write is the one we read

    raw = testzoo.suite_dict(**overrides)
    lines = [f'name = "{raw["name"]}"', f'design = "{raw["design"]}"', f"seeds = {raw['seeds']}",
             f"auto_stacks = {str(raw['auto_stacks']).lower()}"]
    for table in ("budget", "eval", "components"):
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in raw[table].items()]
    lines += ["[[datasets]]", 'name = "blobs"',
              'baseline = { generator = "lin", discriminator = "small", loss = "logistic", stack = "none" }']
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def zoo():
    with plugin_registry({"testzoo": testzoo}) as registry:
        yield registry


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_list_shows_plugin_and_distribution():
    result = invoke("list", "losses")
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if ln.startswith("loss") and " hinge " in ln)
    assert "losses" in line and "ganzoo 0.1.0" in line


def test_list_unknown_kind():
    result = invoke("list", "widgets")
    assert result.exit_code == 2 and 'Unknown component kind "widgets"' in result.output


def test_plugins_json():
    data = json.loads(invoke("plugins", "--format", "json").output)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["losses"]["hooks"] == ["register_losses"] and data["errors"] == []


def test_dry_run_names_failing_probes_and_estimates_only_what_is_left(zoo, tmp_path):
    suite = write_suite(tmp_path / "tiny.toml", seeds=1)
    first = invoke("bench", "--all", "--suite", suite, "--dry-run", "--results-dir", tmp_path / "r")
    assert first.exit_code == 0, first.output
    assert "4 runs: 4 combinations x seeds; 4 to train" in first.output
    assert "probe failed (1 combinations; their runs would fail the same way):" in first.output
    assert "blobs lin/small/logistic/crash: RuntimeError: crash stabilizer: deliberate failure" in first.output
    trained = invoke("bench", "--all", "--suite", suite, "--results-dir", tmp_path / "r", "--stabilizer", "none",
                     "--no-progress")
    assert trained.exit_code == 0, trained.output
    again = invoke("bench", "--all", "--suite", suite, "--dry-run", "--results-dir", tmp_path / "r")
    assert "4 runs: 4 combinations x seeds; 2 to train, 2 already finished" in again.output, again.output
    assert again.output.count("finished") == 3  # the summary line and the two finished runs' rows


def test_bench_needs_all_or_a_filter():
    result = invoke("bench")
    assert result.exit_code == 2 and "Say --all" in result.output


def test_dry_run_lists_grid_and_left_out(zoo, tmp_path):
    suite = write_suite(tmp_path / "tiny.toml")
    result = invoke("bench", "--all", "--suite", suite, "--dry-run", "--results-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "8 runs: 4 combinations x seeds" in result.output
    assert "estimated time:" in result.output
    assert "blobs: stack image_only: stabilizer image_only supports image data, not vector" in result.output
    assert not (tmp_path / "r" / STORE_FILE).exists()  # a dry run trains and stores nothing


def test_bench_runs_report_and_train(zoo, tmp_path):
    suite = write_suite(tmp_path / "tiny.toml")
    results = tmp_path / "r"
    result = invoke("bench", "--all", "--suite", suite, "--results-dir", results, "--no-progress",
                    "--executor", "inline", "--discriminator", "small_wide", "--seeds", "1")
    assert result.exit_code == 0, result.output
    assert "Trained 1 runs: 1 done" in result.output
    table = invoke("runs", "--results-dir", results).output
    assert "small_wide" in table and "done" in table
    as_json = json.loads(invoke("runs", "--results-dir", results, "--format", "json").output)
    assert as_json[0]["status"] == "done" and as_json[0]["finished"]
    report = invoke("report", "--results-dir", results).output
    assert "small_wide" in report and "Protocol" in report
    assert (results / "tiny" / "leaderboard.csv").exists()

    trained = invoke("train", "--suite", suite, "--dataset", "blobs", "--generator", "lin", "--discriminator", "small",
                     "--loss", "logistic", "--hparam", "generator.width=8", "--results-dir", results, "--kimg", "0.256")
    assert trained.exit_code == 0, trained.output
    assert "kimg 0.256" in trained.output and ": done in" in trained.output
    both = invoke("report", "--results-dir", results).output
    # The sweep and the ad-hoc run are two suites: two leaderboards, never one ranking across budgets.
    assert "# ganzoo leaderboard: tiny" in both and "# ganzoo leaderboard: train" in both


def test_train_takes_its_default_loss_from_the_suite_baseline(zoo, tmp_path):
    suite = write_suite(tmp_path / "tiny.toml")
    results = tmp_path / "r"
    trained = invoke("train", "--suite", suite, "--dataset", "blobs", "--generator", "lin", "--discriminator", "small",
                     "--results-dir", results, "--kimg", "0.128")
    assert trained.exit_code == 0, trained.output
    with sqlite3.connect(results / STORE_FILE) as conn:
        assert conn.execute("SELECT loss FROM runs").fetchall() == [("logistic",)]  # the blobs baseline's loss
    # No baseline for the dataset and no loss tagged "default": say what to give.
    missing = CliRunner().invoke(main, ["train", "--suite", str(suite), "--dataset", "ring8", "--generator", "mlp",
                                        "--discriminator", "mlp", "--results-dir", str(results)])
    assert missing.exit_code == 2 and 'Say --loss: suite "tiny" has no baseline for dataset "ring8"' in missing.output


def test_train_rejects_bad_hparam(zoo, tmp_path):
    suite = write_suite(tmp_path / "tiny.toml")
    result = CliRunner().invoke(main, ["train", "--suite", str(suite), "--dataset", "blobs", "--generator", "lin",
                                       "--discriminator", "small", "--hparam", "generator.width"])
    assert result.exit_code == 2 and "expected KIND.KEY=VALUE" in result.output


def test_runs_without_store_is_explained(tmp_path):
    result = invoke("runs", "--results-dir", tmp_path)
    assert result.exit_code == 1 and "No ganzoo store" in result.output


def _statuses(db: Path) -> dict[str, tuple]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db) as conn:
            return {r[0]: r[1:] for r in conn.execute("SELECT run_id, status, started, finished FROM runs")}
    except sqlite3.OperationalError:  # the sweep has created the file but not its tables yet
        return {}


def test_sigkill_halfway_loses_and_repeats_nothing(tmp_path):
    """SIGKILL a real sweep after its first finished run; the rerun trains only what was left."""
    suite = write_suite(tmp_path / "tiny.toml", seeds=3, components={"loss": ["logistic"], "generator": ["lin"],
                                                                    "discriminator": ["small*"], "stack": ["none"]})
    env = {**os.environ, "GANZOO_PLUGINS": "ganzoo,testzoo",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "dist"), str(TESTS)])}
    (tmp_path / "dist").mkdir()
    command = [sys.executable, "-m", "ganzoo", "bench", "--all", "--suite", str(suite), "--results-dir",
               str(tmp_path / "r"), "--no-progress"]
    db = tmp_path / "r" / STORE_FILE
    with fake_distribution(tmp_path / "dist", "testzoo-plugin", "from testzoo import *\n",
                           {"testzoo": "testzoo_plugin"}):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and not any(s[0] == "done" for s in _statuses(db).values()):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = _statuses(db)
        finished_before = {k: v for k, v in before.items() if v[0] == "done"}
        assert finished_before and len(finished_before) < 6
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = _statuses(db)
    assert len(after) == 6 and all(v[0] == "done" for v in after.values())
    for run_id, row in finished_before.items():
        assert after[run_id] == row  # not trained again: same start and finish times
    assert f"{len(finished_before)} already finished" in rerun.stdout


def test_sigint_to_the_driver_alone_stops_its_workers_at_once(tmp_path):
    """`kill -INT` of the driver (not of its process group, as a terminal's Ctrl-C is) still stops the sweep."""
    suite = write_suite(tmp_path / "tiny.toml", seeds=2, budget={"kimg": 200.0, "batch_size": 64,
                                                                 "eval_every_kimg": 1.0},
                        components={"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small*"],
                                    "stack": ["none"]})
    env = {**os.environ, "GANZOO_PLUGINS": "ganzoo,testzoo",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "dist"), str(TESTS)])}
    (tmp_path / "dist").mkdir()
    command = [sys.executable, "-m", "ganzoo", "bench", "--all", "--suite", str(suite), "--results-dir",
               str(tmp_path / "r"), "--no-progress", "--executor", "processes", "--jobs", "2"]
    with fake_distribution(tmp_path / "dist", "testzoo-plugin", "from testzoo import *\n",
                           {"testzoo": "testzoo_plugin"}):
        # Its own group, so the signal reaches the driver only; SIGINT at its default, since a pytest started in
        # the background (`pytest &`) ignores it, and a child inherits that (Python then never turns it into
        # KeyboardInterrupt).
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 120
        while time.time() < deadline and not list((tmp_path / "r" / "runs").glob("*/checkpoint.pt")):
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
        time.sleep(2)  # workers, if any were left, would still be writing checkpoints now
        sizes = {p: p.stat().st_mtime for p in (tmp_path / "r" / "runs").glob("*/checkpoint.pt")}
        time.sleep(2)
    assert sizes and sizes == {p: p.stat().st_mtime for p in sizes}  # no worker is still training


@pytest.mark.parametrize("args, message", [
    (["bench", "--all", "--suite", "nosuch"], 'Unknown suite "nosuch". Shipped suites:'),
    (["bench", "--generator", "dcgna", "--dry-run"], 'Unknown generator "dcgna". Did you mean "dcgan"?'),
    (["bench", "--loss", "x*", "--dry-run"], 'no registered loss matches "x*"'),
    (["train", "--dataset", "digits", "--generator", "dcgan", "--discriminator", "dcgna"],
     'Unknown discriminator "dcgna". Did you mean "dcgan"?'),
])
def test_user_errors_are_one_clear_line(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (1, 2) and message in result.output
    assert "Traceback" not in result.output


def test_eval_a_real_run_checkpoint_against_its_dataset(tmp_path):
    """train -> checkpoint -> `ganzoo eval digits CHECKPOINT`: the protocol is the dataset's own extractor."""
    results = tmp_path / "r"
    trained = invoke("train", "--dataset", "digits", "--generator", "dcgan", "--discriminator", "dcgan",
                     "--stabilizer", "ema", "--g-steps", "4", "--results-dir", results, "--device", "cpu")
    assert trained.exit_code == 0, trained.output
    (checkpoint,) = results.glob("runs/*/checkpoint.pt")
    result = invoke("eval", "digits", checkpoint, "-n", "300", "--metrics", "fid,is,pr", "--format", "json",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["fid"] > 0 and 1 <= data["is_mean"] <= 10 and 0 <= data["precision"] <= 1
    assert data["protocol"]["extractor"] == "digits_classifier" and data["protocol"]["n_fake"] == 300


def test_train_resolves_a_dataset_budget_in_g_steps_under_a_suite_in_kimg(zoo, tmp_path):
    """Regression: `ganzoo train` merged budgets by hand and kept the suite's kimg under a G-step budget."""
    suite = tmp_path / "mixed.toml"
    suite.write_text('name = "mixed"\nauto_stacks = false\n'
                     '[budget]\nkimg = 1.024\neval_every_kimg = 0.512\nbatch_size = 64\n'
                     '[eval]\nn_fake = 64\nn_real = 64\nmetrics = ["pr"]\n[compute]\nchannels_last = true\n'
                     '[[datasets]]\nname = "blobs"\n'
                     'baseline = { generator = "lin", discriminator = "small", loss = "logistic", stack = "none" }\n'
                     '[datasets.budget]\nunit = "g_steps"\ng_steps = 3\neval_every_g_steps = 3\n')
    results = tmp_path / "r"
    planned = invoke("bench", "--all", "--suite", suite, "--dry-run", "--results-dir", results)
    assert planned.exit_code == 0, planned.output
    trained = invoke("train", "--suite", suite, "--dataset", "blobs", "--generator", "lin", "--discriminator", "small",
                     "--results-dir", results)
    assert trained.exit_code == 0, trained.output
    with sqlite3.connect(results / STORE_FILE) as conn:
        (spec_json,) = conn.execute("SELECT spec FROM runs").fetchone()
    spec = json.loads(spec_json)
    assert spec["budget"]["unit"] == "g_steps" and spec["budget"]["g_steps"] == 3 and spec["budget"].get("kimg") is None
    assert spec["compute"]["channels_last"] is True  # the suite's other tables reach the run too


def test_train_takes_a_dataset_budget_from_the_shipped_suite_that_trains_it():
    """`ganzoo train --dataset stacked_mnist5k` needs no --suite: the CPU-sized suite that trains it is found."""
    import click

    from ganzoo.cli.train import _budget_only_plan, _shipped_plan

    suite, plan = _shipped_plan("stacked_mnist5k")
    assert suite.name == "stacked-mnist-short" and plan["name"] == "stacked_mnist5k"
    assert _shipped_plan("no_such_dataset") is None
    assert _budget_only_plan("default", "mnist5k", None, 40)["budget"] == {"unit": "g_steps", "g_steps": 40}
    with pytest.raises(click.UsageError, match='No shipped suite trains dataset "mnist5k": say its budget with'):
        _budget_only_plan("default", "mnist5k", None, None)
    with pytest.raises(click.UsageError, match='Suite "tiny" does not train "mnist5k"'):
        _budget_only_plan("tiny", "mnist5k", None, None, searched=False)
