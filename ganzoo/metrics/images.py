"""Reading a folder of images into float tensors in [-1, 1], the range every ganzoo sample lives in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by path so that ``n`` first images are reproducible."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
    return files


def _open(path: Path) -> Image.Image:
    """``Image.open`` with an error that names the file and the fix, not PIL's traceback."""
    try:
        return Image.open(path)
    except (OSError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
        raise ValueError(f"{path} cannot be read as an image ({type(exc).__name__}: {exc}); remove or replace "
                         "it, every file with an image extension in the folder is read") from exc


def _read(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    with _open(path) as image:
        if image.size != size:
            raise ValueError(f"{path} is {image.size[0]}x{image.size[1]} but the first image is {size[0]}x{size[1]}; "
                             "all images of a folder must have one size (resize them first)")
        try:
            array = np.asarray(image.convert(mode), dtype=np.uint8)
        except OSError as exc:  # a truncated file opens (its header is fine) and fails when decoded
            raise ValueError(f"{path} cannot be decoded ({exc}); remove or replace it") from exc
    return array[None] if mode == "L" else array.transpose(2, 0, 1)


def iter_image_batches(folder: str | os.PathLike, batch_size: int = 500, n: int | None = None,
                       uint8: bool = False) -> Iterator[torch.Tensor]:
    """Yield batches (B, C, H, W) of the first ``n`` images (all if ``None``) of ``folder``.

    Grey images give C = 1, everything else is converted to RGB (alpha dropped). Values are floats
    ``u / 127.5 - 1`` of the 8-bit values ``u`` (which quantisation recovers exactly), or the uint8 values
    themselves with ``uint8=True``.
    """
    files = list_images(folder)[:n]
    with _open(files[0]) as first:
        mode = "L" if first.mode in GREY_MODES else "RGB"
        size = first.size
    for start in range(0, len(files), batch_size):
        batch = torch.from_numpy(np.stack([_read(p, mode, size) for p in files[start:start + batch_size]]))
        yield batch if uint8 else batch.float() / 127.5 - 1.0


def read_images(folder: str | os.PathLike, n: int | None = None) -> torch.Tensor:
    """All (or the first ``n``) images of ``folder`` as one float tensor (N, C, H, W) in [-1, 1]."""
    return torch.cat(list(iter_image_batches(folder, n=n)))
