"""DCGAN (Radford et al. 2015, arXiv:1511.06434) at any power-of-two side from 8 to 128.

Generator: z -> linear -> 4x4 x (ch * 2^L) -> L transposed 4x4 stride-2 convs that double the side and
halve the channels (BatchNorm + ReLU after each) -> 3x3 conv to the image channels -> tanh, where
L = log2(side / 4). For 32x32 and ch=64 this is the "standard CNN" generator of the SNGAN paper
(Miyato et al. 2018, arXiv:1802.05957, Table 3), itself the DCGAN generator at CIFAR size. The default
ch=32 halves every width so that 8x8 runs stay cheap on a CPU; suites at 32x32 set ch=64.

Discriminator: L strided 4x4 convs that halve the side and double the channels from ``ch``, each
followed by LeakyReLU(0.2), then linear -> one logit. DCGAN put BatchNorm in every D layer but the first;
here the normalisation is a choice (``norm``) that defaults to none, so that gradient penalties and R1
see per-sample gradients. Weights are N(0, 0.02^2) as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo import DataSpec

from .layers import check_norm, conv_bias, image_levels, init_weights, norm2d

RESOLUTIONS = (8, 16, 32, 64, 128)


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, levels: int, ch: int):
        super().__init__()
        self.latent_dim = latent_dim
        width = ch * 2**levels
        self.project = nn.Sequential(
            nn.Linear(latent_dim, width * 16, bias=False),
            nn.Unflatten(1, (width, 4, 4)),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        for _ in range(levels):
            blocks += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU()]
            width //= 2
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Conv2d(width, channels, 3, 1, 1)
        init_weights(self, "normal")
        for layer in self.modules():
            if isinstance(layer, nn.BatchNorm2d):
                nn.init.normal_(layer.weight, 1.0, 0.02)  # the DCGAN reference code's BatchNorm init

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(self.blocks(self.project(z))))


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, levels: int, ch: int, norm: str):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, out_ch = channels, ch
        for level in range(levels):
            first = level == 0  # DCGAN never normalises the input layer
            layers.append(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=first or conv_bias(norm)))
            if not first:
                layers.append(norm2d(norm, out_ch))
            layers.append(nn.LeakyReLU(0.2))
            in_ch, out_ch = out_ch, out_ch * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(in_ch * 16, 1)
        init_weights(self, "normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


def dcgan_generator(spec: DataSpec, latent_dim: int = 128, ch: int = 32) -> DCGANGenerator:
    """Build a DCGAN generator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        latent_dim: dimension of z.
        ch: channels of the last feature map; the 4x4 map has ``ch * 2^L`` (64 at CIFAR size in SNGAN).
    """
    levels = image_levels(spec, "generator dcgan", RESOLUTIONS)
    if ch < 1 or latent_dim < 1:
        raise ValueError(f"generator dcgan: ch and latent_dim must be >= 1; got ch={ch}, latent_dim={latent_dim}")
    return DCGANGenerator(latent_dim, spec.channels, levels, ch)


def dcgan_discriminator(spec: DataSpec, ch: int = 32, norm: str = "none") -> DCGANDiscriminator:
    """Build a DCGAN discriminator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        ch: channels of the first conv; each further conv doubles them.
        norm: normalisation after every conv but the first: ``none``, ``layer``, ``instance`` or ``batch``
            (the paper's choice, unsafe with gradient penalties).
    """
    levels = image_levels(spec, "discriminator dcgan", RESOLUTIONS)
    check_norm(norm, "discriminator dcgan")
    if ch < 1:
        raise ValueError(f"discriminator dcgan: ch must be >= 1; got {ch}")
    return DCGANDiscriminator(spec.channels, levels, ch, norm)
