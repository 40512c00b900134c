"""What each kind of component promises to the harness.

A plugin's factory returns one of these objects. Generators and discriminators are plain
``torch.nn.Module``s that satisfy the ``Generator`` and ``Discriminator`` protocols below (checked in
full by ``ganzoo.testing.check_generator``, ``check_discriminator`` and ``check_pair``); losses,
stabilizers, datasets and feature extractors subclass the base classes below. Every hook of a
``Stabilizer`` is optional: the base class does nothing at each point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

MODALITIES = ("image", "vector")


@dataclass(frozen=True)
class DataSpec:
    """The shape of one sample and what it means.

    Args:
        modality: ``"image"`` (shape ``(C, H, W)``) or ``"vector"`` (shape ``(D,)``).
        shape: shape of one sample, without the batch dimension.
        num_classes: number of labels when the dataset is labelled, else ``None``.
        value_range: samples lie in this closed interval; images always use ``(-1, 1)``.
    """

    modality: str
    shape: tuple[int, ...]
    num_classes: int | None = None
    value_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f'DataSpec.modality must be one of {MODALITIES}, got "{self.modality}"')
        if self.modality == "image" and len(self.shape) != 3:
            raise ValueError(f"An image DataSpec needs shape (C, H, W), got {self.shape}")
        if self.modality == "vector" and len(self.shape) != 1:
            raise ValueError(f"A vector DataSpec needs shape (D,), got {self.shape}")

    @property
    def channels(self) -> int | None:
        return self.shape[0] if self.modality == "image" else None

    @property
    def resolution(self) -> int | None:
        return self.shape[-1] if self.modality == "image" else None


@runtime_checkable
class Generator(Protocol):
    """What a generator factory's module provides (``factory(data_spec, **hparams)``, a ``torch.nn.Module``).

    - ``latent_dim``: the harness samples ``z ~ N(0, I)`` of shape ``(B, latent_dim)`` from its own streams;
    - ``G(z)``: a tensor of shape ``(B, *data_spec.shape)`` inside ``data_spec.value_range`` (images: a
      final ``tanh``), finite, differentiable with a gradient reaching every parameter.

    A class-conditional generator also sets ``conditional = True`` and ``num_classes`` (the dataset's
    ``DataSpec.num_classes``) and is called ``G(z, y)`` with labels ``y`` int64 of shape ``(B,)`` in
    ``[0, num_classes)``; the harness draws them too (``ganzoo.api.conditional``). Others never see a label.

    ``isinstance(module, Generator)`` checks that ``latent_dim`` and ``__call__`` exist;
    ``ganzoo.testing.check_generator`` checks the rest.
    """

    latent_dim: int

    def __call__(self, z: torch.Tensor) -> torch.Tensor: ...


GeneratorContract = Generator  # the name this protocol had while it was documentation only


@runtime_checkable
class Discriminator(Protocol):
    """What a discriminator factory's module provides (``factory(data_spec, **hparams)``, a ``torch.nn.Module``).

    ``D(x)`` maps ``(B, *data_spec.shape)`` to logits of shape ``(B,)`` or ``(B, 1)`` (the harness flattens
    them). Each logit depends on its own sample only: no batch statistics in training mode (use per-sample
    norms such as layer or group norm), because R1, R2 and gradient penalties differentiate each logit with
    respect to its own input. Double backward must work (those penalties backpropagate through an input
    gradient), and the gradient must reach every parameter. ``ganzoo.testing.check_discriminator`` checks
    all of it.

    A class-conditional discriminator (a projection discriminator) sets ``conditional = True`` and
    ``num_classes`` and is called ``D(x, y)``, ``y`` the labels of ``x`` (real labels for real samples, the
    labels G was given for generated ones). An auxiliary-classifier discriminator (AC-GAN) is not called with
    labels: it adds ``classify(x) -> (B, num_classes)`` logits, which the ``acgan`` stabilizer trains.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class Loss:
    """An adversarial loss: pure functions of discriminator logits.

    ``d_loss`` is minimised by D, ``g_loss`` by G. Relativistic losses set ``uses_real_logits_in_g``
    so that the harness computes D on real data during the G step as well.
    ``real_target`` is the target for real samples in losses that have one (one-sided label smoothing
    lowers it); losses without targets declare it unsupported by not carrying the tag ``"targets"``.
    """

    uses_real_logits_in_g: bool = False

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class StepContext:
    """What the harness knows at a hook point; stabilizers read it and must not replace G or D.

    One ``StepContext`` lives through the whole run and the harness overwrites its fields as it goes, so a
    field holds what the latest step put there.

    Args:
        generator: the training G, as wrapped by the stack (``wrap_generator``).
        discriminator: D, as wrapped by the stack (``wrap_discriminator``).
        loss: the run's ``Loss``.
        real: in the D step, the real batch D sees, after ``augment``. In the G step (``g_penalty``,
            ``before_g_step``, ``after_g_step``) it still holds the real batch of the *last D step*: the G step
            draws no real data of its own, and relativistic losses compare with that batch.
        fake: in the D step, G's samples (computed without gradient, so detached from G) after ``augment``; in
            the G step, fresh samples after ``augment``, attached to G's graph.
        real_logits: D's logits on ``real``, shape ``(B,)``. In the G step: D's logits on the last D step's
            real batch when ``loss.uses_real_logits_in_g``, else ``None``.
        fake_logits: D's logits on ``fake``, shape ``(B,)``, in the step under way.
        step: G steps completed before this iteration (0 in the first D and G steps).
        progress: fraction of the budget spent before this iteration, from 0 towards 1 (for annealed
            schedules such as instance noise).

    In a vectorised group (``ganzoo bench --executor vectorized``) ``members`` is the number of seeds K trained
    together, every tensor above carries a leading member dimension ``(K, B, ...)``, G and D map ``(K, B, ...)``
    to ``(K, B, ...)``, and a penalty returns one value per member, shape ``(K,)``. ``batch_dims`` (1, or 2 in a
    group) is how many leading dimensions index samples; ``per_member(fn, *tensors)`` applies ``fn`` to each
    member's slice under that member's own global random stream (in a single run: ``fn(*tensors)``), so a hook
    that draws random numbers draws what the member's single run draws.
        real_labels: the labels of ``real`` (int64, ``(B,)``) when G is class-conditional, else ``None``;
            like ``real``, the G step keeps the last D step's.
        fake_labels: the labels G was given for ``fake`` when G is class-conditional, else ``None``.
            Whoever calls D again (penalties, consistency) passes the labels of what it feeds D through
            ``ganzoo.api.conditional.discriminate``, which drops them for an unconditional D.
    """

    generator: nn.Module
    discriminator: nn.Module
    loss: Loss
    real: torch.Tensor | None = None
    fake: torch.Tensor | None = None
    real_logits: torch.Tensor | None = None
    fake_logits: torch.Tensor | None = None
    step: int = 0
    progress: float = 0.0
    real_labels: torch.Tensor | None = None
    fake_labels: torch.Tensor | None = None
    members: int | None = None  # K in a vectorised group, None in a single run

    @property
    def batch_dims(self) -> int:
        """Leading dimensions that index samples: 1 in a single run ``(B, ...)``, 2 in a group ``(K, B, ...)``."""
        return 1 if self.members is None else 2

    def per_member(self, fn, *tensors: torch.Tensor) -> torch.Tensor:
        """``fn`` applied to each member's slice of ``tensors`` with its own random stream; here, ``fn(*tensors)``."""
        return fn(*tensors)


class Stabilizer:
    """Everything that changes training without being G, D or the loss.

    Override only the hooks you need. The harness calls them in this order:

    1. build time: ``optim_overrides`` (learning rates, D steps) and ``d_loss_kwargs``, each read once;
       ``discriminator_spec`` (the data D is built for), then ``wrap_generator``, ``wrap_discriminator``;
    2. every D step: ``augment`` on real and fake, ``d_penalty``, backward, ``before_d_step`` (gradients
       are there, weights not yet changed: clip or rescale them here), the optimiser step, ``after_d_step``;
    3. every G step: ``augment`` on fake, ``g_penalty``, backward, ``before_g_step``, the step, ``after_g_step``;
    4. evaluation: ``eval_generator`` picks the module that is evaluated (e.g. the EMA copy), and ``report`` gives
       values of the stabilizer's own to record with the evaluation (ADA's augmentation probability).

    ``state_dict``/``load_state_dict`` carry any state (EMA weights, running means) through checkpoints.
    """

    def optim_overrides(self) -> dict[str, Any]:
        """Keys among ``lr_g``, ``lr_d``, ``betas``, ``d_steps``.

        Two stabilizers in a stack may not set the same one.
        """
        return {}

    def discriminator_spec(self, spec: DataSpec) -> DataSpec:
        """The data spec D is built for, given the dataset's (PacGAN packs m samples into one input)."""
        return spec

    def wrap_generator(self, generator: nn.Module) -> nn.Module:
        return generator

    def wrap_discriminator(self, discriminator: nn.Module) -> nn.Module:
        return discriminator

    def augment(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Transform a batch before D sees it; must be differentiable (fake gradients flow to G)."""
        return x

    def d_loss_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``Loss.d_loss`` (e.g. ``real_target`` for label smoothing).

        Read once, when the run is built, and passed to every D step. Two stabilizers in a stack may not set
        the same keyword.
        """
        return {}

    def d_penalty(self, ctx: StepContext) -> torch.Tensor | None:
        return None

    def g_penalty(self, ctx: StepContext) -> torch.Tensor | None:
        return None

    def before_d_step(self, ctx: StepContext) -> None:
        """After D's backward pass, before its optimiser step: D's ``.grad`` may be changed in place."""

    def after_d_step(self, ctx: StepContext) -> None:
        pass

    def before_g_step(self, ctx: StepContext) -> None:
        """After G's backward pass, before its optimiser step: G's ``.grad`` may be changed in place."""

    def after_g_step(self, ctx: StepContext) -> None:
        pass

    def eval_generator(self, generator: nn.Module) -> nn.Module | None:
        """Return the module to evaluate instead of ``generator``, or ``None`` to leave the choice to others."""
        return None

    def report(self) -> dict[str, float]:
        """Values to record with each evaluation, ``{name: float}`` (e.g. ADA's ``{"p": 0.3}``); the run's record
        keeps them as ``"<stabilizer>.<name>"`` under the evaluation's ``stabilizers``, and the HTML report draws
        each over training. Called on a single run's stabilizer (a group member's, after ``unstack_into``)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # ---- vectorised groups (registered with ``vectorized=True``; see docs/scaling.md, "Vectorised seeds") ---------
    # A group builds one stabilizer of its own, whose hooks see the group's ``StepContext``. A stateful
    # stabilizer moves its members' states into it and back; a stateless one needs neither.

    def stack_members(self, members: list[Stabilizer], generator: nn.Module, discriminator: nn.Module) -> None:
        """Become the group's stabilizer: take the state of ``members`` (one per seed, as built and possibly
        resumed), given the group's stacked ``generator`` and ``discriminator`` (``StackedModule``s)."""

    def unstack_into(self, k: int, member: Stabilizer) -> None:
        """Copy member ``k``'s part of this group stabilizer's state into ``member`` (before its checkpoint)."""


class Dataset:
    """Real samples, held as one tensor ``data`` of shape ``(N, *spec.shape)`` in ``spec.value_range``.

    Small sets live in device memory so that sampling a batch costs one index operation.
    Subclasses set ``spec``, ``data`` (float32) and optionally ``labels`` (int64), ``default_extractor``
    (the feature extractor that suits this data) and override ``extra_metrics``.
    """

    spec: DataSpec
    data: torch.Tensor
    labels: torch.Tensor | None = None
    default_extractor: str | None = None

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def to(self, device: torch.device | str) -> Dataset:
        self.data = self.data.to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        return self

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` samples drawn uniformly with replacement, reproducible through ``generator``."""
        index = torch.randint(len(self), (n,), generator=generator, device=generator.device)
        return self.data[index.to(self.data.device)]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``sample`` with the labels of the samples drawn: the real batches of a class-conditional run.

        Draws the very indices ``sample`` draws (one ``randint`` of the same stream), so a labelled run sees
        the data an unlabelled one would. A dataset that overrides ``sample`` overrides this too.
        """
        if self.labels is None or self.spec.num_classes is None:
            raise ValueError(f"{type(self).__name__} has no labels (Dataset.labels and DataSpec.num_classes), so a "
                             "class-conditional generator cannot train on it: choose a labelled dataset "
                             "(ganzoo list datasets: num_classes) or an unconditional generator")
        index = torch.randint(len(self), (n,), generator=generator, device=generator.device).to(self.data.device)
        return self.data[index], self.labels[index.to(self.labels.device)]

    def reference(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` samples (all when ``None``): the fixed real set that metrics compare against."""
        return self.data if n is None else self.data[: min(n, len(self))]

    def reference_labels(self, n: int | None = None) -> torch.Tensor | None:
        """The labels of ``reference(n)`` (``None`` when unlabelled): the real side of per-class metrics."""
        if self.labels is None:
            return None
        return self.labels if n is None else self.labels[: min(n, len(self))]

    def extra_metrics(self, samples: torch.Tensor) -> dict[str, float]:
        """Dataset-specific evaluation of generated samples (e.g. modes captured on a 2-D mixture)."""
        return {}

    def mode_regions(self) -> tuple[torch.Tensor, float] | None:
        """Where the modes are, for plots: centres ``(K, D)`` and the radius within which a sample is a mode's.

        ``None`` (the default) when the data has no known modes; the 2-D mixtures return their means and
        the high-quality radius (3 sigma), which the HTML report draws under the generated samples.
        """
        return None

    # What the leaderboard's "real data" row measures: the ceiling a generator is compared with.
    real_samples_note: str = "the data itself resampled with replacement (what a generator that memorised it scores)"

    def real_samples(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Real samples for the leaderboard's reference row, evaluated exactly like a generator's.

        The default resamples the data (so it overlaps the reference set: a memorisation ceiling); a
        dataset that can draw fresh samples (a known distribution, a held-out split) overrides it and
        ``real_samples_note``.
        """
        return self.sample(n, generator)


@dataclass
class Features:
    """What a feature extractor returns for a batch: ``features`` (B, F) and optional class ``logits`` (B, K).

    ``labels``: for generated samples of a class-conditional G, the label each was generated for (set by the
    evaluator, never by an extractor); the conditional metrics read them.
    """

    features: torch.Tensor
    logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None


class FeatureExtractor(nn.Module):
    """Maps samples in ``[-1, 1]`` (float, shape ``(B, *spec.shape)``) to features for FID/KID/PR/DC and logits for IS.

    Subclasses set ``feature_dim``, ``num_classes`` (``None`` when it gives no logits, so no IS) and
    ``weights_hash`` (SHA-256 prefix of the weights, part of every metric's protocol).
    ``protocol()`` lists everything that changes the numbers, so values of different protocols are never
    ranked together.
    """

    feature_dim: int
    num_classes: int | None = None
    weights_hash: str = ""
    name: str = ""

    def forward(self, x: torch.Tensor) -> Features:  # pragma: no cover - interface
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        return {"extractor": self.name, "weights_hash": self.weights_hash}
