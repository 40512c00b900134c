"""Built-in generators and discriminators: MLP, DCGAN, SNGAN's ResNet, BigGAN-lite and any timm backbone.

Every factory takes the dataset's ``DataSpec`` and the hyperparameters listed in its ``defaults``;
image models build as many 2x resampling stages as the side needs, starting from 4x4, and accept any
channel count. Discriminators contain no spectral norm and no BatchNorm by default: both are choices
made elsewhere (the ``spectral_norm`` stabilizer, the ``norm`` hyperparameter).
"""

from __future__ import annotations

import inspect

from ganzoo import hookimpl

from . import biggan_lite, dcgan, mlp, resnet, timm_backbone

VECTOR = {"modalities": ("vector",), "resolutions": None, "channels": None}


def _image(resolutions: tuple[int, ...] | None) -> dict:
    return {"modalities": ("image",), "resolutions": resolutions, "channels": None}


PACGAN = "Lin et al. 2018, PacGAN, arXiv:1712.04086 (2-D mixture setting)"
DCGAN = "Radford et al. 2015, DCGAN, arXiv:1511.06434"
SNGAN = "Miyato et al. 2018, Spectral Normalization for GANs, arXiv:1802.05957 (CIFAR ResNet)"
BIGGAN = "Brock et al. 2018, Large Scale GAN Training (BigGAN), arXiv:1809.11096"
TIMM = "Wightman 2019, PyTorch Image Models (timm), doi:10.5281/zenodo.4414861"

GENERATORS = {
    "mlp": (mlp.mlp_generator, "PacGAN's MLP generator for vectors: hidden Linear+BatchNorm+ReLU layers, linear output",
            PACGAN, VECTOR),
    "dcgan": (dcgan.dcgan_generator, "DCGAN: transposed-conv upsampling from 4x4 with BatchNorm+ReLU, tanh output",
              DCGAN, _image(dcgan.RESOLUTIONS)),
    "resnet_sngan": (resnet.resnet_generator,
                     "SNGAN's CIFAR ResNet generator: constant-width residual up-blocks from 4x4",
                     SNGAN, _image(resnet.RESOLUTIONS)),
    "biggan_lite": (biggan_lite.biggan_generator,
                    ("Unconditional BigGAN, small: residual up-blocks, hierarchical z in BatchNorm, self-attention, "
                     "orthogonal init (no classes, no truncation)"),
                    BIGGAN, _image(biggan_lite.RESOLUTIONS)),
}

DISCRIMINATORS = {
    "mlp": (mlp.mlp_discriminator, "PacGAN's maxout MLP discriminator for vectors (pieces=1: LeakyReLU MLP)",
            PACGAN, VECTOR),
    "dcgan": (dcgan.dcgan_discriminator, "DCGAN: strided 4x4 convs with LeakyReLU(0.2) down to 4x4, linear logit",
              DCGAN, _image(dcgan.RESOLUTIONS)),
    "resnet_sngan": (resnet.resnet_discriminator,
                     "SNGAN's CIFAR ResNet discriminator: residual down-blocks to 8x8 (4x4 for 8 px), sum pooling",
                     SNGAN, _image(resnet.RESOLUTIONS)),
    "biggan_lite": (biggan_lite.biggan_discriminator,
                    ("Unconditional BigGAN D, small: widening residual down-blocks, optional self-attention, "
                     "orthogonal init (no projection)"),
                    BIGGAN, _image(biggan_lite.RESOLUTIONS)),
    "timm": (timm_backbone.timm_discriminator,
             "Any timm backbone with a one-logit head (model_name); random init, local pretrained weights only",
             TIMM, _image(None)),
}


def signature_defaults(factory) -> dict:
    """The keyword defaults of ``factory`` after its ``spec`` argument: the one source of ``defaults``."""
    params = list(inspect.signature(factory).parameters.values())[1:]
    return {p.name: p.default for p in params}


def _register_all(register, table: dict) -> None:
    for name, (factory, description, reference, compat) in table.items():
        register(name, factory, description=description, reference=reference,
                 defaults=signature_defaults(factory), **compat)


@hookimpl
def register_generators(register):
    """Register the built-in generators."""
    _register_all(register, GENERATORS)


@hookimpl
def register_discriminators(register):
    """Register the built-in discriminators."""
    _register_all(register, DISCRIMINATORS)
