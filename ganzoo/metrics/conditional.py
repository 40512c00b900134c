"""The metrics of class-conditional generators: does a sample show its class, and how well is each class drawn.

Both read the label each generated sample was drawn for (``fake.labels``: the evaluation gives class
``i mod K`` to sample ``i``, so ``n_fake`` samples hold ``n_fake / K`` of each class) and the reference's labels
(``real.labels``). The evaluator computes them for every conditional generator and never for an unconditional
one (``Metric.needs_labels``).

- ``cond_accuracy``: the share of generated samples that the protocol's extractor, a classifier of the
  dataset's classes (``digits_classifier`` on digits), assigns the class they were generated for. A generator
  that ignores its label scores chance, 1/K on balanced classes; real images score the classifier's accuracy.
- ``intra_fid``: the mean over the K classes of the FID between the generated samples of a class and the
  reference samples of that class (Miyato & Koyama 2018, cGANs with Projection Discriminator), on the
  protocol's features.
"""

from __future__ import annotations

import math
import warnings

from ..api.contracts import Features
from ..core.spec import EvalProtocol
from .fid import feature_statistics, frechet_distance
from .reference import ReferenceSet


def cond_accuracy(real: ReferenceSet, fake: Features, protocol: EvalProtocol) -> float:
    """Share of samples whose predicted class (argmax of the extractor's logits) is the one they were drawn for.

    NaN when the extractor's classes are not the dataset's (e.g. Inception's 1,008 on CIFAR-10): its argmax
    would name a class of another label set.
    """
    if fake.logits.shape[1] != real.num_classes:
        return math.nan
    predicted = fake.logits.argmax(dim=1)
    return float((predicted == fake.labels.to(predicted.device)).double().mean())


def intra_fid(real: ReferenceSet, fake: Features, protocol: EvalProtocol) -> float:
    """Mean over classes of the Fréchet distance between one class's real and generated features.

    NaN when some class has fewer than 2 samples on either side (no covariance): the mean would silently
    leave that class out.
    """
    distances = []
    with warnings.catch_warnings(record=True) as caught:  # one warning for the classes, not one per class
        warnings.simplefilter("always")
        for c in range(int(real.num_classes)):
            real_c = real.features[real.labels.to(real.features.device) == c]
            fake_c = fake.features[fake.labels.to(fake.features.device) == c]
            if len(real_c) < 2 or len(fake_c) < 2:
                return math.nan
            distances.append(frechet_distance(*feature_statistics(real_c), *feature_statistics(fake_c)))
    if caught:
        warnings.warn(f"intra_fid: {caught[0].message} (in {len(caught)} of the per-class statistics)", stacklevel=2)
    return float(sum(distances) / len(distances))


def register(register) -> None:
    """Register both; called from the built-in ``register_metrics`` after the unconditional metrics."""
    register("cond_accuracy", cond_accuracy, lower_is_better=False, needs_logits=True, needs_labels=True,
             labels={"cond_accuracy": "cond acc"},
             description="Class-conditional G: share of samples the dataset's classifier assigns their own label",
             reference="Odena et al. 2017, Conditional Image Synthesis with Auxiliary Classifier GANs, "
                       "arXiv:1610.09585 (classification accuracy of samples)")
    register("intra_fid", intra_fid, lower_is_better=True, needs_labels=True, labels={"intra_fid": "intra-FID"},
             description="Class-conditional G: mean over classes of the FID within one class",
             reference="Miyato & Koyama 2018, cGANs with Projection Discriminator, arXiv:1802.05637")
