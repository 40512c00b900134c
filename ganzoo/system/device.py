"""How a device is named in records: the one description a run's record and the reference cache key share."""

from __future__ import annotations

import torch

from .cpu import describe_cpu


def describe_device(device: torch.device, runs_per_device: int = 1) -> str:
    """Where numbers are computed, as far as it changes them or how they read: the one description a run's record
    and the reference features' cache key both use.

    A CPU: threads (reduction order), the CPU and the kernels' settings (``ganzoo.system.cpu.describe_cpu``), e.g.
    "cpu (1 thread; AMD EPYC, avx512; MKL_CBWR=AVX2,STRICT, ...)"; each CPU worker has its own cores, so packing
    is not named. A GPU: its name and TF32 switches (TF32 rounds float32 products), and the runs packed on it
    when more than one (their speed and peak memory are read with it), e.g. "cuda (NVIDIA H100 80GB HBM3; tf32
    matmul False, cudnn True, 3 runs per GPU)".
    """
    if device.type == "cpu":
        return describe_cpu(torch.get_num_threads())
    if device.type == "cuda":
        shared = f", {runs_per_device} runs per GPU" if runs_per_device > 1 else ""
        return (f"cuda ({torch.cuda.get_device_name(device)}; tf32 matmul {torch.backends.cuda.matmul.allow_tf32}, "
                f"cudnn {torch.backends.cudnn.allow_tf32}{shared})")
    return device.type
