"""Adversarial losses: pure functions of discriminator logits.

Every loss works on logits of shape ``(B,)`` or ``(B, 1)`` and returns a scalar. The sigmoid-based
losses are written with ``softplus`` (``log(1 + exp(x))``) so that they stay finite for large logits:
``-log(sigmoid(x)) = softplus(-x)`` and ``-log(1 - sigmoid(x)) = softplus(x)``.

Losses that compare the real logits with a target (``ns``, ``minimax``, ``lsgan``) carry the tag
``"targets"`` and honour ``real_target`` (one-sided label smoothing); the others accept only 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo import Loss, hookimpl


def _flat(logits: torch.Tensor) -> torch.Tensor:
    # D may return (B,) or (B, 1); anything else is not one logit per sample.
    if logits.dim() == 2 and logits.shape[1] == 1:
        return logits[:, 0]
    if logits.dim() != 1:
        raise ValueError(f"Expected one logit per sample, shape (B,) or (B, 1), got {tuple(logits.shape)}")
    return logits


def _check_target(real_target: float, low: float = 0.0) -> float:
    if not low < real_target <= 1.0:
        raise ValueError(f"real_target must lie in ({low}, 1], got {real_target}; "
                         "one-sided smoothing lowers it to e.g. 0.9")
    return float(real_target)


def _no_target(loss_name: str, real_target: float) -> None:
    if real_target != 1.0:
        raise ValueError(
            f'The {loss_name} loss has no real target, so real_target={real_target} cannot be honoured. '
            'Use label smoothing only with a loss tagged "targets" (ns, minimax, lsgan).'
        )


def _bce_with_target(logits: torch.Tensor, target: float) -> torch.Tensor:
    # Cross-entropy against a soft target t: t * -log(sigmoid(x)) + (1 - t) * -log(1 - sigmoid(x)).
    return target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)


class NonSaturatingLoss(Loss):
    """Cross-entropy D loss; G maximises log D(G(z)) instead of minimising log(1 - D(G(z)))."""

    def d_loss(self, real_logits, fake_logits, real_target: float = 1.0):
        target = _check_target(real_target)
        return _bce_with_target(_flat(real_logits), target).mean() + F.softplus(_flat(fake_logits)).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return F.softplus(-_flat(fake_logits)).mean()


class MinimaxLoss(NonSaturatingLoss):
    """The original saturating game: G minimises log(1 - D(G(z))), whose gradient vanishes when D wins."""

    def g_loss(self, fake_logits, real_logits=None):
        return -F.softplus(_flat(fake_logits)).mean()


class HingeLoss(Loss):
    """D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; G: -E[D(G(z))]."""

    def d_loss(self, real_logits, fake_logits, real_target: float = 1.0):
        _no_target("hinge", real_target)
        return F.relu(1.0 - _flat(real_logits)).mean() + F.relu(1.0 + _flat(fake_logits)).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return -_flat(fake_logits).mean()


class WassersteinLoss(Loss):
    """The critic maximises E[D(x)] - E[D(G(z))]; needs a Lipschitz constraint (gradient penalty, SN)."""

    def d_loss(self, real_logits, fake_logits, real_target: float = 1.0):
        _no_target("wasserstein", real_target)
        return _flat(fake_logits).mean() - _flat(real_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return -_flat(fake_logits).mean()


class LeastSquaresLoss(Loss):
    """LSGAN with the 0-1 coding (a=0, b=c=1): D: 1/2 E[(D(x) - b)^2] + 1/2 E[D(G(z))^2]; G: 1/2 E[(D(G(z)) - 1)^2]."""

    def d_loss(self, real_logits, fake_logits, real_target: float = 1.0):
        target = _check_target(real_target)
        return 0.5 * (_flat(real_logits) - target).pow(2).mean() + 0.5 * _flat(fake_logits).pow(2).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return 0.5 * (_flat(fake_logits) - 1.0).pow(2).mean()


class RelativisticAverageLoss(Loss):
    """RaSGAN: D judges whether real data is more realistic than the average fake, and vice versa.

    With C the logits: D minimises -E[log sigmoid(C(x) - E C(G(z)))] - E[log(1 - sigmoid(C(G(z)) - E C(x)))],
    and G minimises the same expression with real and fake swapped, so G needs the real logits.
    """

    uses_real_logits_in_g = True

    @staticmethod
    def _relativistic(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        # `first` should look more real than the average of `second`, `second` less real than `first`'s.
        first, second = _flat(first), _flat(second)
        return F.softplus(-(first - second.mean())).mean() + F.softplus(second - first.mean()).mean()

    def d_loss(self, real_logits, fake_logits, real_target: float = 1.0):
        _no_target("rasgan", real_target)
        return self._relativistic(real_logits, fake_logits)

    def g_loss(self, fake_logits, real_logits=None):
        if real_logits is None:
            raise ValueError("The rasgan loss needs the real logits in the G step (uses_real_logits_in_g is True)")
        return self._relativistic(fake_logits, real_logits)


class RelativisticPairingLoss(Loss):
    """RpGAN: each real sample is paired with one fake, and D judges which of the two is the more real.

    With C the logits and (x_i, G(z_i)) the i-th pair, D minimises E[softplus(-(C(x_i) - C(G(z_i))))] and G the
    mirror, E[softplus(-(C(G(z_i)) - C(x_i)))]. Unlike ``rasgan``, which compares each sample with the *mean*
    logit of the other batch, every comparison here is one real against one fake, so the real and the fake
    batch must be the same size: the i-th real is paired with the i-th fake, in batch order. This is the loss
    R3GAN pairs with R1 and R2.
    """

    uses_real_logits_in_g = True

    @staticmethod
    def _paired(more_real: torch.Tensor, less_real: torch.Tensor) -> torch.Tensor:
        more_real, less_real = _flat(more_real), _flat(less_real)
        if more_real.shape != less_real.shape:
            raise ValueError(
                f"The rpgan loss pairs each real sample with one fake, so the batches must be the same size; got "
                f"{more_real.shape[0]} and {less_real.shape[0]} logits. Use equal real and fake batch sizes."
            )
        return F.softplus(-(more_real - less_real)).mean()

    def d_loss(self, real_logits, fake_logits, real_target: float = 1.0):
        _no_target("rpgan", real_target)
        return self._paired(real_logits, fake_logits)

    def g_loss(self, fake_logits, real_logits=None):
        if real_logits is None:
            raise ValueError("The rpgan loss needs the real logits in the G step (uses_real_logits_in_g is True)")
        return self._paired(fake_logits, real_logits)


@hookimpl
def register_losses(register):
    register("ns", NonSaturatingLoss, description="Non-saturating cross-entropy loss (G maximises log D(G(z)))",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, NeurIPS, arXiv:1406.2661",
             tags=("targets",), vectorized=True)
    register("minimax", MinimaxLoss, description="Original saturating minimax loss (G minimises log(1 - D(G(z))))",
             reference="Goodfellow et al. 2014, Generative Adversarial Nets, NeurIPS, arXiv:1406.2661",
             tags=("targets",), vectorized=True)
    register("hinge", HingeLoss, description="Hinge loss for D, -D(G(z)) for G",
             reference="Lim & Ye 2017, Geometric GAN, arXiv:1705.02894", vectorized=True)
    register("wasserstein", WassersteinLoss, description="Wasserstein critic loss (pair with a Lipschitz constraint)",
             reference="Arjovsky, Chintala & Bottou 2017, Wasserstein GAN, ICML, arXiv:1701.07875", vectorized=True)
    register("lsgan", LeastSquaresLoss, description="Least-squares loss with 0-1 targets",
             reference="Mao et al. 2017, Least Squares Generative Adversarial Networks, ICCV, arXiv:1611.04076",
             tags=("targets",), vectorized=True)
    # Named after what it computes (RaSGAN); "rals" was its first name here and still finds it.
    register("rasgan", RelativisticAverageLoss, aliases=("rals",),
             description="Relativistic average standard GAN loss (RaSGAN); G also sees real logits",
             reference="Jolicoeur-Martineau 2019, The relativistic discriminator, ICLR, arXiv:1807.00734",
             vectorized=True)
    register("rpgan", RelativisticPairingLoss,
             description="Relativistic pairing loss (RpGAN): the i-th real against the i-th fake; G sees real logits",
             reference="Jolicoeur-Martineau 2019, The relativistic discriminator, ICLR, arXiv:1807.00734; as used in "
                       "Huang et al. 2024, The GAN is dead; long live the GAN! A Modern GAN Baseline (R3GAN), "
                       "NeurIPS, arXiv:2501.05441",
             vectorized=True)
