"""What the embedded digit classifiers share: a CNN for one grey digit as a feature extractor, per channel.

``digits_classifier`` (sklearn's 8x8 digits) and ``mnist5k_classifier`` (MNIST at 28x28) are the same kind of
extractor around different networks: the network maps ``(B, 1, S, S)`` in [-1, 1] to (pooled features, 10
logits); on stacked digits (three digits as the three channels) it reads each channel, the features are
concatenated, and the logit of triple ``100 a + 10 b + c`` is ``log p(a) + log p(b) + log p(c)``: these sum
to one in probability, so a softmax over the 1000 logits is the product distribution and IS is computed over
1000 classes. A subclass names its network (``load_net``), its input size (``to_input``) and weights hash.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ganzoo import FeatureExtractor, Features
from ganzoo.system.download import local_file, sha256_of


def load_checked(net: nn.Module, path: str | Path, sha256: str, what: str, script: str, constant: str,
                 module: str) -> nn.Module:
    """``net`` with the weights in ``path``, in eval mode and frozen, after checking the file's SHA-256.

    Args:
        what: the weights in words, for messages ("Digits classifier weights").
        script, constant, module: what retrains them and where their hash is written, for the fix a message gives.

    Raises:
        DownloadError: the file is missing.
        ValueError: its hash differs from ``sha256``.
    """
    path = local_file(path, what, f"Re-run {script} to create them.")
    actual = sha256_of(path)
    if actual != sha256:
        raise ValueError(
            f"{what} {path} have SHA-256 {actual}, expected {sha256}. The file was changed or retrained: re-run "
            f"{script} and update {constant} in {module} (metric values from different weights are not comparable)."
        )
    net.load_state_dict(load_file(str(path)))
    return net.eval().requires_grad_(False)


class DigitClassifier(FeatureExtractor):
    """A digit CNN's features and logits for ``(B, channels, H, W)`` images in [-1, 1]; 3 channels: per channel.

    Subclasses set ``name``, ``channels`` (1 or 3), ``feature_dim_per_channel`` and ``weights_hash``, and
    define ``load_net()`` and ``to_input(x)`` (``(B, C, H, W)`` -> the network's input size).
    """

    name = "digit_classifier"
    channels = 1
    feature_dim_per_channel = 0
    weights_hash = ""

    def __init__(self):
        super().__init__()
        self.net = self.load_net()
        self.feature_dim = self.feature_dim_per_channel * self.channels
        self.num_classes = 10 ** self.channels

    def load_net(self) -> nn.Module:
        raise NotImplementedError

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Features:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"{self.name} expects images of shape (B, {self.channels}, H, W) in [-1, 1], "
                             f"got {tuple(x.shape)}")
        x = self.to_input(x.float())
        if self.channels == 1:
            features, logits = self.net(x)
            return Features(features=features, logits=logits)
        b, side = x.shape[0], x.shape[-1]
        features, logits = self.net(x.reshape(b * 3, 1, side, side))
        log_p = F.log_softmax(logits, dim=1).reshape(b, 3, 10)
        triple = log_p[:, 0, :, None, None] + log_p[:, 1, None, :, None] + log_p[:, 2, None, None, :]
        return Features(features=features.reshape(b, 3 * self.feature_dim_per_channel), logits=triple.reshape(b, 1000))


@torch.no_grad()
def classify(net: nn.Module, to_input, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Predicted digit (int64, ``(B,)``) of grey images ``(B, 1, H, W)`` in [-1, 1], ``batch_size`` at a time."""
    out = [net(to_input(chunk.float()))[1].argmax(dim=1) for chunk in x.split(batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)
