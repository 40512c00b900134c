"""Built-in generators and discriminators: MLP, DCGAN, SNGAN's ResNet, BigGAN-lite, R3GAN-lite, StyleGAN2-lite
and any timm backbone.

Every factory takes the dataset's ``DataSpec`` and the hyperparameters listed in its ``defaults``;
image models build as many 2x resampling stages as the side needs, starting from 4x4 (StyleGAN2-lite also from
7x7, for 28x28), and accept any channel count. Discriminators contain no spectral norm and no BatchNorm by
default: both are choices made elsewhere (the ``spectral_norm`` stabilizer, the ``norm`` hyperparameter).
"""

from __future__ import annotations

import inspect

from ganzoo import hookimpl

from . import biggan_lite, conditional, dcgan, mlp, r3gan, resnet, stylegan2, timm_backbone

VECTOR = {"modalities": ("vector",), "resolutions": None, "channels": None}


def _image(resolutions: tuple[int, ...] | None) -> dict:
    return {"modalities": ("image",), "resolutions": resolutions, "channels": None}


PACGAN = "Lin et al. 2018, PacGAN, arXiv:1712.04086 (2-D mixture setting)"
DCGAN = "Radford et al. 2015, DCGAN, arXiv:1511.06434"
SNGAN = "Miyato et al. 2018, Spectral Normalization for GANs, arXiv:1802.05957 (CIFAR ResNet)"
BIGGAN = "Brock et al. 2018, Large Scale GAN Training (BigGAN), arXiv:1809.11096"
R3GAN = ("Huang, Gokaslan, Kuleshov & Tompkin 2024, The GAN is dead; long live the GAN! A Modern GAN Baseline, "
         "NeurIPS, arXiv:2501.05441")
STYLEGAN2 = ("Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN (StyleGAN2), CVPR, "
             "arXiv:1912.04958")
TIMM = "Wightman 2019, PyTorch Image Models (timm), doi:10.5281/zenodo.4414861"
PROJECTION = "Miyato & Koyama 2018, cGANs with Projection Discriminator, ICLR, arXiv:1802.05637"
ACGAN = "Odena, Olah & Shlens 2017, Conditional Image Synthesis with Auxiliary Classifier GANs, ICML, arXiv:1610.09585"
CBN = "de Vries et al. 2017, Modulating early visual processing by language (conditional BatchNorm), arXiv:1707.00683"

# Class-conditional components (ganzoo.api.conditional): tagged "conditional", so they run on labelled data only,
# and each requires the partner that gives its labels meaning. A conditional G needs a D that judges its
# labels (projection, tagged "conditional", or AC-GAN's classifier head, tagged "conditional" too); a
# projection D needs a conditional G; AC-GAN's D needs a conditional G and the acgan stabilizer that trains
# its head. An unconditional component never meets them in a grid.
CONDITIONAL = ("conditional",)
NEEDS_CONDITIONAL_D = {"requires": {"discriminator": "conditional"}}
NEEDS_CONDITIONAL_G = {"requires": {"generator": "conditional"}}

COND_GENERATORS = {
    "cond_dcgan": (conditional.cond_dcgan_generator,
                   "Class-conditional DCGAN G(z, y): every BatchNorm conditional (per-class gain and bias)",
                   f"{DCGAN}; {CBN}", _image(dcgan.RESOLUTIONS), CONDITIONAL, NEEDS_CONDITIONAL_D),
    "cond_resnet_sngan": (conditional.cond_resnet_generator,
                          "Class-conditional SNGAN ResNet G(z, y): conditional BatchNorm in every up-block",
                          f"{PROJECTION}; {SNGAN}", _image(resnet.RESOLUTIONS), CONDITIONAL, NEEDS_CONDITIONAL_D),
}

COND_DISCRIMINATORS = {
    "projection_dcgan": (conditional.projection_dcgan_discriminator,
                         "Projection D(x, y) = psi(phi(x)) + <embed(y), phi(x)> on the DCGAN trunk",
                         PROJECTION, _image(dcgan.RESOLUTIONS), CONDITIONAL, NEEDS_CONDITIONAL_G),
    "projection_resnet_sngan": (conditional.projection_resnet_discriminator,
                                "Projection D(x, y) on SNGAN's ResNet trunk (the paper's discriminator, narrow)",
                                PROJECTION, _image(resnet.RESOLUTIONS), CONDITIONAL, NEEDS_CONDITIONAL_G),
    "acgan_dcgan": (conditional.acgan_dcgan_discriminator,
                    "AC-GAN D on the DCGAN trunk: real/fake logit plus a K-way class head (train with acgan)",
                    ACGAN, _image(dcgan.RESOLUTIONS), ("conditional", "auxiliary_classifier"),
                    {"requires": {"generator": "conditional", "stabilizer": "auxiliary_classifier"}}),
}

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
    "r3gan": (r3gan.r3gan_generator,
              "R3GAN-lite: norm-free ResNet of grouped inverted bottlenecks, Fixup-style init, bilinear upsampling",
              R3GAN, _image(r3gan.RESOLUTIONS)),
    "stylegan2": (stylegan2.stylegan2_generator,
                  ("StyleGAN2, small: mapping network to w, modulated/demodulated convs from a learned constant, "
                   "noise inputs, skip toRGB outputs"),
                  STYLEGAN2, _image(stylegan2.RESOLUTIONS)),
}

# R3GAN's zero-initialised convs have no spectral norm (0 / 0): its D refuses weight-normalising stabilizers.
R3GAN_D = {**_image(r3gan.RESOLUTIONS), "excludes": {"stabilizer": "weight_normalisation"}}

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
    "r3gan": (r3gan.r3gan_discriminator,
              "R3GAN-lite D: G's stages reversed, bilinear low-pass downsampling, depthwise 4x4 basis, linear logit",
              R3GAN, R3GAN_D),
    "stylegan2": (stylegan2.stylegan2_discriminator,
                  ("StyleGAN2's residual D, small: equalised learning rate, optional minibatch stddev (mbstd_group, "
                   "off by default)"),
                  STYLEGAN2, _image(stylegan2.RESOLUTIONS)),
    "timm": (timm_backbone.timm_discriminator,
             "Any timm backbone with a one-logit head (model_name); random init, local pretrained weights only",
             TIMM, _image(None)),
}


def signature_defaults(factory) -> dict:
    """The keyword defaults of ``factory`` after its ``spec`` argument: the one source of ``defaults``."""
    params = list(inspect.signature(factory).parameters.values())[1:]
    return {p.name: p.default for p in params}


# Checked stacked under vmap, member by member against single runs (tests/test_vectorized.py). A timm backbone is
# any of hundreds of models, not all of whose layers vmap supports: its runs train one by one. AC-GAN's D is
# left out: the acgan stabilizer calls its classify head, which a stacked D does not batch. StyleGAN2's G is left
# out (its D is in): its noise inputs draw random numbers inside forward, which vmap refuses (randomness="error").
VECTORIZED = {
    "generator": {"mlp", "dcgan", "resnet_sngan", "biggan_lite", "r3gan", "cond_dcgan", "cond_resnet_sngan"},
    "discriminator": {"mlp", "dcgan", "resnet_sngan", "biggan_lite", "r3gan", "stylegan2", "projection_dcgan",
                      "projection_resnet_sngan"},
}

# Generators with mapping(z) -> ws and synthesis(ws), which the pl_reg stabilizer requires by this tag.
TAGS = {"stylegan2": ("style_based",)}


def _register_all(register, kind: str, table: dict) -> None:
    for name, (factory, description, reference, compat) in table.items():
        register(name, factory, description=description, reference=reference, tags=TAGS.get(name, ()),
                 defaults=signature_defaults(factory), vectorized=name in VECTORIZED[kind], **compat)


def _register_conditional(register, kind: str, table: dict) -> None:
    for name, (factory, description, reference, compat, tags, pairing) in table.items():
        register(name, factory, description=description, reference=reference, tags=tags,
                 defaults=signature_defaults(factory), vectorized=name in VECTORIZED[kind], **compat, **pairing)


@hookimpl
def register_generators(register):
    """Register the built-in generators."""
    _register_all(register, "generator", GENERATORS)
    _register_conditional(register, "generator", COND_GENERATORS)


@hookimpl
def register_discriminators(register):
    """Register the built-in discriminators."""
    _register_all(register, "discriminator", DISCRIMINATORS)
    _register_conditional(register, "discriminator", COND_DISCRIMINATORS)
