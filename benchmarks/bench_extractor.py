"""Feature extraction throughput: ganzoo's Inception port against torch-fidelity's, same device, same weights.

Run: python benchmarks/bench_extractor.py [--device cpu|cuda] [--batch-size 8] [--batches 2] [--repeats 3]

No download: both load one file of random weights in the reference layout (timing does not depend on the
values). ganzoo gets float images in [-1, 1] (its normal input, so quantisation is included); torch-fidelity
gets the same images as uint8. Rounds alternate between the two in one process; the table gives the best and
median images per second and the ratio of the best rates (timeit's convention on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_inception import random_inception_weights

from ganzoo_plugins.extractors.inception import inception_v3_tf


def throughput(fn, batches: list[torch.Tensor], device: torch.device) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            fn(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return sum(b.shape[0] for b in batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=32, help="input resolution (resized to 299 by both)")
    args = parser.parse_args()
    device = torch.device(args.device)

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with tempfile.TemporaryDirectory() as tmp:
        weights = random_inception_weights(Path(tmp) / "random-inception.pth")
        ours = inception_v3_tf(weights=str(weights)).to(device)
        theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                             feature_extractor_weights_path=str(weights)).to(device)
    gen = torch.Generator().manual_seed(0)
    uint8 = [torch.randint(0, 256, (args.batch_size, 3, args.size, args.size), dtype=torch.uint8, generator=gen)
             .to(device) for _ in range(args.batches)]
    floats = [b.float() / 127.5 - 1 for b in uint8]
    throughput(ours, floats[:1], device), throughput(theirs, uint8[:1], device)  # warm-up
    rates = {"ganzoo inception_v3_tf": [], "torch-fidelity inception-v3-compat": []}
    for _ in range(args.repeats):
        rates["ganzoo inception_v3_tf"].append(throughput(ours, floats, device))
        rates["torch-fidelity inception-v3-compat"].append(throughput(theirs, uint8, device))
    base = max(rates["torch-fidelity inception-v3-compat"])
    rows = [(name, f"{max(r):.2f}", f"{statistics.median(r):.2f}", f"{max(r) / base:.2f}x")
            for name, r in rates.items()]
    print(f"Inception feature extraction on {device} ({torch.get_num_threads()} CPU threads), "
          f"{args.batches} x {args.batch_size} images of {args.size}x{args.size}, {args.repeats} rounds")
    print(tabulate(rows, headers=("extractor", "best images/s", "median images/s", "ratio vs torch-fidelity")))


if __name__ == "__main__":
    main()
