"""The identity feature extractor: vector samples are their own features (2-D mixtures have no classifier)."""

from __future__ import annotations

import torch

from ganzoo import FeatureExtractor, Features


class Identity(FeatureExtractor):
    """Features = the samples flattened to ``(B, D)`` in float32; no logits, so no Inception Score.

    ``feature_dim`` is not known before data is seen: it is 0 until the first call, then ``D``.
    """

    name = "identity"
    num_classes = None
    weights_hash = "none"

    def __init__(self):
        super().__init__()
        self.feature_dim = 0

    def forward(self, x: torch.Tensor) -> Features:
        if x.ndim < 2:
            raise ValueError(f"identity expects a batch of shape (B, D), got {tuple(x.shape)}")
        features = x.reshape(x.shape[0], -1).float()
        self.feature_dim = features.shape[1]
        return Features(features=features)


def register_all(register) -> None:
    register("identity", Identity, description="Vector samples as their own features (no logits, so no IS)",
             reference="Standard practice for low-dimensional toy data, e.g. Lin et al. 2018, PacGAN, "
                       "arXiv:1712.04086", tags=("embedded", "default:vector"), defaults={}, modalities=("vector",))
