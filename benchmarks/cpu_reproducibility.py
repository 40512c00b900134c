"""What ganzoo's CPU kernel pinning changes and costs: the default's baselines with and without it.

ganzoo caps MKL, oneDNN and ATen at AVX2 kernels (``ganzoo/system/cpu.py``) so that a spec trains to the same
bits on any x86-64 CPU with AVX2. This trains the default suite's two baselines (MLP/NS on ring8, DCGAN/NS
on digits, seed 0, full budget, one thread) in fresh processes under each setting, alternately, round
after round, and prints each one's final headline and seconds:

- **pinned**: ganzoo's default;
- **pinned, AVX2-only CPU**: the same with MKL told the CPU has AVX2 at most (``MKL_ENABLE_INSTRUCTIONS``),
  a stand-in for a CPU without AVX-512: its numbers must equal *pinned*'s;
- **free**: ``GANZOO_CPU_PINNING=0``, the libraries pick their fastest kernels (numbers vary by CPU);
- **compatible**: ``MKL_CBWR=COMPATIBLE`` with SSE4.1 kernels, reproducible on any x86 CPU.

The last line is the median over rounds and datasets of the paired ratio ``ratio=<pinned / free seconds>``.

    python benchmarks/cpu_reproducibility.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

SETTINGS = {
    "pinned": {},
    "pinned, AVX2-only CPU": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "free": {"GANZOO_CPU_PINNING": "0"},
    "compatible": {"MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
}
BASELINES = {"ring8": ("mlp", "mode_kl"), "digits": ("dcgan", "fid")}
PINNING_VARIABLES = ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "GANZOO_CPU_PINNING",
                     "MKL_ENABLE_INSTRUCTIONS")


def train(dataset: str, setting: dict[str, str]) -> tuple[str, float]:
    """One run of the dataset's baseline in a fresh process: (final headline as printed, seconds)."""
    arch, headline = BASELINES[dataset]
    env = {k: v for k, v in os.environ.items() if k not in PINNING_VARIABLES}
    env.update(setting, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as results:
        out = subprocess.run([sys.executable, "-m", "ganzoo", "train", "--dataset", dataset, "--generator", arch,
                              "--discriminator", arch, "--seed", "0", "--results-dir", results, "--device", "cpu"],
                             env=env, capture_output=True, text=True, check=True).stdout
    value = re.findall(rf"\b{headline}=([-0-9.e+]+)", out)[-1]
    seconds = float(re.search(r"done in ([0-9.]+) s", out).group(1))
    return value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dataset", action="append", choices=sorted(BASELINES))
    args = parser.parse_args()
    ratios = []
    for dataset in args.dataset or list(BASELINES):
        seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
        values: dict[str, set[str]] = {name: set() for name in SETTINGS}
        for round_ in range(args.rounds):
            order = list(SETTINGS) if round_ % 2 == 0 else list(reversed(SETTINGS))
            for name in order:
                value, took = train(dataset, SETTINGS[name])
                values[name].add(value)
                seconds[name].append(took)
            ratios.append(seconds["pinned"][-1] / seconds["free"][-1])
        print(f"{dataset} ({BASELINES[dataset][1]} of the baseline, seed 0):")
        for name in SETTINGS:
            print(f"  {name:<22} {', '.join(sorted(values[name])):<12} median {statistics.median(seconds[name]):6.1f} s"
                  f"  (x{statistics.median(seconds[name]) / statistics.median(seconds['free']):.2f} of free)")
        same = values["pinned"] == values["pinned, AVX2-only CPU"] and len(values["pinned"]) == 1
        print(f"  pinned numbers independent of the CPU's AVX-512: {'yes' if same else 'NO'}")
    print(f"ratio={statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
