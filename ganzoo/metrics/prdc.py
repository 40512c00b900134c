"""Precision/recall (Kynkäänniemi et al. 2019, arXiv:1904.06991) and density/coverage (Naeem et al. 2020,
arXiv:2002.09797) from k-nearest-neighbour balls in feature space.

Distances are computed in row chunks on the features' device, so 50k x 50k sets never hold a 50k² matrix:
each chunk is at most ``max_elements`` entries. Squared distances are compared with squared radii (the
square root is monotone, so the answers are the same). A point on a ball's boundary counts as inside.
"""

from __future__ import annotations

import torch

from .features import check_features

MAX_ELEMENTS = 1 << 25  # 32M entries per distance chunk: 128 MiB in float32


def _check_pair(real: torch.Tensor, fake: torch.Tensor, k: int) -> None:
    check_features(real, "real features")
    check_features(fake, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Feature dimensions differ: real {real.shape[1]}, fake {fake.shape[1]}")
    smallest = min(real.shape[0], fake.shape[0])
    if not 1 <= k < smallest:
        raise ValueError(f"k = {k} needs 1 <= k < the smaller set size ({smallest}); "
                         "use fewer neighbours or more samples")


def _chunks(n_rows: int, n_cols: int, max_elements: int):
    step = max(1, max_elements // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _squared_distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    # |a|² + |b|² - 2ab as one fused matmul; clamp the rounding below zero.
    return (a.pow(2).sum(dim=1, keepdim=True) + b_sq - 2 * (a @ b.T)).clamp_min_(0)


def kth_neighbour_radii(x: torch.Tensor, k: int, max_elements: int = MAX_ELEMENTS) -> torch.Tensor:
    """Squared distance from each row of ``x`` to its ``k``-th nearest other row of ``x``."""
    x_sq = x.pow(2).sum(dim=1)
    radii = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for rows in _chunks(x.shape[0], x.shape[0], max_elements):
        d = _squared_distances(x[rows], x, x_sq)
        # The point itself is its own nearest neighbour (distance 0): take the (k+1)-th smallest.
        radii[rows] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def _ball_membership(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, max_elements: int):
    """For each point, how many balls (centres, radii) contain it; for each ball, whether some point is in it."""
    centres_sq = centres.pow(2).sum(dim=1)
    counts = torch.empty(points.shape[0], dtype=torch.long, device=points.device)
    covered = torch.zeros(centres.shape[0], dtype=torch.bool, device=points.device)
    for rows in _chunks(points.shape[0], centres.shape[0], max_elements):
        inside = _squared_distances(points[rows], centres, centres_sq) <= radii
        counts[rows] = inside.sum(dim=1)
        covered |= inside.any(dim=0)
    return counts, covered


def _prepare(real: torch.Tensor, fake: torch.Tensor, dtype: torch.dtype):
    # Centre both sets on the real mean: distances are unchanged but |a|² + |b|² - 2ab cancels less.
    real, fake = real.to(dtype), fake.to(device=real.device, dtype=dtype)
    mean = real.mean(dim=0)
    return real - mean, fake - mean


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3, dtype: torch.dtype = torch.float32,
                     max_elements: int = MAX_ELEMENTS) -> tuple[float, float]:
    """Improved precision and recall of ``fake`` with respect to ``real``.

    Precision is the share of fake points inside the union of real k-NN balls; recall is the share of real
    points inside the union of fake k-NN balls.

    Args:
        real, fake: (N, D) and (M, D) features on the same device.
        k: neighbourhood size (3 in the paper).
        dtype: computation dtype; float64 is exact to the last digit but slower on GPUs.
        max_elements: entries per distance chunk (memory bound).
    """
    _check_pair(real, fake, k)
    real, fake = _prepare(real, fake, dtype)
    real_counts, _ = _ball_membership(real, fake, kth_neighbour_radii(fake, k, max_elements), max_elements)
    fake_counts, _ = _ball_membership(fake, real, kth_neighbour_radii(real, k, max_elements), max_elements)
    return float((fake_counts > 0).double().mean()), float((real_counts > 0).double().mean())


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5, dtype: torch.dtype = torch.float32,
                     max_elements: int = MAX_ELEMENTS) -> tuple[float, float]:
    """Density and coverage of ``fake`` with respect to ``real``.

    Density = (1 / kM) Σ_j Σ_i 1[y_j in B(x_i)] (can exceed 1); coverage = share of real balls that contain
    at least one fake point. Arguments as for :func:`precision_recall` (k = 5 in the paper).
    """
    _check_pair(real, fake, k)
    real, fake = _prepare(real, fake, dtype)
    counts, covered = _ball_membership(fake, real, kth_neighbour_radii(real, k, max_elements), max_elements)
    return float(counts.double().sum() / (k * fake.shape[0])), float(covered.double().mean())
