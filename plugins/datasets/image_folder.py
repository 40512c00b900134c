"""Any folder of images (searched recursively), centre-cropped to a square and resized with PIL.

Cropping before resizing keeps the aspect ratio of what remains; PIL's bicubic filter antialiases when it
shrinks (the resize that clean-fid chose for the same reason). All images are held in memory as one
tensor, so ``limit`` caps how many are read from a large folder (the first ones in sorted path order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganzoo import Dataset, DataSpec

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MODES = {1: "L", 3: "RGB"}


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (any depth), sorted, so that the order is the same on every machine."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)


def load_image(path: Path, resolution: int, channels: int) -> np.ndarray:
    """One image as uint8 ``(channels, resolution, resolution)``: centre square crop, then bicubic resize."""
    with Image.open(path) as image:
        image = image.convert(MODES[channels])
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


class ImageFolder(Dataset):
    """Every image under ``path`` as ``(channels, resolution, resolution)`` in [-1, 1]; no labels.

    Args:
        path: the folder (required).
        resolution: output side in pixels.
        channels: 3 (RGB) or 1 (grey).
        limit: read at most this many images (``None``: all).
    """

    default_extractor = None  # the harness falls back to the standard Inception

    def __init__(self, path: str | None = None, resolution: int = 64, channels: int = 3, limit: int | None = None):
        if not path:
            raise ValueError("image_folder needs the folder to read: give the hyperparameter path=/path/to/images")
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ValueError(f"image_folder: {folder} is not a folder; give path= an existing folder of images")
        if channels not in MODES:
            raise ValueError(f"image_folder: channels must be 1 (grey) or 3 (RGB), got {channels}")
        if int(resolution) < 4:
            raise ValueError(f"image_folder: resolution must be at least 4, got {resolution}")
        files = list_images(folder)[: None if limit is None else int(limit)]
        if not files:
            raise ValueError(f"image_folder: no images ({', '.join(EXTENSIONS)}) found under {folder}")
        pixels = np.stack([load_image(p, int(resolution), channels) for p in files])
        self.files = files
        self.data = torch.from_numpy(pixels).float() / 127.5 - 1.0
        self.spec = DataSpec("image", tuple(self.data.shape[1:]))

    @classmethod
    def spec_for(cls, path: str | None = None, resolution: int = 64, channels: int = 3, limit: int | None = None):
        """The DataSpec without reading the folder (``ganzoo bench --dry-run`` uses it)."""
        return DataSpec("image", (int(channels), int(resolution), int(resolution)))


def register_all(register) -> None:
    register("image_folder", ImageFolder,
             description="Any folder of png/jpg/bmp/webp images, centre-cropped and resized (needs path=DIR)",
             reference="Standard practice (e.g. Karras et al. 2018, Progressive GAN, arXiv:1710.10196 datasets)",
             tags=("folder",), defaults={"path": None, "resolution": 64, "channels": 3, "limit": None},
             modalities=("image",))
