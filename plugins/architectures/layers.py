"""Building blocks shared by the image architectures: shape checks, normalisation choice, init, attention.

Discriminators here use only plain ``nn.Conv2d``/``nn.Linear`` layers so that the spectral-norm stabilizer
can find and wrap every one of them; no discriminator normalises across the batch by default, because
gradient penalties and R1 need each sample's logit to depend on that sample alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganzoo import DataSpec

D_NORMS = ("none", "layer", "instance", "batch")


def image_levels(spec: DataSpec, component: str, resolutions: tuple[int, ...]) -> int:
    """Number of 2x resampling steps between 4x4 and the image of ``spec``.

    Args:
        spec: the dataset's shape; must be a square image whose side is one of ``resolutions``.
        component: name used in error messages (e.g. ``"generator dcgan"``).
        resolutions: the sides the architecture supports (powers of two from 8).

    Raises:
        ValueError: the data is not an image, not square, or of an unsupported side.
    """
    if spec.modality != "image":
        raise ValueError(f"{component} builds image models; got {spec.modality} data. "
                         "Use the mlp component for vectors.")
    height, width = spec.shape[1:]
    if height != width or width not in resolutions:
        raise ValueError(f"{component} supports square images of side {list(resolutions)}; got {height}x{width}. "
                         "Resize the dataset or choose another architecture.")
    return int(math.log2(width)) - 2


def check_norm(norm: str, component: str) -> None:
    if norm not in D_NORMS:
        raise ValueError(f'{component}: unknown norm "{norm}"; expected one of {D_NORMS}')


def norm2d(norm: str, channels: int) -> nn.Module:
    """A normalisation layer for discriminator features.

    ``"layer"`` normalises each sample over (C, H, W) with a per-channel affine map (the "layer norm" that
    WGAN-GP recommends for critics); ``"instance"`` normalises each channel of each sample; ``"batch"``
    mixes samples and is therefore unsafe with gradient penalties.
    """
    if norm == "none":
        return nn.Identity()
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "instance":
        return nn.GroupNorm(channels, channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f'Unknown norm "{norm}"; expected one of {D_NORMS}')


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` needs a bias: per-channel statistics cancel it exactly."""
    return norm in ("none", "layer")


def init_weights(module: nn.Module, scheme: str, gain: float = 1.0) -> None:
    """Initialise every Conv/Linear weight under ``module`` and zero its bias.

    Args:
        module: the module whose ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.Linear`` layers are set.
        scheme: ``"normal"`` (N(0, 0.02^2), DCGAN), ``"xavier"`` (Glorot uniform, SNGAN) or
            ``"orthogonal"`` (BigGAN).
        gain: scale passed to the xavier and orthogonal schemes.
    """
    for layer in module.modules():
        if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            continue
        if scheme == "normal":
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(layer.weight, gain)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(layer.weight, gain)
        else:
            raise ValueError(f'Unknown init scheme "{scheme}"; expected normal, xavier or orthogonal')
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class SelfAttention2d(nn.Module):
    """Non-local self-attention over the positions of a feature map (SAGAN, as used in BigGAN).

    Keys and values are max-pooled 2x to cut the cost by four; the output is added to the input through a
    learned scale that starts at zero, so the block is the identity at initialisation.
    """

    def __init__(self, channels: int):
        super().__init__()
        if channels < 8:
            raise ValueError("SelfAttention2d needs at least 8 channels (it projects to channels // 8); "
                             f"got {channels}")
        self.query = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.out = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        query = self.query(x).flatten(2)  # (B, C/8, HW)
        key = nn.functional.max_pool2d(self.key(x), 2).flatten(2)  # (B, C/8, HW/4)
        value = nn.functional.max_pool2d(self.value(x), 2).flatten(2)  # (B, C/2, HW/4)
        weights = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (B, HW, HW/4)
        attended = (value @ weights.transpose(1, 2)).view(batch, channels // 2, height, width)
        return x + self.gamma * self.out(attended)
