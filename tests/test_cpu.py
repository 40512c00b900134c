"""The CPU kernel pinning behind "the same numbers on any x86-64 CPU with AVX2" (ganzoo/system/cpu.py)."""

import os
import subprocess
import sys

import pytest

from ganzoo.system import cpu

PINNABLE = cpu.can_pin()


def _in_fresh_process(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in cpu.PINNED and k != cpu.OPT_OUT} | env
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_pinning_sets_only_what_the_user_left_unset():
    environ = {"MKL_CBWR": "COMPATIBLE"}
    added = cpu.pin_kernels(environ)
    if not PINNABLE:
        assert added == {} and environ == {"MKL_CBWR": "COMPATIBLE"}
        return
    assert environ["MKL_CBWR"] == "COMPATIBLE"  # the user's choice wins
    assert added == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def test_opting_out_leaves_the_libraries_free():
    environ = {cpu.OPT_OUT: "0"}
    assert cpu.pin_kernels(environ) == {} and environ == {cpu.OPT_OUT: "0"}
    assert cpu.kernel_settings({}) == "libraries' choice"


@pytest.mark.skipif(not PINNABLE, reason="pinning applies to x86-64 CPUs with AVX2 only")
def test_importing_ganzoo_pins_the_kernels_torch_then_uses():
    # ATen reads ATEN_CPU_CAPABILITY when it first dispatches: importing ganzoo first must be enough.
    code = "import ganzoo, torch; print(torch.backends.cpu.get_cpu_capability())"
    assert _in_fresh_process(code) == "AVX2"
    assert _in_fresh_process(code, **{cpu.OPT_OUT: "0"}) != "AVX2" or cpu.isa_level() == "avx2"


def test_the_run_record_names_threads_cpu_isa_and_kernel_settings():
    record = cpu.describe_cpu(1)
    assert record.startswith("cpu (1 thread; ")
    assert cpu.cpu_model() in record and cpu.isa_level() in record
    if PINNABLE:
        for key, value in cpu.PINNED.items():
            assert f"{key}={os.environ.get(key, value)}" in record


@pytest.mark.skipif(not PINNABLE or cpu.isa_level() != "avx512", reason="needs an AVX-512 CPU to emulate an AVX2 one")
def test_pinned_kernels_give_the_same_bits_whatever_the_cpu_offers():
    # An AVX2-only CPU, emulated: MKL and oneDNN capped at AVX2 by the instructions they may use. A GEMM chain
    # and a convolution must give the same bits as on the full AVX-512 machine once ganzoo has pinned them.
    # A matrix-vector product (D's last layer) is where MKL's AVX-512 and AVX2 kernels part, measured.
    code = ("import ganzoo, torch; g = torch.Generator().manual_seed(0); x = torch.randn(64, 64, generator=g); "
            "v = torch.randn(64, 1, generator=g); c = torch.nn.Conv2d(3, 16, 3); torch.manual_seed(0); "
            "c.reset_parameters(); i = torch.randn(8, 3, 17, 17, generator=g); "
            "print((x @ v).numpy().tobytes().hex()[:64], float(c(i).double().sum()))")
    pinned = _in_fresh_process(code)
    assert _in_fresh_process(code, MKL_ENABLE_INSTRUCTIONS="AVX2") == pinned
    free = _in_fresh_process(code, **{cpu.OPT_OUT: "0"})
    assert free.split()[0] != pinned.split()[0], "the check could not fail: AVX-512 MKL gave the AVX2 bits"
