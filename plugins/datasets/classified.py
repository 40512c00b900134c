"""What a digit classifier measures on generated images, for every dataset of classified digits.

``digits``/``stacked_digits`` and ``mnist5k``/``stacked_mnist5k`` differ only in the classifier that reads
them: one digit gives ``classes`` (distinct predicted digits) and ``class_kl`` (KL of the predicted-class
histogram to the data's); three digits stacked as channels give ``modes`` (distinct predicted triples of
1000) and ``mode_kl`` (KL of the triple histogram to uniform), as PacGAN and VEEGAN count Stacked MNIST.
``classify`` maps grey images ``(N, 1, H, W)`` in [-1, 1] to predicted digits ``(N,)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .mixtures import histogram_kl

Classify = Callable[[torch.Tensor], torch.Tensor]


def check_samples(name: str, samples: torch.Tensor, channels: int) -> None:
    if samples.ndim != 4 or samples.shape[1] != channels:
        raise ValueError(f"{name}.extra_metrics expects images of shape (B, {channels}, H, W), "
                         f"got {tuple(samples.shape)}")


def classify_channels(samples: torch.Tensor, classify: Classify) -> torch.Tensor:
    """Predicted digit of every channel, ``(B, C)`` (-1 for a channel with a non-finite pixel)."""
    b, c = samples.shape[:2]
    flat = samples.detach().reshape(b * c, 1, *samples.shape[2:])
    finite = torch.isfinite(flat).flatten(1).all(dim=1)
    predicted = classify(torch.nan_to_num(flat, nan=0.0, posinf=1.0, neginf=-1.0))
    return torch.where(finite, predicted, torch.full_like(predicted, -1)).reshape(b, c)


def class_metrics(name: str, samples: torch.Tensor, classify: Classify, labels: torch.Tensor) -> dict[str, float]:
    """``classes``: distinct predicted digits; ``class_kl``: KL(predicted-class histogram || the data's)."""
    check_samples(name, samples, 1)
    predicted = classify_channels(samples, classify)[:, 0]
    counts = torch.bincount(predicted[predicted >= 0].cpu(), minlength=10)
    data_share = torch.bincount(labels.cpu(), minlength=10).double() / len(labels)
    return {"classes": float((counts > 0).sum()), "class_kl": histogram_kl(counts, data_share)}


def triple_metrics(name: str, samples: torch.Tensor, classify: Classify) -> dict[str, float]:
    """``modes``: distinct classified triples; ``mode_kl``: KL(triple histogram || uniform over 1000)."""
    check_samples(name, samples, 3)
    predicted = classify_channels(samples, classify)
    recognised = (predicted >= 0).all(dim=1)
    triple = predicted[recognised] @ torch.tensor([100, 10, 1], device=predicted.device)
    counts = torch.bincount(triple.cpu(), minlength=1000)
    return {"modes": float((counts > 0).sum()), "mode_kl": histogram_kl(counts)}
