"""Class-conditional G and D: conditional BatchNorm generators, projection and auxiliary-classifier discriminators.

Generators (``G(z, y)``): the DCGAN and SNGAN-ResNet generators of ``dcgan.py`` and ``resnet.py`` with every
BatchNorm made conditional: normalised without an affine map, then scaled and shifted by a per-class gain and
bias looked up from the label (de Vries et al. 2017; Miyato & Koyama 2018 condition their ResNet G this way).
The label enters nowhere else, so a G that learned to ignore it would draw every class alike.

Discriminators, on the trunks of the unconditional DCGAN and ResNet discriminators (``phi``, the features
before the final linear layer ``psi``):

- projection (Miyato & Koyama 2018): ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``, the logit of the
  class-conditional density ratio; ``conditional = True``, called with labels;
- auxiliary classifier (AC-GAN, Odena et al. 2017): ``D(x) = psi(phi(x))`` is unconditional and a second
  head ``classify(x) = W phi(x)`` gives K class logits, trained by the ``acgan`` stabilizer's cross-entropy
  terms. It is not called with labels. ``classify`` runs the trunk again: one pass that returned both outputs
  would break the one-logit-per-sample contract every loss and penalty relies on.

Every module sets ``num_classes`` (the dataset's ``DataSpec.num_classes``); the embeddings are plain
``nn.Embedding`` so that the ``spectral_norm`` stabilizer normalises them as the SNGAN projection code does.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo import DataSpec

from .dcgan import RESOLUTIONS as DCGAN_RESOLUTIONS
from .dcgan import DCGANDiscriminator
from .layers import check_norm, image_levels, init_weights
from .resnet import RESOLUTIONS as RESNET_RESOLUTIONS
from .resnet import ResNetDiscriminator

RESOLUTIONS = tuple(sorted(set(DCGAN_RESOLUTIONS) & set(RESNET_RESOLUTIONS)))


def classes_of(spec: DataSpec, component: str) -> int:
    """The dataset's class count, or an error saying the component needs labels."""
    if spec.num_classes is None or spec.num_classes < 1:
        raise ValueError(f"{component} is class-conditional: it needs a labelled dataset (DataSpec.num_classes), "
                         f"got num_classes={spec.num_classes}. Choose a labelled dataset such as digits")
    return int(spec.num_classes)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine map, then ``gain[y] * h + bias[y]``: one gain and bias per class.

    Args:
        gain_std: the gains start at 1 plus N(0, gain_std^2) noise (DCGAN's BatchNorm init: 0.02), the biases at 0.
    """

    def __init__(self, channels: int, num_classes: int, gain_std: float = 0.0):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        if gain_std > 0:
            nn.init.normal_(self.gain.weight, 1.0, gain_std)
        else:
            nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.gain(y)[:, :, None, None] * self.norm(x) + self.bias(y)[:, :, None, None]


class CondDCGANGenerator(nn.Module):
    """DCGAN's generator with conditional BatchNorm: z -> 4x4 -> transposed-conv doublings -> tanh."""

    conditional = True

    def __init__(self, latent_dim: int, channels: int, levels: int, ch: int, num_classes: int):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        width = ch * 2**levels
        self.project = nn.Linear(latent_dim, width * 16, bias=False)
        self.project_norm = ConditionalBatchNorm2d(width, num_classes, gain_std=0.02)
        self.ups, self.norms = nn.ModuleList(), nn.ModuleList()
        for _ in range(levels):
            self.ups.append(nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False))
            self.norms.append(ConditionalBatchNorm2d(width // 2, num_classes, gain_std=0.02))
            width //= 2
        self.to_image = nn.Conv2d(width, channels, 3, 1, 1)
        init_weights(self, "normal")  # convs and linears only: the class embeddings keep their own init

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.project_norm(self.project(z).view(z.shape[0], -1, 4, 4), y))
        for up, norm in zip(self.ups, self.norms, strict=True):
            h = F.relu(norm(up(h), y))
        return torch.tanh(self.to_image(h))


class CondUpBlock(nn.Module):
    """SNGAN's residual up-block with conditional BatchNorm (``resnet.UpBlock`` otherwise)."""

    def __init__(self, in_ch: int, out_ch: int, num_classes: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_ch, num_classes)
        self.bn2 = ConditionalBatchNorm2d(out_ch, num_classes)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)  # BatchNorm follows: a bias would cancel
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        init_weights(self, "xavier", math.sqrt(2))
        init_weights(self.shortcut, "xavier")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


class CondResNetGenerator(nn.Module):
    """SNGAN's ResNet generator with conditional BatchNorm in every up-block (the output BN stays unconditional)."""

    conditional = True

    def __init__(self, latent_dim: int, channels: int, levels: int, ch: int, num_classes: int):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.project = nn.Linear(latent_dim, ch * 16, bias=False)
        self.blocks = nn.ModuleList(CondUpBlock(ch, ch, num_classes) for _ in range(levels))
        self.out = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, channels, 3, 1, 1))
        init_weights(self.project, "xavier")
        init_weights(self.out, "xavier")

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(h))


class DCGANTrunk(nn.Module):
    """phi of the DCGAN discriminator: its strided convs, flattened (``ch * 2^(L-1) * 16`` features)."""

    def __init__(self, base: DCGANDiscriminator):
        super().__init__()
        self.features = base.features
        self.feature_dim = base.head.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


class ResNetTrunk(nn.Module):
    """phi of SNGAN's ResNet discriminator: its blocks, ReLU and global sum pooling (``ch`` features)."""

    def __init__(self, base: ResNetDiscriminator):
        super().__init__()
        self.blocks, self.norm = base.blocks, base.norm
        self.feature_dim = base.head.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.blocks(x))).sum(dim=(2, 3))


class ProjectionDiscriminator(nn.Module):
    """``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` (Miyato & Koyama 2018, Eq. 3 with their ResNet's sum pooling)."""

    conditional = True

    def __init__(self, trunk: nn.Module, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.trunk = trunk
        self.head = nn.Linear(trunk.feature_dim, 1)
        self.embed = nn.Embedding(num_classes, trunk.feature_dim)
        init_weights(self.head, "xavier")
        nn.init.xavier_uniform_(self.embed.weight)  # as the SNGAN projection code

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return self.head(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


class AuxiliaryClassifierDiscriminator(nn.Module):
    """AC-GAN's D: ``forward(x)`` the real/fake logit, ``classify(x)`` K class logits, from one trunk."""

    def __init__(self, trunk: nn.Module, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.trunk = trunk
        self.head = nn.Linear(trunk.feature_dim, 1)
        self.classifier = nn.Linear(trunk.feature_dim, num_classes)
        init_weights(self.head, "xavier")
        init_weights(self.classifier, "xavier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.trunk(x))


def _check_widths(component: str, **values: int) -> None:
    bad = {k: v for k, v in values.items() if v < 1}
    if bad:
        raise ValueError(f"{component}: {', '.join(bad)} must be >= 1; got {bad}")


def cond_dcgan_generator(spec: DataSpec, latent_dim: int = 128, ch: int = 32) -> CondDCGANGenerator:
    """Build DCGAN's generator with conditional BatchNorm for the labelled images of ``spec``.

    Args:
        spec: a labelled image spec (``num_classes``) with a square side in ``dcgan.RESOLUTIONS``.
        latent_dim, ch: as for ``dcgan``.
    """
    levels = image_levels(spec, "generator cond_dcgan", DCGAN_RESOLUTIONS)
    _check_widths("generator cond_dcgan", latent_dim=latent_dim, ch=ch)
    return CondDCGANGenerator(latent_dim, spec.channels, levels, ch, classes_of(spec, "generator cond_dcgan"))


def cond_resnet_generator(spec: DataSpec, latent_dim: int = 128, ch: int = 16) -> CondResNetGenerator:
    """Build SNGAN's ResNet generator with conditional BatchNorm for the labelled images of ``spec``.

    Args:
        spec: a labelled image spec (``num_classes``) with a square side in ``resnet.RESOLUTIONS``.
        latent_dim, ch: as for ``resnet_sngan``.
    """
    levels = image_levels(spec, "generator cond_resnet_sngan", RESNET_RESOLUTIONS)
    _check_widths("generator cond_resnet_sngan", latent_dim=latent_dim, ch=ch)
    return CondResNetGenerator(latent_dim, spec.channels, levels, ch,
                               classes_of(spec, "generator cond_resnet_sngan"))


def _dcgan_trunk(spec: DataSpec, component: str, ch: int, norm: str) -> DCGANTrunk:
    levels = image_levels(spec, component, DCGAN_RESOLUTIONS)
    check_norm(norm, component)
    _check_widths(component, ch=ch)
    return DCGANTrunk(DCGANDiscriminator(spec.channels, levels, ch, norm))


def projection_dcgan_discriminator(spec: DataSpec, ch: int = 32, norm: str = "none") -> ProjectionDiscriminator:
    """A projection discriminator on the DCGAN trunk (``ch`` and ``norm`` as for ``dcgan``)."""
    component = "discriminator projection_dcgan"
    return ProjectionDiscriminator(_dcgan_trunk(spec, component, ch, norm), classes_of(spec, component))


def projection_resnet_discriminator(spec: DataSpec, ch: int = 16, norm: str = "none") -> ProjectionDiscriminator:
    """A projection discriminator on SNGAN's ResNet trunk, the paper's own (``ch``, ``norm``: as resnet_sngan)."""
    component = "discriminator projection_resnet_sngan"
    levels = image_levels(spec, component, RESNET_RESOLUTIONS)
    check_norm(norm, component)
    _check_widths(component, ch=ch)
    trunk = ResNetTrunk(ResNetDiscriminator(spec.channels, levels, ch, norm))
    return ProjectionDiscriminator(trunk, classes_of(spec, component))


def acgan_dcgan_discriminator(spec: DataSpec, ch: int = 32, norm: str = "none") -> AuxiliaryClassifierDiscriminator:
    """AC-GAN's discriminator on the DCGAN trunk: a real/fake head and a K-way class head (``acgan`` trains it)."""
    component = "discriminator acgan_dcgan"
    return AuxiliaryClassifierDiscriminator(_dcgan_trunk(spec, component, ch, norm), classes_of(spec, component))
