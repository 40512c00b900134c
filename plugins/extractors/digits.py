"""The embedded digits classifier: FID/KID/PR/DC features and IS logits for the offline digits datasets.

A small CNN trained on scikit-learn's digits by ``scripts/train_digits_classifier.py``; its weights ship
in ``weights/digits_classifier.safetensors`` and are checked against ``DIGITS_CLASSIFIER_SHA256`` on every
load. Like Inception's ``pool_3``, the features are the global average pool of the last convolution
(64-d) and the logits come from one linear layer on top of them (10 digits). Values computed with it are
comparable only with values from the same weights (MMD-GAN did the same with a LeNet for MNIST).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .digit_classifier import DigitClassifier, classify, load_checked

WEIGHTS_PATH = Path(__file__).parent / "weights" / "digits_classifier.safetensors"
DIGITS_CLASSIFIER_SHA256 = "6fccf3fdd80474bbd5cbdb5db962b0cdb97e95e2ca347a59acf6405a08848c72"
FEATURE_DIM = 64
INPUT_SIZE = 8
REFERENCE = ("Embedded CNN trained on sklearn digits (scripts/train_digits_classifier.py), in the spirit of "
             "Binkowski et al. 2018, MMD-GAN, arXiv:1801.01401 (dataset-specific classifier features)")


class DigitsNet(nn.Module):
    """Three 3x3 convolutions (16, 32, 64 channels, one 2x2 max pool), global average pool, linear to 10."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, FEATURE_DIM, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURE_DIM, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, 8, 8)`` in [-1, 1] -> (features ``(B, 64)``, logits ``(B, 10)``)."""
        features = self.body(x)
        return features, self.head(features)


def load_digits_net(path: str | Path = WEIGHTS_PATH, sha256: str = DIGITS_CLASSIFIER_SHA256) -> DigitsNet:
    """The classifier in eval mode with frozen weights, after checking the file's SHA-256 (``load_checked``)."""
    return load_checked(DigitsNet(), path, sha256, "Digits classifier weights",
                        "scripts/train_digits_classifier.py", "DIGITS_CLASSIFIER_SHA256", Path(__file__).name)


def to_input_size(x: torch.Tensor) -> torch.Tensor:
    """Area-resize ``(B, C, H, W)`` images to 8x8 (exactly undoes nearest upsampling by an integer factor)."""
    if x.shape[-2:] == (INPUT_SIZE, INPUT_SIZE):
        return x
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area")


@functools.lru_cache(maxsize=4)
def _shared_net(device: str) -> DigitsNet:
    return load_digits_net().to(device)


def classify_digits(x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Predicted digit (int64, ``(B,)``) of grey images ``(B, 1, H, W)`` in [-1, 1], in batches."""
    return classify(_shared_net(str(x.device)), to_input_size, x, batch_size)


class DigitsClassifier(DigitClassifier):
    """Features and logits of the embedded digits CNN for ``(B, 1, H, W)`` images (area-resized to 8x8)."""

    name = "digits_classifier"
    channels = 1
    feature_dim_per_channel = FEATURE_DIM
    weights_hash = DIGITS_CLASSIFIER_SHA256[:12]

    def load_net(self) -> DigitsNet:
        return load_digits_net()

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return to_input_size(x)


class StackedDigitsClassifier(DigitsClassifier):
    """The digits CNN applied to each of three channels: 192-d features, logits over the 1000 triples.

    The logit of triple ``100 a + 10 b + c`` is ``log p(a) + log p(b) + log p(c)`` from the per-channel
    softmaxes; these already sum to one in probability, so a softmax over the 1000 logits gives the product
    distribution and IS is computed over 1000 classes (at most 1000).
    """

    name = "stacked_digits_classifier"
    channels = 3


def register_all(register) -> None:
    register("digits_classifier", DigitsClassifier,
             description="Embedded CNN on sklearn digits: 64-d pooled features, 10-class logits (hash-checked)",
             reference=REFERENCE, tags=("embedded",), defaults={}, modalities=("image",), channels=(1,))
    register("stacked_digits_classifier", StackedDigitsClassifier,
             description="The digits CNN per channel of stacked digits: 192-d features, logits over 1000 triples",
             reference=REFERENCE, tags=("embedded",), defaults={}, modalities=("image",), channels=(3,))
