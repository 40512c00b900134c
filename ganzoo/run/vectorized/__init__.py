"""Seeds as a batch dimension: the seeds of one experiment trained as one vectorised computation.

``train_group`` trains K run specs that differ only by seed as one stacked computation (``StackedModule``);
each member is still its own run, with its own data, latents, evaluations, checkpoint and result.
``ganzoo.run.vectorized.plan`` decides which experiments can be grouped and says why the others cannot.
"""

from .stacked import StackedModule, VmappableSpectralNorm, make_vmappable

__all__ = ["StackedModule", "VmappableSpectralNorm", "make_vmappable"]
