"""What a run leaves in its folder: an atomic checkpoint (loaded safely) and a PNG of samples."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"
SAMPLES = "samples.png"
# The checkpoint entries read outside training (ganzoo eval): the resolved spec and the evaluated G's weights.
SPEC_KEY, EVAL_GENERATOR_KEY = "spec", "generator_eval"


def save_checkpoint(state: dict[str, Any], run_dir: Path) -> Path:
    """Write to a temporary name, then rename: a kill during the write never leaves a broken checkpoint."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path, tmp = run_dir / CHECKPOINT, run_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint can hold tensors and plain data, never code."""
    return torch.load(path, map_location=device, weights_only=True)


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {"data": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(generator: torch.Generator, state: dict[str, Any]) -> None:
    generator.set_state(state["data"].cpu())
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_samples(samples: torch.Tensor, path: Path, real: torch.Tensor | None = None) -> Path:
    """Images as a grid; 2-D vectors as a scatter plot (real in grey, generated in red)."""
    samples = samples.detach().float().cpu()
    if samples.dim() == 4:
        from torchvision.utils import save_image

        grid = samples[:64]
        if grid.shape[-1] < 32:  # enlarge tiny images (8x8 digits) so the grid can be looked at
            grid = torch.nn.functional.interpolate(grid, scale_factor=32 // grid.shape[-1], mode="nearest")
        save_image(grid, path, nrow=8, normalize=True, value_range=(-1, 1))
        return path
    from .plots import scatter_2d  # matplotlib, imported only by runs that end with a scatter

    real_xy = None if real is None else real.detach().float().cpu()[:, :2].numpy()
    return scatter_2d(samples[:, :2].numpy(), path, real=real_xy)
