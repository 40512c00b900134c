"""Fréchet distance and feature statistics against closed forms, scipy's sqrtm and torch-fidelity."""

import numpy as np
import pytest
import scipy.linalg
import torch

from ganzoo.metrics import feature_statistics, fid_from_features, frechet_distance


def random_covariance(rng, d, rank=None):
    a = rng.standard_normal((d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def fid_with_sqrtm(mu1, s1, mu2, s2):
    """The reference implementations' formulation: scipy.linalg.sqrtm of the product."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("d", [8, 64, 128])
def test_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_covariance(rng, d), random_covariance(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(fid_with_sqrtm(mu1, s1, mu2, s2), rel=1e-6)


def test_closed_form_for_commuting_covariances():
    # Shared eigenvectors: d² = |Δμ|² + Σ_i (√a_i - √b_i)².
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    a, b = rng.uniform(0.1, 3, 32), rng.uniform(0.1, 3, 32)
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("d", [256, pytest.param(2048, marks=pytest.mark.slow)])
def test_matches_torch_fidelity(d):
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    rng = np.random.default_rng(1)
    stats = [{"mu": rng.standard_normal(d), "sigma": random_covariance(rng, d, rank=d + 50)} for _ in range(2)]
    expected = fid_statistics_to_metric(stats[0], stats[1], verbose=False)["frechet_inception_distance"]
    assert frechet_distance(stats[0]["mu"], stats[0]["sigma"], stats[1]["mu"], stats[1]["sigma"]) == pytest.approx(
        expected, rel=1e-6)


def test_identical_sets_give_zero():
    feats = torch.randn(500, 32, generator=torch.Generator().manual_seed(0))
    mu, sigma = feature_statistics(feats)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    assert abs(fid_from_features(feats, feats.clone())) < 1e-9 * np.trace(sigma)


def test_statistics_are_float64_and_unbiased():
    # A large offset with small spread: a float32 one-pass covariance would lose most digits here.
    base = np.random.default_rng(2).standard_normal((1000, 16)) * 1e-2 + 1e3
    feats = torch.from_numpy(base.astype(np.float32))
    mu, sigma = feature_statistics(feats, chunk_size=128)
    exact = feats.numpy().astype(np.float64)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, exact.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(exact, rowvar=False, ddof=1), rtol=1e-9, atol=1e-12)


def test_fewer_samples_than_dimensions_warns_but_works():
    feats = torch.randn(10, 64, generator=torch.Generator().manual_seed(3))
    with pytest.warns(UserWarning, match="singular"):
        value = fid_from_features(feats, feats + 1)
    assert np.isfinite(value) and value == pytest.approx(64.0, rel=1e-6)  # pure mean shift of 1 in 64 dims


def test_nan_features_raise():
    feats = torch.randn(20, 4)
    feats[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        feature_statistics(feats)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="equal length"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="2-D"):
        feature_statistics(torch.zeros(5))


def test_rank_deficient_covariances_match_the_closed_form():
    # Fewer samples than dimensions give singular covariances; commuting ones have d² = Σ_i (√a_i - √b_i)².
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((64, 64)))
    a, b = rng.uniform(0.1, 3, 64), rng.uniform(0.1, 3, 64)
    a[10:], b[40:] = 0.0, 0.0
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(np.zeros(64), q @ np.diag(a) @ q.T, np.zeros(64), q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)
