"""The built-in metrics, registered through ``register_metrics`` like a plugin's.

The core registers this module in every plugin manager (``ganzoo.core.registry.core_plugins``): the metrics are the
evaluator's, so no plugin switch can leave a run without them, and a plugin's metric takes part in
evaluations, leaderboards and ``ganzoo list`` exactly as these do.
"""

from __future__ import annotations

from ..api.contracts import Features
from ..api.hookspecs import hookimpl
from ..core.spec import EvalProtocol
from . import conditional
from .fid import feature_statistics, frechet_distance
from .inception_score import DEFAULT_SEED, inception_score
from .kid import kernel_inception_distance
from .prdc import density_coverage, precision_recall
from .reference import ReferenceSet

IS_SPLITS = 10
PR_K, DC_K = 3, 5


def is_splits(n: int) -> int:
    """10 splits, fewer when there are fewer than 10 samples (tiny debugging runs)."""
    return min(IS_SPLITS, n)


def fid(real: ReferenceSet, fake: Features, protocol: EvalProtocol) -> float:
    return frechet_distance(real.mu, real.sigma, *feature_statistics(fake.features))


def inception(real: ReferenceSet, fake: Features, protocol: EvalProtocol) -> dict[str, float]:
    mean, std = inception_score(fake.logits, splits=is_splits(len(fake.logits)), seed=DEFAULT_SEED)
    return {"is_mean": mean, "is_std": std}


def kid(real: ReferenceSet, fake: Features, protocol: EvalProtocol) -> dict[str, float]:
    mean, std = kernel_inception_distance(real.features, fake.features, subsets=protocol.kid_subsets,
                                          subset_size=protocol.kid_subset_size)
    return {"kid_mean": mean, "kid_std": std}


def pr(real: ReferenceSet, fake: Features, protocol: EvalProtocol) -> dict[str, float]:
    precision, recall = precision_recall(real.features, fake.features, k=PR_K)
    return {"precision": precision, "recall": recall}


def dc(real: ReferenceSet, fake: Features, protocol: EvalProtocol) -> dict[str, float]:
    density, coverage = density_coverage(real.features, fake.features, k=DC_K)
    return {"density": density, "coverage": coverage}


@hookimpl
def register_metrics(register):
    # Registration order is the leaderboards' column order.
    # FID reads the reference's mean and covariance, IS the generated logits: both work against a statistics file.
    register("fid", fid, lower_is_better=True, labels={"fid": "FID"}, needs_real_features=False,
             description="Fréchet distance between Gaussians fitted to real and generated features",
             reference="Heusel et al. 2017, GANs Trained by a Two Time-Scale Update Rule, arXiv:1706.08500")
    register("is", inception, lower_is_better=False, columns=("is_mean",), labels={"is_mean": "IS"},
             needs_logits=True, needs_real_features=False,
             description="Inception Score of the generated logits (mean and std over 10 splits)",
             reference="Salimans et al. 2016, Improved Techniques for Training GANs, arXiv:1606.03498")
    register("kid", kid, lower_is_better=True, columns=("kid_mean",), labels={"kid_mean": "KID"},
             description="Kernel Inception Distance: unbiased cubic-kernel MMD² over random subsets",
             reference="Bińkowski et al. 2018, Demystifying MMD GANs, arXiv:1801.01401")
    register("pr", pr, lower_is_better=False, columns=("precision", "recall"),
             description=f"Improved precision and recall of k-NN balls (k = {PR_K})",
             reference="Kynkäänniemi et al. 2019, Improved Precision and Recall Metric, arXiv:1904.06991")
    register("dc", dc, lower_is_better=False, columns=("density", "coverage"),
             description=f"Density and coverage of k-NN balls around the real samples (k = {DC_K})",
             reference="Naeem et al. 2020, Reliable Fidelity and Diversity Metrics, arXiv:2002.09797")
    # Last: columns only conditional generators fill (cond_accuracy, intra_fid).
    conditional.register(register)
