"""Metrics between real and generated samples: FID, IS, KID, precision/recall, density/coverage.

The functions take features (torch tensors or, for FID statistics, numpy arrays) and compute in float64
where it matters; ``evaluate.Evaluator`` ties them to a dataset, a feature extractor and an ``EvalProtocol``.
"""

from .features import extract_features, quantize_uint8
from .fid import feature_statistics, fid_from_features, frechet_distance
from .images import iter_image_batches, read_images
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .prdc import density_coverage, precision_recall
from .reference import ReferenceSet, load_or_compute

__all__ = [
    "ReferenceSet",
    "density_coverage",
    "extract_features",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "iter_image_batches",
    "kernel_inception_distance",
    "load_or_compute",
    "precision_recall",
    "quantize_uint8",
    "read_images",
]
