"""Class labels through the harness: which modules take them, how they are drawn and how G and D get them.

A module is class-conditional when it sets ``conditional = True`` and ``num_classes``: the harness then calls
it with labels as its second argument, ``G(z, y)`` and ``D(x, y)``, ``y`` int64 of shape ``(B,)`` in
``[0, num_classes)``. Every other module is called as before and never sees a label, so an unconditional
run draws exactly what it drew before labels existed.

Where the labels come from:

- training: a real batch comes with its labels (``Dataset.sample_labelled``, the same indices ``sample``
  draws); G's labels are drawn uniformly from the run's data stream right after its latents;
- evaluation: the ``i``-th sample of the evaluation stream is generated for class ``i mod K``
  (``evaluation_labels``), so ``n`` samples hold every class ``n / K`` times and the per-class metrics
  know each sample's label from its position alone, whatever batches drew it.
"""

from __future__ import annotations

import torch
from torch import nn

CONDITIONAL_TAG = "conditional"  # registration tag: needs a labelled dataset and a label-aware partner
AUX_CLASSIFIER_TAG = "auxiliary_classifier"  # an AC-GAN discriminator, and the stabilizer that trains its head


def is_conditional(module: nn.Module) -> bool:
    """Whether ``module`` takes labels as its second argument (``conditional = True``)."""
    return getattr(module, "conditional", False) is True


def num_classes_of(module: nn.Module) -> int:
    """The ``num_classes`` of a conditional module, checked."""
    k = getattr(module, "num_classes", None)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise TypeError(f"{type(module).__name__} sets conditional = True, so it must set an int attribute "
                        f"num_classes >= 1 (the labels it takes); it has {k!r}")
    return k


def generate(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``G(z, labels)`` for a conditional G, else ``G(z)`` (the labels, if any, are dropped)."""
    if is_conditional(generator):
        if labels is None:
            raise ValueError(f"{type(generator).__name__} is class-conditional and was called without labels")
        return generator(z, labels)
    return generator(z)


def discriminate(discriminator: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``D(x, labels)`` for a conditional D, else ``D(x)``: penalties and the harness call D through it."""
    if is_conditional(discriminator):
        if labels is None:
            raise ValueError(f"{type(discriminator).__name__} is class-conditional and was called without labels: "
                             "pass the labels of x (ctx.real_labels / ctx.fake_labels)")
        return discriminator(x, labels)
    return discriminator(x)


def draw_labels(n: int, num_classes: int, rng: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """``n`` labels uniform over ``num_classes``, drawn from ``rng`` (the run's data stream)."""
    return torch.randint(num_classes, (n,), generator=rng, device=device)


def evaluation_labels(n: int, num_classes: int, start: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """Labels of evaluation samples ``start .. start + n - 1``: sample ``i`` is generated for class ``i mod K``."""
    return torch.arange(start, start + n, device=device) % num_classes


def check_pairing(generator: nn.Module, discriminator: nn.Module, num_classes: int | None,
                  names: tuple[str, str] = ("G", "D")) -> None:
    """Refuse pairs the grid would leave out, for code that builds models without it (a clear error, not a crash).

    Raises:
        ValueError: a conditional module on unlabelled data, a class count other than the data's, or a
            conditional D with an unconditional G.
    """
    for module, name in ((generator, names[0]), (discriminator, names[1])):
        if is_conditional(module):
            k = num_classes_of(module)
            if num_classes is None:
                raise ValueError(f"{name} is class-conditional but the dataset has no labels (DataSpec.num_classes); "
                                 "choose a labelled dataset or an unconditional component")
            if k != num_classes:
                raise ValueError(f"{name} takes {k} classes but the dataset has {num_classes}")
    if is_conditional(discriminator) and not is_conditional(generator):
        raise ValueError(f"{names[1]} is class-conditional but {names[0]} is not: the labels D would judge fakes "
                         "by would mean nothing to G. Pair it with a conditional generator")
