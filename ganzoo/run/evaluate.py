"""What a run's evaluations measure: the samples of its evaluation stream, the metrics of them, its pictures.

Training's evaluations, ``ganzoo eval`` of a run checkpoint, the leaderboards' real-data rows and the report's
pictures all draw and measure samples here, so a sample that was measured is the sample that is shown.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..api.conditional import evaluation_labels, is_conditional, num_classes_of
from ..core.spec import RunSpec
from . import artifacts
from .build import sampling

EVAL_SEED_OFFSET = 1_000_003  # evaluation latents come from their own stream, fixed across evaluations
CLASS_ROW_SAMPLES = 8  # samples per class in a conditional run's grid
MAX_CLASS_ROWS = 16  # more classes (Stacked MNIST's 1,000) show their first 16


class Diverged(RuntimeError):
    """A loss or a generated sample became non-finite."""


def evaluate_generator(generator, evaluator, dataset, spec: RunSpec, device) -> dict[str, float]:
    """Metrics of ``generator`` under ``spec``'s protocol, plus the dataset's own measures on the same samples.

    The one evaluation path: training's evaluations and ``ganzoo eval`` of a run checkpoint both call it, so
    a checkpoint re-evaluated on the device it trained on gives the numbers its run recorded. The latents
    come from their own stream (``evaluation_sampling``), the same at every evaluation. A class-conditional
    G's samples carry the labels of their positions (``ganzoo.api.conditional.evaluation_labels``), so the
    conditional metrics (``cond_accuracy``, ``intra_fid``) are computed too.

    Raises:
        Diverged: a generated sample is not finite.
    """
    labels = (evaluation_labels(evaluator.protocol.n_fake, num_classes_of(generator), device=device)
              if is_conditional(generator) else None)
    with evaluation_sampling(generator, spec, device) as draw:

        def sample(n: int) -> torch.Tensor:
            x = draw(n)
            if not torch.isfinite(x).all():
                raise Diverged("the generator produced non-finite samples")
            return x

        return evaluate_samples(sample, evaluator, dataset, labels)


def evaluate_samples(sample: Callable[[int], torch.Tensor], evaluator, dataset,
                     labels: torch.Tensor | None = None) -> dict[str, float]:
    """``evaluator``'s metrics of the samples ``sample(n)`` draws, and ``dataset.extra_metrics`` of those same
    samples (modes, classes). A generator's evaluation and the leaderboards' real-data rows both end here.

    Args:
        sample: draws ``n`` samples (called in the evaluator's batches until it has ``protocol.n_fake``).
        evaluator: a ``ganzoo.metrics.evaluate.Evaluator``.
        dataset: the real data, whose ``extra_metrics`` are added.
        labels: the class each of the ``protocol.n_fake`` samples was drawn for (a conditional G), else ``None``.
    """
    kept: list[torch.Tensor] = []

    def keep(n: int) -> torch.Tensor:
        kept.append(sample(n))
        return kept[-1]

    metrics = dict(evaluator(keep) if labels is None else evaluator(keep, labels=labels))
    metrics.update(dataset.extra_metrics(torch.cat(kept)[: evaluator.protocol.n_fake]))
    return {k: float(v) for k, v in metrics.items()}


@contextlib.contextmanager
def evaluation_sampling(generator, spec: RunSpec, device) -> Iterator[Callable[[int], torch.Tensor]]:
    """``sample(n)`` on the evaluation latents of ``spec``'s run: ``ganzoo.run.build.sampling`` seeded with
    ``spec.seed + EVAL_SEED_OFFSET``, a stream of their own, so every evaluation of a run sees the same latents."""
    with sampling(generator, spec.seed + EVAL_SEED_OFFSET, device) as generate:
        yield generate


def evaluation_samples(generator, spec: RunSpec, device, n: int | None = None) -> torch.Tensor:
    """The first ``n`` samples (default ``spec.protocol.n_fake``) an evaluation of ``generator`` measures.

    The evaluation latents drawn in the evaluator's batches of ``protocol.batch_size`` (a batch of 64 latents is
    not the first 64 of a batch of 500), so they are the very samples the evaluation saw: the run's saved
    samples and the report's pictures are drawn here.
    """
    from ..metrics.features import iter_batches

    n_fake, batch_size = spec.protocol.n_fake, spec.protocol.batch_size
    n = n_fake if n is None else n
    drawn: list[torch.Tensor] = []
    with evaluation_sampling(generator, spec, device) as generate:
        # Whole batches as the evaluator draws them, then cut at n; past n_fake the stream goes on in new batches.
        batches = itertools.chain(iter_batches(generate, n_fake, batch_size),
                                  iter_batches(generate, max(n - n_fake, 1), batch_size))
        while sum(len(b) for b in drawn) < n:
            drawn.append(next(batches))
    return torch.cat(drawn)[:n]


# -- the picture a run leaves in its folder --------------------------------------------------------------------


def save_run_samples(generator, dataset, spec: RunSpec, device, run_dir: Path) -> Path:
    """The first samples of the run's evaluation (64 images, or 2,000 points over as many real ones); a
    class-conditional G's images one row per class (``class_rows``)."""
    if dataset.spec.modality == "image" and is_conditional(generator):
        num_classes = num_classes_of(generator)
        grid = class_rows(evaluation_samples(generator, spec, device, CLASS_ROW_SAMPLES * num_classes), num_classes)
        return artifacts.save_samples(grid, run_dir / artifacts.SAMPLES, nrow=CLASS_ROW_SAMPLES, limit=len(grid))
    n = 64 if dataset.spec.modality == "image" else 2000
    samples = evaluation_samples(generator, spec, device, n)
    real = dataset.reference(2000) if dataset.spec.modality == "vector" else None
    return artifacts.save_samples(samples, run_dir / artifacts.SAMPLES, real)


def class_rows(samples: torch.Tensor, num_classes: int, per_class: int = CLASS_ROW_SAMPLES) -> torch.Tensor:
    """Evaluation samples reordered class by class: sample ``i`` of the stream is class ``i mod K``, so the
    first ``per_class * K`` samples hold ``per_class`` of each class; row ``c`` of the result's grid is class ``c``.
    """
    rows = min(num_classes, MAX_CLASS_ROWS)
    grid = samples[: per_class * num_classes].reshape(per_class, num_classes, *samples.shape[1:])
    return grid[:, :rows].transpose(0, 1).reshape(rows * per_class, *samples.shape[1:])
