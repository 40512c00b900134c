"""ganzoo-example-plugin: a ganzoo plugin made by ``ganzoo new-plugin``.

It registers generator example_plugin_mlp, discriminator example_plugin_mlp, loss example_plugin_logistic,
stabilizer example_plugin_noise, dataset example_plugin_spiral, feature extractor
example_plugin_random_features, metric example_plugin_mean_gap.

Each ``register_<kind>s`` hook below registers one component with ``register(name, factory, ...)``; every
keyword (``defaults``, ``modalities``, ``tags`` ...) is in ganzoo's plugin guide. Names are prefixed with
``example_plugin_`` because a built-in name can never be taken over.
"""

import math

import torch
from torch import nn

import ganzoo


def flat_size(spec: ganzoo.DataSpec) -> int:
    """Values in one sample of ``spec``: what an MLP reads or writes."""
    return math.prod(spec.shape)


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


class MLPDiscriminator(nn.Module):
    """One logit per sample; no batch statistics, so each logit depends on its own sample only (R1 needs it)."""

    def __init__(self, spec: ganzoo.DataSpec, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(flat_size(spec), width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x)


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


class InstanceNoise(ganzoo.Stabilizer):
    """Gaussian noise on what D sees, annealed from ``sigma`` to 0 over the budget (Sonderby et al. 2017).

    Its random stream is state: ``state_dict`` carries it through checkpoints, so a resumed run draws the same
    noise as an uninterrupted one (``ganzoo.testing.check_stabilizer`` checks that).
    """

    def __init__(self, sigma: float = 0.1, seed: int = 0):
        if sigma < 0:
            raise ValueError(f"example_plugin_noise: sigma must be >= 0, got {sigma}")
        self.sigma, self.rng = sigma, torch.Generator().manual_seed(seed)

    def augment(self, x, ctx):
        scale = self.sigma * (1.0 - ctx.progress)
        noise = torch.randn(x.shape, generator=self.rng)  # drawn on the CPU: the same numbers on any device
        return x + scale * noise.to(x.device, x.dtype)

    def state_dict(self):
        return {"rng": self.rng.get_state()}

    def load_state_dict(self, state):
        self.rng.set_state(state["rng"])


class Spiral(ganzoo.Dataset):
    """``n`` points on a two-armed spiral inside [-1, 1]^2, labelled by arm; the same points from the same ``seed``.

    ``sample`` and ``sample_labelled`` are the base class's (one ``randint`` of the generator they are given);
    ``real_samples`` draws fresh points, so the leaderboard's real-data row is what a perfect G would score.
    """

    default_extractor = "identity"  # the built-in extractor for vectors: the points are their own features

    def __init__(self, n: int = 2000, noise: float = 0.02, seed: int = 0):
        if n < 1 or noise < 0:
            raise ValueError(f"example_plugin_spiral: needs n >= 1 and noise >= 0, got n={n}, noise={noise}")
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


class RandomFeatures(ganzoo.FeatureExtractor):
    """Random Fourier features of the flattened samples, ``cos(x W + b)``, with ``W`` and ``b`` drawn from ``seed``.

    Each sample's features depend on it alone, so metrics do not change with the evaluation's batch size. No
    logits (``num_classes = None``), so no Inception Score.
    """

    name = "example_plugin_random_features"  # its registered name: the metrics' protocol records it
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


def mean_gap(real, fake, protocol) -> float:
    """Distance between the mean real and the mean generated feature (FID's first term, square-rooted).

    ``real`` is the reference set (``features``, float64 ``mu`` and ``sigma``), ``fake`` the generated
    ``ganzoo.Features``, ``protocol`` the ``ganzoo.EvalProtocol``.
    """
    fake_mean = fake.features.double().mean(dim=0).cpu()
    return float((torch.as_tensor(real.mu) - fake_mean).norm())


@ganzoo.hookimpl
def register_generators(register):
    # No modalities declared: ganzoo builds it for vector and image data and keeps those it runs on (both here).
    register("example_plugin_mlp", MLPGenerator,
             description="Two-layer MLP generator for vectors and small images",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661",
             defaults={"latent_dim": 8, "width": 64})


@ganzoo.hookimpl
def register_discriminators(register):
    register("example_plugin_mlp", MLPDiscriminator,
             description="Two-layer MLP discriminator, one logit per sample",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661",
             defaults={"width": 64})


@ganzoo.hookimpl
def register_losses(register):
    # "targets": it honours real_target, so stabilizers that require it (label smoothing) may pair with it.
    register("example_plugin_logistic", Logistic,
             description="Non-saturating logistic loss with a real target",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661", tags=("targets",))


@ganzoo.hookimpl
def register_stabilizers(register):
    # A stabilizer's factory never sees the data, so modalities are declared: this one works on both.
    register("example_plugin_noise", InstanceNoise,
             description="Gaussian instance noise annealed to zero",
             reference="Sonderby et al. 2017, Amortised MAP Inference for Image Super-resolution, arXiv:1610.04490",
             defaults={"sigma": 0.1, "seed": 0}, modalities=("image", "vector"))


@ganzoo.hookimpl
def register_datasets(register):
    register("example_plugin_spiral", Spiral,
             description="Two-armed 2-D spiral, labelled by arm",
             reference="Lang & Witbrock 1988, Learning to Tell Two Spirals Apart",
             defaults={"n": 2000, "noise": 0.02, "seed": 0}, modalities=("vector",))


@ganzoo.hookimpl
def register_feature_extractors(register):
    register("example_plugin_random_features", RandomFeatures,
             description="Random Fourier features of flattened samples",
             reference="Rahimi & Recht 2007, Random Features for Large-Scale Kernel Machines, NeurIPS",
             defaults={"feature_dim": 64, "bandwidth": 1.0, "seed": 0}, modalities=("image", "vector"))


@ganzoo.hookimpl
def register_metrics(register):
    register("example_plugin_mean_gap", mean_gap, lower_is_better=True,
             description="Distance between the mean real and the mean generated feature",
             reference="Heusel et al. 2017, arXiv:1706.08500 (the first term of FID)")
