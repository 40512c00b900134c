"""What a run leaves in its folder: an atomic checkpoint (loaded safely) and a PNG of samples.

While a run trains, its checkpoint holds everything that decides the next step (G, D, optimiser states,
random streams), so a killed run resumes exactly. Once it has finished, only what reporting and
``ganzoo eval`` read is kept (the spec, the evaluated G's weights, the run's result) unless the sweep was
asked to keep the training state: D and two Adam states are most of a run's bytes.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .records import atomic_write

CHECKPOINT = "checkpoint.pt"
SAMPLES = "samples.png"
# The checkpoint entries read outside training (ganzoo eval): the resolved spec and the evaluated G's weights.
SPEC_KEY, EVAL_GENERATOR_KEY = "spec", "generator_eval"
# A finished run's checkpoint also holds its result (its evaluations among them): a driver killed before
# recording it recovers it from here.
RESULT_KEY = "result"
KEPT_WHEN_FINISHED = (SPEC_KEY, EVAL_GENERATOR_KEY, "g_steps", "d_steps", "images")


def recorded_evals(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The evaluations a checkpoint holds: its result's once the run has finished, else the training state's."""
    return state.get(RESULT_KEY, state).get("evals") or []


def save_checkpoint(state: dict[str, Any], run_dir: Path) -> Path:
    """Write through ``ganzoo.records.atomic_write``: a kill during the write never leaves a broken checkpoint."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write(run_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))


def finish_checkpoint(run_dir: Path, result: dict[str, Any], keep_training_state: bool = False) -> Path:
    # ``result`` is ``RunResult.to_dict()``: versioned, read back by ``RunResult.from_dict`` only.
    """Add the finished run's ``result`` to its last checkpoint and, unless asked to keep it, drop the training state.

    The last checkpoint is the last evaluation's state (for a diverged run: the last one before it diverged),
    so the weights kept are the ones whose metrics the run recorded.
    """
    state = load_checkpoint(run_dir / CHECKPOINT)
    if not keep_training_state:
        state = {key: state[key] for key in KEPT_WHEN_FINISHED if key in state}
    state[RESULT_KEY] = result
    return save_checkpoint(state, run_dir)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint can hold tensors and plain data, never code."""
    return torch.load(path, map_location=device, weights_only=True)


class UnreadableCheckpoint(RuntimeError):
    """A checkpoint file that exists but cannot be loaded (truncated, empty, not a torch file)."""


def load_run_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """The run's checkpoint to resume from, or ``None`` to start from zero.

    Leftover temporary files of killed writers are removed. A checkpoint that cannot be read is moved
    aside to ``checkpoint.pt.unreadable-<time>`` (kept for inspection, never deleted) with a warning that
    names it, and the run starts again from zero rather than failing on every retry.
    """
    for leftover in run_dir.glob(f"{CHECKPOINT}.tmp*"):
        leftover.unlink(missing_ok=True)
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path, device)
        if not isinstance(state, dict) or "g_steps" not in state:
            raise UnreadableCheckpoint("it holds no training state")
        return state
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError... for a damaged file
        aside = path.with_name(f"{CHECKPOINT}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        warnings.warn(f"Checkpoint {path} could not be read ({type(exc).__name__}: {exc or 'empty file'}); moved it "
                      f"to {aside.name} and restarting the run from zero", RuntimeWarning, stacklevel=2)
        return None


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


def save_samples(samples: torch.Tensor, path: Path, real: torch.Tensor | None = None, nrow: int = 8,
                 limit: int = 64) -> Path:
    """Images as a grid of ``nrow`` per row (the first ``limit``); 2-D vectors as a scatter plot (real in grey,
    generated in red). A conditional run passes its samples class by class, one row per class."""
    samples = samples.detach().float().cpu()
    if samples.dim() == 4:
        from torchvision.utils import save_image

        grid = samples[:limit]
        if grid.shape[-1] < 32:  # enlarge tiny images (8x8 digits) so the grid can be looked at
            grid = torch.nn.functional.interpolate(grid, scale_factor=32 // grid.shape[-1], mode="nearest")
        save_image(grid, path, nrow=nrow, normalize=True, value_range=(-1, 1))
        return path
    from .pictures import scatter_2d  # matplotlib, imported only by runs that end with a scatter

    real_xy = None if real is None else real.detach().float().cpu()[:, :2].numpy()
    return scatter_2d(samples[:, :2].numpy(), path, real=real_xy)
