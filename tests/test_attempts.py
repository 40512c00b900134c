"""A run's attempt log (ganzoo.run.attempts): every start counted before training, and what the record makes of it."""

import json
import os
import socket

import pytest
import testzoo

from ganzoo.core.records import DONE, FAILED, RunResult
from ganzoo.core.store import Store
from ganzoo.run import artifacts
from ganzoo.run.attempts import ATTEMPTS, append_attempt, read_attempts
from ganzoo.run.train import run
from ganzoo.testing import plugin_registry


@pytest.fixture
def registry():
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as reg:
        yield reg


def test_each_start_is_logged_with_the_checkpoint_it_resumed_from(registry, tmp_path, monkeypatch):
    spec = testzoo.tiny_spec(g_steps=4, eval_every_g_steps=2)
    real_save = artifacts.save_checkpoint

    def save_then_die(checkpoint, folder):  # a kill right after the checkpoint of G step 2
        real_save(checkpoint, folder)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(artifacts, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path, "cpu", registry)
    monkeypatch.setattr(artifacts, "save_checkpoint", real_save)
    (first,) = read_attempts(tmp_path)  # written before training: the killed start counts
    assert (first["resumed_from"], first["host"], first["pid"]) == (0, socket.gethostname(), os.getpid())

    resumed = run(spec, tmp_path, "cpu", registry)
    assert resumed.status == DONE and (resumed.attempts, resumed.resumed_from) == (2, 2)
    assert [entry["resumed_from"] for entry in read_attempts(tmp_path)] == [0, 2]
    # A finished run started again trains nothing, so it logs no start; its record is the finished one.
    again = run(spec, tmp_path, "cpu", registry)
    assert (again.attempts, again.resumed_from) == (2, 2) and len(read_attempts(tmp_path)) == 2


def test_a_run_that_fails_counts_its_start(registry, tmp_path):
    from ganzoo.core.spec import ComponentRef

    failed = run(testzoo.tiny_spec(stack=(ComponentRef("crash", {}),)), tmp_path, "cpu", registry)
    assert failed.status == FAILED and (failed.attempts, failed.resumed_from) == (1, 0)


def test_a_line_torn_by_a_killed_writer_is_skipped_and_never_glues_to_the_next(tmp_path):
    append_attempt(tmp_path, {"resumed_from": 0})
    with open(tmp_path / ATTEMPTS, "a") as log:
        log.write('{"resumed_from": 2, "ho')  # killed mid-line
    assert append_attempt(tmp_path, {"resumed_from": 4}) == 2
    assert [entry["resumed_from"] for entry in read_attempts(tmp_path)] == [0, 4]
    assert [json.loads(line) for line in (tmp_path / ATTEMPTS).read_text().splitlines() if line.endswith("}")] \
        == [{"resumed_from": 0}, {"resumed_from": 4}]


def test_the_store_records_the_starts_a_run_counted_and_else_keeps_its_claims(tmp_path):
    specs = [testzoo.tiny_spec(seed=seed) for seed in (0, 1)]
    store = Store(tmp_path)
    store.add_many(specs, "tiny")
    for spec in specs:
        store.claim(spec.run_id, {})
    store.record(RunResult(specs[0].run_id, DONE, attempts=3, resumed_from=40))
    store.record(RunResult(specs[1].run_id, FAILED, error="died before it could count"))
    rows = {row["run_id"]: row for row in store.runs("tiny")}
    assert (rows[specs[0].run_id]["attempts"], rows[specs[0].run_id]["resumed_from"]) == (3, 40)
    assert (rows[specs[1].run_id]["attempts"], rows[specs[1].run_id]["resumed_from"]) == (1, None)


def test_a_store_written_before_resumed_from_existed_gains_the_column(tmp_path):
    import sqlite3

    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "ganzoo.sqlite")
    db.execute("ALTER TABLE runs DROP COLUMN resumed_from")  # as the code before it made the table
    db.commit()
    db.close()
    spec = testzoo.tiny_spec()
    store = Store(tmp_path)
    store.add(spec, "tiny")
    store.record(RunResult(spec.run_id, DONE, attempts=1, resumed_from=0))
    assert store.runs("tiny")[0]["resumed_from"] == 0
