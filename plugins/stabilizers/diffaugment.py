"""Differentiable augmentation (DiffAugment) of every batch D sees, real and fake alike.

Zhao et al. 2020 augment both real and generated images with transforms that are differentiable with
respect to their input, so that G is trained through them and D cannot tell real from fake by the
augmentation. Each sample draws its own parameters. The three policies, as the paper defines them:

- ``color``: brightness shift in [-0.5, 0.5], saturation factor in [0, 2], contrast factor in [0.5, 1.5];
- ``translation``: shift by up to 1/8 of the image size in each direction, filling with zeros;
- ``cutout``: zero a square of half the image size at a random position.

The deterministic transforms take their parameters explicitly, so they can be checked on their own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ganzoo import Stabilizer, StepContext


def per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Shape ``(B,)`` values to broadcast over the other dimensions of ``x``."""
    return values.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def _check_images(x: torch.Tensor, who: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{who} augments image batches of shape (B, C, H, W), got {tuple(x.shape)}")


def brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Add ``shift[b]`` to every pixel of sample ``b``."""
    return x + per_sample(shift, x)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's deviation from its mean over channels by ``factor[b]``."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * per_sample(factor, x) + mean


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each sample's deviation from its mean over all pixels and channels by ``factor[b]``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * per_sample(factor, x) + mean


def translate(x: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """Move the content of sample ``b`` down by ``shift_y[b]`` and right by ``shift_x[b]`` pixels, filling with 0.

    Written as a gather so that gradients flow back to the pixels that were kept.
    """
    batch, _, height, width = x.shape
    rows = torch.arange(height, device=x.device).view(1, height, 1) - shift_y.view(-1, 1, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width) - shift_x.view(-1, 1, 1)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)  # (B, H, W)
    index = torch.arange(batch, device=x.device).view(-1, 1, 1)
    moved = x.permute(0, 2, 3, 1)[index, rows.clamp(0, height - 1), cols.clamp(0, width - 1)]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2) * inside.unsqueeze(1).to(x.dtype)


def cutout(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero the ``size`` = (height, width) box at (``top[b]``, ``left[b]``) of sample ``b``.

    The box may overhang the border.
    """
    _, _, height, width = x.shape
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    top, left = top.view(-1, 1, 1), left.view(-1, 1, 1)
    in_box = (rows >= top) & (rows < top + size[0]) & (cols >= left) & (cols < left + size[1])
    return x * (~in_box).unsqueeze(1).to(x.dtype)


def random_color(x: torch.Tensor) -> torch.Tensor:
    """Brightness, then saturation, then contrast, each with per-sample parameters."""
    batch = x.shape[0]
    x = brightness(x, torch.rand(batch, device=x.device) - 0.5)
    x = saturation(x, torch.rand(batch, device=x.device) * 2.0)
    return contrast(x, torch.rand(batch, device=x.device) + 0.5)


def random_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample by an integer number of pixels in [-ratio * size, ratio * size] along each axis."""
    batch, _, height, width = x.shape
    max_y, max_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = torch.randint(-max_y, max_y + 1, (batch,), device=x.device)
    shift_x = torch.randint(-max_x, max_x + 1, (batch,), device=x.device)
    return translate(x, shift_y, shift_x)


def random_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a box of ``ratio`` times the image size centred on a uniformly drawn pixel of each sample."""
    batch, _, height, width = x.shape
    size = (int(height * ratio + 0.5), int(width * ratio + 0.5))
    top = torch.randint(0, height, (batch,), device=x.device) - size[0] // 2
    left = torch.randint(0, width, (batch,), device=x.device) - size[1] // 2
    return cutout(x, top, left, size)


class DiffAugment(Stabilizer):
    """Applies the policy's random transforms to every batch D sees (the harness calls it on real and fake).

    Args:
        policy: comma-separated subset of ``color``, ``translation``, ``cutout``, applied in that order.
        translation_ratio: largest shift as a fraction of the image size.
        cutout_ratio: side of the cut-out square as a fraction of the image size.
    """

    def __init__(self, policy: str = "color,translation,cutout", translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5):
        transforms: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "color": random_color,
            "translation": lambda x: random_translation(x, translation_ratio),
            "cutout": lambda x: random_cutout(x, cutout_ratio),
        }
        names = [name.strip() for name in policy.split(",") if name.strip()]
        unknown = [name for name in names if name not in transforms]
        if unknown or not names:
            raise ValueError(f'diffaugment: unknown policy "{policy}"; '
                             f"use a comma-separated subset of {list(transforms)}")
        if not 0.0 <= translation_ratio < 1.0 or not 0.0 <= cutout_ratio <= 1.0:
            raise ValueError("diffaugment: translation_ratio must lie in [0, 1) and cutout_ratio in [0, 1], "
                             f"got {translation_ratio} and {cutout_ratio}")
        self.policy = names
        self._transforms = [transforms[name] for name in names]

    def augment(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        # In a vectorised group each member's slice is augmented with the member's own random draws. Without a
        # context (called directly, outside training) it is a plain function of the batch.
        return self._augment(x) if ctx is None else ctx.per_member(self._augment, x)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "diffaugment")
        for transform in self._transforms:
            x = transform(x)
        return x
