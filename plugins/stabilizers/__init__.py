"""Built-in stabilizers: normalisation, penalties, augmentation, weight averaging and optimiser schedules.

Each is registered with its paper's default hyperparameters; a suite composes them into stacks such as
``["spectral_norm", "ema"]`` or ``["gradient_penalty", "d_steps"]``.
"""

from ganzoo import hookimpl

from .acgan import ACGAN
from .ada import ADA
from .diffaugment import DiffAugment
from .ema import EMA
from .packing import Pac
from .path_length import PathLengthRegularizer
from .penalties import BalancedConsistency, GradientPenalty, LazyR1, LeCam, r1, r2
from .schedules import TTUR, DSteps, InstanceNoise, LabelSmoothing
from .spectral_norm import SpectralNorm

IMAGE = ("image",)
ANY = ("image", "vector")
# Penalties on the gradient of D at single samples; undefined when D sees packs of samples (PacGAN).
PER_SAMPLE_GRADIENT = ("per_sample_gradient",)
# Reparametrises every weight as W / sigma(W); an architecture with zero-initialised weights can exclude it.
WEIGHT_NORMALISATION = ("weight_normalisation",)


# vectorized=True: checked in a vectorised group against single runs (tests/test_vectorized.py). Random draws
# inside a hook go through ctx.per_member, stateful ones (ema, lecam) move their state with stack_members and
# unstack_into, penalties return one value per member.
@hookimpl
def register_stabilizers(register):
    register("spectral_norm", SpectralNorm, vectorized=True, modalities=ANY, tags=WEIGHT_NORMALISATION,
             description="Spectral normalisation of every linear/conv/embedding weight of D (optionally G)",
             reference="Miyato et al. 2018, Spectral Normalization for GANs, ICLR, arXiv:1802.05957",
             defaults={"apply_to_generator": False, "n_power_iterations": 1})
    register("gradient_penalty", GradientPenalty, vectorized=True, modalities=ANY, tags=PER_SAMPLE_GRADIENT,
             description="WGAN-GP: penalise (||grad D|| - 1)^2 on real/fake interpolates",
             reference="Gulrajani et al. 2017, Improved Training of Wasserstein GANs, NeurIPS, arXiv:1704.00028",
             defaults={"weight": 10.0})
    register("r1", r1, vectorized=True, modalities=ANY, tags=PER_SAMPLE_GRADIENT,
             description="R1: zero-centred gradient penalty gamma/2 ||grad D(x)||^2 on real data",
             reference="Mescheder, Geiger & Nowozin 2018, Which Training Methods for GANs do actually Converge?, "
                       "ICML, arXiv:1801.04406",
             defaults={"gamma": 10.0})
    register("r1_lazy", LazyR1, vectorized=True, modalities=ANY, tags=PER_SAMPLE_GRADIENT,
             description="Lazy R1 (StyleGAN2): R1 with gamma * every on every every-th D step, nothing in between",
             reference="Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN, CVPR, "
                       "arXiv:1912.04958 (R1: Mescheder et al. 2018, arXiv:1801.04406)",
             defaults={"gamma": 10.0, "every": 16})
    # Not vectorized: it calls G's mapping and synthesis, which a stacked G does not batch.
    register("pl_reg", PathLengthRegularizer, modalities=IMAGE, requires={"generator": "style_based"},
             description="StyleGAN2's lazy path-length penalty (|J_w^T y| - a)^2 on G; needs a style-based G",
             reference="Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN, CVPR, "
                       "arXiv:1912.04958",
             defaults={"weight": 2.0, "decay": 0.01, "every": 4, "batch_shrink": 2})
    register("r2", r2, vectorized=True, modalities=ANY, tags=PER_SAMPLE_GRADIENT,
             description="R2: zero-centred gradient penalty gamma/2 ||grad D(G(z))||^2 on generated data",
             reference="Mescheder, Geiger & Nowozin 2018, Which Training Methods for GANs do actually Converge?, "
                       "ICML, arXiv:1801.04406",
             defaults={"gamma": 10.0})
    register("diffaugment", DiffAugment, vectorized=True, modalities=IMAGE,
             description="Differentiable colour/translation/cutout augmentation of real and fake images",
             reference="Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training, NeurIPS, "
                       "arXiv:2006.10738",
             defaults={"policy": "color,translation,cutout", "translation_ratio": 0.125, "cutout_ratio": 0.5})
    register("ada", ADA, vectorized=True, modalities=IMAGE,
             description="Adaptive discriminator augmentation: real and fake augmented with a probability p tuned "
                         "by D's overfitting",
             reference="Karras et al. 2020, Training Generative Adversarial Networks with Limited Data, NeurIPS, "
                       "arXiv:2006.06676",
             defaults={"policy": "blit,geom,color", "target": 0.6, "speed_kimg": 500.0, "interval": 4, "p": 0.0})
    register("ema", EMA, vectorized=True, modalities=ANY,
             description="Exponential moving average of G's weights, used for evaluation",
             reference="Yazici et al. 2019, The Unusual Effectiveness of Averaging in GAN Training, ICLR, "
                       "arXiv:1806.04498 (decay 0.999 as in Karras et al. 2018, arXiv:1710.10196)",
             defaults={"decay": 0.999, "start_step": 0, "warmup": True})
    register("lecam", LeCam, vectorized=True, modalities=ANY,
             description="LeCam regularisation of D's logits towards moving averages of the opposite class",
             reference="Tseng et al. 2021, Regularizing Generative Adversarial Networks under Limited Data, CVPR, "
                       "arXiv:2104.03310",
             defaults={"weight": 0.3, "decay": 0.99})
    register("consistency", BalancedConsistency, vectorized=True, modalities=IMAGE,
             description="Balanced consistency regularisation (bCR) under flip + translation",
             reference="Zhao et al. 2021, Improved Consistency Regularization for GANs, AAAI, arXiv:2002.04724",
             defaults={"lambda_real": 10.0, "lambda_fake": 10.0, "translation_ratio": 0.125, "flip": True})
    register("instance_noise", InstanceNoise, vectorized=True, modalities=ANY,
             description="Gaussian instance noise on D's inputs, sigma annealed linearly to 0",
             reference="Sonderby et al. 2017, Amortised MAP Inference for Image Super-resolution, ICLR, "
                       "arXiv:1610.04490",
             defaults={"sigma0": 0.1})
    register("label_smoothing", LabelSmoothing, vectorized=True, modalities=ANY, requires={"loss": "targets"},
             description="One-sided label smoothing: real target 0.9 in D's loss",
             reference="Salimans et al. 2016, Improved Techniques for Training GANs, NeurIPS, arXiv:1606.03498",
             defaults={"real_target": 0.9})
    register("ttur", TTUR, vectorized=True, modalities=ANY,
             description="Two time-scale update rule: lr_g 1e-4, lr_d 4e-4 (optionally Adam's betas too)",
             reference="Heusel et al. 2017, GANs Trained by a Two Time-Scale Update Rule, NeurIPS, arXiv:1706.08500 "
                       "(rates of Zhang et al. 2019, SAGAN, arXiv:1805.08318)",
             defaults={"lr_g": 1e-4, "lr_d": 4e-4, "betas": None})
    register("d_steps", DSteps, vectorized=True, modalities=ANY,
             description="Several D steps per G step (n_critic)",
             reference="Gulrajani et al. 2017, Improved Training of Wasserstein GANs, NeurIPS, arXiv:1704.00028",
             defaults={"n": 5})
    # Packing merges samples, and their labels, into one input: no class-conditional D can judge a pack.
    register("pac", Pac, vectorized=True, modalities=ANY,
             excludes={"stabilizer": "per_sample_gradient", "discriminator": "conditional"},
             description="PacGAN packing: D judges m samples at once (all real or all fake) and sees mode collapse",
             reference="Lin et al. 2018, PacGAN: The Power of Two Samples in Generative Adversarial Networks, "
                       "NeurIPS, arXiv:1712.04086",
             defaults={"m": 2})
    register("acgan", ACGAN, modalities=ANY, tags=("auxiliary_classifier",),
             requires={"discriminator": "auxiliary_classifier"},
             description="AC-GAN: cross-entropy of D's class head on real and fake (D) and on fake (G)",
             reference="Odena, Olah & Shlens 2017, Conditional Image Synthesis with Auxiliary Classifier GANs, "
                       "ICML, arXiv:1610.09585",
             defaults={"weight": 1.0, "fake_in_d": True})
