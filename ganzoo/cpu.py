"""The same numbers on any x86-64 CPU with AVX2: which kernels a CPU run may use, and what its record says.

GAN training turns any rounding difference into a different run (a different FID, a different mode count),
and the CPU libraries torch calls pick their kernels from the instruction set they find at run time: a
machine with AVX-512 sums a matrix product in another order than one with AVX2 only. Measured on an AMD
EPYC (AVX-512) at one thread, the default's ring8 baseline ends with mode_kl 0.909 with the libraries
free, 0.406 with MKL's reproducibility mode set to AVX2; digits' DCGAN also moves with oneDNN's ISA
(benchmarks/README.md, "Reproducible across CPUs"). So, before torch computes anything, ganzoo caps:

- MKL (matrix products of the MLPs): ``MKL_CBWR=AVX2,STRICT``, MKL's Conditional Numerical
  Reproducibility: the same results on every CPU with AVX2, STRICT also whatever the arrays' alignment;
- oneDNN (convolutions): ``ONEDNN_MAX_CPU_ISA=AVX2``;
- ATen's own vectorised kernels: ``ATEN_CPU_CAPABILITY=avx2``.

Only where the CPU has AVX2 (ATen would otherwise run instructions the CPU lacks), only for variables the
user has not set, and never when ``GANZOO_CPU_PINNING=0``. The variables are read when each library first
computes, so this module must be imported before anything runs on the CPU: ``ganzoo/__init__.py`` imports
it first. This module imports no torch for that reason.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import MutableMapping

PINNED = {"MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
OPT_OUT = "GANZOO_CPU_PINNING"  # "0": let the libraries pick their fastest kernels (numbers then vary by CPU)
_ISA_LEVELS = (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx"), ("sse4.2", "sse4_2"))


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo; empty where there is none (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read().split("\n\n")[0]
    except OSError:
        return {}
    fields = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in fields}


def cpu_model() -> str:
    """The CPU's model name, e.g. "AMD EPYC" or "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown CPU"


def isa_level() -> str:
    """The widest vector instruction set the CPU offers (avx512, avx2, avx, sse4.2), or its architecture."""
    flags = set(_cpuinfo().get("flags", "").split())
    for level, flag in _ISA_LEVELS:
        if flag in flags:
            return level
    return platform.machine() or "unknown"


def can_pin() -> bool:
    """Whether this CPU runs the pinned AVX2 kernels: an x86-64 CPU that has AVX2."""
    return platform.machine().lower() in ("x86_64", "amd64") and isa_level() in ("avx512", "avx2")


def pin_kernels(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the ``PINNED`` variables the user has not set, where the CPU allows; returns what was set."""
    if environ.get(OPT_OUT, "1") == "0" or not can_pin():
        return {}
    added = {key: value for key, value in PINNED.items() if key not in environ}
    environ.update(added)
    return added


def kernel_settings(environ: MutableMapping[str, str] = os.environ) -> str:
    """The settings that decide which kernels run, as the run record states them, e.g.
    "MKL_CBWR=AVX2,STRICT, ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2"; "libraries' choice" when none."""
    set_ = [f"{key}={environ[key]}" for key in PINNED if environ.get(key)]
    return ", ".join(set_) or "libraries' choice"


def describe_cpu(threads: int) -> str:
    """What a CPU run's numbers depend on: threads (reduction order), the CPU and the kernels' settings.

    e.g. "cpu (1 thread; AMD EPYC, avx512; MKL_CBWR=AVX2,STRICT, ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2)"
    """
    plural = "s" if threads != 1 else ""
    return f"cpu ({threads} thread{plural}; {cpu_model()}, {isa_level()}; {kernel_settings()})"
