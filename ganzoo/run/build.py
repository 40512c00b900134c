"""Turning a run spec into live objects: dataset, G, D, loss, stabilizers and optimiser settings.

Also the one way generated samples are drawn outside training (evaluation, ``ganzoo eval`` on a checkpoint).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..api.conditional import check_pairing, evaluation_labels, is_conditional, num_classes_of
from ..api.contracts import Dataset, Loss, Stabilizer
from ..core.registry import Registry
from ..core.spec import Optim, RunSpec


@dataclass
class Models:
    dataset: Dataset
    generator: nn.Module
    discriminator: nn.Module
    loss: Loss
    stabilizers: list[Stabilizer]
    optim: Optim  # the spec's settings with the stabilizers' overrides applied
    d_loss_kwargs: dict[str, Any]  # the stabilizers' extra keywords for ``loss.d_loss``, merged


DEVICE_FORMS = "auto, cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA when available, else CPU; an explicit ``cuda`` without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f'Unknown device "{device}": use {DEVICE_FORMS}') from exc
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f'Device "{device}" is not supported: use {DEVICE_FORMS}')
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f'--device {device} was requested but torch sees no CUDA device; use --device auto or cpu')
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s), "
                         f"numbered from 0")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_optim(base: Optim, stabilizers: list[Stabilizer], names: list[str]) -> Optim:
    """Apply the stabilizers' optimiser overrides; two stabilizers setting the same key is an error."""
    changes: dict[str, object] = {}
    owner: dict[str, str] = {}
    for name, stabilizer in zip(names, stabilizers, strict=True):
        for key, value in stabilizer.optim_overrides().items():
            if key not in Optim.KEYS:
                raise ValueError(f'Stabilizer "{name}" overrides unknown optimiser setting "{key}"; '
                                 f'known: {Optim.KEYS}')
            if key in changes:
                raise ValueError(f'Stabilizers "{owner[key]}" and "{name}" both set {key}; '
                                 "keep one of them in the stack")
            changes[key], owner[key] = (tuple(value) if key == "betas" else value), name
    return replace(base, **changes)


def resolve_d_loss_kwargs(stabilizers: list[Stabilizer], names: list[str]) -> dict[str, Any]:
    """Merge the stabilizers' ``d_loss_kwargs``; two stabilizers setting the same keyword is an error."""
    kwargs: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, stabilizer in zip(names, stabilizers, strict=True):
        for key, value in stabilizer.d_loss_kwargs().items():
            if key in kwargs:
                raise ValueError(f'Stabilizers "{owner[key]}" and "{name}" both set the D loss keyword {key}; '
                                 "keep one of them in the stack")
            kwargs[key], owner[key] = value, name
    return kwargs


def build_models(spec: RunSpec, registry: Registry, device: torch.device) -> Models:
    """Build everything a run needs on ``device``, stabilizers' build-time transforms applied in stack order."""
    seed_everything(spec.seed)  # the same seed gives the same initial weights
    dataset = registry.get("dataset", spec.dataset.name).build(**spec.dataset.hparams).to(device)
    generator = registry.get("generator", spec.generator.name).build(dataset.spec, **spec.generator.hparams)
    stabilizers = [registry.get("stabilizer", ref.name).build(**ref.hparams) for ref in spec.stack]
    d_spec = dataset.spec
    for stabilizer in stabilizers:
        d_spec = stabilizer.discriminator_spec(d_spec)  # packing widens what D takes in
    discriminator = registry.get("discriminator", spec.discriminator.name).build(d_spec, **spec.discriminator.hparams)
    if not isinstance(getattr(generator, "latent_dim", None), int):
        raise TypeError(f'Generator "{spec.generator.name}" must set an int attribute latent_dim '
                        "(see ganzoo.api.contracts)")
    check_pairing(generator, discriminator, dataset.spec.num_classes,
                  (f"generator {spec.generator.name}", f"discriminator {spec.discriminator.name}"))
    loss = registry.get("loss", spec.loss.name).build(**spec.loss.hparams)
    names = [ref.name for ref in spec.stack]
    optim, d_loss_kwargs = resolve_optim(spec.optim, stabilizers, names), resolve_d_loss_kwargs(stabilizers, names)
    # Move first, then wrap: wrappers such as EMA copy the module and must copy it on the right device.
    generator, discriminator = generator.to(device), discriminator.to(device)
    conditional = is_conditional(generator), is_conditional(discriminator)
    for stabilizer in stabilizers:
        generator = stabilizer.wrap_generator(generator)
        discriminator = stabilizer.wrap_discriminator(discriminator)
    if (is_conditional(generator), is_conditional(discriminator)) != conditional:
        raise ValueError(f"A stabilizer of the stack {names} wraps G or D in a module that does not pass labels on "
                         "(e.g. pac packs samples, and labels with them, into one input): it cannot run with a "
                         "class-conditional component")
    return Models(dataset, generator.to(device), discriminator.to(device), loss, stabilizers, optim, d_loss_kwargs)


def eval_generator(models: Models) -> nn.Module:
    """The module that is evaluated: the first stabilizer's choice (e.g. the EMA copy), else G itself."""
    for stabilizer in models.stabilizers:
        chosen = stabilizer.eval_generator(models.generator)
        if chosen is not None:
            return chosen
    return models.generator


def latent_sampler(generator: nn.Module, seed: int, device: torch.device | str) -> Callable[[int], torch.Tensor]:
    """``sample(n)``: ``generator`` on ``n`` latents ``z ~ N(0, I)`` from their own stream seeded by ``seed``.

    Without gradients, and never touching the global RNG or a training stream, so drawing samples never
    perturbs a run. Training's evaluations and ``ganzoo eval`` on a checkpoint both sample through it.
    A class-conditional G gets the labels ``ganzoo.api.conditional.evaluation_labels`` gives the stream's
    positions (sample ``i`` of the stream: class ``i mod K``); they take nothing from the latents' stream.
    """
    rng = torch.Generator(device=device).manual_seed(seed)
    num_classes = num_classes_of(generator) if is_conditional(generator) else None
    drawn = 0  # samples this stream has given so far: the position the next labels start from

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        nonlocal drawn
        z = torch.randn(n, generator.latent_dim, generator=rng, device=device)
        if num_classes is None:
            return generator(z)
        labels = evaluation_labels(n, num_classes, drawn, device)
        drawn += n
        return generator(z, labels)

    return sample


@contextlib.contextmanager
def sampling(generator: nn.Module, seed: int, device: torch.device | str) -> Iterator[Callable[[int], torch.Tensor]]:
    """``latent_sampler`` with ``generator`` in eval mode; its training mode is restored afterwards."""
    was_training = generator.training
    generator.eval()
    try:
        yield latent_sampler(generator, seed, device)
    finally:
        generator.train(was_training)


def load_generator(path, device: str | torch.device = "cpu", registry: Registry | None = None,
                   state: dict[str, Any] | None = None) -> tuple[nn.Module, RunSpec]:
    """The evaluated generator of a run checkpoint (the EMA copy when the stack has one) and its spec.

    Only G is rebuilt (no dataset is loaded); the stack's build-time transforms of G (e.g. spectral
    norm on G) are applied so that the saved weights fit. Loading is ``weights_only``. ``state``: the
    checkpoint at ``path`` already loaded (by a caller that also reads its other entries).
    """
    from ..core.registry import get_registry
    from .artifacts import EVAL_GENERATOR_KEY, SPEC_KEY, load_checkpoint
    from .grid import data_spec_of

    registry = registry or get_registry()
    device = resolve_device(device)
    state = load_checkpoint(path, device) if state is None else state
    if SPEC_KEY not in state or EVAL_GENERATOR_KEY not in state:
        raise ValueError(f"{path} is not a ganzoo run checkpoint (it has no {SPEC_KEY} / {EVAL_GENERATOR_KEY} entries)")
    spec = RunSpec.from_dict(state[SPEC_KEY])
    dataset = registry.get("dataset", spec.dataset.name)
    data_spec = data_spec_of(dataset, dataset.hparams(spec.dataset.hparams))
    generator = registry.get("generator", spec.generator.name).build(data_spec, **spec.generator.hparams).to(device)
    for ref in spec.stack:
        generator = registry.get("stabilizer", ref.name).build(**ref.hparams).wrap_generator(generator)
    generator.load_state_dict(state[EVAL_GENERATOR_KEY])
    return generator.eval(), spec
