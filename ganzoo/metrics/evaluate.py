"""The harness's view of metrics: an ``Evaluator`` per run, with the real side computed once per protocol."""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..api.components import Metric
from ..api.contracts import Dataset, FeatureExtractor, Features
from ..api.plugins import BLOCK_ENV, BUILTIN_DISTRIBUTION
from ..core.records import ProtocolRecord, short_hash
from ..core.registry import Registry, get_registry
from ..core.spec import EvalProtocol
from .builtin import DC_K, IS_SPLITS, PR_K, is_splits  # noqa: F401 (IS_SPLITS: re-exported, as before)
from .features import Source, extract_features, iter_batches
from .fid import feature_statistics
from .inception_score import DEFAULT_SEED
from .reference import ReferenceSet, load_or_compute, reference_key
from .stats_file import ReferenceStats, StatsFileError, read_stats

_EXTRACTORS: dict[tuple, FeatureExtractor] = {}


def resolve_extractor_name(name: str, dataset: Dataset, registry: Registry | None = None) -> str:
    """``"auto"`` becomes the dataset's own extractor, else the one registered as the default for its modality.

    Raises:
        ValueError: the extractor that ``auto`` stands for is not registered (its plugin is blocked or missing).
    """
    if name != "auto":
        return name
    registry = registry or get_registry()
    own = dataset.default_extractor
    if own is None:
        return default_extractor(dataset.spec.modality, registry)
    if ("feature_extractor", own) not in registry:
        what = getattr(dataset, "name", None) or type(dataset).__name__
        raise ValueError(f'Dataset "{what}" is evaluated with feature extractor "{own}", which is not registered. '
                         f"Install or unblock the plugin that registers it (check {BLOCK_ENV}), or name another "
                         "extractor (--extractor, or eval.extractor in the suite). See: ganzoo plugins")
    return own


def default_extractor(modality: str, registry: Registry) -> str:
    """The feature extractor tagged ``default:<modality>`` (the built-in zoo tags the TF Inception and identity)."""
    tag = f"default:{modality}"
    tagged = [c.name for c in registry.tagged("feature_extractor", tag)]
    if len(tagged) != 1:
        found = f"both {' and '.join(tagged)} are" if tagged else "none is"
        raise ValueError(f'No default feature extractor for {modality} data: one registered extractor must carry the '
                         f'tag "{tag}" and {found}. Install or unblock the plugin that registers it (the built-in '
                         f'ones are in "extractors"; check {BLOCK_ENV}), or name an extractor (--extractor, or '
                         "eval.extractor in the suite). See: ganzoo list feature_extractors")
    return tagged[0]


def build_extractor(name: str, hparams: dict[str, Any] | None, device: torch.device | str,
                    registry: Registry | None = None) -> tuple[FeatureExtractor, dict[str, Any]]:
    """The registered extractor ``name`` on ``device`` in eval mode, shared within the process.

    Returns:
        ``(extractor, hparams)`` with the hyperparameters completed by the component's defaults.
    """
    component = (registry or get_registry()).get("feature_extractor", name)
    full = component.hparams(hparams)
    key = (component.plugin, name, id(component.factory), json.dumps(full, sort_keys=True, default=str), str(device))
    if key not in _EXTRACTORS:
        extractor = component.factory(**full)
        if not isinstance(extractor, FeatureExtractor):
            raise ValueError(f'feature extractor "{name}" (plugin {component.plugin}) returned '
                             f"{type(extractor).__name__}; it must return a ganzoo.FeatureExtractor")
        _EXTRACTORS[key] = extractor.to(device).eval().requires_grad_(False)
    return _EXTRACTORS[key], full


def compute_metrics(real: ReferenceSet, fake: Features, protocol: EvalProtocol,
                    registry: Registry | None = None) -> dict[str, float]:
    """The registered metrics named in ``protocol.metrics`` between a reference set and generated features.

    Metrics are computed in registration order (the built-in ones first), whatever the order of
    ``protocol.metrics``; one that needs logits (IS) is left out when the extractor gives none. The metrics of
    conditional generators (``needs_labels``) are computed whenever both sides carry labels (``fake.labels``:
    the generator was conditional), named in ``protocol.metrics`` or not, and never without them.

    Returns:
        A flat dict of every value the metrics return (``fid``, ``is_mean``, ``is_std``, ...).
    """
    registry = registry or get_registry()
    wanted = set(registry.check_metrics(protocol.metrics))
    out: dict[str, float] = {}
    labelled = fake.labels is not None and real.labels is not None
    for metric in registry.metrics():
        chosen = labelled if metric.needs_labels else metric.name in wanted
        if chosen and not (metric.needs_logits and fake.logits is None):
            _merge(out, metric, metric.compute(real, fake, protocol))
    return out


def _merge(out: dict[str, float], metric: Metric, result) -> None:
    """``result`` of ``metric.compute`` into ``out``, checked: numbers, its columns present, nothing overwritten."""
    where = f'metric "{metric.name}" (plugin {metric.plugin})'
    values = {metric.name: result} if isinstance(result, numbers.Real) else result
    if not isinstance(values, Mapping) or not all(isinstance(v, numbers.Real) for v in values.values()):
        raise ValueError(f"{where} returned {result!r}; compute must return a float or a dict of floats")
    missing = [c for c in metric.columns if c not in values]
    clash = [k for k in values if k in out]
    if missing or clash:
        raise ValueError(f"{where} returned {sorted(values)}: "
                         + (f"its columns {missing} are missing" if missing else f"{clash} are already computed"))
    out.update({key: float(value) for key, value in values.items()})


def fingerprint_of(record: ProtocolRecord | Mapping[str, Any]) -> str:
    """Short stable hash of a protocol record: equal records give equal fingerprints.

    Args:
        record: a ``ProtocolRecord`` or its ``to_dict()`` (its ``schema`` is not hashed, as
            ``ProtocolRecord.fingerprint`` does not hash it).
    """
    if isinstance(record, ProtocolRecord):
        return record.fingerprint
    return short_hash({k: v for k, v in record.items() if k != "schema"}, 12)


@dataclass
class RealSamples:
    """A real side that is not a registered dataset: a folder of images, a checkpoint's samples.

    Its reference key holds a hash of the samples themselves (computed while they stream through the
    extractor), so two equal sets give equal protocol records; it is never cached on disk.

    Args:
        source: a tensor, a sample function or an iterable of batches (see ``ganzoo.metrics.features``).
        n: how many samples to take from it.
        name: what the samples are, recorded as the reference's ``dataset`` (e.g. ``"(folder)"``).
    """

    source: Source
    n: int
    name: str


def _hashed(batches: Iterable[torch.Tensor], digest) -> Iterator[torch.Tensor]:
    """The batches unchanged, each one's float32 bytes fed to ``digest`` (equal to ``content_hash`` of them all)."""
    for batch in batches:
        digest.update(batch.detach().float().contiguous().cpu().numpy().tobytes())
        yield batch


def _with_labels(real: ReferenceSet, dataset: Dataset | RealSamples, n_real: int | None,
                 device: torch.device) -> ReferenceSet:
    """The reference set with the dataset's labels of its samples (a copy: the cached one is shared)."""
    reference_labels = getattr(dataset, "reference_labels", None)  # a duck-typed dataset may have none
    labels = reference_labels(n_real) if callable(reference_labels) else None
    num_classes = getattr(getattr(dataset, "spec", None), "num_classes", None)
    if labels is None or num_classes is None:
        return real
    if len(labels) != len(real.features):
        raise ValueError(f"{type(dataset).__name__}.reference_labels gave {len(labels)} labels for "
                         f"{len(real.features)} reference samples: it must label reference(n) one to one")
    return replace(real, labels=labels.to(device), num_classes=int(num_classes))


def reference_set(real: Dataset | RealSamples | ReferenceStats, extractor: FeatureExtractor, n_real: int | None,
                  batch_size: int, device: torch.device, cache_dir=None) -> ReferenceSet:
    """The real side of every evaluation: a dataset's first ``n_real`` samples (cached), ``RealSamples``, or a
    statistics file's mean and covariance (no features: ``features`` is ``None``).

    Args:
        real: a dataset (``dataset.reference(n_real)`` is its fixed real set), samples from elsewhere, or
            statistics read by ``ganzoo.metrics.stats_file.read_stats``.
        extractor: the protocol's extractor, on ``device``.
        n_real: samples of a dataset's reference (``None``: all); ignored for ``RealSamples`` (their ``n``).
        batch_size: samples per forward pass.
        device: where the features live.
        cache_dir: folder of the reference cache (default: ``ganzoo.system.download.cache_dir("refstats")``).
    """
    if isinstance(real, ReferenceStats):
        return ReferenceSet(None, None, real.mu, real.sigma, key={**real.reference_key(), **extractor.protocol()})
    if isinstance(real, RealSamples):
        digest = hashlib.sha256()
        feats = extract_features(extractor, _hashed(iter_batches(real.source, real.n, batch_size), digest),
                                 batch_size=batch_size, device=device)
        key = {"dataset": real.name, "split": "samples", "n": int(feats.features.shape[0]),
               "content": digest.hexdigest()[:16], **extractor.protocol()}
        return ReferenceSet(feats.features, feats.logits, *feature_statistics(feats.features), key=key)
    data = real.reference(n_real)
    dataset_name = getattr(real, "name", None) or type(real).__name__
    key = reference_key(data, extractor, dataset_name)
    return load_or_compute(extractor, data, key, cache_dir=cache_dir, batch_size=batch_size, device=device)


def _without_path(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """An extractor's hyperparameters as records keep them: a weight file's path differs between machines; its
    hash (in the extractor's protocol) is what matters."""
    return {k: v for k, v in hparams.items() if k != "weights"}


class Evaluator:
    """Evaluates generated samples against a reference set under one ``EvalProtocol``.

    The one evaluation path: training, the leaderboards' real-data rows and ``ganzoo eval`` (of run
    checkpoints, and of ``REAL FAKE`` pairs) all evaluate through it, so equal protocols give equal
    :meth:`protocol_record` and fingerprints.

    Args:
        dataset: the real data; ``dataset.reference(protocol.n_real)`` is the fixed real set. ``RealSamples``
            (a folder, a checkpoint's samples) need an extractor named in ``protocol.extractor``. A statistics
            file (``ReferenceStats``, or ``protocol.reference`` naming one) replaces the real set by its mean and
            covariance: only metrics that need no real features (FID, IS) can be computed against it, and its
            protocol must be the evaluation's (``ReferenceStats.check_protocol``).
        protocol: extractor (``"auto"``: the dataset's), sample counts, metrics and KID settings.
        device: where extraction and the nearest-neighbour metrics run.
        cache_dir: folder of the reference cache (default: ``ganzoo.system.download.cache_dir("refstats")``).
        registry: where the extractor is looked up (default: the process registry).
    """

    def __init__(self, dataset: Dataset | RealSamples, protocol: EvalProtocol, device, cache_dir=None,
                 registry: Registry | None = None):
        self.registry = registry or get_registry()
        self.metrics = self.registry.check_metrics(protocol.metrics)
        if protocol.n_fake < 2:
            raise ValueError(f"EvalProtocol.n_fake must be at least 2, got {protocol.n_fake}")
        stats = dataset if isinstance(dataset, ReferenceStats) else None
        if stats is None and protocol.reference is not None:
            stats = read_stats(protocol.reference)
        if stats is not None:
            self._check_statistics_metrics(stats)
        if isinstance(dataset, RealSamples | ReferenceStats) and protocol.extractor == "auto":
            what = f'The real samples "{dataset.name}" are' if isinstance(dataset, RealSamples) else \
                f"The statistics file {dataset.path} is"
            raise ValueError(f'{what} not a registered dataset, so the extractor "auto" stands for nothing: '
                             "name one (e.g. the one tagged default:image)")
        self.protocol, self.device = protocol, torch.device(device)
        self.extractor_name = resolve_extractor_name(protocol.extractor, dataset, self.registry)
        self.extractor, self.hparams = build_extractor(self.extractor_name, protocol.extractor_hparams, self.device,
                                                       self.registry)
        if stats is not None:
            stats.check_protocol(self.extractor_name, _without_path(self.hparams),
                                 {k: v for k, v in self.extractor.protocol().items() if k != "extractor"},
                                 getattr(self.extractor, "feature_dim", None), protocol.n_real)
            self.real = reference_set(stats, self.extractor, None, protocol.batch_size, self.device)
            return  # no labels: the conditional metrics compare per-class features, which a file does not hold
        self.real = reference_set(dataset, self.extractor, protocol.n_real, protocol.batch_size, self.device,
                                  cache_dir)
        self.real = _with_labels(self.real, dataset, protocol.n_real, self.device)

    def _check_statistics_metrics(self, stats: ReferenceStats) -> None:
        """Refuse metrics that compare the real features themselves: a statistics file holds a mean and a
        covariance only."""
        needing = [m.name for m in self.registry.metrics() if m.name in self.metrics and m.needs_real_features]
        if needing:
            possible = [m.name for m in self.registry.metrics() if not m.needs_real_features and not m.needs_labels]
            raise StatsFileError(f"{stats.path} holds the real features' mean and covariance only, but "
                                 f"{', '.join(needing)} need the real features themselves. Compute "
                                 f"{', '.join(possible)} against it (--metrics, eval.metrics), or give the real "
                                 "images or dataset instead of the file")

    def __call__(self, fake: Source, labels: torch.Tensor | None = None) -> dict[str, float]:
        """The metrics of ``protocol.n_fake`` generated samples against the reference set.

        Args:
            fake: a sample function ``sample_fn(n)`` (drawn in batches), a tensor or an iterable of batches
                (e.g. a folder of images) holding at least ``protocol.n_fake`` samples.
            labels: the class each of the ``n_fake`` samples was generated for (a conditional G): the
                conditional metrics are computed too.

        Raises:
            ValueError: ``fake`` holds fewer than ``protocol.n_fake`` samples, ``labels`` are not one per sample,
                or labels are given for a real side that has none.
        """
        features = extract_features(self.extractor, fake, n=self.protocol.n_fake,
                                    batch_size=self.protocol.batch_size, device=self.device)
        if features.features.shape[0] != self.protocol.n_fake:
            raise ValueError(f"The generated side gave {features.features.shape[0]} samples, but the protocol "
                             f"evaluates n_fake = {self.protocol.n_fake}: give more samples or lower n_fake")
        if labels is not None and self.real.features is None:
            labels = None  # a statistics file: the conditional metrics need per-class real features
        if labels is not None:
            if tuple(labels.shape) != (self.protocol.n_fake,):
                raise ValueError(f"labels must hold one class per generated sample, shape ({self.protocol.n_fake},); "
                                 f"got {tuple(labels.shape)}")
            if self.real.labels is None:
                raise ValueError("Generated samples come with labels but the real side has none: the conditional "
                                 "metrics need a labelled dataset (Dataset.labels)")
            features = replace(features, labels=labels.to(features.features.device))
        return compute_metrics(self.real, features, self.protocol, self.registry)

    def record(self) -> ProtocolRecord:
        """Everything that changes the numbers: extractor and weights, resize, sample counts, metric settings."""
        extractor = {k: v for k, v in self.extractor.protocol().items() if k != "extractor"}
        hparams = _without_path(self.hparams)
        return ProtocolRecord(
            extractor=self.extractor_name,
            extractor_hparams=hparams,
            extractor_protocol=extractor,
            reference={k: self.real.key[k] for k in ("dataset", "split", "n", "content")},
            n_real=int(self.real.key["n"] if self.real.features is None else self.real.features.shape[0]),
            n_fake=int(self.protocol.n_fake),
            metrics=tuple(sorted(self.metrics)),
            kid_subsets=int(self.protocol.kid_subsets),
            kid_subset_size=int(self.protocol.kid_subset_size),
            is_splits=is_splits(self.protocol.n_fake),
            pr_k=PR_K,
            dc_k=DC_K,
            seed=DEFAULT_SEED,
            metric_versions=self._plugin_metric_versions(),
        )

    def protocol_record(self) -> dict[str, Any]:
        """:meth:`record` as results and the store hold it (``ProtocolRecord.to_dict``)."""
        return self.record().to_dict()

    def _plugin_metric_versions(self) -> dict[str, str]:
        """A plugin's metrics with the version that computed them: a new release of a plugin can change its numbers.

        Empty for the built-in metrics, whose settings are the record's own keys, so their fingerprints stay.
        """
        return {m.name: f"{m.distribution} {m.version}".strip() for m in self.registry.metrics()
                if m.name in self.metrics and m.distribution != BUILTIN_DISTRIBUTION}

    @property
    def fingerprint(self) -> str:
        """Short stable hash of :meth:`record` (``ProtocolRecord.fingerprint``)."""
        return self.record().fingerprint
