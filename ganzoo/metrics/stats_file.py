"""Reference statistics as a file in the field's ``.npz`` layout (TTUR, pytorch-fid): ``mu`` and ``sigma``.

``ganzoo stats`` writes the float64 mean and covariance of a real set's features under those two keys, so any
FID implementation that reads TTUR's files reads ganzoo's. Beside them it writes what made the numbers, each a
0-d array (strings as ``numpy.str_``), so a file says which extractor, weights and samples it measured:

- ``ganzoo_stats``: the layout's version (its presence marks a file ganzoo wrote);
- ``extractor``: the registered extractor's name; ``extractor_hparams``: its hyperparameters as JSON, without
  the local weight file's path;
- the extractor's own protocol entries under their names (``weights_hash``, ``resize``, ``quantize``,
  ``input_size`` ...): what the reference cache keys on;
- the reference: ``dataset``, ``split``, ``n`` (samples measured) and ``content`` (a hash of the samples);
- ``computed_on`` (the device and kernels, informative only) and ``ganzoo_version``.

Only a mean and a covariance travel: FID (and IS, which reads only the generated side) can be computed against
such a file, the metrics that compare sets of features (KID, precision/recall, density/coverage) cannot.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.records import atomic_write, short_hash

LAYOUT_VERSION = 1
SUFFIX = ".npz"
# Keys of a ganzoo file that are not the extractor's protocol entries.
_STATISTICS = ("mu", "sigma")
_REFERENCE = ("dataset", "split", "n", "content")
_ABOUT = ("ganzoo_stats", "ganzoo_version", "extractor", "extractor_hparams", "computed_on")
UNKNOWN_N = 0  # a file without ganzoo's metadata does not say how many samples it measured


class StatsFileError(ValueError):
    """A statistics file that cannot be read, or that was made under another protocol than the evaluation's."""


@dataclass(frozen=True)
class ReferenceStats:
    """The real side of an evaluation as a statistics file holds it: a mean, a covariance and what made them.

    Args:
        mu: float64 mean, shape (D,).
        sigma: float64 covariance, shape (D, D).
        path: the file it was read from.
        extractor: the registered extractor that made it; ``None``: a file without ganzoo's metadata.
        extractor_hparams: its hyperparameters (without a weight file's path).
        extractor_protocol: the extractor's protocol entries (``weights_hash``, ``resize`` ...), less its name.
        reference: ``dataset``, ``split``, ``n`` and ``content`` of the samples measured.
    """

    mu: np.ndarray
    sigma: np.ndarray
    path: Path
    extractor: str | None = None
    extractor_hparams: Mapping[str, Any] | None = None
    extractor_protocol: Mapping[str, Any] | None = None
    reference: Mapping[str, Any] | None = None

    @property
    def annotated(self) -> bool:
        """Whether the file says what made it (ganzoo wrote it), so that its protocol can be checked."""
        return self.extractor is not None

    @property
    def n(self) -> int:
        """Samples the statistics were measured on; ``UNKNOWN_N`` for a file that does not say."""
        return int(self.reference["n"]) if self.reference else UNKNOWN_N

    def reference_key(self) -> dict[str, Any]:
        """The protocol record's ``reference``: the samples' identity as the file gives it, else the statistics'.

        A ganzoo file names the samples it measured, so evaluating against it records the reference that
        evaluating against those samples records. Another file is identified by a hash of its mean and covariance.
        """
        if self.reference:
            return dict(self.reference)
        content = short_hash(self.mu.tobytes() + self.sigma.tobytes(), 16)
        return {"dataset": f"({self.path.name})", "split": "statistics", "n": UNKNOWN_N, "content": content}

    def check_protocol(self, extractor: str, extractor_hparams: Mapping[str, Any],
                       extractor_protocol: Mapping[str, Any], feature_dim: int | None, n_real: int | None) -> None:
        """Refuse a file made under another protocol than the evaluation's; warn when the file cannot say.

        Args:
            extractor: the evaluation's registered extractor name.
            extractor_hparams: its hyperparameters, without a weight file's path.
            extractor_protocol: the evaluation extractor's ``protocol()``, less ``extractor``.
            feature_dim: its feature dimension (``None``: unknown).
            n_real: the real sample count the evaluation asks for (``None``: the file's).

        Raises:
            StatsFileError: the extractor, its protocol, the feature dimension or the sample count differ; the
                message names each difference and how to remedy it.
        """
        where = f"{self.path}"
        if feature_dim is not None and self.mu.shape[0] != feature_dim:
            raise StatsFileError(f"{where} holds statistics of {self.mu.shape[0]}-d features, but extractor "
                                 f'"{extractor}" gives {feature_dim}-d features: evaluate with the extractor that '
                                 "made the file (--extractor, or eval.extractor in the suite)")
        if not self.annotated:
            if n_real is not None:
                raise StatsFileError(f"{where} does not say how many samples it measured, so n_real = {n_real} "
                                     "cannot be checked: leave n_real (--n-real, eval.n_real) unset")
            warnings.warn(f"{where} has only mu and sigma (written by pytorch-fid, TTUR or another tool): its "
                          f'extractor, weights and resize cannot be checked against "{extractor}" '
                          f"({_describe(extractor_protocol)}), and its sample count is unknown. FID against it "
                          "is comparable only if it was made under exactly that protocol.", stacklevel=2)
            return
        differences = []
        if extractor != self.extractor:
            differences.append(f'extractor: file "{self.extractor}", evaluation "{extractor}"')
        elif dict(self.extractor_hparams or {}) != json.loads(json.dumps(dict(extractor_hparams), default=str)):
            differences.append(f"extractor hyperparameters: file {dict(self.extractor_hparams or {})}, evaluation "
                               f"{dict(extractor_hparams)}")
        theirs, ours = dict(self.extractor_protocol or {}), dict(extractor_protocol)
        for key in sorted(set(theirs) | set(ours)):
            if str(theirs.get(key, "(absent)")) != str(ours.get(key, "(absent)")):
                differences.append(f"{key}: file {theirs.get(key, '(absent)')}, evaluation {ours.get(key, '(absent)')}")
        if n_real is not None and n_real != self.n:
            differences.append(f"n_real: file {self.n}, evaluation {n_real}")
        if differences:
            raise StatsFileError(
                f"{where} was made under another protocol than this evaluation's ({'; '.join(differences)}). "
                f"Evaluate as the file was made (--extractor {self.extractor}, the weights of hash "
                f"{theirs.get('weights_hash', '?')}, {_describe(theirs)}; n_real unset), or remake the file under "
                "this protocol: ganzoo stats REAL --out FILE with the same --extractor, --weights and -n")


def _describe(protocol: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(protocol.items())) or "no protocol entries"


def _scalar(value: Any) -> np.ndarray:
    """A 0-d array that ``numpy.load(allow_pickle=False)`` reads back: numbers as they are, the rest as text."""
    if isinstance(value, bool | int | float | np.integer | np.floating):
        return np.asarray(value)
    return np.asarray(str(value))


def write_stats(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray, extractor: str,
                extractor_hparams: Mapping[str, Any], key: Mapping[str, Any]) -> Path:
    """Write ``mu`` and ``sigma`` (as float64) and the protocol that made them to ``path`` (``.npz``), atomically.

    Args:
        path: the file; its name must end in ``.npz`` (numpy would add it otherwise).
        mu, sigma: the reference's mean (D,) and covariance (D, D).
        extractor: the registered extractor's name.
        extractor_hparams: its hyperparameters, without a weight file's path (it differs between machines).
        key: the reference key (``ganzoo.metrics.reference.reference_key``): the samples' identity and the
            extractor's protocol entries, with ``computed_on``.

    Returns:
        The path written.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise StatsFileError(f"{path}: a statistics file's name must end in {SUFFIX} (numpy's archive format)")
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise StatsFileError(f"mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    from .. import __version__

    meta = {k: v for k, v in key.items() if k != "extractor"}  # the protocol's own "extractor": its class's name
    meta.update(ganzoo_stats=LAYOUT_VERSION, ganzoo_version=__version__, extractor=extractor,
                extractor_hparams=json.dumps(dict(extractor_hparams), sort_keys=True, default=str))
    clash = sorted(set(meta) & set(_STATISTICS))
    if clash:
        raise StatsFileError(f"the extractor's protocol has entries named {clash}, which the layout keeps for the "
                             "statistics: rename them in its protocol()")
    arrays = {"mu": mu, "sigma": sigma, **{k: _scalar(v) for k, v in meta.items()}}

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: numpy.savez would append .npz to a temporary name
            np.savez(handle, **arrays)

    atomic_write(path, save)
    return path


def read_stats(path: str | os.PathLike) -> ReferenceStats:
    """A statistics file: ganzoo's (with its protocol) or any ``.npz`` with ``mu`` and ``sigma`` (pytorch-fid's).

    Read with ``allow_pickle=False``: a file can hold arrays only, never code.

    Raises:
        StatsFileError: the file is missing, not an ``.npz``, or its ``mu``/``sigma`` are absent, misshapen or
            not finite.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise StatsFileError(f"No statistics file at {path}; write one with: ganzoo stats REAL --out {path.name}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise StatsFileError(f"{path} is not a readable .npz archive of arrays ({exc})") from exc
    missing = [k for k in _STATISTICS if k not in arrays]
    if missing:
        raise StatsFileError(f"{path} has no {' and no '.join(missing)}: a statistics file holds the features' mean "
                             f"'mu' and covariance 'sigma' (it holds {sorted(arrays)})")
    mu, sigma = arrays.pop("mu").astype(np.float64), arrays.pop("sigma").astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise StatsFileError(f"{path}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatsFileError(f"{path}: mu or sigma contains NaN or Inf; remake the file from finite features")
    if "ganzoo_stats" not in arrays:
        return ReferenceStats(mu, sigma, path)
    meta = {k: v.item() for k, v in arrays.items() if v.ndim == 0}
    if int(meta["ganzoo_stats"]) > LAYOUT_VERSION:
        raise StatsFileError(f"{path} was written in layout {meta['ganzoo_stats']} by ganzoo "
                             f"{meta.get('ganzoo_version', '?')}; this ganzoo reads layout {LAYOUT_VERSION}: upgrade")
    reference = {k: meta[k] for k in _REFERENCE if k in meta}
    protocol = {k: v for k, v in meta.items() if k not in (*_REFERENCE, *_ABOUT)}
    return ReferenceStats(mu, sigma, path, extractor=str(meta["extractor"]),
                          extractor_hparams=json.loads(meta.get("extractor_hparams", "{}")),
                          extractor_protocol=protocol, reference=reference)
