"""BigGAN-lite: the unconditional core of BigGAN (Brock et al. 2018, arXiv:1809.11096) at small scale.

What is kept from BigGAN:
- G's residual up-blocks (BN, ReLU, upsample, 3x3 conv, BN, ReLU, 3x3 conv; 1x1 conv on the shortcut)
  whose channels halve at each doubling of the side, and D's residual down-blocks whose channels double;
- hierarchical latents ("skip-z"): z is split into one chunk for the 4x4 projection and one per block,
  and each block's BatchNorms take their gain (1 + W z_i) and bias (W' z_i) from its chunk;
- an optional SAGAN self-attention block at one feature-map side (``attn_resolution``; 0 disables it);
- orthogonal initialisation of every weight; ReLU, global sum pooling and a linear head in D.

What is simplified or left out: no classes, so no shared class embedding in G's BatchNorms and no
projection term in D; no built-in spectral norm (apply the ``spectral_norm`` stabilizer, as BigGAN
does to both networks); no truncation trick, no orthogonal regularisation, no BigGAN-deep blocks;
and the widths are small (``ch`` = 16 by default, against 96 in BigGAN's 128x128 models) so that 8x8 runs
stay cheap on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo import DataSpec

from .layers import SelfAttention2d, check_norm, image_levels, init_weights, norm2d
from .resnet import DownBlock

RESOLUTIONS = (8, 16, 32, 64)


class LatentBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are linear functions of a latent chunk (or plain affine BN without one)."""

    def __init__(self, channels: int, chunk_dim: int):
        super().__init__()
        self.hierarchical = chunk_dim > 0
        self.bn = nn.BatchNorm2d(channels, affine=not self.hierarchical)
        if self.hierarchical:
            # BigGAN gives these projections no bias: the gain is centred on 1 and the bias on 0.
            self.to_gain = nn.Linear(chunk_dim, channels, bias=False)
            self.to_bias = nn.Linear(chunk_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        out = self.bn(x)
        if not self.hierarchical:
            return out
        gain, bias = 1 + self.to_gain(z), self.to_bias(z)
        return out * gain[:, :, None, None] + bias[:, :, None, None]


class GBlock(nn.Module):
    """BigGAN's generator block; every conv feeds a BatchNorm before any non-linearity, so none has a bias."""

    def __init__(self, in_ch: int, out_ch: int, chunk_dim: int):
        super().__init__()
        self.bn1 = LatentBatchNorm2d(in_ch, chunk_dim)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = LatentBatchNorm2d(out_ch, chunk_dim)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, z)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), z)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


class BigGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, levels: int, ch: int, hierarchical: bool, attn_resolution: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.hierarchical = hierarchical
        # With skip-z, z splits into levels + 1 near-equal chunks: the first goes to the projection.
        self.chunks = [len(c) for c in torch.arange(latent_dim).tensor_split(levels + 1)] if hierarchical else None
        width = ch * 2**levels
        self.project = nn.Linear(self.chunks[0] if hierarchical else latent_dim, width * 16, bias=False)
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        for level in range(levels):
            self.blocks.append(GBlock(width, width // 2, self.chunks[level + 1] if hierarchical else 0))
            width //= 2
            if 8 * 2**level == attn_resolution:  # this block outputs a map of side 8 * 2^level
                self.attention[str(level)] = SelfAttention2d(width)
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1))
        init_weights(self, "orthogonal")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        parts = z.split(self.chunks, dim=1) if self.hierarchical else (z,) + (None,) * len(self.blocks)
        h = self.project(parts[0]).view(z.shape[0], -1, 4, 4)
        for level, block in enumerate(self.blocks):
            h = block(h, parts[level + 1])
            if str(level) in self.attention:
                h = self.attention[str(level)](h)
        return torch.tanh(self.out(h))


class BigGANDiscriminator(nn.Module):
    def __init__(self, channels: int, levels: int, ch: int, norm: str, attn_resolution: int):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, side = channels, 4 * 2**levels
        for level in range(levels):
            out_ch, side = ch * 2**level, side // 2
            layers.append(DownBlock(in_ch, out_ch, down=True, first=level == 0, norm=norm))
            if side == attn_resolution:
                layers.append(SelfAttention2d(out_ch))
            in_ch = out_ch
        layers.append(DownBlock(in_ch, in_ch, down=False, first=False, norm=norm))  # a last block at 4x4
        self.blocks = nn.Sequential(*layers)
        self.norm = norm2d(norm, in_ch)
        self.head = nn.Linear(in_ch, 1)
        init_weights(self, "orthogonal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm(self.blocks(x))).sum(dim=(2, 3))
        return self.head(h).squeeze(1)


def _check_attention(attn_resolution: int, component: str) -> None:
    if attn_resolution != 0 and (attn_resolution < 8 or attn_resolution & (attn_resolution - 1)):
        raise ValueError(f"{component}: attn_resolution must be 0 (off) or a power of two >= 8; got {attn_resolution}")


def biggan_generator(spec: DataSpec, latent_dim: int = 128, ch: int = 16, hierarchical: bool = True,
                     attn_resolution: int = 8) -> BigGANGenerator:
    """Build a BigGAN-lite generator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        latent_dim: dimension of z; with ``hierarchical`` it must be at least the number of blocks + 1.
        ch: channels of the last block; the 4x4 map has ``ch * 2^L`` for L = log2(side / 4) blocks.
        hierarchical: feed a chunk of z to every block's BatchNorms (BigGAN's skip-z).
        attn_resolution: side of the feature map followed by self-attention; 0 for none.
    """
    levels = image_levels(spec, "generator biggan_lite", RESOLUTIONS)
    _check_attention(attn_resolution, "generator biggan_lite")
    if ch < 1:
        raise ValueError(f"generator biggan_lite: ch must be >= 1; got {ch}")
    if latent_dim < (levels + 1 if hierarchical else 1):
        raise ValueError(f"generator biggan_lite: latent_dim {latent_dim} cannot be split into {levels + 1} chunks "
                         "(one per block and one for the projection); raise it or set hierarchical=False")
    return BigGANGenerator(latent_dim, spec.channels, levels, ch, hierarchical, attn_resolution)


def biggan_discriminator(spec: DataSpec, ch: int = 16, norm: str = "none",
                         attn_resolution: int = 8) -> BigGANDiscriminator:
    """Build a BigGAN-lite discriminator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        ch: channels of the first block; each further down-block doubles them.
        norm: normalisation before each activation (BigGAN: ``none``).
        attn_resolution: side of the block output followed by self-attention; 0 for none. An 8x8 input has
            no 8x8 block output, so there the default adds no attention to D.
    """
    levels = image_levels(spec, "discriminator biggan_lite", RESOLUTIONS)
    check_norm(norm, "discriminator biggan_lite")
    _check_attention(attn_resolution, "discriminator biggan_lite")
    if ch < 1:
        raise ValueError(f"discriminator biggan_lite: ch must be >= 1; got {ch}")
    return BigGANDiscriminator(spec.channels, levels, ch, norm, attn_resolution)
