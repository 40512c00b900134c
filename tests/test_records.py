"""One owner per record: RunResult (versioned), Evaluation (two shapes), SuiteRecord, ProtocolRecord, atomic_write,
short_hash."""

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import testzoo
import torch

from ganzoo import get_registry
from ganzoo.core import records
from ganzoo.core.records import (
    COMPARED_METRICS,
    Evaluation,
    ProtocolRecord,
    ReferenceRow,
    RunResult,
    SuiteRecord,
    atomic_write,
    short_hash,
)
from ganzoo.core.registry import build_registry
from ganzoo.core.spec import RunSpec
from ganzoo.core.store import Store
from ganzoo.metrics.evaluate import Evaluator, fingerprint_of
from ganzoo.report.leaderboard import metric_directions
from ganzoo.run import artifacts
from ganzoo.run.grid import build_grid
from ganzoo.run.suite import load_suite
from ganzoo.run.train import train
from ganzoo.sweep.driver import suite_record
from ganzoo.testing import plugin_registry

COMMITTED = Path(__file__).parents[1] / "results" / "default" / "runs.csv"
# A finished checkpoint's result as ganzoo wrote it before the schema existed (dataclasses.asdict of RunResult).
OLD_RESULT = {"run_id": "abc", "status": "done", "error": None, "kimg": 1.0, "g_steps": 16, "d_steps": 16,
              "seconds": 2.0, "eval_seconds": 0.5, "imgs_per_s": 900.0, "device": "cpu (1 thread)",
              "peak_mem_mb": 300.0, "capped": False, "protocol": {"n_fake": 64}, "fingerprint": "f00",
              "evals": [{"kimg": 1.0, "g_steps": 16, "d_steps": 16, "seconds": 2.0, "d_loss": 1.3, "g_loss": 0.7,
                         "metrics": {"fid": 3.5}}], "artifacts": {}}


def test_a_result_written_before_the_schema_loads():
    result = RunResult.from_dict(OLD_RESULT)
    assert result.final == {"fid": 3.5} and result.g_steps == 16 and result.device == "cpu (1 thread)"
    again = RunResult.from_dict(result.to_dict())
    assert again == result and result.to_dict()["schema"] == records.RESULT_SCHEMA


def test_a_finished_checkpoint_in_the_old_shape_is_returned_by_train(tmp_path):
    """A driver killed before recording a finished run gets its result back from the checkpoint, old or new."""
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as registry:
        spec = testzoo.tiny_spec()
        # As ganzoo wrote it before checkpoints had a schema: a plain dict, "schema" absent.
        torch.save({"g_steps": 16, "d_steps": 16, artifacts.RESULT_KEY: OLD_RESULT}, tmp_path / artifacts.CHECKPOINT)
        result = train(spec, tmp_path, "cpu", registry)
    assert result == RunResult.from_dict(OLD_RESULT)


def test_a_renamed_field_still_loads_from_an_old_result(monkeypatch):
    """Renaming a field takes a schema bump and an entry in RESULT_RENAMES; old checkpoints keep loading."""
    old = {**OLD_RESULT, "seconds_total": OLD_RESULT["seconds"]}
    del old["seconds"]
    with pytest.raises(ValueError, match=r"fields \['seconds_total'\] that RunResult does not know"):
        RunResult.from_dict(old)
    monkeypatch.setattr(records, "RESULT_SCHEMA", 2)
    monkeypatch.setattr(records, "RESULT_RENAMES", {2: {"seconds_total": "seconds"}})
    assert RunResult.from_dict({**old, "schema": 1}).seconds == 2.0
    assert RunResult.from_dict({"schema": 2, **OLD_RESULT}).seconds == 2.0  # already the new name: untouched


def test_a_newer_result_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"schema 9, but this ganzoo reads up to 1: upgrade ganzoo"):
        RunResult.from_dict({**OLD_RESULT, "schema": 9})


def test_an_evaluation_reads_the_same_in_both_shapes():
    whole = OLD_RESULT["evals"][0]
    curve_point = {"g_steps": 16, "fid": 3.5}  # Store.evals_by_run(metrics=...) and stores of old
    assert Evaluation.from_dict(whole).to_dict() == whole  # the written shape, key for key
    assert list(Evaluation.from_dict(whole).to_dict()) == list(whole)
    assert Evaluation.metrics_of(curve_point)["fid"] == Evaluation.metrics_of(whole)["fid"] == 3.5
    assert Evaluation.from_dict(curve_point).g_steps == 16


def test_the_suite_record_is_written_and_read_in_one_shape(tmp_path):
    suite = load_suite("default")
    record = suite_record(suite, get_registry())
    store = Store(tmp_path)
    try:
        store.set_suite_record("default", record)
        assert store.read_suite_record("default") == record
        stored = store.suite_record("default")
        assert stored["schema"] == records.SUITE_SCHEMA and set(stored["datasets"]) == set(record.datasets)
    finally:
        store.close()
    # A record written before the schema existed (no "schema", judgement a plain dict) loads the same.
    old = {k: v for k, v in record.to_dict().items() if k != "schema"}
    assert SuiteRecord.from_dict(json.loads(json.dumps(old))) == record
    assert SuiteRecord.from_dict({}).baseline("ring8") is None
    full = dataclasses.replace(record, design="full")
    assert full.baseline("ring8") is None and record.baseline("ring8") == dict(record.datasets["ring8"].baseline)


def test_atomic_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write(path, lambda tmp: tmp.write_text("one"))

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_short_hash_is_the_hash_ids_were_made_with():
    """Run ids and fingerprints on disk were made with these exact expressions: the helper must give them."""
    canonical = {"b": [1, 2.5, "x"], "a": {"z": None, "y": True}}
    legacy_run_id = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    legacy_fingerprint = hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()
    assert short_hash(canonical, 16, separators=(",", ":")) == legacy_run_id[:16]
    assert short_hash(canonical) == legacy_fingerprint[:12]
    assert short_hash(b"\x00\x01", 16) == hashlib.sha256(b"\x00\x01").hexdigest()[:16]


def test_the_default_suites_fingerprints_and_run_ids_are_the_committed_ones():
    """The protocol fingerprints of results/default/runs.csv are what the evaluators compute for the default suite;
    the run ids computed for its specs are the legacy hash of their canonical form, and those of the committed
    runs that the suite still asks for are among them."""
    committed = pd.read_csv(COMMITTED)
    suite = load_suite("default")
    for plan in suite.datasets:
        dataset = get_registry().get("dataset", plan.dataset.name).build(**plan.dataset.hparams)
        fingerprint = Evaluator(dataset, plan.protocol, "cpu").fingerprint
        assert set(committed.loc[committed["dataset"] == plan.dataset.name, "fingerprint"]) == {fingerprint}
    specs = build_grid(suite, get_registry()).specs
    for spec in specs:
        blob = json.dumps(spec.canonical(), sort_keys=True, separators=(",", ":")).encode()
        assert spec.run_id == hashlib.sha256(blob).hexdigest()[:16]
    assert {s.run_id for s in specs} & set(committed["run_id"])


def test_the_experiment_key_is_the_committed_runs_experiment_column():
    """``RunSpec.experiment_key`` (which the reporter and the vectorised planner both use) gives the ``experiment``
    of every committed run of results/default: the column the leaderboards group seeds by."""
    committed = pd.read_csv(COMMITTED).set_index("run_id")
    specs = [s for s in build_grid(load_suite("default"), get_registry()).specs if s.run_id in committed.index]
    assert len(specs) == len(committed)
    assert all(s.experiment_key == committed.loc[s.run_id, "experiment"] for s in specs)
    # The reporter reads the store's canonical forms (these runs' were written before Compute and the G-step budget
    # existed, and hold neither) back into specs: the same spec, the same key.
    assert all(RunSpec.from_dict(s.canonical()) == s and "compute" not in s.canonical() for s in specs)
    seeds_of = {}
    for spec in specs:
        seeds_of.setdefault(spec.experiment_key, set()).add(spec.seed)
    assert len(seeds_of) == committed["experiment"].nunique() and max(map(len, seeds_of.values())) == 12


# A real-data row as the store held it before ReferenceRow (no schema): the metrics of real ring8 samples.
OLD_REFERENCE = {"key": '["ring8", {}, {"n_fake": 2000}]', "metrics": {"fid": 0.0021, "modes": 8.0},
                 "note": "fresh draws from the mixture", "n": 2000}


def test_a_real_data_row_written_before_the_schema_loads_and_is_rewritten_whole(tmp_path):
    row = ReferenceRow.from_dict(OLD_REFERENCE)
    assert (row.key, row.note, row.n, dict(row.metrics)) == (OLD_REFERENCE["key"], OLD_REFERENCE["note"], 2000,
                                                              OLD_REFERENCE["metrics"])
    assert row.to_dict() == {"schema": records.REFERENCE_SCHEMA, **OLD_REFERENCE}
    store = Store(tmp_path)
    try:  # an old store's row, written as it was, reads typed; a new one reads back equal
        store.db.execute("INSERT INTO references_ VALUES (?, ?, ?, ?)",
                         ("s", "ring8", "abc", json.dumps(OLD_REFERENCE)))
        store.set_reference("s", "digits", "def", dataclasses.replace(row, key="k2"))
        assert store.references("s") == {("ring8", "abc"): row, ("digits", "def"): dataclasses.replace(row, key="k2")}
    finally:
        store.close()
    with pytest.raises(ValueError, match=r"real-data row has schema 2, but this ganzoo reads up to 1: upgrade"):
        ReferenceRow.from_dict({**OLD_REFERENCE, "schema": 2})


def test_a_stores_evaluations_read_typed_in_both_shapes(tmp_path):
    """``Store.evaluations``: whole evaluations as runs write them, and flat ones from stores before the nesting."""
    whole = OLD_RESULT["evals"][0]
    flat = {"kimg": 0.5, "g_steps": 32, "d_steps": 32, "seconds": 1.0, "d_loss": 1.2, "g_loss": 0.7, "fid": 2.5}
    store = Store(tmp_path)
    try:
        store.db.executemany("INSERT INTO evals VALUES (?, ?, ?, ?)",
                             [("r", 0, whole["kimg"], json.dumps(whole)), ("r", 1, 0.5, json.dumps(flat))])
        first, second = store.evaluations("r")
    finally:
        store.close()
    assert first == Evaluation.from_dict(whole) and first.metrics == whole["metrics"]
    assert (second.g_steps, second.g_loss, second.metrics["fid"]) == (32, 0.7, 2.5)


def test_the_compared_metrics_are_every_column_a_leaderboard_ranks():
    """One list for every bit-for-bit comparison (benchmarks/reproduce_results.py, the default bench's test):
    the registered metrics' columns and the datasets' own, none left out."""
    assert set(COMPARED_METRICS) == set(metric_directions(build_registry()))
    assert len(COMPARED_METRICS) == len(set(COMPARED_METRICS))


# The digits protocol of results/default as the store held it before ProtocolRecord (no schema), and its fingerprint.
DIGITS_PROTOCOL = {"extractor": "digits_classifier", "extractor_hparams": {}, "weights_hash": "6fccf3fdd804",
                   "reference": {"dataset": "Digits", "split": "reference", "n": 1797, "content": "8aa4a98f227fcb6c"},
                   "n_real": 1797, "n_fake": 1000, "metrics": ["dc", "fid", "is", "kid", "pr"], "kid_subsets": 20,
                   "kid_subset_size": 500, "is_splits": 10, "pr_k": 3, "dc_k": 5, "seed": 2020}


def test_a_protocol_record_written_before_the_schema_loads_with_its_fingerprint():
    record = ProtocolRecord.from_dict(DIGITS_PROTOCOL)
    assert record.fingerprint == "f075ad12aef3"  # results/default/runs.csv's digits tables
    assert record.fingerprint == hashlib.sha256(json.dumps(DIGITS_PROTOCOL, sort_keys=True).encode()).hexdigest()[:12]
    assert record.extractor == "digits_classifier" and record.weights_hash == "6fccf3fdd804"
    assert record.metrics == ("dc", "fid", "is", "kid", "pr") and record.reference["n"] == 1797
    assert record.extractor_protocol == {"weights_hash": "6fccf3fdd804"}
    written = record.to_dict()
    assert written == {"schema": records.PROTOCOL_SCHEMA, **DIGITS_PROTOCOL}
    assert ProtocolRecord.from_dict(written) == record and fingerprint_of(written) == record.fingerprint


def test_a_protocol_records_optional_keys_are_absent_when_empty_and_change_the_fingerprint():
    record = ProtocolRecord.from_dict(DIGITS_PROTOCOL)
    assert "metric_versions" not in record.to_dict() and "training_compute" not in record.to_dict()
    bf16 = record.with_training_compute({"precision": "bf16", "channels_last": False, "compile": False})
    plugin = dataclasses.replace(record, metric_versions={"mean_gap": "acme 1.0"})
    assert len({record.fingerprint, bf16.fingerprint, plugin.fingerprint}) == 3
    for changed in (bf16, plugin):
        assert ProtocolRecord.from_dict(changed.to_dict()) == changed
    assert bf16.to_dict()["training_compute"]["precision"] == "bf16"


def test_a_protocol_record_says_what_is_wrong_with_it():
    with pytest.raises(ValueError, match="schema 2.*upgrade ganzoo"):
        ProtocolRecord.from_dict({**DIGITS_PROTOCOL, "schema": 2})
    with pytest.raises(ValueError, match=r"lacks \['n_fake'\]"):
        ProtocolRecord.from_dict({k: v for k, v in DIGITS_PROTOCOL.items() if k != "n_fake"})
    with pytest.raises(ValueError, match=r"reports \['n_fake'\] in its protocol\(\)"):
        dataclasses.replace(ProtocolRecord.from_dict(DIGITS_PROTOCOL), extractor_protocol={"n_fake": 3})


def test_a_runs_protocol_record_is_its_evaluators(tmp_path):
    """A run stores its evaluator's record with the schema and files it under that record's fingerprint; a run that
    failed before its evaluator was built has none."""
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as registry:
        spec = testzoo.tiny_spec()
        result = train(spec, tmp_path, torch.device("cpu"), registry)
        dataset = registry.get("dataset", spec.dataset.name).build(**spec.dataset.hparams)
        evaluator = Evaluator(dataset, spec.protocol, "cpu", registry=registry)
    assert result.protocol["schema"] == records.PROTOCOL_SCHEMA
    assert result.protocol_record == evaluator.record() and result.fingerprint == evaluator.fingerprint
    assert result.protocol_record.n_fake == 32 and result.protocol_record.metrics == ("pr",)
    assert RunResult.from_dict(result.to_dict()).protocol_record == result.protocol_record
    assert RunResult("x", "failed").protocol_record is None
