"""R3GAN-lite: the backbone of Huang, Gokaslan, Kuleshov & Tompkin 2024 (arXiv:2501.05441) at small scale.

R3GAN is a ResNet with no normalisation layer anywhere. One stage per resolution, from 4x4 up to the image
(G) or down to 4x4 (D); each stage holds ``blocks`` residual blocks, and each block's branch is an inverted
bottleneck: 1x1 conv widening the channels ``expansion`` times, grouped 3x3 conv (groups of ``group_size``
channels), 1x1 conv back, with a leaky ReLU (0.2) after each of the first two. The branch has no
normalisation to keep it tame; its initialisation does that instead (Fixup, Zhang et al. 2019): the last conv
starts at zero, so every block starts as the identity, and the other two start at He's variance scaled by
L^(-1/(2m-2)) = L^(-1/4), L the network's number of blocks and m = 3 its convs per branch.

Between stages, G upsamples and D downsamples with the low-pass filter [1, 3, 3, 1] (the paper's [1, 2, 1]
convolved with a box), which is bilinear interpolation; a 1x1 conv changes the width where two stages differ.
G starts from a learned 4x4 basis whose channels are scaled by a linear map of z, and ends with a 1x1 conv to
the image; D starts with a 1x1 conv from the image and ends with a depthwise 4x4 conv (its 4x4 "basis") and a
linear map to one logit. Every weight starts as N(0, gain^2 / fan_in), and the only biases are those the
paper's activations carry (before each leaky ReLU).

Kept from the paper: all of the above, its expansion ratio 2 and groups of 16 channels. Its widths are 768 at
every stage of CIFAR-10 and halve with each doubling of the side above 32 (FFHQ); here ``ch`` plays that 768
and halves the same way above 32. The defaults, ``ch`` = 16 and 1 block per stage (the paper: 2), keep 8x8 runs
cheap on a CPU: at 8x8 they train about 2.7x slower than DCGAN's defaults, ``ch`` = 32 with 2 blocks 7x slower.
Changed: G's output goes through tanh, as every generator here must stay in the data's range (R3GAN's output
is linear). Left out: class conditioning, mixed precision, and everything that is training rather than
architecture (the RpGAN loss, R1 + R2, EMA, schedules, augmentation), which are other components.

Spectral normalisation cannot wrap these networks: a zero weight has no spectral norm (power iteration
divides 0 by 0), so the discriminator excludes the ``spectral_norm`` stabilizer.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo import DataSpec

from .layers import image_levels

RESOLUTIONS = (8, 16, 32, 64, 128)
CONVS_PER_BRANCH = 3
SLOPE = 0.2
ACTIVATION_GAIN = nn.init.calculate_gain("leaky_relu", SLOPE)
WIDEST_SIDE = 32  # stages above this side halve their width at every doubling, as in the paper's FFHQ models


def msr_init(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> nn.Module:
    """He ("MSR") initialisation: weights N(0, gain^2 / fan_in), bias zero; ``gain`` 0 gives a zero layer."""
    fan_in = layer.weight[0].numel()  # in_features, or (in_channels / groups) * kernel area
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def fixup_gain(total_blocks: int) -> float:
    """Initial gain of a residual branch's first convs: the activation's He gain times L^(-1/(2m-2))."""
    return ACTIVATION_GAIN * total_blocks ** (-1 / (2 * CONVS_PER_BRANCH - 2))


def upsample(x: torch.Tensor) -> torch.Tensor:
    """2x bilinear upsampling: the [1, 3, 3, 1] / 4 interpolation filter, edges clamped."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def downsample(x: torch.Tensor) -> torch.Tensor:
    """2x bilinear downsampling with antialiasing: the [1, 3, 3, 1] / 8 low-pass filter at stride 2 (renormalised
    at the edges), where plain bilinear would alias by sampling every other pixel pair."""
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)


def group_count(channels: int, group_size: int, component: str) -> int:
    """Groups of ``group_size`` channels in a grouped conv over ``channels``; one group when there are fewer."""
    if channels <= group_size:
        return 1
    if channels % group_size:
        raise ValueError(f"{component}: a stage's {channels} expanded channels do not split into groups of "
                         f"group_size={group_size}; choose ch and expansion so that ch * expansion (and its halves "
                         "above 32 px) is a multiple of group_size, or change group_size")
    return channels // group_size


class InvertedBottleneck(nn.Module):
    """x + conv1x1(lrelu(grouped conv3x3(lrelu(conv1x1(x))))), the last conv zero so that it starts as x."""

    def __init__(self, width: int, expansion: int, groups: int, total_blocks: int):
        super().__init__()
        wide = width * expansion
        # The biases are the paper's activation biases: added right before each leaky ReLU.
        self.expand = msr_init(nn.Conv2d(width, wide, 1), fixup_gain(total_blocks))
        self.spatial = msr_init(nn.Conv2d(wide, wide, 3, padding=1, groups=groups), fixup_gain(total_blocks))
        self.project = msr_init(nn.Conv2d(wide, width, 1, bias=False), gain=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.spatial(h), SLOPE)
        return x + self.project(h)


class Transition(nn.Module):
    """Resampling between two stages, with a 1x1 conv where their widths differ (on the narrower side)."""

    def __init__(self, in_width: int, out_width: int, up: bool):
        super().__init__()
        self.up = up
        self.conv = msr_init(nn.Conv2d(in_width, out_width, 1, bias=False)) if in_width != out_width else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # G changes the width before upsampling and D after downsampling: the conv runs at the smaller side.
        if self.up:
            return upsample(x if self.conv is None else self.conv(x))
        x = downsample(x)
        return x if self.conv is None else self.conv(x)


def stage_widths(levels: int, ch: int) -> list[int]:
    """Widths of the stages from 4x4 up to the image side 4 * 2^levels."""
    sides = [4 * 2**level for level in range(levels + 1)]
    return [max(1, ch * WIDEST_SIDE // side) if side > WIDEST_SIDE else ch for side in sides]


def _blocks(width: int, blocks: int, expansion: int, group_size: int, total: int, component: str) -> list[nn.Module]:
    groups = group_count(width * expansion, group_size, component)
    return [InvertedBottleneck(width, expansion, groups, total) for _ in range(blocks)]


class GenerativeBasis(nn.Module):
    """z -> 4x4 map: a learned 4x4 pattern per channel, each scaled by a linear function of z."""

    def __init__(self, latent_dim: int, width: int):
        super().__init__()
        self.pattern = nn.Parameter(torch.randn(width, 4, 4))
        self.modulation = msr_init(nn.Linear(latent_dim, width, bias=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.pattern * self.modulation(z)[:, :, None, None]


class R3GANGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, levels: int, ch: int, blocks: int, expansion: int,
                 group_size: int):
        super().__init__()
        self.latent_dim = latent_dim
        widths = stage_widths(levels, ch)
        total = blocks * len(widths)
        component = "generator r3gan"
        self.basis = GenerativeBasis(latent_dim, widths[0])
        stages = [nn.Sequential(*_blocks(widths[0], blocks, expansion, group_size, total, component))]
        for in_width, out_width in pairwise(widths):
            stages.append(nn.Sequential(Transition(in_width, out_width, up=True),
                                        *_blocks(out_width, blocks, expansion, group_size, total, component)))
        self.stages = nn.Sequential(*stages)
        self.to_image = msr_init(nn.Conv2d(widths[-1], channels, 1, bias=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(self.stages(self.basis(z))))


class DiscriminativeBasis(nn.Module):
    """4x4 map -> one logit: a depthwise 4x4 conv (one learned 4x4 pattern per channel), then linear."""

    def __init__(self, width: int):
        super().__init__()
        self.depthwise = msr_init(nn.Conv2d(width, width, 4, groups=width, bias=False))
        self.head = msr_init(nn.Linear(width, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.depthwise(x).flatten(1)).squeeze(1)


class R3GANDiscriminator(nn.Module):
    def __init__(self, channels: int, levels: int, ch: int, blocks: int, expansion: int, group_size: int):
        super().__init__()
        widths = stage_widths(levels, ch)[::-1]  # from the image side down to 4x4
        total = blocks * len(widths)
        component = "discriminator r3gan"
        self.from_image = msr_init(nn.Conv2d(channels, widths[0], 1, bias=False))
        stages = [nn.Sequential(*_blocks(in_width, blocks, expansion, group_size, total, component),
                                Transition(in_width, out_width, up=False))
                  for in_width, out_width in pairwise(widths)]
        self.stages = nn.Sequential(*stages)
        self.last = nn.Sequential(*_blocks(widths[-1], blocks, expansion, group_size, total, component))
        self.basis = DiscriminativeBasis(widths[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis(self.last(self.stages(self.from_image(x))))


def _check(component: str, ch: int, blocks: int, expansion: int, group_size: int, **more: int) -> None:
    values = {"ch": ch, "blocks": blocks, "expansion": expansion, "group_size": group_size, **more}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{component}: {name} must be an integer >= 1; got {value!r}")


def r3gan_generator(spec: DataSpec, latent_dim: int = 64, ch: int = 16, blocks: int = 1, expansion: int = 2,
                    group_size: int = 16) -> R3GANGenerator:
    """Build an R3GAN generator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``, any channel count.
        latent_dim: dimension of z (R3GAN: 64).
        ch: width of every stage up to 32x32, halved at each doubling above (R3GAN CIFAR-10: 768).
        blocks: residual blocks per stage (R3GAN: 2).
        expansion: how many times each block's bottleneck widens its channels (R3GAN: 2).
        group_size: channels per group of the grouped 3x3 convs (R3GAN: 16).
    """
    levels = image_levels(spec, "generator r3gan", RESOLUTIONS)
    _check("generator r3gan", ch, blocks, expansion, group_size, latent_dim=latent_dim)
    return R3GANGenerator(latent_dim, spec.channels, levels, ch, blocks, expansion, group_size)


def r3gan_discriminator(spec: DataSpec, ch: int = 16, blocks: int = 1, expansion: int = 2,
                        group_size: int = 16) -> R3GANDiscriminator:
    """Build an R3GAN discriminator for images of ``spec`` (the generator's stages in reverse).

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``, any channel count.
        ch: width of every stage up to 32x32, halved at each doubling above (R3GAN CIFAR-10: 768).
        blocks: residual blocks per stage (R3GAN: 2).
        expansion: how many times each block's bottleneck widens its channels (R3GAN: 2).
        group_size: channels per group of the grouped 3x3 convs (R3GAN: 16).
    """
    levels = image_levels(spec, "discriminator r3gan", RESOLUTIONS)
    _check("discriminator r3gan", ch, blocks, expansion, group_size)
    return R3GANDiscriminator(spec.channels, levels, ch, blocks, expansion, group_size)
