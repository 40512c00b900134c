"""The one template of a ganzoo plugin: a piece of module and a piece of tests for each of the seven kinds.

``render_plugin(name, kinds)`` assembles a package from the pieces of the kinds asked for: ``ganzoo new-plugin``
writes it, and ``examples/ganzoo-example-plugin`` is it with every kind (``tests/test_new_plugin.py`` checks
that the committed copy equals a fresh rendering). Each piece is the shortest component that passes its
``ganzoo.testing`` check, and each test piece is that check, so a generated package's tests pass as written.

The pieces are ``string.Template`` text (``$prefix``, ``$entry``, ``$dist``, ``$module``) kept in this module,
not package data, so that an installed ganzoo cannot lose them.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from string import Template

PLUGIN_KINDS = ("generator", "discriminator", "loss", "stabilizer", "dataset", "feature_extractor", "metric")
TRAINABLE_KINDS = PLUGIN_KINDS[:4]  # what ``ganzoo new-plugin NAME`` writes without --kind
DISTRIBUTION = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Piece:
    """One kind's share of the package: the component's code, its hook, its test and what they import."""

    component: str  # the name it registers, before ${prefix}_ is added
    summary: str  # for the README and the CLI: "generator ${prefix}_mlp"
    code: str
    hook: str
    test: str
    checks: tuple[str, ...]
    imports: tuple[str, ...] = ("import torch", "from torch import nn")


SIZE = '''
def flat_size(spec: ganzoo.DataSpec) -> int:
    """Values in one sample of ``spec``: what an MLP reads or writes."""
    return math.prod(spec.shape)
'''

PIECES = {
    "generator": Piece("mlp", "generator ${prefix}_mlp", '''
class MLPGenerator(nn.Module):
    """z -> one sample of ``spec.shape``; images end in tanh, so they lie in [-1, 1] as the contract asks."""

    def __init__(self, spec: ganzoo.DataSpec, latent_dim: int = 8, width: int = 64):
        super().__init__()
        self.latent_dim = latent_dim  # the harness draws z ~ N(0, I) of shape (B, latent_dim)
        self.shape, self.image = spec.shape, spec.modality == "image"
        self.net = nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(), nn.Linear(width, flat_size(spec)))

    def forward(self, z):
        x = self.net(z).view(-1, *self.shape)
        return torch.tanh(x) if self.image else x
''', '''
@ganzoo.hookimpl
def register_generators(register):
    # No modalities declared: ganzoo builds it for vector and image data and keeps those it runs on (both here).
    register("${prefix}_mlp", MLPGenerator,
             description="Two-layer MLP generator for vectors and small images",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661",
             defaults={"latent_dim": 8, "width": 64})
''', '''
@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_generator_contract(registry, spec):
    check_generator(registry.get("generator", "${prefix}_mlp").build(spec), spec)
''', ("check_generator",), ("import math", "import torch", "from torch import nn")),

    "discriminator": Piece("mlp", "discriminator ${prefix}_mlp", '''
class MLPDiscriminator(nn.Module):
    """One logit per sample; no batch statistics, so each logit depends on its own sample only (R1 needs it)."""

    def __init__(self, spec: ganzoo.DataSpec, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(flat_size(spec), width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x)
''', '''
@ganzoo.hookimpl
def register_discriminators(register):
    register("${prefix}_mlp", MLPDiscriminator,
             description="Two-layer MLP discriminator, one logit per sample",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661",
             defaults={"width": 64})
''', '''
@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_discriminator_contract(registry, spec):
    check_discriminator(registry.get("discriminator", "${prefix}_mlp").build(spec), spec)
''', ("check_discriminator",), ("import math", "from torch import nn")),

    "loss": Piece("logistic", "loss ${prefix}_logistic", '''
class Logistic(ganzoo.Loss):
    """The non-saturating GAN loss (Goodfellow et al. 2014); ``real_target`` < 1 is one-sided label smoothing.

    Its G side reads only the fake logits. A loss whose g_loss compares them with real logits (a relativistic
    loss) sets the class attribute ``uses_real_logits_in_g = True``; otherwise the harness passes None.
    """

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        softplus = nn.functional.softplus  # log(1 + e^x): finite at any logit, unlike log(sigmoid(x))
        real = real_target * softplus(-real_logits) + (1 - real_target) * softplus(real_logits)
        return real.mean() + softplus(fake_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return nn.functional.softplus(-fake_logits).mean()
''', '''
@ganzoo.hookimpl
def register_losses(register):
    # "targets": it honours real_target, so stabilizers that require it (label smoothing) may pair with it.
    register("${prefix}_logistic", Logistic,
             description="Non-saturating logistic loss with a real target",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661", tags=("targets",))
''', '''
def test_loss_contract(registry):
    component = registry.get("loss", "${prefix}_logistic")
    check_loss(component.build(), targets="targets" in component.tags)
''', ("check_loss",), ("from torch import nn",)),

    "stabilizer": Piece("noise", "stabilizer ${prefix}_noise", '''
class InstanceNoise(ganzoo.Stabilizer):
    """Gaussian noise on what D sees, annealed from ``sigma`` to 0 over the budget (Sonderby et al. 2017).

    Its random stream is state: ``state_dict`` carries it through checkpoints, so a resumed run draws the same
    noise as an uninterrupted one (``ganzoo.testing.check_stabilizer`` checks that).
    """

    def __init__(self, sigma: float = 0.1, seed: int = 0):
        if sigma < 0:
            raise ValueError(f"${prefix}_noise: sigma must be >= 0, got {sigma}")
        self.sigma, self.rng = sigma, torch.Generator().manual_seed(seed)

    def augment(self, x, ctx):
        scale = self.sigma * (1.0 - ctx.progress)
        noise = torch.randn(x.shape, generator=self.rng)  # drawn on the CPU: the same numbers on any device
        return x + scale * noise.to(x.device, x.dtype)

    def state_dict(self):
        return {"rng": self.rng.get_state()}

    def load_state_dict(self, state):
        self.rng.set_state(state["rng"])
''', '''
@ganzoo.hookimpl
def register_stabilizers(register):
    # A stabilizer's factory never sees the data, so modalities are declared: this one works on both.
    register("${prefix}_noise", InstanceNoise,
             description="Gaussian instance noise annealed to zero",
             reference="Sonderby et al. 2017, Amortised MAP Inference for Image Super-resolution, arXiv:1610.04490",
             defaults={"sigma": 0.1, "seed": 0}, modalities=("image", "vector"))
''', '''
@pytest.mark.parametrize("modality", ["vector", "image"])
def test_stabilizer_trains_in_the_harness_and_resumes_exactly(registry, modality, tmp_path):
    component = registry.get("stabilizer", "${prefix}_noise")
    check_stabilizer(component.factory, component.hparams(), modality, tmp_path)
''', ("check_stabilizer",), ("import torch",)),

    "dataset": Piece("spiral", "dataset ${prefix}_spiral", '''
class Spiral(ganzoo.Dataset):
    """``n`` points on a two-armed spiral inside [-1, 1]^2, labelled by arm; the same points from the same ``seed``.

    ``sample`` and ``sample_labelled`` are the base class's (one ``randint`` of the generator they are given);
    ``real_samples`` draws fresh points, so the leaderboard's real-data row is what a perfect G would score.
    """

    default_extractor = "identity"  # the built-in extractor for vectors: the points are their own features

    def __init__(self, n: int = 2000, noise: float = 0.02, seed: int = 0):
        if n < 1 or noise < 0:
            raise ValueError(f"${prefix}_spiral: needs n >= 1 and noise >= 0, got n={n}, noise={noise}")
        self.noise = noise
        self.data, self.labels = self.draw(n, torch.Generator().manual_seed(seed))
        self.spec = self.spec_for(n, noise, seed)

    @classmethod
    def spec_for(cls, n: int = 2000, noise: float = 0.02, seed: int = 0) -> ganzoo.DataSpec:
        """The DataSpec without making the data: what ``ganzoo bench --dry-run`` plans with."""
        return ganzoo.DataSpec("vector", (2,), num_classes=2)

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points and their arms, from ``generator`` alone (on its device)."""
        arm = torch.randint(2, (n,), generator=generator, device=generator.device)
        t = torch.rand(n, generator=generator, device=generator.device)  # how far along the arm
        angle = 3 * math.pi * t + math.pi * arm
        points = 0.9 * t[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        jitter = self.noise * torch.randn(n, 2, generator=generator, device=generator.device)
        return (points + jitter).clamp(-1.0, 1.0), arm

    real_samples_note = "fresh draws from the spiral (not the reference points)"

    def real_samples(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.draw(n, generator)[0]
''', '''
@ganzoo.hookimpl
def register_datasets(register):
    register("${prefix}_spiral", Spiral,
             description="Two-armed 2-D spiral, labelled by arm",
             reference="Lang & Witbrock 1988, Learning to Tell Two Spirals Apart",
             defaults={"n": 2000, "noise": 0.02, "seed": 0}, modalities=("vector",))
''', '''
def test_dataset_contract(registry):
    check_dataset(registry.get("dataset", "${prefix}_spiral"), registry=registry)
''', ("check_dataset",), ("import math", "import torch")),

    "feature_extractor": Piece("random_features", "feature extractor ${prefix}_random_features", '''
class RandomFeatures(ganzoo.FeatureExtractor):
    """Random Fourier features of the flattened samples, ``cos(x W + b)``, with ``W`` and ``b`` drawn from ``seed``.

    Each sample's features depend on it alone, so metrics do not change with the evaluation's batch size. No
    logits (``num_classes = None``), so no Inception Score.
    """

    name = "${prefix}_random_features"  # its registered name: the metrics' protocol records it
    num_classes = None

    def __init__(self, feature_dim: int = 64, bandwidth: float = 1.0, seed: int = 0):
        super().__init__()
        self.feature_dim, self.bandwidth, self.seed = feature_dim, bandwidth, seed
        self.weights_hash = f"seed{seed}"  # the weights are a function of the seed, so it names them

    def forward(self, x):
        flat = x.flatten(1).float()
        generator = torch.Generator().manual_seed(self.seed)  # the same W and b at every call, on any device
        w = torch.randn(flat.shape[1], self.feature_dim, generator=generator) / self.bandwidth
        b = 2 * math.pi * torch.rand(self.feature_dim, generator=generator)
        features = math.sqrt(2 / self.feature_dim) * torch.cos(flat @ w.to(flat.device) + b.to(flat.device))
        return ganzoo.Features(features)

    def protocol(self):
        return {**super().protocol(), "feature_dim": self.feature_dim, "bandwidth": self.bandwidth}
''', '''
@ganzoo.hookimpl
def register_feature_extractors(register):
    register("${prefix}_random_features", RandomFeatures,
             description="Random Fourier features of flattened samples",
             reference="Rahimi & Recht 2007, Random Features for Large-Scale Kernel Machines, NeurIPS",
             defaults={"feature_dim": 64, "bandwidth": 1.0, "seed": 0}, modalities=("image", "vector"))
''', '''
@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_feature_extractor_contract(registry, spec):
    check_feature_extractor(registry.get("feature_extractor", "${prefix}_random_features"), spec)
''', ("check_feature_extractor",), ("import math", "import torch")),

    "metric": Piece("mean_gap", "metric ${prefix}_mean_gap", '''
def mean_gap(real, fake, protocol) -> float:
    """Distance between the mean real and the mean generated feature (FID's first term, square-rooted).

    ``real`` is the reference set (``features``, float64 ``mu`` and ``sigma``), ``fake`` the generated
    ``ganzoo.Features``, ``protocol`` the ``ganzoo.EvalProtocol``.
    """
    fake_mean = fake.features.double().mean(dim=0).cpu()
    return float((torch.as_tensor(real.mu) - fake_mean).norm())
''', '''
@ganzoo.hookimpl
def register_metrics(register):
    register("${prefix}_mean_gap", mean_gap, lower_is_better=True,
             description="Distance between the mean real and the mean generated feature",
             reference="Heusel et al. 2017, arXiv:1706.08500 (the first term of FID)")
''', '''
def test_metric_contract(registry):
    check_metric(registry.metric("${prefix}_mean_gap"))
''', ("check_metric",), ("import torch",)),
}

PAIR_TEST = '''
@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_generator_trains_through_the_discriminator(registry, spec):
    check_pair(registry.get("generator", "${prefix}_mlp").build(spec),
               registry.get("discriminator", "${prefix}_mlp").build(spec), spec)
'''

MODULE_HEAD = '''"""$dist: a ganzoo plugin made by ``ganzoo new-plugin``.

It registers $wrapped_summary.

Each ``register_<kind>s`` hook below registers one component with ``register(name, factory, ...)``; every
keyword (``defaults``, ``modalities``, ``tags`` ...) is in ganzoo's plugin guide. Names are prefixed with
``${prefix}_`` because a built-in name can never be taken over.
"""
'''

TESTS_HEAD = '''"""$dist's components against ganzoo's contracts: the checks ganzoo's own zoo passes."""

import $module as plugin
import pytest
'''

TESTS_REGISTRY = '''

@pytest.fixture(scope="module")
def registry():
    # Registered beside the installed zoo, as `ganzoo list` would: fails on a clash, a typo or bad metadata.
    return check_plugin(plugin, name="$entry")


def test_registers_what_it_declares(registry):
    ours = [(c.kind, c.name) for c in registry.all() if c.plugin == "$entry"]
    ours += [("metric", m.name) for m in registry.metrics() if m.plugin == "$entry"]
    assert ours == $registered
'''

SPECS_LINES = '''
SPECS = [DataSpec("vector", (2,)), DataSpec("image", (1, 8, 8)), DataSpec("image", (3, 16, 16))]


def shape_id(spec):
    return "x".join(map(str, spec.shape))
'''

PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A ganzoo plugin: $summary."
requires-python = ">=3.10"
dependencies = ["ganzoo"]

[project.optional-dependencies]
test = ["pytest"]

# The whole of the wiring: one entry point in the "ganzoo" group, naming the module with the hooks.
[project.entry-points.ganzoo]
$entry = "$module"

[tool.setuptools]
py-modules = ["$module"]
'''

README = '''# $dist

A ganzoo plugin made by `ganzoo new-plugin`.
It registers $wrapped_summary.

    pip install -e .          # then: ganzoo list   (its components, plugin "$entry")
    pytest tests              # ganzoo.testing's contract checks

Replace the components in `$module.py` with yours and keep the tests: they are the checks ganzoo's own zoo
passes (see ganzoo's plugin guide). `ganzoo new-plugin NAME --kind KIND` writes one for any of the kinds
$kinds.
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


def kinds_from_user(chosen: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The kinds asked for (``generator`` ... ``metric``, ``feature-extractor``, or ``all``) in template order.

    Nothing chosen gives the four trainable kinds. Raises ``ValueError`` naming an unknown kind and the choices.
    """
    wanted = set()
    for text in chosen or TRAINABLE_KINDS:
        key = text.strip().lower().replace("-", "_")
        if key == "all":
            wanted.update(PLUGIN_KINDS)
        elif key in PLUGIN_KINDS:
            wanted.add(key)
        else:
            raise ValueError(f'Unknown kind "{text}"; choose among {", ".join(PLUGIN_KINDS)} or all')
    return tuple(kind for kind in PLUGIN_KINDS if kind in wanted)


def summary_of(kinds: tuple[str, ...], names: dict[str, str]) -> str:
    """``"generator acme_mlp, loss acme_logistic"``: what a package of ``kinds`` registers."""
    return ", ".join(Template(PIECES[kind].summary).substitute(names) for kind in kinds)


def render_plugin(name: str, kinds: tuple[str, ...] = TRAINABLE_KINDS) -> dict[str, str]:
    """The files of plugin package ``name`` with one component of each of ``kinds``: relative path -> text.

    Raises:
        ValueError: a bad name or an unknown kind.
    """
    names = plugin_names(name)
    kinds = kinds_from_user(kinds)
    pieces = [PIECES[kind] for kind in kinds]
    summary = summary_of(kinds, names)
    fill = {**names, "summary": summary, "kinds": ", ".join(PLUGIN_KINDS),
            "wrapped_summary": textwrap.fill(summary, width=110, initial_indent=" " * 13)[13:]}
    fill["registered"] = "[\n" + "".join(f'        ("{kind}", "{names["prefix"]}_{PIECES[kind].component}"),\n'
                                          for kind in kinds) + "    ]"

    module = [Template(MODULE_HEAD).substitute(fill), "\n".join(import_block(pieces)), "", "import ganzoo", ""]
    if {"generator", "discriminator"} & set(kinds):
        module.append(SIZE)
    module += [piece.code for piece in pieces] + [piece.hook for piece in pieces]

    pair = {"generator", "discriminator"} <= set(kinds)
    checks = sorted({"check_plugin", *(c for piece in pieces for c in piece.checks), *(["check_pair"] if pair else [])})
    needs_specs = bool({"generator", "discriminator", "feature_extractor"} & set(kinds))
    tests = [Template(TESTS_HEAD).substitute(fill)]
    imports = ("from ganzoo import DataSpec\n" if needs_specs else "") + from_import("ganzoo.testing", checks)
    tests.append(imports)
    if needs_specs:
        tests.append(SPECS_LINES)
    tests.append(Template(TESTS_REGISTRY).substitute(fill))
    tests += [piece.test for piece in pieces] + ([PAIR_TEST] if pair else [])

    def text(parts: list[str]) -> str:
        return Template("\n".join(parts)).substitute(fill).strip() + "\n"

    return {
        "pyproject.toml": Template(PYPROJECT).substitute(fill),
        f"{names['module']}.py": text(module).replace("\n\n\n\n", "\n\n\n"),
        f"tests/test_{names['module']}.py": text(tests).replace("\n\n\n\n", "\n\n\n"),
        "README.md": Template(README).substitute(fill),
    }


def from_import(module: str, names: list[str]) -> str:
    """``from module import a, b``, one name a line in parentheses when that is too long (as ruff wraps it)."""
    line = f"from {module} import {', '.join(names)}"
    return line if len(line) <= 120 else f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"


def import_block(pieces: list[Piece]) -> list[str]:
    """The standard-library imports, then the third-party ones, each sorted: the order ruff's isort keeps."""
    lines = {line for piece in pieces for line in piece.imports}
    standard = sorted(line for line in lines if line == "import math")
    third = sorted((line for line in lines if line != "import math"), key=lambda line: (line.startswith("from"), line))
    return standard + ([""] if standard and third else []) + third
