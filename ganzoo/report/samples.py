"""The picture of each run's samples in the HTML report, and why it is missing when it is.

Images: the sample grid the run left in its folder. 2-D data: the run's own final evaluation samples
(its checkpoint's evaluated generator on the evaluation latents, exactly the points its last metrics were
computed on) drawn over the real data and the modes' high-quality discs; when the checkpoint cannot be
used, the scatter the run left behind. A run folder that was deleted is said so, not hidden.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.records import DONE
from ..run import artifacts


@dataclass
class SamplePicture:
    path: Path | None  # the picture in the report folder, or None when it is missing
    note: str  # what the picture shows, or why it is missing


class SamplePictures:
    """Makes one picture per run; datasets are built once per (name, hyperparameters)."""

    def __init__(self, out_dir: Path, run_dir: Callable[[str], Path], registry=None):
        self.out_dir = out_dir
        self.run_dir = run_dir  # run id -> its folder in this results directory (``Store.run_dir``)
        self.registry = registry
        self._datasets: dict[str, Any] = {}

    def picture(self, row: dict[str, Any]) -> SamplePicture:
        target = self.out_dir / "samples" / f"{row['run_id']}.png"
        folder = self.run_dir(row["run_id"])
        # A folder that is gone holds neither file: one look instead of two (a report over thousands of runs
        # whose folders were pruned makes one per run).
        kept = folder.is_dir()
        checkpoint = self._find(folder, artifacts.CHECKPOINT) if kept else None
        saved = self._find(folder, artifacts.SAMPLES) if kept else None
        if checkpoint is not None and self._is_2d(row):
            try:
                return self._scatter_from_checkpoint(row, checkpoint, target)
            except Exception as exc:  # an unreadable checkpoint or a missing plugin: fall back to the saved picture
                fallback = f" (could not redraw from the checkpoint: {type(exc).__name__}: {exc})"
        else:
            fallback = ""
        if saved is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, target)
            layout = "; one row per class (row c: class c)" if self._is_conditional(row) else ""
            return SamplePicture(target, "the samples the run saved at the end" + layout + fallback)
        if row["status"] != DONE:
            return SamplePicture(None, f"no samples: the run is {row['status']}")
        return SamplePicture(None, f"samples missing: {folder} has neither "
                                   f"{artifacts.SAMPLES} nor {artifacts.CHECKPOINT} (run folder deleted or moved?)")

    def _find(self, folder: Path, name: str) -> Path | None:
        """The file in the run's folder of this results directory (which may have been moved since)."""
        path = folder / name
        return path if path.is_file() else None

    def _dataset(self, row: dict[str, Any]):
        spec = row["spec"]["dataset"]
        key = repr(spec)
        if key not in self._datasets:
            self._datasets[key] = self._registry().get("dataset", spec["name"]).build(**spec["hparams"])
        return self._datasets[key]

    def _registry(self):
        if self.registry is None:
            from ..core.registry import get_registry

            self.registry = get_registry()
        return self.registry

    def _is_conditional(self, row: dict[str, Any]) -> bool:
        """Whether the run's G is class-conditional: its saved grid then has one row per class (ganzoo.run.evaluate)."""
        try:
            return "conditional" in self._registry().get("generator", row["spec"]["generator"]["name"]).tags
        except Exception:  # plugin not installed here: the note stays the plain one
            return False

    def _is_2d(self, row: dict[str, Any]) -> bool:
        try:
            spec = self._dataset(row).spec
        except Exception:  # plugin not installed here: no redraw, the saved picture is shown
            return False
        return spec.modality == "vector" and spec.shape == (2,)

    def _scatter_from_checkpoint(self, row: dict[str, Any], checkpoint: Path, target: Path) -> SamplePicture:
        from .plots import scatter_2d

        samples, spec = final_samples(checkpoint, self._registry())
        fake, n = samples.numpy(), len(samples)
        dataset = self._dataset(row)
        regions = dataset.mode_regions()
        means, radius = (regions[0].numpy(), regions[1]) if regions is not None else (None, None)
        scatter_2d(fake, target, real=dataset.reference(n).cpu().numpy(), means=means, radius=radius,
                   title=f"seed {row['seed']}")
        note = f"the {n} samples of the final evaluation (red) over {n} real points (grey)"
        if regions is not None:
            note += "; circles: each mode's high-quality radius"
        return SamplePicture(target, note)


def final_samples(checkpoint: Path, registry=None):
    """The samples a run's last evaluation measured: its evaluated generator on the evaluation latents.

    Returns ``(samples, spec)``: ``protocol.n_fake`` samples on the CPU and the run's spec. The checkpoint
    is written right after each evaluation, so these are the final metrics' samples (on the device the
    run trained on, up to floating-point differences between devices).
    """
    from ..run.build import load_generator
    from ..run.evaluate import evaluation_samples

    generator, spec = load_generator(checkpoint, "cpu", registry)
    return evaluation_samples(generator, spec, "cpu"), spec
