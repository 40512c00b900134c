"""The real side of every metric, computed once per protocol and cached in memory and on disk.

A reference set is identified by the dataset's name, the split, the number of samples, a hash of the samples
themselves and the extractor's protocol (name, weights hash, resize ...). A sweep constructs one evaluator
per run; all runs with an equal protocol share one extraction.

The disk cache also keys on where the features were computed (``computed_on``): the CPU kernels' settings and
thread count, or the GPU and its TF32 switches. Features computed under other kernels differ in their last
bits, and a GAN's FID then differs in its eighth digit: a reference that one process computed with the CPU
libraries free (``GANZOO_CPU_PINNING=0``) and every later pinned run loaded made the committed default
irreproducible from a fresh cache. Keyed so, a run always compares against features computed as it computes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..api.contracts import FeatureExtractor, Features
from ..core.records import atomic_write, short_hash
from ..system.device import describe_device
from ..system.download import cache_dir as default_cache_dir
from .features import extract_features, extractor_device
from .fid import feature_statistics


@dataclass
class ReferenceSet:
    """Features (and logits) of the real samples with their float64 mean and covariance.

    ``labels`` and ``num_classes``: the samples' labels and the dataset's class count, when it is labelled (the
    evaluator adds them to the cached features; the conditional metrics read them), else ``None``.
    """

    features: torch.Tensor | None  # None: statistics read from a file (ganzoo.metrics.stats_file)
    logits: torch.Tensor | None
    mu: np.ndarray
    sigma: np.ndarray
    key: dict[str, Any]
    labels: torch.Tensor | None = None
    num_classes: int | None = None

    def to(self, device: torch.device | str) -> ReferenceSet:
        logits = None if self.logits is None else self.logits.to(device)
        labels = None if self.labels is None else self.labels.to(device)
        features = None if self.features is None else self.features.to(device)
        return ReferenceSet(features, logits, self.mu, self.sigma, self.key, labels, self.num_classes)


_MEMORY: dict[str, ReferenceSet] = {}


def content_hash(data: torch.Tensor) -> str:
    """SHA-256 prefix of the tensor's bytes, computed every time.

    Not memoised by address: a worker that frees one dataset's tensor and builds the next one's gets the same
    address, shape, dtype and version counter back, and a memo keyed on those handed grid-25 runs the ring-8
    reference (mixtures-short, first sweep). Hashing costs well under a second even for CIFAR-10's 50k images.
    """
    return short_hash(data.detach().contiguous().cpu().numpy().tobytes(), 16)


def reference_key(data: torch.Tensor, extractor: FeatureExtractor, dataset: str, split: str = "reference") -> dict:
    """Everything that changes the reference features: dataset, split, N, content and the extractor protocol."""
    return {"dataset": dataset, "split": split, "n": int(data.shape[0]), "content": content_hash(data),
            **extractor.protocol()}


def computed_on(device: torch.device) -> str:
    """What features computed on ``device`` depend on besides the protocol
    (``ganzoo.system.device.describe_device``), e.g.
    "cpu (1 thread; AMD EPYC, avx512; MKL_CBWR=AVX2,STRICT, ...)" or "cuda (NVIDIA H100 80GB HBM3; tf32 matmul
    False, cudnn True)". Never the runs packed on a GPU: they change no feature."""
    return describe_device(device)


def key_id(key: dict[str, Any]) -> str:
    return short_hash(key, 20)


def _save(path: Path, ref: ReferenceSet) -> None:
    tensors = {"features": ref.features.contiguous().cpu(), "mu": torch.from_numpy(ref.mu),
               "sigma": torch.from_numpy(ref.sigma)}
    if ref.logits is not None:
        tensors["logits"] = ref.logits.contiguous().cpu()
    # Written atomically: an interrupted save must never look like a complete cache entry.
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp),
                                             metadata={"key": json.dumps(ref.key, sort_keys=True, default=str)}))


def _load(path: Path, key: dict[str, Any]) -> ReferenceSet:
    tensors = load_file(path)
    return ReferenceSet(tensors["features"], tensors.get("logits"), tensors["mu"].numpy(), tensors["sigma"].numpy(),
                        key)


def load_or_compute(extractor: FeatureExtractor, data: torch.Tensor, key: dict[str, Any],
                    cache_dir: str | os.PathLike | None = None, batch_size: int = 500,
                    use_disk: bool = True, device: torch.device | str | None = None) -> ReferenceSet:
    """The reference set for ``key``: from memory, else from ``cache_dir``, else extracted from ``data``.

    Args:
        extractor: on its device, in eval mode.
        data: the real samples, (N, *shape) in [-1, 1].
        key: from :func:`reference_key`.
        cache_dir: folder of cache files (default: ``ganzoo.system.download.cache_dir("refstats")``).
        batch_size: samples per forward pass when extracting.
        use_disk: read and write the disk cache (memory caching always applies).
        device: where extraction runs and the features are returned (default: the extractor's device, else
            the data's).

    Returns:
        The reference set with its features on ``device``.
    """
    device = torch.device(device) if device is not None else (extractor_device(extractor) or data.device)
    key = {**key, "computed_on": computed_on(device)}
    name = key_id(key)
    if name in _MEMORY:
        return _MEMORY[name].to(device)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir("refstats")
    path = path / f"{name}.safetensors"
    if use_disk and path.is_file():
        ref = _load(path, key).to(device)
    else:
        feats: Features = extract_features(extractor, data, batch_size=batch_size, device=device)
        mu, sigma = feature_statistics(feats.features)
        ref = ReferenceSet(feats.features, feats.logits, mu, sigma, key)
        if use_disk:
            path.parent.mkdir(parents=True, exist_ok=True)
            _save(path, ref)
    _MEMORY[name] = ref
    return ref


def clear_memory_cache() -> None:
    """Forget the in-process reference sets (tests use it to exercise the disk cache)."""
    _MEMORY.clear()
