"""Train the embedded digits classifier and write its weights and facts.

Reproducible: seeded, one CPU thread, deterministic algorithms; it takes a few seconds. Trains on the
fixed train split of scikit-learn's digits (every image whose index % 5 != 4) plus its one-pixel shifts,
scores the held-out split, and writes

    plugins/extractors/weights/digits_classifier.safetensors
    plugins/extractors/weights/digits_classifier.json   (SHA-256, accuracy, training settings)

The same code on another CPU or torch version may give slightly different weights, hence a different
hash: after re-running it, copy the printed SHA-256 into DIGITS_CLASSIFIER_SHA256 in
plugins/extractors/digits.py (metric values from different weights are not comparable).

Usage: python scripts/train_digits_classifier.py [--epochs 15] [--seed 0] [--out-dir DIR]
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
from ganzoo_plugins.datasets.digits import load_digits_split
from ganzoo_plugins.extractors.digits import FEATURE_DIM, WEIGHTS_PATH, DigitsNet


def shifted_copies(x: torch.Tensor) -> torch.Tensor:
    """``x`` and its 8 one-pixel translations (background -1 fills the gap): a 9x larger, fixed training set.

    Generated digits are rarely centred exactly; training on shifts keeps the features from hinging on it.
    """
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    h, w = x.shape[-2:]
    return torch.cat([padded[..., dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])


@torch.no_grad()
def accuracy(net: DigitsNet, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    return float((net(x)[1].argmax(dim=1) == y).double().mean())


def train(epochs: int, seed: int, batch_size: int = 128, lr: float = 2e-3) -> tuple[DigitsNet, dict]:
    torch.manual_seed(seed)
    x_train, y_train = load_digits_split("train")
    x = shifted_copies(x_train)
    y = y_train.repeat(9)
    net = DigitsNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for index in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = F.cross_entropy(net(x[index])[1], y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    facts = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr,
             "optimizer": "AdamW(wd=1e-4), one-cycle",
             "train_size": len(x_train), "augmentation": "train split plus its 8 one-pixel shifts"}
    return net, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=WEIGHTS_PATH.parent)
    args = parser.parse_args()

    torch.set_num_threads(1)  # one thread and deterministic kernels: the same bytes on every run here
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    net, facts = train(args.epochs, args.seed)
    x_test, y_test = load_digits_split("test")
    x_train, y_train = load_digits_split("train")
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
        "split": "sklearn load_digits; test = index % 5 == 4, train = the rest",
        **facts, "torch": torch.__version__, "seconds": round(time.perf_counter() - start, 1),
    }
    (args.out_dir / "digits_classifier.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"held-out accuracy {facts['test_accuracy']:.4f} on {len(x_test)} images ({record['seconds']} s)")
    print(f"wrote {weights}\nSHA-256 {sha256}\n"
          f"set DIGITS_CLASSIFIER_SHA256 = \"{sha256}\" in plugins/extractors/digits.py")


if __name__ == "__main__":
    main()
