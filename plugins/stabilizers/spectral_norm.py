"""Spectral normalisation: divide each weight by its largest singular value, estimated by power iteration.

Miyato et al. 2018 normalise every layer of D so that each is 1-Lipschitz (as a linear map), which bounds
D's Lipschitz constant; one power iteration per forward pass suffices because the weights change slowly.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo import Stabilizer

# Layers whose `weight` is a linear map. ConvTranspose stores it transposed; torch picks the right dim.
SN_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Embedding)


def apply_spectral_norm(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectrally normalise, in place, the weight of every linear, convolution and embedding layer of ``module``.

    Args:
        module: the network to change; layers that already carry a parametrised weight are left alone.
        n_power_iterations: power-iteration steps per forward pass in training mode.

    Returns:
        ``module`` itself.
    """
    for layer in list(module.modules()):
        if not isinstance(layer, SN_LAYERS) or getattr(layer, "weight", None) is None:
            continue
        if parametrize.is_parametrized(layer, "weight"):
            continue  # the architecture already normalises it (e.g. an SN-GAN discriminator)
        spectral_norm(layer, n_power_iterations=n_power_iterations)
    return module


class SpectralNorm(Stabilizer):
    """Wraps D (and optionally G) with spectral normalisation at build time.

    Args:
        apply_to_generator: also normalise G, as SAGAN does.
        n_power_iterations: power-iteration steps per forward pass.
    """

    def __init__(self, apply_to_generator: bool = False, n_power_iterations: int = 1):
        if int(n_power_iterations) < 1:
            raise ValueError(f"spectral_norm: n_power_iterations must be >= 1, got {n_power_iterations}")
        self.apply_to_generator = bool(apply_to_generator)
        self.n_power_iterations = int(n_power_iterations)

    def wrap_generator(self, generator: nn.Module) -> nn.Module:
        if self.apply_to_generator:
            apply_spectral_norm(generator, self.n_power_iterations)
        return generator

    def wrap_discriminator(self, discriminator: nn.Module) -> nn.Module:
        return apply_spectral_norm(discriminator, self.n_power_iterations)
