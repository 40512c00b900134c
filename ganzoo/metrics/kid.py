"""Kernel Inception Distance (Bińkowski et al. 2018, arXiv:1801.01401): unbiased MMD² with a cubic kernel."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .features import check_features

DEFAULT_SEED = 2020


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> torch.Tensor:
    """k(x, y) = (gamma xᵀy + coef0)^degree with gamma = 1 / D by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, **kernel) -> float:
    """Unbiased estimate of MMD² between the samples ``x`` and ``y`` (diagonal terms left out)."""
    m, n = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = (polynomial_kernel(a, b, **kernel) for a, b in ((x, x), (y, y), (x, y)))
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def kernel_inception_distance(
    feats_real: torch.Tensor,
    feats_fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Mean and standard deviation (ddof 0) of the unbiased MMD² over random subsets.

    Each subset draws ``subset_size`` rows without replacement from each set with
    ``numpy.random.RandomState(seed).choice``, first from ``feats_real`` and then from ``feats_fake``
    (torch-fidelity's order for its first and second input), and is computed in float64 on the features'
    device. When a set has fewer rows than ``subset_size``, the subset size becomes the smaller set's size
    and a warning says so (clean-fid's choice; torch-fidelity raises instead): KID is unbiased in the
    subset size, so the mean stays comparable while the spread grows.

    Returns:
        ``(mean, std)`` as Python floats; the mean can be slightly negative.
    """
    check_features(feats_real, "feats_real")
    check_features(feats_fake, "feats_fake")
    if feats_real.shape[1] != feats_fake.shape[1]:
        raise ValueError(f"Feature dimensions differ: real {feats_real.shape[1]}, fake {feats_fake.shape[1]}")
    if subsets < 1:
        raise ValueError(f"kid subsets must be at least 1, got {subsets}")
    n_real, n_fake = feats_real.shape[0], feats_fake.shape[0]
    size = min(subset_size, n_real, n_fake)
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {n_real} real and {n_fake} fake")
    if size < subset_size:
        warnings.warn(f"KID subset size reduced from {subset_size} to {size}: only {n_real} real and {n_fake} "
                      "fake samples. The estimate stays unbiased but is noisier.", stacklevel=2)
    rng = np.random.RandomState(seed)
    kernel = {"degree": degree, "gamma": gamma, "coef0": coef0}
    values = np.empty(subsets)
    for i in range(subsets):
        x = feats_real[torch.from_numpy(rng.choice(n_real, size, replace=False)).to(feats_real.device)].double()
        y = feats_fake[torch.from_numpy(rng.choice(n_fake, size, replace=False)).to(feats_fake.device)].double()
        values[i] = mmd2_unbiased(x, y.to(x.device), **kernel)
    return float(values.mean()), float(values.std())
