"""Which kernels a CPU run may use, what its record says, and where its numbers come out bit for bit again.

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

The pins make runs repeat bit for bit on one CPU model with one torch version; they do not make two vendors
agree. Measured with these pins in force on an Intel Xeon (AVX-512), 0 of the default's 110 runs ended with the
numbers an AMD EPYC committed (median relative difference: digits FID 6%, ring8 mode_kl 44%). So a committed
results folder records its machine (``MACHINE_FILE``), a bit-for-bit comparison runs only where
``bit_for_bit_mismatch`` finds none, and elsewhere what is compared is the verdicts.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Mapping, MutableMapping
from importlib.metadata import PackageNotFoundError, version

PINNED = {"MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
MACHINE_FILE = "machine.json"  # beside a committed runs.csv: the machine (this_machine()) its numbers came from
# What must agree for bit-for-bit numbers. The instruction set too, although torch's kernels are pinned to AVX2:
# the float64 maths of FID and KID runs in numpy/scipy's BLAS, which the pins do not reach. Measured: on an AMD
# EPYC exposing AVX2 only, every ring8 run of results/default (AVX-512 EPYC) came out bit for bit, while digits
# and conditional-digits FIDs differed in their last bits (about 1e-13 relative; the old code gave the same).
MACHINE_KEYS = ("cpu_model", "isa", "kernels", "torch")
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


def this_machine() -> dict[str, str]:
    """What a CPU run's numbers depend on beyond the code and its seed: the CPU model, its widest instruction
    set, the kernels' settings and torch's version (read from its metadata: this module imports no torch)."""
    try:
        torch_version = version("torch")
    except PackageNotFoundError:  # pragma: no cover - ganzoo needs torch
        torch_version = "not installed"
    return {"cpu_model": cpu_model(), "isa": isa_level(), "kernels": kernel_settings(), "torch": torch_version}


def bit_for_bit_mismatch(recorded: Mapping[str, str]) -> str | None:
    """Why this machine cannot be expected to give bit for bit the numbers of the machine ``recorded`` describes
    (a results folder's ``MACHINE_FILE``), e.g. "cpu_model: 'Intel Xeon' here, 'AMD EPYC' there"; ``None`` when
    it can (every key of ``MACHINE_KEYS`` agrees)."""
    here = this_machine()
    differ = [f"{key}: {here[key]!r} here, {recorded.get(key)!r} there" for key in MACHINE_KEYS
              if recorded.get(key) != here[key]]
    return "; ".join(differ) or None
