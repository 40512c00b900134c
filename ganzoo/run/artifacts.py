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
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from ..core.records import atomic_write

CHECKPOINT = "checkpoint.pt"
SAMPLES = "samples.png"
# The checkpoint's version. 1: checkpoints written before it was recorded (the same entries, no "schema"); they
# load as version 1, so a sweep interrupted under an older ganzoo resumes.
CHECKPOINT_SCHEMA = 2
# The checkpoint entries read outside training (ganzoo eval, ganzoo.run.build.load_generator): the resolved spec and
# the evaluated G's weights. A finished run's checkpoint also holds its result (its evaluations among them): a
# driver killed before recording it recovers it from there.
SPEC_KEY, EVAL_GENERATOR_KEY, RESULT_KEY = "spec", "generator_eval", "result"


@dataclass
class Checkpoint:
    """What a run's ``checkpoint.pt`` holds; written by ``to_dict`` and read by ``from_dict`` only.

    While the run trains, everything that decides its next step (``ganzoo.run.train`` fills and reads it) and its
    record so far. Once it has finished, ``result`` (``RunResult.to_dict()``) is added and, unless the sweep keeps
    them, the training state's entries are dropped (``finished``). On disk it is a dict of tensors and plain data,
    so it loads with ``torch.load(..., weights_only=True)``.
    """

    g_steps: int
    d_steps: int = 0
    images: int = 0  # real images shown to D
    spec: dict[str, Any] | None = None  # RunSpec.canonical()
    generator_eval: dict[str, torch.Tensor] | None = None  # the evaluated G (e.g. the EMA copy): what eval reads
    # The training state: None in a finished checkpoint that did not keep it.
    generator: dict[str, torch.Tensor] | None = None
    discriminator: dict[str, torch.Tensor] | None = None
    opt_g: dict[str, Any] | None = None
    opt_d: dict[str, Any] | None = None
    stabilizers: list[dict[str, Any]] | None = None  # each stabilizer's state_dict, in stack order
    rng: dict[str, torch.Tensor] | None = None  # rng_state: the data stream and the global streams
    seconds: float | None = None  # seconds trained so far, evaluations included
    evals: list[dict[str, Any]] | None = None  # Evaluation.to_dict() of each evaluation so far
    eval_seconds: float | None = None
    result: dict[str, Any] | None = None  # RunResult.to_dict(), once the run has finished

    @property
    def is_finished(self) -> bool:
        return self.result is not None

    @property
    def recorded_evals(self) -> list[dict[str, Any]]:
        """The evaluations it holds: its result's once the run has finished, else the training state's."""
        return (self.result or {}).get("evals") or self.evals or []

    def finished(self, result: dict[str, Any], keep_training_state: bool = False) -> Checkpoint:
        """This last checkpoint with the run's ``result`` added; without the training state unless kept (D and
        two Adam states are most of a run's bytes; reporting and ``ganzoo eval`` need the spec and G only)."""
        if keep_training_state:
            return replace(self, result=result)
        return Checkpoint(g_steps=self.g_steps, d_steps=self.d_steps, images=self.images, spec=self.spec,
                          generator_eval=self.generator_eval, result=result)

    def to_dict(self) -> dict[str, Any]:
        """Its entries (those it has) and ``schema``."""
        entries = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return {"schema": CHECKPOINT_SCHEMA, **entries}

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """A checkpoint from ``to_dict``, of this version or version 1 (no ``schema``: the same entries).

        Raises:
            ValueError: not a run checkpoint (no ``g_steps``), a newer schema, or entries it does not know.
        """
        if not isinstance(data, dict) or "g_steps" not in data:
            raise ValueError("it holds no training state (a run checkpoint has g_steps)")
        data = dict(data)
        version = data.pop("schema", 1)
        if not isinstance(version, int) or version > CHECKPOINT_SCHEMA:
            raise ValueError(f"it has schema {version!r}, but this ganzoo reads checkpoints up to schema "
                             f"{CHECKPOINT_SCHEMA}: upgrade ganzoo to resume it")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"it has entries {unknown} that a schema-{version} checkpoint does not have")
        return cls(**data)


def recorded_evals(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The evaluations a loaded checkpoint dict holds (``Checkpoint.recorded_evals``)."""
    return Checkpoint.from_dict(state).recorded_evals


def save_checkpoint(checkpoint: Checkpoint, run_dir: Path) -> Path:
    """Write through ``ganzoo.core.records.atomic_write``: a kill during the write never leaves a broken checkpoint."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write(run_dir / CHECKPOINT, lambda tmp: torch.save(checkpoint.to_dict(), tmp))


def finish_checkpoint(run_dir: Path, result: dict[str, Any], keep_training_state: bool = False) -> Path:
    """Add the finished run's ``result`` (``RunResult.to_dict()``) to its last checkpoint and, unless asked to keep
    it, drop the training state.

    The last checkpoint is the last evaluation's state (for a diverged run: the last one before it diverged),
    so the weights kept are the ones whose metrics the run recorded.
    """
    checkpoint = Checkpoint.from_dict(load_checkpoint(run_dir / CHECKPOINT))
    return save_checkpoint(checkpoint.finished(result, keep_training_state), run_dir)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint can hold tensors and plain data, never code."""
    return torch.load(path, map_location=device, weights_only=True)


def load_run_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> Checkpoint | None:
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
        return Checkpoint.from_dict(load_checkpoint(path, device))
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
