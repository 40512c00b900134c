"""Batched feature extraction: samples go from their source to the extractor on the device, never to disk.

Quantisation: generated images are floats in [-1, 1]; the reference pipelines measure 8-bit images. ganzoo
maps them as ``floor(clamp(127.5 x + 128, 0, 255))``, i.e. 127.5 (x + 1) *rounded* to the nearest level
(halves up). That is what saving a PNG with torchvision and what torch-fidelity's model wrappers do, and it
recovers the exact bytes of real data stored as ``u / 127.5 - 1``. Truncation (``floor(127.5 (x + 1))``),
used by some GAN code bases, shifts every image by half a level and moves FID a little.

``check_features`` is the input check that every metric (FID, IS, KID, PR, DC) shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from tqdm.auto import tqdm

from ..api.contracts import FeatureExtractor, Features

Source = torch.Tensor | Callable[[int], torch.Tensor] | Iterable[torch.Tensor]


def check_features(features: torch.Tensor, what: str = "features") -> None:
    """Raise a ``ValueError`` unless ``features`` is a finite (N, D) tensor."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if hasattr(features, "shape") else type(features).__name__
        raise ValueError(f"{what} must be a 2-D tensor (samples, dims), got {shape}")
    if features.shape[0] == 0:
        raise ValueError(f"{what} is empty: give at least one sample")
    if not torch.isfinite(features).all():
        bad = int((~torch.isfinite(features)).any(dim=1).sum())
        raise ValueError(
            f"{what} contain NaN or Inf in {bad} of {features.shape[0]} rows. The samples were probably "
            "non-finite (a diverged generator); metrics are undefined for them."
        )


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Floats in [-1, 1] to the integers 0..255 (as float32), rounding to the nearest 8-bit level."""
    return (x.float() * 127.5 + 128.0).clamp_(0.0, 255.0).floor_()


def iter_batches(source: Source, n: int | None, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield batches of at most ``batch_size`` samples, ``n`` in total (all of a tensor/iterable if ``None``).

    Args:
        source: a tensor of samples, a function ``sample_fn(k)`` returning ``k`` samples, or an iterable of
            batches (e.g. a DataLoader over an image folder).
        n: how many samples to take; required for a sample function.
        batch_size: the largest batch handed to the extractor.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(source, torch.Tensor):
        total = source.shape[0] if n is None else min(n, source.shape[0])
        for start in range(0, total, batch_size):
            yield source[start:min(start + batch_size, total)]
    elif callable(source):
        if n is None or n < 1:
            raise ValueError(f"Sampling from a generator needs a positive sample count n, got {n}")
        for start in range(0, n, batch_size):
            wanted = min(batch_size, n - start)
            batch = source(wanted)
            if batch.shape[0] != wanted:
                raise ValueError(f"sample_fn({wanted}) returned {batch.shape[0]} samples; it must return exactly n")
            yield batch
    else:
        remaining = n
        for batch in source:
            if remaining is not None:
                if remaining <= 0:
                    return
                batch = batch[:remaining]
                remaining -= batch.shape[0]
            for start in range(0, batch.shape[0], batch_size):
                yield batch[start:start + batch_size]


def extractor_device(extractor: FeatureExtractor) -> torch.device | None:
    """The device of the extractor's first parameter or buffer, ``None`` when it has neither (e.g. identity)."""
    tensor = next(extractor.parameters(), None)
    if tensor is None:
        tensor = next(extractor.buffers(), None)
    return None if tensor is None else tensor.device


@torch.inference_mode()
def extract_features(extractor: FeatureExtractor, source: Source, n: int | None = None, batch_size: int = 500,
                     device: torch.device | str | None = None, progress: bool = False) -> Features:
    """Run ``extractor`` over ``source`` in batches and concatenate its outputs.

    Args:
        extractor: the feature extractor, already on its device and in eval mode.
        source: see :func:`iter_batches`.
        n: number of samples (``None``: all of a tensor or iterable).
        batch_size: samples per forward pass.
        device: where each batch is moved before extraction (default: the extractor's device; batches stay
            where they are for an extractor without parameters or buffers).
        progress: show a progress bar.

    Returns:
        ``Features`` with float32 ``features`` (N, F) and ``logits`` (N, K) or ``None``, on the device.
    """
    device = device or extractor_device(extractor)
    features, logits = [], []
    with tqdm(total=n, disable=not progress, unit="img", desc="features", leave=False) as bar:
        for batch in iter_batches(source, n, batch_size):
            out = extractor(batch if device is None else batch.to(device, non_blocking=True))
            features.append(out.features.float())
            if out.logits is not None:
                logits.append(out.logits.float())
            bar.update(batch.shape[0])
    if not features:
        raise ValueError("No samples to extract features from: the source was empty")
    return Features(torch.cat(features), torch.cat(logits) if logits else None)
