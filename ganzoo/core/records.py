"""The records ganzoo writes to disk, each with the one function that writes it and the one that reads it.

- ``RunResult``: what a run leaves for the driver (the store's row, a finished checkpoint's ``result``);
  versioned (``RESULT_SCHEMA``), so a renamed field still loads from an old checkpoint.
- ``Evaluation``: one evaluation of a run, whole (``metrics`` nested) or as a report's curve point (flat).
- ``SuiteRecord``: what the reporter needs from a suite (design, baselines, judgements), in the store.
- ``ProtocolRecord``: everything an evaluation's numbers depend on, made by
  ``ganzoo.metrics.evaluate.Evaluator.record``; its ``fingerprint`` names the (dataset, protocol) table a run ranks in.
- ``ReferenceRow``: real data through one (dataset, protocol): the leaderboard's real-data row, in the store.

``COMPARED_METRICS`` are the final metrics a reproduction of committed results compares bit for bit.

Statuses are named here and nowhere else, so the store, the driver, the CLI and the reporter agree on them.
``atomic_write`` (at home in ``ganzoo.system.files``) and ``short_hash`` are the one way files are replaced and ids
are hashed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.judgement import Judgement
from ..system.files import atomic_write  # noqa: F401 (its home is the API layer, for ganzoo.system.download)

PENDING = "pending"  # asked for by a suite, not started
RUNNING = "running"  # dispatched to an executor (or left so by a sweep that was killed)
DONE = "done"  # trained to the end of its budget
DIVERGED = "diverged"  # a loss or a sample became non-finite: a result about the combination
FAILED = "failed"  # an exception: usually a bug or a missing file, so it is retried next time
FINISHED = (DONE, DIVERGED)  # never trained again


def short_hash(value: Any, length: int = 12, separators: tuple[str, str] | None = None) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``value``: bytes and text as they are, anything else as
    key-sorted JSON (``separators`` as ``json.dumps`` takes them). Run ids, protocol fingerprints, experiment keys
    and content hashes are all made here, so equal content gives an equal id everywhere."""
    if isinstance(value, str):
        value = value.encode()
    elif not isinstance(value, bytes | bytearray | memoryview):
        value = json.dumps(value, sort_keys=True, default=str, separators=separators).encode()
    return hashlib.sha256(value).hexdigest()[:length]


def read_schema(data: dict[str, Any], what: str, newest: int, missing: int) -> int:
    """Pop ``data``'s ``schema`` and return it (``missing`` where it has none: written before it existed).

    Raises:
        ValueError: a schema newer than ``newest``, the newest this ganzoo reads.
    """
    version = data.pop("schema", missing)
    if not isinstance(version, int) or version > newest:
        raise ValueError(f"This {what} has schema {version!r}, but this ganzoo reads up to {newest}: "
                         "upgrade ganzoo to read it")
    return version


@dataclass
class Evaluation:
    """One evaluation of a run during training: where it was taken and the metrics it measured.

    On disk (the store's ``evals`` payload, a checkpoint's ``evals``) it is ``to_dict()``: the metrics nested
    under ``"metrics"``. A report's curve point (``Store.evals_by_run(metrics=...)``) and stores written before
    the nesting hold the metrics at the top level; ``from_dict`` and ``metrics_of`` read both.
    """

    kimg: float
    g_steps: int
    d_steps: int = 0
    seconds: float = 0.0
    d_loss: float = float("nan")
    g_loss: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)
    stabilizers: dict[str, float] = field(default_factory=dict)  # "<stabilizer>.<name>": Stabilizer.report()'s values

    def to_dict(self) -> dict[str, Any]:
        out = {"kimg": self.kimg, "g_steps": self.g_steps, "d_steps": self.d_steps, "seconds": self.seconds,
               "d_loss": self.d_loss, "g_loss": self.g_loss, "metrics": dict(self.metrics)}
        if self.stabilizers:  # only where a stabilizer reports: other records stay as they were
            out["stabilizers"] = dict(self.stabilizers)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        fields = {f: data[f] for f in ("kimg", "g_steps", "d_steps", "seconds", "d_loss", "g_loss") if f in data}
        return cls(**{"kimg": float("nan"), "g_steps": 0, **fields}, metrics=dict(cls.metrics_of(data)),
                   stabilizers=dict(data.get("stabilizers") or {}))

    @staticmethod
    def metrics_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
        """The metrics of an evaluation in either shape (called per evaluation by reports: no copy)."""
        nested = data.get("metrics")
        return nested if isinstance(nested, Mapping) else data


RESULT_SCHEMA = 1
# Renamed RunResult fields, per schema version they were renamed in: {version: {old name: new name}}. A
# checkpoint written before a rename still loads. Version 0 is every result written before the schema existed.
RESULT_RENAMES: dict[int, dict[str, str]] = {}


@dataclass
class RunResult:
    """What a worker returns to the driver, the only writer of the store.

    Written to a finished checkpoint by ``to_dict`` and read back by ``from_dict`` only: never ``asdict`` or
    ``RunResult(**...)``, so that its fields can change without breaking the checkpoints already on disk.
    """

    run_id: str
    status: str  # DONE, DIVERGED or FAILED
    error: str | None = None
    kimg: float = 0.0
    g_steps: int = 0
    d_steps: int = 0
    seconds: float = 0.0
    eval_seconds: float = 0.0
    imgs_per_s: float = 0.0
    device: str = ""
    peak_mem_mb: float | None = None
    capped: bool = False
    evals: list[dict[str, Any]] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    artifacts: dict[str, str] = field(default_factory=dict)
    # How many times the run started training, this time included (its folder's attempt log, ganzoo.run.attempts);
    # 0 where nothing counted them. More than 1: a retried Ray task, a sweep run again after a kill.
    attempts: int = 0
    # The G step of the checkpoint its last start resumed from: 0 from scratch, None where not recorded.
    resumed_from: int | None = None

    @property
    def protocol_record(self) -> ProtocolRecord | None:
        """``protocol`` typed (``None``: a run that failed before its evaluator was built)."""
        return ProtocolRecord.from_dict(self.protocol) if self.protocol else None

    @property
    def final(self) -> dict[str, Any]:
        return dict(Evaluation.metrics_of(self.evals[-1])) if self.evals else {}

    def to_dict(self) -> dict[str, Any]:
        """The result as a checkpoint holds it: its fields and ``schema``, the version of their names."""
        return {"schema": RESULT_SCHEMA,
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """A result from ``to_dict``, of this version or an older one (no ``schema``: written before it existed).

        Raises:
            ValueError: a newer schema than this ganzoo reads, or fields it does not know.
        """
        data = dict(data)
        version = read_schema(data, "run result", RESULT_SCHEMA, missing=0)
        for since in sorted(RESULT_RENAMES):
            if version < since:
                data = {RESULT_RENAMES[since].get(key, key): value for key, value in data.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"This run result (schema {version}) has fields {unknown} that RunResult does not know; "
                             "a renamed field needs its entry in ganzoo.core.records.RESULT_RENAMES")
        return cls(**data)


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset of a suite as the reporter reads it: its baseline combination and its judgement at this budget."""

    baseline: Mapping[str, str] | None = None
    judgement: Judgement | None = None
    design: str | None = None  # the dataset's own design where it is not the suite's


SUITE_SCHEMA = 1
DESIGNS = ("one-factor", "full", "fractional")
CROSSED_DESIGNS = ("full", "fractional")  # analysed as effects across cells, not rows against a baseline


@dataclass(frozen=True)
class SuiteRecord:
    """What the reporter needs from a suite: its design, and each dataset's baseline and judgement.

    Written by ``ganzoo.sweep.driver.suite_record`` through ``to_dict`` into the store, read back by ``from_dict``
    (records written before ``schema`` existed load the same).
    """

    design: str = "one-factor"
    description: str = ""
    source: str = ""
    datasets: Mapping[str, DatasetRecord] = field(default_factory=dict)

    def design_of(self, dataset: str) -> str:
        """The design ``dataset`` trained under: its own, else the suite's."""
        record = self.datasets.get(dataset)
        return (record.design if record is not None and record.design else None) or self.design

    def crossed(self, datasets) -> bool:
        """Whether any of ``datasets`` trained under a crossed design (its table gets an effects analysis)."""
        return any(self.design_of(str(name)) in CROSSED_DESIGNS for name in set(datasets))

    def baseline(self, dataset: str) -> dict[str, str] | None:
        """The row every other row of ``dataset`` is tested against: one-factor designs only."""
        record = self.datasets.get(dataset)
        if self.design_of(dataset) != "one-factor" or record is None or not record.baseline:
            return None
        return dict(record.baseline)

    def judgement(self, dataset: str) -> Judgement | None:
        """The judgement recorded at bench time, or ``None`` (the installed dataset's, or FID, then applies)."""
        record = self.datasets.get(dataset)
        return None if record is None else record.judgement

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SUITE_SCHEMA, "design": self.design, "description": self.description, "source": self.source,
                "datasets": {name: {"baseline": None if d.baseline is None else dict(d.baseline),
                                    "judgement": None if d.judgement is None else d.judgement.as_dict(),
                                    **({"design": d.design} if d.design else {})}
                             for name, d in self.datasets.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | SuiteRecord | None) -> SuiteRecord:
        """A record from ``to_dict`` (``{}`` or ``None``: a suite with nothing recorded); a SuiteRecord as it is."""
        if isinstance(data, SuiteRecord):
            return data
        data = data or {}
        datasets = {name: DatasetRecord(baseline=d.get("baseline"),
                                        judgement=Judgement.from_dict(d["judgement"]) if d.get("judgement") else None,
                                        design=d.get("design"))
                    for name, d in (data.get("datasets") or {}).items()}
        return cls(design=data.get("design", "one-factor"), description=data.get("description") or "",
                   source=data.get("source") or "", datasets=datasets)


REFERENCE_SCHEMA = 1


@dataclass(frozen=True)
class ReferenceRow:
    """Real samples evaluated like a generator's under one (dataset, protocol): a leaderboard's real-data row.

    Written by ``ganzoo.sweep.real_data`` through ``to_dict`` into the store (``Store.set_reference``), read
    back by ``from_dict`` (``Store.references``); a row stored before ``schema`` existed is schema 1.

    Args:
        key: which experiments of a grid it stands beside (dataset, its hyperparameters, protocol, how runs were
            trained), with `` +labels`` when it carries the conditional metrics too; a sweep skips a key it has.
        metrics: the metrics of the real samples, named as a run's are.
        note: what the real samples are (``Dataset.real_samples_note``).
        n: how many real samples were evaluated (the protocol's ``n_fake``).
    """

    key: str
    metrics: Mapping[str, float]
    note: str
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"schema": REFERENCE_SCHEMA, "key": self.key, "metrics": dict(self.metrics), "note": self.note,
                "n": self.n}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceRow:
        """A row from ``to_dict``, of this schema or written before it existed."""
        data = dict(data)
        read_schema(data, "real-data row", REFERENCE_SCHEMA, missing=1)
        return cls(key=data["key"], metrics=dict(data["metrics"]), note=data["note"], n=int(data["n"]))


# The final metrics a reproduction compares bit for bit (benchmarks/reproduce_results.py, the default bench's test):
# every column a leaderboard ranks, the registered metrics' and the datasets' own.
COMPARED_METRICS = ("fid", "is_mean", "kid_mean", "precision", "recall", "density", "coverage", "cond_accuracy",
                    "intra_fid", "modes", "high_quality", "mode_kl", "classes", "class_kl")


PROTOCOL_SCHEMA = 1
# The keys of a protocol record other than the extractor's own (``ProtocolRecord.extractor_protocol``).
_PROTOCOL_KEYS = ("extractor", "extractor_hparams", "reference", "n_real", "n_fake", "metrics", "kid_subsets",
                  "kid_subset_size", "is_splits", "pr_k", "dc_k", "seed")
_PROTOCOL_OPTIONAL = ("metric_versions", "training_compute")


@dataclass(frozen=True)
class ProtocolRecord:
    """Everything an evaluation's numbers depend on; runs with equal records are ranked in one table.

    Made by ``ganzoo.metrics.evaluate.Evaluator.record`` (with ``training_compute`` added by
    ``ganzoo.run.train.protocol_of`` for runs not trained in fp32), stored as ``to_dict()`` in a run's result and
    the store, read back by ``from_dict``. On disk it is one flat dict: the extractor's own protocol entries
    (``weights_hash``, ``resize`` ...) sit beside the record's keys, as they always have, so that fingerprints
    never change.

    Args:
        extractor: the registered feature extractor's name.
        extractor_hparams: its hyperparameters, without the local weight file's path (its hash is in
            ``extractor_protocol``).
        extractor_protocol: what the extractor reports changes its features, less its name (``weights_hash``,
            ``resize``, ...).
        reference: the real set: ``dataset``, ``split``, ``n`` and ``content`` (a hash of the samples).
        n_real: real samples the reference holds.
        n_fake: generated samples per evaluation.
        metrics: the metrics computed, sorted.
        kid_subsets: KID's subset count.
        kid_subset_size: KID's subset size.
        is_splits: IS's splits.
        pr_k: the k of precision and recall.
        dc_k: the k of density and coverage.
        seed: the seed of the metrics' own randomness (IS's and KID's subsets).
        metric_versions: a plugin metric's distribution and version, by metric; empty for the built-in ones.
        training_compute: how a run was trained when not in plain fp32 (``ganzoo.core.spec.Compute`` as a dict).
    """

    extractor: str
    extractor_hparams: Mapping[str, Any]
    extractor_protocol: Mapping[str, Any]
    reference: Mapping[str, Any]
    n_real: int
    n_fake: int
    metrics: tuple[str, ...]
    kid_subsets: int
    kid_subset_size: int
    is_splits: int
    pr_k: int
    dc_k: int
    seed: int
    metric_versions: Mapping[str, str] = field(default_factory=dict)
    training_compute: Mapping[str, Any] | None = None

    def __post_init__(self):
        clash = sorted(set(self.extractor_protocol) & {"schema", *_PROTOCOL_KEYS, *_PROTOCOL_OPTIONAL})
        if clash:
            raise ValueError(f'Feature extractor "{self.extractor}" reports {clash} in its protocol(), but the '
                             "protocol record uses those keys itself: rename them in the extractor's protocol()")

    @property
    def weights_hash(self) -> str | None:
        """The extractor's weights hash, when it has weights."""
        return self.extractor_protocol.get("weights_hash")

    def with_training_compute(self, compute: Mapping[str, Any]) -> ProtocolRecord:
        """This record for runs trained under ``compute``: they rank in tables of their own."""
        return dataclasses.replace(self, training_compute=dict(compute))

    def content(self) -> dict[str, Any]:
        """The record as its fingerprint hashes it: ``to_dict()`` without ``schema``, which says how the record is
        spelled, not what the numbers were measured with."""
        data = {"extractor": self.extractor, "extractor_hparams": dict(self.extractor_hparams),
                **self.extractor_protocol,
                "reference": dict(self.reference), "n_real": self.n_real, "n_fake": self.n_fake,
                "metrics": list(self.metrics), "kid_subsets": self.kid_subsets,
                "kid_subset_size": self.kid_subset_size, "is_splits": self.is_splits, "pr_k": self.pr_k,
                "dc_k": self.dc_k, "seed": self.seed}
        # Absent rather than empty: records made before these keys existed keep their fingerprints.
        if self.metric_versions:
            data["metric_versions"] = dict(self.metric_versions)
        if self.training_compute is not None:
            data["training_compute"] = dict(self.training_compute)
        return data

    @property
    def fingerprint(self) -> str:
        """The first 12 hex digits of the SHA-256 of ``content()``: equal records give equal fingerprints."""
        return short_hash(self.content(), 12)

    def to_dict(self) -> dict[str, Any]:
        """The record as results and the store hold it: ``content()`` and ``schema``."""
        return {"schema": PROTOCOL_SCHEMA, **self.content()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | ProtocolRecord) -> ProtocolRecord:
        """A record from ``to_dict``, of this schema or written before it existed; a ProtocolRecord as it is.

        Raises:
            ValueError: a newer schema than this ganzoo reads, or a key the record cannot do without.
        """
        if isinstance(data, ProtocolRecord):
            return data
        data = dict(data)
        version = read_schema(data, "protocol record", PROTOCOL_SCHEMA, missing=0)
        missing = [key for key in _PROTOCOL_KEYS if key not in data]
        if missing:
            raise ValueError(f"This protocol record (schema {version}) lacks {missing}: it was not written by "
                             "ProtocolRecord.to_dict (see ganzoo.metrics.evaluate.Evaluator.record)")
        own = {key: data.pop(key) for key in (*_PROTOCOL_KEYS, *_PROTOCOL_OPTIONAL) if key in data}
        own["metrics"] = tuple(own["metrics"])
        return cls(**own, extractor_protocol=data)  # what is left is the extractor's own protocol
