"""Precision/recall and density/coverage against a brute-force computation, closed forms and published values."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from ganzoo.metrics import density_coverage, precision_recall


def brute_force(real, fake, k):
    """The definitions, written out with full distance matrices in float64."""
    def radii(x):
        return np.partition(cdist(x, x), k, axis=1)[:, k]  # index 0 is the point itself

    real_r, fake_r = radii(real), radii(fake)
    d = cdist(real, fake)
    inside_real = d <= real_r[:, None]
    return {"precision": inside_real.any(axis=0).mean(), "recall": (d <= fake_r[None, :]).any(axis=1).mean(),
            "density": inside_real.sum(axis=0).mean() / k, "coverage": (d.min(axis=1) <= real_r).mean()}


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    return rng.standard_normal((700, 24)), rng.standard_normal((600, 24)) * 1.1 + 0.2


@pytest.mark.parametrize("k", [3, 5])
def test_matches_brute_force(sets, k):
    real, fake = sets
    expected = brute_force(real, fake, k)
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    precision, recall = precision_recall(r, f, k=k, dtype=torch.float64)
    density, coverage = density_coverage(r, f, k=k, dtype=torch.float64)
    assert (precision, recall) == pytest.approx((expected["precision"], expected["recall"]), abs=1e-12)
    assert (density, coverage) == pytest.approx((expected["density"], expected["coverage"]), abs=1e-12)


def test_float32_and_chunking_agree_with_float64(sets):
    r, f = (torch.from_numpy(a) for a in sets)
    whole = precision_recall(r, f, dtype=torch.float64) + density_coverage(r, f, dtype=torch.float64)
    # 1000 entries per chunk forces one or two rows at a time through every chunked loop.
    chunked = precision_recall(r.float(), f.float(), max_elements=1000) + density_coverage(r.float(), f.float(),
                                                                                          max_elements=1000)
    assert chunked == pytest.approx(whole, abs=2e-3)  # at most a boundary point or two may flip in float32


def test_identical_sets_closed_form():
    # Every point is its own fake twin: all balls covered, and each real ball holds itself plus k neighbours.
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert precision_recall(x, x.clone()) == (1.0, 1.0)
    density, coverage = density_coverage(x, x.clone(), k=5)
    assert coverage == 1.0 and density == pytest.approx(6 / 5)


def test_disjoint_sets_score_zero():
    x = torch.randn(100, 4, generator=torch.Generator().manual_seed(2))
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)
    assert density_coverage(x, x + 100.0) == (0.0, 0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="k = 5"):
        density_coverage(torch.randn(5, 2), torch.randn(10, 2), k=5)
    with pytest.raises(ValueError, match="dimensions differ"):
        precision_recall(torch.randn(10, 2), torch.randn(10, 3))
    with pytest.raises(ValueError, match="NaN"):
        precision_recall(torch.randn(10, 2), torch.full((10, 2), float("nan")))


@pytest.mark.slow
def test_published_gaussian_example():
    """Naeem et al.'s example: 10k vs 10k samples of N(0, I) in 1000-d, k = 5 for all four metrics.

    Their README reports P 0.4772, R 0.4705, D 1.0555, C 0.9735 for one unseeded draw. In 1000-d the k-NN
    balls vary a lot between draws (we saw D from 0.91 to 1.21 over seeds at 5k), hence the tolerances;
    the exact check is test_matches_brute_force.
    """
    rng = np.random.default_rng(2020)
    real, fake = (torch.from_numpy(rng.standard_normal((10_000, 1000))).float() for _ in range(2))
    precision, recall = precision_recall(real, fake, k=5)
    density, coverage = density_coverage(real, fake, k=5)
    assert precision == pytest.approx(0.4772, abs=0.04) and recall == pytest.approx(0.4705, abs=0.04)
    assert density == pytest.approx(1.0555, abs=0.15) and coverage == pytest.approx(0.9735, abs=0.02)
