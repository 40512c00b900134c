"""Fréchet distance on 2048-d statistics: ganzoo's eigenvalue form against the scipy.linalg.sqrtm path.

Run: python benchmarks/bench_fid.py [--dim 2048] [--samples 10000] [--repeats 3]

All paths run in this process on the same statistics, alternating. The speed-up compares best-of-N times
(timeit's convention: on a shared machine the minimum is the least disturbed measurement); medians are shown
too. The last column is the relative difference of each distance from the sqrtm one. The sqrtm path is the
formulation of pytorch-fid / the TTUR code: sqrtm(Σ1 Σ2), real part, trace. torch-fidelity's general eigvals
form is shown for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.linalg
from tabulate import tabulate

from ganzoo.metrics import feature_statistics, frechet_distance


def fid_sqrtm(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid_eigvals(mu1, s1, mu2, s2) -> float:
    diff = mu1 - mu2
    tr_covmean = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def inception_like_statistics(dim: int, samples: int, seed: int):
    """Statistics of non-negative features with a decaying spectrum, like ReLU-pooled network features."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) * (np.arange(1, dim + 1) ** -0.7)
    feats = np.abs(rng.standard_normal((samples, dim)) @ mixing.T).astype(np.float32)
    return feature_statistics(feats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    stats = inception_like_statistics(args.dim, args.samples, 0) + inception_like_statistics(args.dim, args.samples, 1)
    paths = {"ganzoo (Cholesky + eigvalsh)": frechet_distance, "scipy.linalg.sqrtm": fid_sqrtm,
             "numpy eigvals (torch-fidelity)": fid_eigvals}
    times = {name: [] for name in paths}
    values = {}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            values[name] = fn(*stats)
            times[name].append(time.perf_counter() - start)
    base = min(times["scipy.linalg.sqrtm"])
    reference = values["scipy.linalg.sqrtm"]
    rows = [(name, f"{min(t):.3f}", f"{statistics.median(t):.3f}", f"{base / min(t):.1f}x", f"{values[name]:.10g}",
             f"{abs(values[name] - reference) / abs(reference):.1e}") for name, t in times.items()]
    print(f"Fréchet distance, {args.dim}-d statistics of {args.samples} samples, {args.repeats} rounds")
    print(tabulate(rows, headers=("path", "best s", "median s", "speed-up vs sqrtm", "distance", "rel. diff")))


if __name__ == "__main__":
    main()
