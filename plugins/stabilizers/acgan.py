"""AC-GAN's auxiliary classification terms (Odena, Olah & Shlens 2017, arXiv:1610.09585).

D has a second head, ``classify(x)`` (an ``acgan_*`` discriminator), that predicts the class of what it
sees. Both players maximise the log-likelihood of the right class, ``L_C`` of the paper's Eq. 2-3: D on
real samples (their labels) and on generated ones (the labels G was given), G on its own samples. Here
that is ``weight * CE`` added to D's loss (real + fake) and to G's (fake), on the batches D sees, after
augmentation. The classifier sees generated samples in D's term as the paper has it; later work (e.g.
StudioGAN) often drops that term, which ``fake_in_d = false`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import Stabilizer, StepContext


def _classify(discriminator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    classify = getattr(discriminator, "classify", None)
    if not callable(classify):
        raise ValueError(f"acgan trains an auxiliary classifier head, but D ({type(discriminator).__name__}) has no "
                         "classify(x) method: pair it with an AC-GAN discriminator such as acgan_dcgan")
    return classify(x)


def _labels(ctx: StepContext, name: str) -> torch.Tensor:
    labels = getattr(ctx, name)
    if labels is None:
        raise ValueError(f"acgan needs ctx.{name}, which only a class-conditional generator's run has: pair it "
                         "with a conditional generator (e.g. cond_dcgan) on a labelled dataset")
    return labels


class ACGAN(Stabilizer):
    """Cross-entropy of D's class head on real and generated samples, for D; on generated samples, for G.

    Args:
        weight: of the classification terms against the adversarial loss (1 in the paper).
        fake_in_d: whether D's classifier also learns from generated samples (the paper: yes).
    """

    def __init__(self, weight: float = 1.0, fake_in_d: bool = True):
        if not weight >= 0:
            raise ValueError(f"acgan: weight must be >= 0, got {weight}")
        self.weight, self.fake_in_d = float(weight), bool(fake_in_d)

    def d_penalty(self, ctx: StepContext) -> torch.Tensor:
        d = ctx.discriminator
        loss = F.cross_entropy(_classify(d, ctx.real), _labels(ctx, "real_labels"))
        if self.fake_in_d:
            loss = loss + F.cross_entropy(_classify(d, ctx.fake.detach()), _labels(ctx, "fake_labels"))
        return self.weight * loss

    def g_penalty(self, ctx: StepContext) -> torch.Tensor:
        return self.weight * F.cross_entropy(_classify(ctx.discriminator, ctx.fake), _labels(ctx, "fake_labels"))
