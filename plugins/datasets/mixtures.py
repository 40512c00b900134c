"""2-D Gaussian mixtures that know their modes: the ring of 8 and the grid of 25 (VEEGAN, PacGAN).

Both are generated from a seed, so they need no download. Generated samples are judged as in
VEEGAN/PacGAN: a sample is *high quality* when it lies within 3 sigma of its nearest mean, and a mode is
*captured* when it is the nearest mean of at least one high-quality sample.
"""

from __future__ import annotations

import math

import torch

from ganzoo import Dataset, DataSpec, Judgement

REFERENCE = ("Srivastava et al. 2017, VEEGAN, arXiv:1705.07761; Lin et al. 2018, PacGAN, arXiv:1712.04086 "
             "(ring/grid settings)")
HIGH_QUALITY_SIGMAS = 3.0


def ring_means(k: int = 8, radius: float = 1.0) -> torch.Tensor:
    """Means ``radius * (cos 2 pi i / k, sin 2 pi i / k)`` for ``i < k``, shape ``(k, 2)``."""
    angle = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)


def grid_means(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """Means on a centred ``side x side`` lattice (``{-4, -2, 0, 2, 4}^2`` by default), shape ``(side^2, 2)``."""
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def histogram_kl(counts: torch.Tensor, reference: torch.Tensor | None = None) -> float:
    """KL(p || q) in nats between the normalised histogram ``counts`` and ``reference`` (uniform when ``None``).

    Empty bins of ``p`` contribute 0 (the limit of ``p log p``). ``q`` must be positive wherever ``p`` is.
    An empty histogram (no sample to count) gets the largest value a histogram can reach against a uniform
    ``q``, ``log(K)`` (all mass on one bin), so that "nothing recognisable" ranks below "one mode".
    """
    counts = counts.double()
    k = counts.numel()
    q = torch.full((k,), 1.0 / k, dtype=torch.float64) if reference is None else reference.double().cpu()
    total = counts.sum()
    if total <= 0:
        return float(math.log(k)) if reference is None else float(-torch.log(q.min()))
    p = (counts / total).cpu()
    nonzero = p > 0
    return float((p[nonzero] * (p[nonzero] / q[nonzero]).log()).sum())


def mode_metrics(samples: torch.Tensor, means: torch.Tensor, sigma: float) -> dict[str, float]:
    """Modes captured, share of high-quality samples and KL of the mode histogram to uniform.

    Args:
        samples: generated points, shape ``(B, 2)``; non-finite rows count as low quality.
        means: the mixture's means, shape ``(K, 2)``.
        sigma: the components' standard deviation; high quality means within ``3 * sigma`` of the nearest mean.

    Returns:
        ``modes`` (0..K), ``high_quality`` (0..1) and ``mode_kl`` (nats; see ``histogram_kl`` for empty cases).
    """
    if samples.ndim != 2 or samples.shape[1] != means.shape[1]:
        raise ValueError(f"mode_metrics expects samples of shape (B, {means.shape[1]}), got {tuple(samples.shape)}")
    x = samples.detach().double()
    finite = torch.isfinite(x).all(dim=1)
    x = torch.where(finite[:, None], x, torch.zeros_like(x))  # keep cdist finite; masked out below
    distance, nearest = torch.cdist(x, means.to(x)).min(dim=1)
    high_quality = finite & (distance <= HIGH_QUALITY_SIGMAS * sigma)
    counts = torch.bincount(nearest[high_quality], minlength=means.shape[0])
    return {
        "modes": float((counts > 0).sum()),
        "high_quality": float(high_quality.double().mean()) if len(x) else 0.0,
        "mode_kl": histogram_kl(counts),
    }


class GaussianMixture2D(Dataset):
    """``n`` points drawn from an equal-weight mixture of isotropic Gaussians, reproducible from ``seed``.

    Args:
        means: component means, shape ``(K, 2)``.
        sigma: standard deviation of every component.
        n: number of points.
        seed: seed of the generator that picks components and noise.
    """

    default_extractor = "identity"

    def __init__(self, means: torch.Tensor, sigma: float, n: int, seed: int):
        if int(n) < 1:
            raise ValueError(f"A mixture needs n >= 1 points, got n={n}")
        self.means = means.float()
        self.sigma = float(sigma)
        generator = torch.Generator().manual_seed(int(seed))
        self.labels = torch.randint(len(means), (int(n),), generator=generator)
        noise = torch.randn(int(n), 2, generator=generator)
        self.data = self.means[self.labels] + self.sigma * noise
        low, high = float(self.data.min()), float(self.data.max())
        self.spec = DataSpec("vector", (2,), num_classes=len(means), value_range=(low, high))

    def extra_metrics(self, samples: torch.Tensor) -> dict[str, float]:
        return mode_metrics(samples, self.means, self.sigma)

    def mode_regions(self) -> tuple[torch.Tensor, float]:
        return self.means, HIGH_QUALITY_SIGMAS * self.sigma

    real_samples_note = "fresh draws from the mixture itself (not the reference points)"

    def real_samples(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """New points from the same mixture: the score of a perfect generator at this sample count."""
        device = generator.device
        component = torch.randint(len(self.means), (n,), generator=generator, device=device)
        noise = torch.randn(n, 2, generator=generator, device=device)
        return self.means.to(device)[component] + self.sigma * noise


def ring8(n: int = 100_000, seed: int = 0) -> GaussianMixture2D:
    """Ring of 8 Gaussians of radius 1, sigma 0.01."""
    return GaussianMixture2D(ring_means(8), 0.01, n, seed)


def grid25(n: int = 100_000, seed: int = 0) -> GaussianMixture2D:
    """Grid of 25 Gaussians at ``{-4, -2, 0, 2, 4}^2``, sigma 0.05."""
    return GaussianMixture2D(grid_means(5), 0.05, n, seed)


def mixture_judgement(k: int) -> Judgement:
    """Rank by modes captured (ties: high-quality share); FID of a 2-D Gaussian fit rewards the wrong thing.

    A uniform circle with no mode learned fits the ring's mean and covariance better than fresh real
    data does, so FID is kept in the tables but never ranks. Collapsed: a quarter of the modes or fewer.
    Success (the default; suites set their own per budget): PacGAN's bar for a baseline that works,
    most modes (k - 1) with at least half of the samples near a mode.
    Evaluated on 2,500 generated samples against 2,500 reference points, VEEGAN's and PacGAN's count: the
    100,000 points the data holds would make each precision/recall minutes long (every pair is compared).
    """
    return Judgement(headline="modes", lower_is_better=False, ceiling=k, tiebreak="high_quality",
                     collapse=(f"modes <= {k // 4}",), success=(f"modes >= {k - 1}", "high_quality >= 0.5"),
                     degrade_tolerance=0.25, coverage="modes",
                     note=f"modes captured out of {k}, 2,500 samples",
                     margin=0.1, margin_reason=f"within a tenth of the baseline's mode count ({k / 10:g} of {k} "
                     "modes), a row captures as many modes",
                     n_fake=2500, n_real=2500)


def register_all(register) -> None:
    defaults = {"n": 100_000, "seed": 0}
    register("ring8", ring8, description="Ring of 8 2-D Gaussians (sigma 0.01) with mode/quality metrics",
             reference=REFERENCE, tags=("modes", "embedded"), defaults=defaults, modalities=("vector",),
             judgement=mixture_judgement(8))
    register("grid25", grid25, description="Grid of 25 2-D Gaussians (sigma 0.05) with mode/quality metrics",
             reference=REFERENCE, tags=("modes", "embedded"), defaults=defaults, modalities=("vector",),
             judgement=mixture_judgement(25))
