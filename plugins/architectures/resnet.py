"""The ResNet G and D of SNGAN's CIFAR experiments (Miyato et al. 2018, arXiv:1802.05957, Table 4).

That architecture (also WGAN-GP's CIFAR ResNet and compare_gan's ``resnet_cifar``) keeps one width
throughout: G = z -> linear -> 4x4 -> L up-blocks -> BN, ReLU, 3x3 conv -> tanh; D = an "optimised"
first down-block, more down-blocks until the map is 8x8, two blocks without resampling, ReLU, global
sum pooling, linear. Here L = log2(side / 4), so 32x32 is exactly the CIFAR network (3 up-blocks; D
32 -> 16 -> 8, then two 8x8 blocks); a side of 8 or 16 stops D's down-blocks at 4x4 or 8x8.

The paper's widths are 256 (G) and 128 (D); the default ``ch`` = 16 keeps 8x8 runs cheap on a CPU, and a
suite sets ``ch`` to recover the paper's network. Spectral normalisation is not built in: it is the ``spectral_norm``
stabilizer. Weights are Glorot-uniform (gain sqrt(2) inside residual branches, 1 elsewhere), as in
the SNGAN code.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo import DataSpec

from .layers import check_norm, conv_bias, image_levels, init_weights, norm2d

RESOLUTIONS = (8, 16, 32, 64)


class UpBlock(nn.Module):
    """BN, ReLU, 2x nearest upsampling, 3x3 conv, BN, ReLU, 3x3 conv; shortcut: upsampling, 1x1 conv."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_ch), nn.BatchNorm2d(out_ch)
        # No biases: every path from these convs meets a BatchNorm (bn2, the next block's bn1 or the output
        # BN) before any non-linearity, and that BatchNorm subtracts a per-channel constant exactly.
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        init_weights(self, "xavier", math.sqrt(2))
        init_weights(self.shortcut, "xavier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


class DownBlock(nn.Module):
    """Pre-activation residual block with optional 2x average-pool downsampling.

    ``first=True`` is SNGAN's "optimised" input block: no activation before the first conv, and the
    shortcut pools before its 1x1 conv (cheaper, and it does not see a ReLU of the raw image).
    """

    def __init__(self, in_ch: int, out_ch: int, down: bool, first: bool, norm: str):
        super().__init__()
        self.down, self.first = down, first
        self.norm1 = nn.Identity() if first else norm2d(norm, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=conv_bias(norm))
        self.norm2 = norm2d(norm, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if (down or in_ch != out_ch) else None
        init_weights(self, "xavier", math.sqrt(2))
        if self.shortcut is not None:
            init_weights(self.shortcut, "xavier")

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(self.norm1(x))
        h = self._pool(self.conv2(F.relu(self.norm2(self.conv1(h)))))
        if self.shortcut is None:
            skip = x
        elif self.first:
            skip = self.shortcut(self._pool(x))
        else:
            skip = self._pool(self.shortcut(x))
        return h + skip


class ResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, levels: int, ch: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.project = nn.Linear(latent_dim, ch * 16, bias=False)  # feeds BatchNorms only
        self.blocks = nn.Sequential(*(UpBlock(ch, ch) for _ in range(levels)))
        self.out = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, channels, 3, 1, 1))
        init_weights(self.project, "xavier")
        init_weights(self.out, "xavier")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], -1, 4, 4)
        return torch.tanh(self.out(self.blocks(h)))


class ResNetDiscriminator(nn.Module):
    def __init__(self, channels: int, levels: int, ch: int, norm: str):
        super().__init__()
        downs = max(levels - 1, 1)  # stop at 8x8 like the CIFAR network, but always downsample once
        blocks = [DownBlock(channels, ch, down=True, first=True, norm=norm)]
        blocks += [DownBlock(ch, ch, down=True, first=False, norm=norm) for _ in range(downs - 1)]
        blocks += [DownBlock(ch, ch, down=False, first=False, norm=norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.norm = norm2d(norm, ch)
        self.head = nn.Linear(ch, 1)
        init_weights(self.head, "xavier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm(self.blocks(x))).sum(dim=(2, 3))  # sum pooling, as in SNGAN
        return self.head(h).squeeze(1)


def resnet_generator(spec: DataSpec, latent_dim: int = 128, ch: int = 16) -> ResNetGenerator:
    """Build the SNGAN ResNet generator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        latent_dim: dimension of z (SNGAN: 128).
        ch: width of every block (SNGAN CIFAR: 256).
    """
    levels = image_levels(spec, "generator resnet_sngan", RESOLUTIONS)
    if ch < 1 or latent_dim < 1:
        raise ValueError("generator resnet_sngan: ch and latent_dim must be >= 1; "
                         f"got ch={ch}, latent_dim={latent_dim}")
    return ResNetGenerator(latent_dim, spec.channels, levels, ch)


def resnet_discriminator(spec: DataSpec, ch: int = 16, norm: str = "none") -> ResNetDiscriminator:
    """Build the SNGAN ResNet discriminator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        ch: width of every block (SNGAN CIFAR: 128).
        norm: normalisation before each activation: ``none`` (SNGAN), ``layer`` (WGAN-GP), ``instance`` or
            ``batch`` (unsafe with gradient penalties).
    """
    levels = image_levels(spec, "discriminator resnet_sngan", RESOLUTIONS)
    check_norm(norm, "discriminator resnet_sngan")
    if ch < 1:
        raise ValueError(f"discriminator resnet_sngan: ch must be >= 1; got {ch}")
    return ResNetDiscriminator(spec.channels, levels, ch, norm)
