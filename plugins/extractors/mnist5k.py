"""The embedded MNIST classifier: FID/KID/PR/DC features, IS logits and mode counts for mnist5k and Stacked MNIST.

A LeNet-sized CNN trained by ``scripts/train_mnist5k_classifier.py`` on the 4,000-image train split of
``mnist5k`` (seeded, deterministic, with random shifts of up to 2 pixels); its weights ship in
``weights/mnist5k_classifier.safetensors`` and are checked against ``MNIST5K_CLASSIFIER_SHA256`` on every
load. Held-out accuracy on the other 1,000 images (100 per digit): **97.2%** (972 of 1,000; 97.95% on the
training split), as the script measured it and ``weights/mnist5k_classifier.json`` records;
``tests/test_mnist5k.py`` recomputes it from the shipped weights. Per channel that is about 92% of real
Stacked MNIST triples read right (0.972^3), yet all 1,000 modes are found in 26,000 real samples.

The features are the global average pool of the last convolution (128-d, like Inception's ``pool_3``);
the logits come from one linear layer on them (10 digits). PacGAN and VEEGAN count Stacked MNIST modes
with a pretrained MNIST classifier on each channel; this one plays that part here. Values computed with
it compare only with values from the same weights (MMD-GAN likewise used a LeNet's features for MNIST).

Input: ``(B, 1, H, W)`` in [-1, 1]. At 28x28 as is; at 32x32 the 2-pixel border is cropped (it undoes
mnist5k's and mnist's padding exactly); any other side is resized to 28 bilinearly with antialiasing.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .digit_classifier import DigitClassifier, classify, load_checked

WEIGHTS_PATH = Path(__file__).parent / "weights" / "mnist5k_classifier.safetensors"
MNIST5K_CLASSIFIER_SHA256 = "238985dcc009fafa6c69779973429d5a6eb5ae39cf4947685c6fc5305b721380"
FEATURE_DIM = 128
INPUT_SIZE = 28
PAD = 2
REFERENCE = ("Embedded LeNet-sized CNN trained on mnist5k (scripts/train_mnist5k_classifier.py): LeCun et al. 1998; "
             "mode counting as in Lin et al. 2018, PacGAN, arXiv:1712.04086; features as in Binkowski et al. 2018, "
             "MMD-GAN, arXiv:1801.01401")


class MnistNet(nn.Module):
    """LeNet-5's proportions: 5x5 convs of 8 and 16 channels, each with a 2x2 max pool, a 3x3 conv of 128,
    global average pool (the 128-d features), linear to 10. Small on purpose: Stacked MNIST's 26,000
    samples are 78,000 channels to classify at every evaluation, on a CPU too."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),    # 28 -> 14
            nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),              # 14 -> 10 -> 5
            nn.Conv2d(16, FEATURE_DIM, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURE_DIM, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, 28, 28)`` in [-1, 1] -> (features ``(B, 128)``, logits ``(B, 10)``)."""
        features = self.body(x)
        return features, self.head(features)


def load_mnist_net(path: str | Path = WEIGHTS_PATH, sha256: str = MNIST5K_CLASSIFIER_SHA256) -> MnistNet:
    """The classifier in eval mode with frozen weights, after checking the file's SHA-256 (``load_checked``)."""
    return load_checked(MnistNet(), path, sha256, "mnist5k classifier weights",
                        "scripts/train_mnist5k_classifier.py", "MNIST5K_CLASSIFIER_SHA256", Path(__file__).name)


def to_input_size(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` at 28x28: unchanged at 28, the 2-pixel border cropped at 32, else resized bilinearly."""
    side = x.shape[-2:]
    if side == (INPUT_SIZE, INPUT_SIZE):
        return x
    if side == (INPUT_SIZE + 2 * PAD, INPUT_SIZE + 2 * PAD):
        return x[..., PAD:-PAD, PAD:-PAD]
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)


@functools.lru_cache(maxsize=4)
def _shared_net(device: str) -> MnistNet:
    return load_mnist_net().to(device)


def classify_mnist(x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Predicted digit (int64, ``(B,)``) of grey images ``(B, 1, H, W)`` in [-1, 1], in batches."""
    return classify(_shared_net(str(x.device)), to_input_size, x, batch_size)


class Mnist5kClassifier(DigitClassifier):
    """Features and logits of the embedded MNIST CNN for ``(B, 1, H, W)`` images (28x28, or 32x32 cropped)."""

    name = "mnist5k_classifier"
    channels = 1
    feature_dim_per_channel = FEATURE_DIM
    weights_hash = MNIST5K_CLASSIFIER_SHA256[:12]

    def load_net(self) -> MnistNet:
        return load_mnist_net()

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return to_input_size(x)


class StackedMnist5kClassifier(Mnist5kClassifier):
    """The MNIST CNN on each of three channels: 384-d features, logits over the 1000 digit triples.

    The logit of triple ``100 a + 10 b + c`` is ``log p(a) + log p(b) + log p(c)`` from the per-channel
    softmaxes, so a softmax over the 1000 logits is the product distribution and IS is over 1000 classes.
    """

    name = "stacked_mnist5k_classifier"
    channels = 3


def register_all(register) -> None:
    register("mnist5k_classifier", Mnist5kClassifier,
             description="Embedded LeNet-sized CNN on mnist5k (97.2% held out): 128-d pooled features, 10-class "
                         "logits (hash-checked)",
             reference=REFERENCE, tags=("embedded",), defaults={}, modalities=("image",), channels=(1,))
    register("stacked_mnist5k_classifier", StackedMnist5kClassifier,
             description="The mnist5k CNN per channel of Stacked MNIST: 384-d features, logits over 1000 triples",
             reference=REFERENCE, tags=("embedded",), defaults={}, modalities=("image",), channels=(3,))
