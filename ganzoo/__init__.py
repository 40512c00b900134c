"""ganzoo: a plugin-based GAN model zoo and benchmark harness."""

__version__ = "0.1.0"  # first: modules read it (``from .. import __version__``) without needing the rest of this file

# First, before torch computes anything: the CPU kernels every x86-64 machine with AVX2 shares
# (see ganzoo/system/cpu.py).
from .system import cpu as _cpu

_cpu.pin_kernels()

from .api.components import KINDS, Component, Metric
from .api.contracts import (
    Dataset,
    DataSpec,
    FeatureExtractor,
    Features,
    Loss,
    Stabilizer,
    StepContext,
)
from .api.hookspecs import hookimpl
from .api.judgement import Judgement
from .api.trackers import TrackedRun, Tracker
from .core.registry import UnknownComponentError, build_registry, get_registry, reset_registry
from .core.spec import EvalProtocol

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
    "TrackedRun",
    "Tracker",
    "UnknownComponentError",
    "build_registry",
    "get_registry",
    "hookimpl",
    "reset_registry",
]
