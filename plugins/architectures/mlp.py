"""Fully connected G and D for vector data, in PacGAN's setting for the 2-D Gaussian mixtures.

PacGAN (Lin et al. 2018, arXiv:1712.04086) trains on the ring and grid mixtures with
G = 2 -> 400 -> 400 -> 400 -> 400 -> 2 (hidden layers: linear without bias, BatchNorm, ReLU) and a
D of three maxout layers of 200 units with 5 pieces each, then linear -> 1; weights N(0, 0.02^2),
biases 0. Those are the defaults here; ``width``/``depth`` shrink both for cheap runs.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo import DataSpec

from .layers import init_weights


def _check_vector(spec: DataSpec, component: str, width: int, depth: int) -> int:
    if spec.modality != "vector":
        raise ValueError(f"{component} is for vector data; got {spec.modality}. "
                         "Use an image architecture such as dcgan.")
    if width < 1 or depth < 1:
        raise ValueError(f"{component}: width and depth must be >= 1; got width={width}, depth={depth}")
    return spec.shape[0]


class MLPGenerator(nn.Module):
    """z -> ``depth`` x (Linear without bias, BatchNorm, ReLU) -> Linear; the output is unbounded."""

    def __init__(self, latent_dim: int, out_dim: int, width: int, depth: int):
        super().__init__()
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        in_dim = latent_dim
        for _ in range(depth):
            # No bias: the BatchNorm that follows would subtract it again.
            layers += [nn.Linear(in_dim, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        self.net = nn.Sequential(*layers)
        init_weights(self, "normal")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Maxout(nn.Module):
    """A linear map to ``out_features * pieces`` units followed by the max over each group of ``pieces``."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        return out.view(*out.shape[:-1], -1, self.pieces).amax(dim=-1)


class MLPDiscriminator(nn.Module):
    """x -> ``depth`` hidden layers -> Linear -> one logit; maxout units, or LeakyReLU(0.2) when ``pieces == 1``."""

    def __init__(self, in_dim: int, width: int, depth: int, pieces: int):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth):
            if pieces > 1:
                layers.append(Maxout(in_dim, width, pieces))
            else:
                layers += [nn.Linear(in_dim, width), nn.LeakyReLU(0.2)]
            in_dim = width
        layers.append(nn.Linear(in_dim, 1))
        self.net = nn.Sequential(*layers)
        init_weights(self, "normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def mlp_generator(spec: DataSpec, latent_dim: int = 2, width: int = 400, depth: int = 4) -> MLPGenerator:
    """Build the PacGAN MLP generator for vectors of ``spec``.

    Args:
        spec: vector data spec; the output dimension is ``spec.shape[0]``.
        latent_dim: dimension of z (PacGAN: 2).
        width: units per hidden layer (PacGAN: 400).
        depth: number of hidden layers (PacGAN: 4).
    """
    out_dim = _check_vector(spec, "generator mlp", width, depth)
    if latent_dim < 1:
        raise ValueError(f"generator mlp: latent_dim must be >= 1; got {latent_dim}")
    return MLPGenerator(latent_dim, out_dim, width, depth)


def mlp_discriminator(spec: DataSpec, width: int = 200, depth: int = 3, pieces: int = 5) -> MLPDiscriminator:
    """Build the PacGAN maxout MLP discriminator for vectors of ``spec``.

    Args:
        spec: vector data spec.
        width: units per hidden layer (PacGAN: 200).
        depth: number of hidden layers (PacGAN: 3).
        pieces: linear pieces per maxout unit (PacGAN: 5); 1 gives plain LeakyReLU(0.2) layers.
    """
    in_dim = _check_vector(spec, "discriminator mlp", width, depth)
    if pieces < 1:
        raise ValueError(f"discriminator mlp: pieces must be >= 1 (1 = LeakyReLU, >1 = maxout); got {pieces}")
    return MLPDiscriminator(in_dim, width, depth, pieces)
