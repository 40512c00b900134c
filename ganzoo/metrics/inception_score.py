"""Inception Score (Salimans et al. 2016, arXiv:1606.03498) from classifier logits."""

from __future__ import annotations

import numpy as np
import torch

from .features import check_features

DEFAULT_SEED = 2020  # torch-fidelity's seed, so that its published values reproduce


def inception_score(
    logits: torch.Tensor, splits: int = 10, shuffle: bool = True, seed: int = DEFAULT_SEED
) -> tuple[float, float]:
    """Mean and standard deviation (ddof 0) over ``splits`` of exp(E_x KL(p(y|x) || p(y))).

    Computed in float64 with ``log_softmax`` so that tiny probabilities do not turn into log(0).

    Args:
        logits: (N, K) unnormalised class scores (for the standard Inception: the 1008 logits without bias).
        splits: number of disjoint splits; each split is ``N // splits`` samples (the last ones may be one more).
        shuffle: permute the samples first with ``numpy.random.RandomState(seed).permutation(N)``, as
            torch-fidelity does. The original code splits contiguously, which is biased when the samples are
            ordered (e.g. by class); pass ``shuffle=False`` to reproduce it.
        seed: seed of the permutation.

    Returns:
        ``(mean, std)`` as Python floats.
    """
    check_features(logits, "logits")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"The Inception Score needs at least one sample per split: "
                         f"got {n} samples for {splits} splits")
    if shuffle:
        order = torch.from_numpy(np.random.RandomState(seed).permutation(n)).to(logits.device)
        logits = logits[order]
    log_p = logits.double().log_softmax(dim=1)
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits:(i + 1) * n // splits]
        # log p(y) of the split, from the mean of p(y|x): logsumexp keeps it finite.
        log_marginal = torch.logsumexp(chunk, dim=0) - np.log(chunk.shape[0])
        kl = (chunk.exp() * (chunk - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
