"""Nothing lost, nothing wrong: damaged stores, read-only reading, many processes on one new store."""

import hashlib
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest
import testzoo
from click.testing import CliRunner

from ganzoo.bench import bench
from ganzoo.cli import main
from ganzoo.store import STORE_FILE, Store, StoreError
from ganzoo.suite import parse_suite
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
