"""``ganzoo new-plugin NAME``: a package that installs, registers one component of each trainable kind, and tests them.

The templates are strings here, not package data, so nothing has to be shipped beside the module. The
package they make is the shortest one that passes ``ganzoo.testing``'s checks; replace its components
with yours and keep the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

DISTRIBUTION = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A ganzoo plugin: {prefix}_mlp G and D, {prefix}_logistic loss, {prefix}_noise stabilizer."
requires-python = ">=3.10"
dependencies = ["ganzoo"]

[project.optional-dependencies]
test = ["pytest"]

# The whole of the wiring: one entry point in the "ganzoo" group, naming the module with the hooks.
[project.entry-points.ganzoo]
{entry} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
'''

MODULE = '''\
"""{dist}: a ganzoo plugin (made by ``ganzoo new-plugin``).

Each ``register_<kind>s`` hook below registers one component with ``register(name, factory, ...)``; see
"Writing a plugin" in ganzoo's README for every keyword (``defaults``, ``modalities``, ``tags`` ...).
Names are prefixed with ``{prefix}_`` because a built-in name can never be taken over.
"""

import math

import torch
from torch import nn

import ganzoo


def _size(spec: ganzoo.DataSpec) -> int:
    return math.prod(spec.shape)


class MLPGenerator(nn.Module):
    """z -> one sample of ``spec.shape``; images end in tanh, so they lie in [-1, 1] as the contract asks."""

    def __init__(self, spec: ganzoo.DataSpec, latent_dim: int = 8, width: int = 64):
        super().__init__()
        self.latent_dim = latent_dim  # the harness draws z ~ N(0, I) of shape (B, latent_dim)
        self.shape, self.image = spec.shape, spec.modality == "image"
        self.net = nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(), nn.Linear(width, _size(spec)))

    def forward(self, z):
        x = self.net(z).view(-1, *self.shape)
        return torch.tanh(x) if self.image else x


class MLPDiscriminator(nn.Module):
    """One logit per sample; no batch statistics, so each logit depends on its own sample only (R1 needs it)."""

    def __init__(self, spec: ganzoo.DataSpec, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(_size(spec), width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x)


class Logistic(ganzoo.Loss):
    """The non-saturating GAN loss (Goodfellow et al. 2014); ``real_target`` < 1 is one-sided label smoothing."""

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        softplus = nn.functional.softplus  # log(1 + e^x): finite at any logit, unlike log(sigmoid(x))
        real = real_target * softplus(-real_logits) + (1 - real_target) * softplus(real_logits)
        return real.mean() + softplus(fake_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return nn.functional.softplus(-fake_logits).mean()


class InstanceNoise(ganzoo.Stabilizer):
    """Gaussian noise on what D sees, annealed from ``sigma`` to 0 over the budget (Sonderby et al. 2017).

    Its random stream is state: ``state_dict`` carries it through checkpoints, so a resumed run draws the same
    noise as an uninterrupted one (``ganzoo.testing.check_stabilizer`` checks that).
    """

    def __init__(self, sigma: float = 0.1, seed: int = 0):
        if sigma < 0:
            raise ValueError(f"{prefix}_noise: sigma must be >= 0, got {{sigma}}")
        self.sigma, self.rng = sigma, torch.Generator().manual_seed(seed)

    def augment(self, x, ctx):
        scale = self.sigma * (1.0 - ctx.progress)
        noise = torch.randn(x.shape, generator=self.rng)  # drawn on the CPU: the same numbers on any device
        return x + scale * noise.to(x.device, x.dtype)

    def state_dict(self):
        return {{"rng": self.rng.get_state()}}

    def load_state_dict(self, state):
        self.rng.set_state(state["rng"])


@ganzoo.hookimpl
def register_generators(register):
    register("{prefix}_mlp", MLPGenerator, description="Two-layer MLP generator for vectors and small images",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661",
             defaults={{"latent_dim": 8, "width": 64}})


@ganzoo.hookimpl
def register_discriminators(register):
    register("{prefix}_mlp", MLPDiscriminator, description="Two-layer MLP discriminator, one logit per sample",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661",
             defaults={{"width": 64}})


@ganzoo.hookimpl
def register_losses(register):
    # "targets": it honours real_target, so stabilizers that require it (label smoothing) may pair with it.
    register("{prefix}_logistic", Logistic, description="Non-saturating logistic loss with a real target",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661", tags=("targets",))


@ganzoo.hookimpl
def register_stabilizers(register):
    register("{prefix}_noise", InstanceNoise, description="Gaussian instance noise annealed to zero",
             reference="Sonderby et al. 2017, Amortised MAP Inference for Image Super-resolution, arXiv:1610.04490",
             defaults={{"sigma": 0.1, "seed": 0}})
'''

TESTS = '''\
"""{dist}'s components against ganzoo's contracts: the checks ganzoo's own zoo passes."""

import pytest

import {module} as plugin
from ganzoo import DataSpec
from ganzoo.testing import check_loss, check_pair, check_plugin, check_stabilizer

SPECS = [DataSpec("vector", (2,)), DataSpec("image", (1, 8, 8)), DataSpec("image", (3, 16, 16))]


@pytest.fixture(scope="module")
def registry():
    # Registered beside the installed zoo, as `ganzoo list` would: fails on a clash, a typo or bad metadata.
    return check_plugin(plugin, name="{entry}")


def test_registers_one_component_of_each_kind(registry):
    for kind in ("generator", "discriminator", "loss", "stabilizer"):
        assert [c.name for c in registry.list(kind) if c.plugin == "{entry}"], kind


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "x".join(map(str, s.shape)))
def test_generator_and_discriminator_contract(registry, spec):
    g = registry.get("generator", "{prefix}_mlp").build(spec)
    d = registry.get("discriminator", "{prefix}_mlp").build(spec)
    check_pair(g, d, spec)


def test_loss_contract(registry):
    component = registry.get("loss", "{prefix}_logistic")
    check_loss(component.build(), targets="targets" in component.tags)


@pytest.mark.parametrize("modality", ["vector", "image"])
def test_stabilizer_trains_in_the_harness_and_resumes_exactly(registry, modality, tmp_path):
    component = registry.get("stabilizer", "{prefix}_noise")
    check_stabilizer(component.factory, component.hparams(), modality, tmp_path)
'''

README = '''\
# {dist}

A ganzoo plugin made by `ganzoo new-plugin`: generator and discriminator `{prefix}_mlp`, loss
`{prefix}_logistic`, stabilizer `{prefix}_noise`.

    pip install -e .          # then: ganzoo list   (the four components, plugin "{entry}")
    pytest tests              # ganzoo.testing's contract checks

Replace the components in `{module}.py` with yours and keep the tests: they are the checks ganzoo's own
zoo passes (see "Writing a plugin" in ganzoo's README).
'''


def plugin_names(name: str) -> dict[str, str]:
    """The names a plugin distribution ``name`` implies.

    Args:
        name: the distribution, lowercase words joined by ``-`` (``ganzoo-acme``).

    Returns:
        ``dist`` (the distribution), ``module`` (its importable module), ``entry`` (the entry point, i.e. the
        plugin's name in ``ganzoo plugins``) and ``prefix`` (of its component names).

    Raises:
        ValueError: ``name`` is not lowercase words joined by ``-``.
    """
    if not DISTRIBUTION.match(name):
        raise ValueError(f'Plugin name "{name}": use lowercase letters and digits in words joined by "-", starting '
                         'with a letter, e.g. ganzoo-acme')
    short = name.removeprefix("ganzoo-") or name
    return {"dist": name, "module": name.replace("-", "_"), "entry": short, "prefix": short.replace("-", "_")}


def write_plugin(name: str, parent: Path) -> Path:
    """Write the package ``parent / name`` (pyproject.toml, the module, README.md, tests/); returns its folder.

    Raises:
        ValueError: a bad name, or the folder exists already (nothing is overwritten).
    """
    names = plugin_names(name)
    root = Path(parent) / name
    if root.exists():
        raise ValueError(f"{root} exists already; choose another NAME or --directory (nothing was written)")
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(**names))
    (root / f"{names['module']}.py").write_text(MODULE.format(**names))
    (root / "tests" / f"test_{names['module']}.py").write_text(TESTS.format(**names))
    (root / "README.md").write_text(README.format(**names))
    return root


@click.command("new-plugin")
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where the package folder NAME/ is created.")
def new_plugin_command(name, directory):
    """Write a plugin package NAME/ (e.g. ganzoo-acme): one generator, discriminator, loss and stabilizer,
    an entry point in the "ganzoo" group, and tests that use ganzoo.testing.
    """
    try:
        root = write_plugin(name, directory)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    prefix = plugin_names(name)["prefix"]
    click.echo(f"Wrote {root}: {prefix}_mlp (generator, discriminator), {prefix}_logistic (loss), {prefix}_noise "
               f"(stabilizer).\nNext: pip install -e {root}  then  ganzoo list  and  pytest {root / 'tests'}")
