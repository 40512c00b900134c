"""An example ganzoo plugin: the least-squares loss with symmetric targets and weight clipping.

Install it (``pip install -e examples/ganzoo-example-plugin``) and both components appear in
``ganzoo list`` and in every ``ganzoo bench --all`` grid they are compatible with.
"""

import torch

import ganzoo


class SymmetricLeastSquares(ganzoo.Loss):
    """LSGAN with targets a=-1 (fake), b=1 (real), c=0 (what G aims for): Mao et al.'s Pearson chi^2 setting."""

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        return 0.5 * ((real_logits - real_target) ** 2).mean() + 0.5 * ((fake_logits + 1) ** 2).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return 0.5 * (fake_logits**2).mean()


class WeightClipping(ganzoo.Stabilizer):
    """Clamp every parameter of D to [-clip, clip] after each D step, as the original WGAN did."""

    def __init__(self, clip: float = 0.01):
        if clip <= 0:
            raise ValueError(f"weight_clip: clip must be positive, got {clip}")
        self.clip = clip

    def after_d_step(self, ctx):
        with torch.no_grad():
            for parameter in ctx.discriminator.parameters():
                parameter.clamp_(-self.clip, self.clip)


@ganzoo.hookimpl
def register_losses(register):
    register(
        "lsgan_symmetric",
        SymmetricLeastSquares,
        description="Least squares with targets -1/1/0 (Pearson chi^2 divergence)",
        reference="Mao et al. 2017, Least Squares Generative Adversarial Networks, arXiv:1611.04076",
        tags=("targets",),
    )


@ganzoo.hookimpl
def register_stabilizers(register):
    register(
        "weight_clip",
        WeightClipping,
        description="Clamp D's weights to [-clip, clip] after every D step (original WGAN)",
        reference="Arjovsky et al. 2017, Wasserstein GAN, arXiv:1701.07875",
        defaults={"clip": 0.01},
    )
