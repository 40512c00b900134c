"""ganzoo: a plugin-based GAN model zoo and benchmark harness."""

__version__ = "0.1.0"  # first: modules read it (``from .. import __version__``) without needing the rest of this file

# First, before torch computes anything: the CPU kernels every x86-64 machine with AVX2 shares (see ganzoo/cpu.py).
from . import cpu as _cpu

_cpu.pin_kernels()

from .components import KINDS, Component, Metric
from .contracts import (
    Dataset,
    DataSpec,
    FeatureExtractor,
    Features,
    Loss,
    Stabilizer,
    StepContext,
)
from .hookspecs import hookimpl
from .judgement import Judgement
from .registry import UnknownComponentError, build_registry, get_registry, reset_registry
from .spec import EvalProtocol

__all__ = [
    "KINDS",
    "Component",
    "DataSpec",
    "Dataset",
    "EvalProtocol",
    "FeatureExtractor",
    "Features",
    "Judgement",
    "Loss",
    "Metric",
    "Stabilizer",
    "StepContext",
    "UnknownComponentError",
    "build_registry",
    "get_registry",
    "hookimpl",
    "reset_registry",
]
