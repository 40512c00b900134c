"""MNIST, Fashion-MNIST and CIFAR-10 from their original archives, checksummed and cached.

Where the files come from, in order: the ``root`` hyperparameter (a folder holding the original
archive files), the folder in ``$GANZOO_<NAME>_ROOT`` (e.g. ``GANZOO_MNIST_ROOT``), the ganzoo cache, and
only then a download through ``ganzoo.system.download.fetch`` (refused when ``GANZOO_OFFLINE=1``). Every file is
checked against the full SHA-256 in ``ARCHIVES`` (one table, so that a mirror or a test can replace it).

The archives are read in place: idx files through gzip, CIFAR-10's pickled batches straight out of the
tar file with an unpickler that only accepts the numpy objects those batches contain.

MNIST and Fashion-MNIST are 28x28; the default resolution 32 pads 2 background pixels on each side (as
DCGAN-style MNIST code commonly does), 28 keeps them as they are, any other size resizes bilinearly.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo import Dataset, DataSpec
from ganzoo.system.download import DownloadError, fetch


@dataclass(frozen=True)
class Archive:
    """Where a dataset's original files are published and what their SHA-256 sums are."""

    base_url: str
    sha256: dict[str, str]
    subdir: str


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CIFAR10_FILE = "cifar-10-python.tar.gz"

# SHA-256 of the published files, as listed by TensorFlow Datasets / Keras and many independent projects.
ARCHIVES: dict[str, Archive] = {
    "mnist": Archive(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        "mnist",
    ),
    "fashion_mnist": Archive(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        "fashion_mnist",
    ),
    "cifar10": Archive(
        "https://www.cs.toronto.edu/~kriz/",
        {CIFAR10_FILE: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
        "cifar10",
    ),
}
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
REFERENCES = {
    "mnist": "LeCun et al. 1998, Gradient-based learning applied to document recognition, Proc. IEEE",
    "fashion_mnist": "Xiao et al. 2017, Fashion-MNIST, arXiv:1708.07747",
    "cifar10": "Krizhevsky 2009, Learning multiple layers of features from tiny images (tech. report)",
}


def root_env_var(name: str) -> str:
    return f"GANZOO_{name.upper()}_ROOT"


def archive_file(name: str, filename: str, root: str | Path | None = None) -> Path:
    """A verified local copy of one original file of dataset ``name`` (see the module docstring for the order)."""
    archive = ARCHIVES[name]
    env = root_env_var(name)
    folder = root or os.environ.get(env)
    local = None
    if folder:
        local = Path(folder).expanduser() / filename
        if not local.is_file():
            raise DownloadError(f"{TITLES[name]}: {filename} is not in {local.parent} (given by "
                                f"{'root' if root else env}). Put the original {filename} there, "
                                f"from {archive.base_url}{filename}.")
    try:
        return fetch(archive.base_url + filename, filename, sha256=archive.sha256[filename],
                     what=f"{TITLES[name]} {filename}", subdir=archive.subdir, local_path=local)
    except DownloadError as exc:
        raise DownloadError(f"{exc} Or give a folder that holds the original files: the dataset "
                            f"hyperparameter root=DIR or the environment variable {env}=DIR.") from exc


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip-compressed, unsigned bytes) as a numpy array of its declared shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header declares shape {shape} but holds {data.size} values (truncated?)")
    return data.reshape(shape)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10's batches (dicts of lists and numpy arrays) and refuses any other object."""

    # _codecs.encode only turns a str into bytes: Python 3 writes bytes that way in protocol 2, so a
    # re-pickled copy of the batches needs it.
    _ALLOWED: ClassVar[set[tuple[str, str]]] = {("numpy", "ndarray"), ("numpy", "dtype"),
                                                ("numpy.core.multiarray", "_reconstruct"),
                                                ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR-10 batch refers to {module}.{name}; only numpy arrays are allowed")
        if module == "numpy.core.multiarray":  # the batches were pickled by numpy 1; numpy 2 moved it
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def read_cifar10(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels of one split, read from the tar.gz without extracting it."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    with tarfile.open(path, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        for name in names:
            if name not in members:
                raise ValueError(f"{path} has no {name}: not the CIFAR-10 python archive")
            batch = _NumpyOnlyUnpickler(io.BytesIO(tar.extractfile(members[name]).read()), encoding="bytes").load()
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def to_images(pixels: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> float32 in [-1, 1] at ``resolution`` (28 -> 32 pads with background)."""
    x = torch.from_numpy(np.require(pixels, requirements=("C", "W"))).float() / 127.5 - 1.0
    size = x.shape[-1]
    if resolution == size:
        return x
    if size == 28 and resolution == 32:
        return F.pad(x, (2, 2, 2, 2), value=-1.0)
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True,
                         align_corners=False).clamp_(-1.0, 1.0)


class DownloadedImages(Dataset):
    """One split of MNIST, Fashion-MNIST or CIFAR-10 as images in [-1, 1] with labels.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        root: folder holding the original archive files; ``None`` uses ``$GANZOO_<NAME>_ROOT``, the cache,
            or a download.
        split: ``"train"`` or ``"test"``.
        resolution: output size (8..256).
    """

    default_extractor = None  # the harness falls back to the standard Inception

    def __init__(self, name: str, root: str | None = None, split: str = "train", resolution: int = 32):
        if split not in ("train", "test"):
            raise ValueError(f'{name}: split must be "train" or "test", got "{split}"')
        if not 8 <= int(resolution) <= 256:
            raise ValueError(f"{name}: resolution must be between 8 and 256, got {resolution}")
        if name == "cifar10":
            pixels, labels = read_cifar10(archive_file(name, CIFAR10_FILE, root), split)
        else:
            images_file, labels_file = _IDX_FILES[split]
            pixels = read_idx(archive_file(name, images_file, root))[:, None]
            labels = read_idx(archive_file(name, labels_file, root)).astype(np.int64)
        if len(pixels) != len(labels):
            raise ValueError(f"{name} {split}: {len(pixels)} images but {len(labels)} labels")
        self.data = to_images(pixels, int(resolution))
        self.labels = torch.from_numpy(labels)
        self.spec = DataSpec("image", tuple(self.data.shape[1:]), num_classes=10)


def _factory(name: str):
    def build(root: str | None = None, split: str = "train", resolution: int = 32) -> DownloadedImages:
        return DownloadedImages(name, root=root, split=split, resolution=resolution)

    def spec_for(root: str | None = None, split: str = "train", resolution: int = 32) -> DataSpec:
        # The shape is known without the files, so a dry run works before anything is downloaded.
        return DataSpec("image", (CHANNELS[name], int(resolution), int(resolution)), num_classes=10)

    build.spec_for = spec_for
    build.__name__ = name
    build.__doc__ = f"{TITLES[name]} ({REFERENCES[name]}); see DownloadedImages."
    return build


CHANNELS = {"mnist": 1, "fashion_mnist": 1, "cifar10": 3}


def register_all(register) -> None:
    channels = CHANNELS
    for name, title in TITLES.items():
        register(name, _factory(name),
                 description=f"{title}, downloaded on request (SHA-256 checked, cached) or read from root=DIR",
                 reference=REFERENCES[name], tags=("download", "labelled"),
                 defaults={"root": None, "split": "train", "resolution": 32},
                 modalities=("image",), channels=(channels[name],))
