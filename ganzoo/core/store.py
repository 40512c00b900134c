"""The run store: one SQLite file in the results folder, written only by the driver process.

Tables: ``runs`` (one row per run spec, its status and what it used), ``evals`` (every evaluation over
training), ``sweep_runs`` (which suites asked for which runs: several sweeps can share one folder and
one run), ``suites`` (each suite's design, baselines and how its datasets are judged, as last run),
``references_`` (real data through each protocol: the ceiling row of a leaderboard),
``meta`` (schema version). Workers never open it: they return ``RunResult``s.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .records import FINISHED, PENDING, RUNNING, Evaluation, ReferenceRow, RunResult, SuiteRecord
from .spec import RunSpec

SCHEMA_VERSION = 1
STORE_FILE = "ganzoo.sqlite"
METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a name a JSON path holds as it is

def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or ``None`` where that is unknown.

    A PID is reused once its process is gone; the start time tells the claimant from its successor.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name (which may hold spaces)


def claimant() -> tuple[str, int, str | None]:
    """This process as a claimant: host, PID and start time."""
    return socket.gethostname(), os.getpid(), process_start(os.getpid())


def claim_alive(row: dict[str, Any]) -> bool:
    """Whether the process that claimed a run (``host``, ``pid``, ``pid_start`` of its row) is still that process.

    A claim from another host cannot be checked from here and counts as alive.
    """
    if row.get("host") != socket.gethostname():
        return bool(row.get("host"))
    if not row.get("pid"):
        return False
    try:
        os.kill(row["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = process_start(row["pid"])
    return row.get("pid_start") is None or started is None or started == row["pid_start"]


def held_elsewhere(row: dict[str, Any]) -> bool:
    """Whether a run's claim belongs to another process that is still alive (so this one must leave it)."""
    return (row.get("host"), row.get("pid")) != claimant()[:2] and claim_alive(row)


def _retry_while_locked(action, what: str):
    """``action()``, retried while another process holds the database lock (up to about a minute)."""
    for attempt in range(200):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(0.01 * (1 + attempt % 10))
    raise StoreError(f"{what} stayed locked by other processes for a minute; is a stuck process holding it?")


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """Read without writing anything; in a read-only folder SQLite cannot make the WAL's shared-memory
    file, so the file is then read as it is (``immutable``: nobody can be writing to a read-only folder)."""
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, spec TEXT NOT NULL, dataset TEXT, generator TEXT, discriminator TEXT,
    loss TEXT, stack TEXT, seed INTEGER, status TEXT NOT NULL, attempts INTEGER DEFAULT 0,
    started REAL, finished REAL, error TEXT, kimg REAL, g_steps INTEGER, d_steps INTEGER, seconds REAL,
    imgs_per_s REAL, device TEXT, peak_mem_mb REAL, capped INTEGER, protocol TEXT, fingerprint TEXT,
    metrics TEXT, artifacts TEXT, versions TEXT, host TEXT, pid INTEGER, pid_start TEXT, resumed_from INTEGER
);
CREATE TABLE IF NOT EXISTS evals (
    run_id TEXT NOT NULL, idx INTEGER NOT NULL, kimg REAL, payload TEXT NOT NULL, PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS sweep_runs (suite TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (suite, run_id));
CREATE TABLE IF NOT EXISTS suites (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS references_ (
    suite TEXT NOT NULL, dataset TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (suite, dataset, fingerprint)
);
"""


class StoreError(RuntimeError):
    """The store cannot be opened: missing, not a ganzoo store, damaged, or too new."""


class Store:
    """The results folder's SQLite store.

    Args:
        results_dir: the folder holding ``ganzoo.sqlite`` (created when writable and missing).
        readonly: open for reading only (``ganzoo runs``, ``ganzoo report``): nothing is created or
            switched, so a read-only folder, or one another sweep is writing, can be read.
    """

    def __init__(self, results_dir: str | Path, readonly: bool = False):
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / STORE_FILE
        self.readonly = readonly
        if readonly and not self.path.is_file():
            raise StoreError(f"No ganzoo store in {self.results_dir} ({STORE_FILE} is missing). "
                             "Run `ganzoo bench --all` first or pass --results-dir.")
        try:
            if readonly:
                self.db = _connect_readonly(self.path)
            else:
                self.results_dir.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=30)
                self._set_up()
            self.db.row_factory = sqlite3.Row
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a readable ganzoo store ({exc}). Move it aside (mv {self.path} "
                f"{self.path}.broken) and rerun the same `ganzoo bench` command: every run whose folder holds its "
                "checkpoint is recovered from it without training again.") from exc

    def _set_up(self) -> None:
        """Create the schema; safe when many processes create one new store at the same moment."""
        _retry_while_locked(self._create_schema, str(self.path))

    def _create_schema(self) -> None:
        # WAL lets `ganzoo runs` read while a sweep writes; each commit survives a SIGKILL.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}
        if "pid_start" not in columns:  # stores written before claims recorded the process start time
            self.db.execute("ALTER TABLE runs ADD COLUMN pid_start TEXT")
        if "resumed_from" not in columns:  # stores written before runs logged their starts
            self.db.execute("ALTER TABLE runs ADD COLUMN resumed_from INTEGER")
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _check_schema(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no schema version: it is not a ganzoo store (or a damaged one)")
        if int(row["value"]) > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer ganzoo (schema {row['value']}); upgrade ganzoo")

    def close(self) -> None:
        self.db.close()

    def run_dir(self, run_id: str) -> Path:
        return self.results_dir / "runs" / run_id

    # -- writing (driver only) ------------------------------------------------------------------

    def add(self, spec: RunSpec, suite: str) -> None:
        """Record that ``suite`` wants ``spec``; a spec already known keeps its status."""
        self.add_many([spec], suite)

    def add_many(self, specs: list[RunSpec], suite: str) -> None:
        """``add`` for every spec, in one transaction: a 10,000-run grid is one commit to disk, not 10,000."""
        rows = [(spec.run_id, json.dumps(spec.canonical(), sort_keys=True), spec.dataset.name, spec.generator.name,
                 spec.discriminator.name, spec.loss.name, spec.stack_name, spec.seed, PENDING) for spec in specs]
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO runs"
                " (run_id, spec, dataset, generator, discriminator, loss, stack, seed, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.db.executemany("INSERT OR IGNORE INTO sweep_runs VALUES (?, ?)", [(suite, row[0]) for row in rows])

    def claim(self, run_id: str, versions: dict[str, str]) -> bool:
        """Atomically take ``run_id`` for this process; ``False`` when it is finished or another live process has it.

        The check and the update happen in one write transaction (``BEGIN IMMEDIATE``), so of N sweeps on
        one folder exactly one trains each run. The claimant is recorded as host, PID and the process's start
        time: a claim whose process is gone, or whose PID now belongs to another process, is stale and is
        taken over (the run resumes from its checkpoint).
        """
        _retry_while_locked(lambda: self.db.execute("BEGIN IMMEDIATE"), str(self.path))
        try:
            row = self.db.execute("SELECT status, host, pid, pid_start FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None or row["status"] in FINISHED or (row["status"] == RUNNING and held_elsewhere(dict(row))):
                self.db.execute("ROLLBACK")
                return False
            self._set_running(run_id, versions)
            self.db.execute("COMMIT")
            return True
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def mark_running(self, run_id: str, versions: dict[str, str]) -> None:
        """Claim ``run_id`` whatever its state (a test's way to make a run look taken)."""
        with self.db:
            self._set_running(run_id, versions)

    def _set_running(self, run_id: str, versions: dict[str, str]) -> None:
        self.db.execute(
            "UPDATE runs SET status=?, attempts=attempts+1, started=COALESCE(started, ?), error=NULL,"
            " versions=?, host=?, pid=?, pid_start=? WHERE run_id=?",
            (RUNNING, time.time(), json.dumps(versions), *claimant(), run_id))

    def record(self, result: RunResult) -> None:
        """Store a finished run and all its evaluations in one transaction.

        ``attempts`` becomes the starts the run counted itself (``RunResult.attempts``: a Ray task retried on
        another node started twice under one claim); a result that counted none keeps the count of claims.
        """
        with self.db:
            self.db.execute(
                "UPDATE runs SET status=?, finished=?, error=?, kimg=?, g_steps=?, d_steps=?, seconds=?, imgs_per_s=?,"
                " device=?, peak_mem_mb=?, capped=?, protocol=?, fingerprint=?, metrics=?, artifacts=?,"
                " attempts=CASE WHEN ? > 0 THEN ? ELSE attempts END, resumed_from=? WHERE run_id=?",
                (result.status, time.time(), result.error, result.kimg, result.g_steps, result.d_steps, result.seconds,
                 result.imgs_per_s, result.device, result.peak_mem_mb, int(result.capped), json.dumps(result.protocol),
                 result.fingerprint, json.dumps(result.final), json.dumps(result.artifacts), result.attempts,
                 result.attempts, result.resumed_from, result.run_id),
            )
            self.db.execute("DELETE FROM evals WHERE run_id=?", (result.run_id,))
            self.db.executemany(
                "INSERT INTO evals VALUES (?, ?, ?, ?)",
                [(result.run_id, i, e["kimg"], json.dumps(e)) for i, e in enumerate(result.evals)],
            )

    def set_suite_record(self, name: str, record: SuiteRecord | dict[str, Any]) -> None:
        """What the reporter needs from a suite: design, baseline per dataset, judgement per dataset.

        Written as ``SuiteRecord.to_dict()`` (a plain dict is read as one first, so it is checked the same way).
        """
        data = SuiteRecord.from_dict(record).to_dict()
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO suites VALUES (?, ?)", (name, json.dumps(data, sort_keys=True)))

    def set_reference(self, suite: str, dataset: str, fingerprint: str, row: ReferenceRow) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO references_ VALUES (?, ?, ?, ?)",
                            (suite, dataset, fingerprint, json.dumps(row.to_dict(), sort_keys=True)))

    # -- reading --------------------------------------------------------------------------------

    def status(self, run_id: str) -> str | None:
        row = self.db.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else row["status"]

    def runs(self, suite: str | None = None) -> list[dict[str, Any]]:
        where, params = "", ()
        if suite is not None:
            where, params = " WHERE run_id IN (SELECT run_id FROM sweep_runs WHERE suite=?)", (suite,)
        cursor = self.db.cursor()
        cursor.row_factory = None  # tuples zipped with the column names: cheaper than a Row per run
        cursor.execute("SELECT * FROM runs" + where + " ORDER BY dataset, generator, discriminator, loss, stack, seed",
                       params)
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        # Every run's suites in one query: sweep_runs is keyed by suite first, so asking run by run scans the
        # table once per run (seconds for a 10,000-run store, growing with its square).
        suites: dict[str, list[str]] = {}
        for run_id, name in self.db.execute("SELECT run_id, suite FROM sweep_runs" + where + " ORDER BY suite", params):
            suites.setdefault(run_id, []).append(name)
        for row in rows:
            for key in ("spec", "protocol", "metrics", "artifacts", "versions"):
                row[key] = json.loads(row[key]) if row.get(key) else {}
            row["suites"] = suites.get(row["run_id"], [])
        return rows

    def suites_of(self, run_id: str) -> list[str]:
        return [r["suite"] for r in self.db.execute("SELECT suite FROM sweep_runs WHERE run_id=? ORDER BY suite",
                                                    (run_id,))]

    def suites(self) -> list[str]:
        return [r["suite"] for r in self.db.execute("SELECT DISTINCT suite FROM sweep_runs ORDER BY suite")]

    def evals(self, run_id: str) -> list[dict[str, Any]]:
        """A run's evaluations as stored (``Evaluation.to_dict()``, or flat in stores written before the nesting)."""
        return [json.loads(r["payload"]) for r in
                self.db.execute("SELECT payload FROM evals WHERE run_id=? ORDER BY idx", (run_id,))]

    def evaluations(self, run_id: str) -> list[Evaluation]:
        """A run's evaluations, typed, in training order."""
        return [Evaluation.from_dict(payload) for payload in self.evals(run_id)]

    def suite_record(self, name: str) -> dict[str, Any]:
        """The suite's record as stored (``SuiteRecord.to_dict()``, ``{}`` when none); typed: ``read_suite_record``."""
        row = self.db.execute("SELECT record FROM suites WHERE name=?", (name,)).fetchone()
        return {} if row is None else json.loads(row["record"])

    def read_suite_record(self, name: str) -> SuiteRecord:
        """The suite's record, typed (an empty one when the suite recorded none)."""
        return SuiteRecord.from_dict(self.suite_record(name))

    def evals_by_run(self, run_ids: list[str] | None = None,
                     metrics: Collection[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every run's evaluations in training order, in one query (the reporter reads them all).

        ``metrics``: every evaluation but a run's last, which stays whole, is reduced to ``g_steps``, the values its
        stabilizers reported (``stabilizers``, where any did) and these metrics, side by side in one flat dict
        (``ganzoo.report.stability.curve`` reads either form): the curves a report draws and judges runs by.
        Decoding every whole evaluation of 10,000 runs in Python takes seconds; SQLite picks the few numbers out
        in a fraction of that. Where it cannot (no JSON functions, NaN in a
        payload, no metric or one that is not a plain identifier), every evaluation is read whole.
        """
        wanted = None if run_ids is None else set(run_ids)
        curves = self._curves_by_run(wanted, list(metrics)) if metrics is not None else None
        if curves is not None:
            return curves
        out: dict[str, list[dict[str, Any]]] = {}
        for run_id, payload in self.db.execute("SELECT run_id, payload FROM evals ORDER BY run_id, idx"):
            if wanted is None or run_id in wanted:
                out.setdefault(run_id, []).append(json.loads(payload))
        return out

    def _curves_by_run(self, wanted: set[str] | None, metrics: list[str]) -> dict[str, list[dict[str, Any]]] | None:
        """``evals_by_run`` with ``metrics``, or ``None`` where SQLite cannot pick the numbers out.

        SQLite returns the numbers as their JSON text, so Python parses each exactly as it parses the whole
        payload; a metric an evaluation lacks is None, as ``.get`` on the whole one gives.
        """
        if not metrics or not all(METRIC_NAME.match(m) and m not in ("g_steps", "metrics", "stabilizers")
                                  for m in metrics):
            return None  # (with one path, json_extract returns the value, not an array)
        paths = ["$.g_steps", "$.stabilizers", *(f'$.metrics."{m}"' for m in metrics)]
        cursor = self.db.cursor()
        cursor.row_factory = None  # tuples: a Row per evaluation costs more than SQLite's work here
        try:
            rows = [row for row in cursor.execute(
                "SELECT run_id, json_type(payload, '$.metrics') = 'object', json_extract(payload"
                + ", ?" * len(paths) + ") FROM evals ORDER BY run_id, idx", paths)
                if wanted is None or row[0] in wanted]
            last = cursor.execute(
                "SELECT run_id, payload FROM evals JOIN (SELECT run_id, max(idx) AS idx FROM evals GROUP BY run_id)"
                " USING (run_id, idx)").fetchall()
        except sqlite3.OperationalError:  # no JSON functions, or a payload they reject (NaN is not JSON)
            return None
        if not all(has_metrics for _, has_metrics, _ in rows):  # metrics at the top level: read whole
            return None
        # One decode of all the small arrays: 200,000 calls of json.loads cost more than their parsing.
        values = json.loads("[" + ",".join(row[2] for row in rows) + "]")
        keys = ["g_steps", "stabilizers", *metrics]
        out: dict[str, list[dict[str, Any]]] = {}
        for (run_id, _, _), numbers in zip(rows, values, strict=True):
            point = dict(zip(keys, numbers, strict=True))
            if point["stabilizers"] is None:  # no stabilizer reported: the key is absent, as in the whole evaluation
                del point["stabilizers"]
            out.setdefault(run_id, []).append(point)
        for run_id, payload in last:
            if run_id in out:
                out[run_id][-1] = json.loads(payload)
        return out

    def references(self, suite: str) -> dict[tuple[str, str], ReferenceRow]:
        """(dataset, fingerprint) -> the real-data row of ``suite``."""
        rows = self.db.execute("SELECT dataset, fingerprint, record FROM references_ WHERE suite=?", (suite,))
        return {(r["dataset"], r["fingerprint"]): ReferenceRow.from_dict(json.loads(r["record"])) for r in rows}
