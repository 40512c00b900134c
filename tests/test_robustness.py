"""Nothing lost, nothing wrong: damaged stores, read-only reading, many processes on one new store."""

import hashlib
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest
import testzoo
from click.testing import CliRunner

from ganzoo.cli import main
from ganzoo.core.records import DONE
from ganzoo.core.store import STORE_FILE, Store, StoreError
from ganzoo.run.suite import parse_suite
from ganzoo.sweep import bench
from ganzoo.testing import plugin_registry


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as zoo:
        results = tmp_path_factory.mktemp("results")
        bench(parse_suite(testzoo.suite_dict(seeds=1)), results, registry=zoo, progress=False, echo=lambda _: None,
              executor="inline")
    return results


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


GARBAGE = b"this is not a database" * 100


@pytest.mark.parametrize(("command", "content"), [
    (("runs",), GARBAGE), (("runs",), b""), (("report",), GARBAGE), (("report",), b""),
    (("bench", "--all"), GARBAGE),  # an empty file is an empty database, which bench sets up and trains into
])
def test_a_damaged_store_is_one_line_naming_the_file_and_the_way_out(tmp_path, content, command):
    (tmp_path / STORE_FILE).write_bytes(content)
    result = invoke(*command, "--results-dir", tmp_path)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert f"{tmp_path / STORE_FILE} is not a readable ganzoo store" in result.output
    assert "Move it aside" in result.output and "recovered from it without training again" in result.output
    assert (tmp_path / STORE_FILE).read_bytes() == content  # nothing was overwritten


def snapshot(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reading_a_store_writes_nothing_in_the_results_folder(swept, tmp_path):
    before = snapshot(swept)
    assert invoke("runs", "--results-dir", swept).exit_code == 0
    result = invoke("report", "--results-dir", swept, "--out", tmp_path, "--format", "html")
    assert result.exit_code == 0, result.output
    after = snapshot(swept)
    # SQLite may leave its (empty) write-ahead log and shared-memory index beside the file; nothing else.
    assert {k: v for k, v in after.items() if k.name not in (f"{STORE_FILE}-wal", f"{STORE_FILE}-shm")} == before
    empty = hashlib.sha256(b"").hexdigest()
    assert after.get(Path(f"{STORE_FILE}-wal"), empty) == empty
    assert (tmp_path / "tiny" / "leaderboard.md").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions; the snapshot test covers reading")
def test_a_read_only_results_folder_can_be_listed_and_reported_elsewhere(swept, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / STORE_FILE).write_bytes((swept / STORE_FILE).read_bytes())
    os.chmod(folder / STORE_FILE, 0o444)
    os.chmod(folder, 0o555)
    try:
        listing = invoke("runs", "--results-dir", folder)
        assert listing.exit_code == 0 and "done" in listing.output
        refused = invoke("report", "--results-dir", folder)
        assert refused.exit_code == 1 and "Pass --out DIR" in refused.output
        assert invoke("report", "--results-dir", folder, "--out", tmp_path / "out").exit_code == 0
    finally:
        os.chmod(folder, 0o755)


def _open_store(folder, barrier, errors):
    barrier.wait()
    try:
        Store(folder).close()
    except Exception as exc:  # reported to the parent, which fails the test with it
        errors.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow  # 8 fresh interpreters importing torch: 25 s on 2 cores (CI runs it with the slow tests)
def test_many_processes_creating_one_store_at_once_all_succeed(tmp_path):
    context = multiprocessing.get_context("spawn")
    n = 8
    barrier, errors = context.Barrier(n), context.Queue()
    processes = [context.Process(target=_open_store, args=(tmp_path, barrier, errors)) for _ in range(n)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [] and all(p.exitcode == 0 for p in processes)
    db = sqlite3.connect(tmp_path / STORE_FILE)
    assert db.execute("SELECT count(*) FROM meta").fetchone() == (1,)


def test_a_store_from_a_newer_ganzoo_is_refused_with_the_fix(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / STORE_FILE)
    with db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.close()
    with pytest.raises(StoreError, match="written by a newer ganzoo .schema 99.; upgrade ganzoo"):
        Store(tmp_path, readonly=True)


# -- many sweeps, dying workers ----------------------------------------------------------------------


@pytest.fixture
def installed_testzoo(tmp_path, monkeypatch):
    """The test zoo as an installed distribution, visible to worker processes and to `python -m ganzoo`."""
    from ganzoo.testing import fake_distribution

    monkeypatch.setenv("GANZOO_PLUGINS", "ganzoo,testzoo")
    (tmp_path / "dist").mkdir()
    with fake_distribution(tmp_path / "dist", "testzoo-plugin", "from testzoo import *\n",
                           {"testzoo": "testzoo_plugin"}) as root:
        yield root


def test_a_killed_worker_costs_its_own_run_only_and_the_sweep_completes(installed_testzoo, tmp_path):
    from ganzoo.core.records import FAILED
    from ganzoo.core.registry import build_registry

    suite = parse_suite(testzoo.suite_dict(seeds=2, components={
        "loss": ["logistic"], "generator": ["lin"], "discriminator": ["small"], "stack": ["none", "kill_worker"]}))
    said = []
    summary = bench(suite, tmp_path / "results", registry=build_registry(), executor="processes", jobs=2,
                    progress=False, echo=said.append)
    statuses = {row["run_id"]: (row["stack"], row["status"], row["attempts"], row["error"] or "")
                for row in Store(tmp_path / "results").runs("tiny")}
    assert len(statuses) == 4 and sorted(summary.results.values()) == [DONE, DONE, FAILED, FAILED]
    for stack, status, attempts, error in statuses.values():
        assert attempts == 1
        assert (status, stack == "kill_worker") in ((DONE, False), (FAILED, True))
        if status == FAILED:
            assert "the worker process training this run died (killed by SIGKILL); the sweep went on" in error


@pytest.mark.parametrize("n_sweeps", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_concurrent_sweeps_on_one_folder_train_each_run_exactly_once(installed_testzoo, tmp_path, n_sweeps):
    import subprocess
    import sys

    from test_cli import write_suite

    suite_file = write_suite(tmp_path / "tiny.toml", seeds=4, eval={"n_fake": 256, "n_real": 256, "metrics": ["fid"]},
                             components={"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small*"],
                                         "stack": ["none"]})
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_testzoo), str(Path(testzoo.__file__).parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "ganzoo", "bench", "--all", "--suite", str(suite_file), "--results-dir",
               str(results), "--executor", "inline", "--no-progress"]
    sweeps = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(n_sweeps)]
    outputs = [sweep.communicate(timeout=300)[0] for sweep in sweeps]
    assert all(sweep.returncode == 0 for sweep in sweeps), outputs
    rows = Store(results, readonly=True).runs("tiny")
    assert len(rows) == 8 and {row["status"] for row in rows} == {DONE}, outputs
    assert [row["attempts"] for row in rows] == [1] * 8, outputs
    assert not list(results.rglob("*.tmp*"))


# -- full disks and reused runs ------------------------------------------------------------------------


def two_runs():
    return parse_suite(testzoo.suite_dict(seeds=2, components={
        "loss": ["logistic"], "generator": ["lin"], "discriminator": ["small"], "stack": ["none"]}))


def test_a_full_disk_while_recording_stops_the_sweep_keeps_the_store_and_loses_no_training(tmp_path, monkeypatch):
    import sqlite3 as sqlite

    import ganzoo.run.train
    from ganzoo.sweep.driver import DiskFull

    real_record, calls = Store.record, []

    def record_until_full(self, result):
        calls.append(result.run_id)
        if len(calls) == 2:
            raise sqlite.OperationalError("database or disk is full")
        real_record(self, result)

    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as zoo:
        monkeypatch.setattr(Store, "record", record_until_full)
        with pytest.raises(DiskFull, match=r"is full .*the sweep stopped. Everything recorded before is intact; run "
                                           r"\w+ finished but is not recorded"):
            bench(two_runs(), tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline")
        monkeypatch.setattr(Store, "record", real_record)
        rows = {r["run_id"]: r["status"] for r in Store(tmp_path, readonly=True).runs("tiny")}
        assert rows == {calls[0]: DONE, calls[1]: "running"}
        steps = []
        real_d_step = ganzoo.run.train.d_step
        monkeypatch.setattr(ganzoo.run.train, "d_step", lambda *a: steps.append(1) or real_d_step(*a))
        again = bench(two_runs(), tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline")
    assert again.results == {calls[1]: DONE} and steps == []  # recovered from its final checkpoint, not retrained


def test_a_full_disk_in_a_run_is_one_line_and_the_run_stays_resumable(tmp_path, monkeypatch):
    import torch

    def no_space(state, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as zoo:
        from ganzoo.sweep.driver import DiskFull

        with pytest.raises(DiskFull, match="could not write its checkpoint, so the sweep stopped"):
            bench(two_runs(), tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline")
    statuses = [r["status"] for r in Store(tmp_path, readonly=True).runs("tiny")]
    assert sorted(statuses) == ["failed", "pending"]  # the second run never started; the first retries next time
    assert not list(tmp_path.rglob("*.tmp*"))


def test_finished_runs_trained_with_other_versions_are_reused_and_said_so(tmp_path):
    import json

    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as zoo:
        bench(two_runs(), tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline")
        db = sqlite3.connect(tmp_path / STORE_FILE)
        with db:
            for run_id, versions in db.execute("SELECT run_id, versions FROM runs").fetchall():
                db.execute("UPDATE runs SET versions=? WHERE run_id=?",
                           (json.dumps({**json.loads(versions), "ganzoo": "0.0.1"}), run_id))
        db.close()
        said = []
        summary = bench(two_runs(), tmp_path, registry=zoo, progress=False, echo=said.append, executor="inline")
    assert summary.results == {} and len(summary.skipped) == 2
    line = next(s for s in said if "other versions" in s)
    assert line.startswith("2 finished runs were trained with other versions than installed now (ganzoo 0.0.1 -> ")
    assert "they are reused as they are" in line


def test_a_claim_belongs_to_the_process_that_made_it_not_to_whoever_has_its_pid_now():
    import socket

    from ganzoo.core.store import claim_alive, process_start

    me = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}
    assert claim_alive(me)
    assert not claim_alive({**me, "pid_start": "1"})  # same PID, another process: the claimant is gone
    dead = subprocess_pid_that_exited()
    assert not claim_alive({**me, "pid": dead, "pid_start": None})
    assert claim_alive({**me, "host": "another-host"})  # cannot be checked from here: left alone


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stale_claim_is_taken_over_and_the_run_trained(tmp_path):
    import socket

    from ganzoo.run.grid import build_grid

    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as zoo:
        suite = two_runs()
        bench(suite, tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline",
              seeds=[0])
        store = Store(tmp_path)  # as if a sweep that is gone had claimed seed 1 and died
        spec = next(s for s in build_grid(suite, zoo).specs if s.seed == 1)
        store.add(spec, "tiny")
        store.db.execute("UPDATE runs SET status='running', host=?, pid=?, pid_start=NULL WHERE run_id=?",
                         (socket.gethostname(), subprocess_pid_that_exited(), spec.run_id))
        store.db.commit()
        store.close()
        summary = bench(suite, tmp_path, registry=zoo, progress=False, echo=lambda _: None, executor="inline")
    assert summary.results == {spec.run_id: DONE} and summary.busy == []
