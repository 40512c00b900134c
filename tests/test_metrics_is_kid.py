"""Inception Score and KID against closed forms, a direct numpy computation and torch-fidelity."""

import numpy as np
import pytest
import scipy.special
import torch

from ganzoo.metrics import inception_score, kernel_inception_distance


def numpy_inception_score(logits, splits, order=None):
    p = scipy.special.softmax(logits.astype(np.float64)[order if order is not None else slice(None)], axis=1)
    n, scores = p.shape[0], []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), axis=1))))
    return np.mean(scores), np.std(scores)


def test_is_closed_forms():
    # Identical predictions: p(y|x) = p(y), IS = 1. Confident, balanced over K classes: IS = K.
    assert inception_score(torch.randn(1, 7).repeat(40, 1), splits=4)[0] == pytest.approx(1.0, abs=1e-12)
    confident = torch.eye(5).repeat(8, 1) * 100.0
    mean, std = inception_score(confident, splits=2, shuffle=False)
    assert mean == pytest.approx(5.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("shuffle", [False, True])
def test_is_matches_numpy(shuffle):
    logits = torch.randn(1003, 20, generator=torch.Generator().manual_seed(0)) * 3
    order = np.random.RandomState(2020).permutation(1003) if shuffle else None
    expected = numpy_inception_score(logits.numpy(), 10, order)
    np.testing.assert_allclose(inception_score(logits, splits=10, shuffle=shuffle), expected, rtol=1e-10)


def test_is_matches_torch_fidelity():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(500, 1008, generator=torch.Generator().manual_seed(1)) * 4
    ref = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    mean, std = inception_score(logits)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-10)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-8)


def test_is_bad_input():
    with pytest.raises(ValueError, match="per split"):
        inception_score(torch.randn(5, 3), splits=10)
    with pytest.raises(ValueError, match="NaN"):
        inception_score(torch.full((20, 3), float("nan")))


def numpy_mmd2_unbiased(x, y):
    d = x.shape[1]

    def k(a, b):
        return (a @ b.T / d + 1) ** 3

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def test_kid_matches_numpy_with_the_same_subsets():
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 16, generator=gen), torch.randn(250, 16, generator=gen) + 0.3
    rng, values = np.random.RandomState(7), []
    for _ in range(5):
        x = real.numpy()[rng.choice(300, 100, replace=False)].astype(np.float64)
        y = fake.numpy()[rng.choice(250, 100, replace=False)].astype(np.float64)
        values.append(numpy_mmd2_unbiased(x, y))
    got = kernel_inception_distance(real, fake, subsets=5, subset_size=100, seed=7)
    np.testing.assert_allclose(got, (np.mean(values), np.std(values)), rtol=1e-10)


def test_kid_matches_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    gen = torch.Generator().manual_seed(1)
    real, fake = torch.randn(400, 64, generator=gen), torch.randn(400, 64, generator=gen) * 1.2
    # Given float64 features torch-fidelity computes in float64 too, like ganzoo always does.
    ref = kid_features_to_metric(real.double(), fake.double(), kid_subsets=10, kid_subset_size=200, rng_seed=2020,
                                 verbose=False,
                                 kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1)
    mean, std = kernel_inception_distance(real, fake, subsets=10, subset_size=200)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-10)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-8)


def test_kid_same_distribution_near_zero_and_shift_positive():
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(600, 8, generator=gen), torch.randn(600, 8, generator=gen)
    same, spread = kernel_inception_distance(a, b, subsets=20, subset_size=300)
    assert abs(same) < 3 * spread + 1e-3
    assert kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=300)[0] > 0.1


def test_kid_fewer_samples_than_subset_size_uses_all_and_warns():
    gen = torch.Generator().manual_seed(3)
    real, fake = torch.randn(50, 4, generator=gen), torch.randn(40, 4, generator=gen)
    with pytest.warns(UserWarning, match="reduced from 1000 to 40"):
        mean, _ = kernel_inception_distance(real, fake, subsets=3, subset_size=1000, seed=0)
    rng, values = np.random.RandomState(0), []
    for _ in range(3):
        x = real.numpy()[rng.choice(50, 40, replace=False)].astype(np.float64)
        y = fake.numpy()[rng.choice(40, 40, replace=False)].astype(np.float64)
        values.append(numpy_mmd2_unbiased(x, y))
    assert mean == pytest.approx(np.mean(values), rel=1e-10)


def test_kid_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(torch.randn(1, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="dimensions differ"):
        kernel_inception_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        kernel_inception_distance(torch.randn(5, 3), torch.full((5, 3), float("inf")))
