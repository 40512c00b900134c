"""The TF-ported Inception-v3 (2015-12-05 graph) that the reference FID, IS and KID implementations use.

The architecture differs from torchvision's Inception-v3: 1008 classes, no auxiliary head, convolutions
without bias followed by BatchNorm with eps 1e-3, average pools that ignore padding, and a *max* pool in the
pooling branch of the last block. The state-dict layout is that of the published PyTorch port
(torch-fidelity / pytorch-fid), so their weight file loads as is. Preprocessing reproduces TensorFlow:
8-bit values, TF1 ``resize_bilinear`` to 299 x 299 (no half-pixel offset), then ``(x - 128) / 128``.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganzoo.api.contracts import FeatureExtractor, Features
from ganzoo.metrics.features import quantize_uint8
from ganzoo.system.download import fetch, local_file, verify

WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256 = "6726825d"
WEIGHTS_ENV = "GANZOO_INCEPTION_WEIGHTS"
WHAT = "Inception-v3 FID weights (TF 2015-12-05 port)"
INPUT_SIZE = 299
RESIZES = ("tf", "clean")


# -- architecture ------------------------------------------------------------------------------------

class ConvBN(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel=1, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def conv(name: str, c_out: int, kernel=1, stride=1, padding=0) -> tuple:
    return (name, c_out, kernel, stride, padding)


_POOLS = {
    # TF's average pool divides by the number of real (unpadded) pixels.
    "avg": lambda x: F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False),
    "max": lambda x: F.max_pool2d(x, 3, stride=1, padding=1),
    "max_s2": lambda x: F.max_pool2d(x, 3, stride=2),
}


class Mixed(nn.Module):
    """An Inception block: parallel branches whose outputs are concatenated along channels.

    A branch is a chain of steps; a step is a conv spec, a pool name from ``_POOLS``, or a list of conv specs
    applied in parallel to the same input and concatenated (the split 1x3 / 3x1 ends of the last blocks).
    """

    def __init__(self, c_in: int, branches: list[list]):
        super().__init__()
        self.plan, self.out_channels = [], 0
        for branch in branches:
            channels, steps = c_in, []
            for step in branch:
                if isinstance(step, str):
                    steps.append(step)
                    continue
                fork = step if isinstance(step, list) else [step]
                for name, c_out, kernel, stride, padding in fork:
                    self.add_module(name, ConvBN(channels, c_out, kernel, stride, padding))
                steps.append([spec[0] for spec in fork])
                channels = sum(spec[1] for spec in fork)
            self.plan.append(steps)
            self.out_channels += channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for steps in self.plan:
            y = x
            for step in steps:
                if isinstance(step, str):
                    y = _POOLS[step](y)
                elif len(step) == 1:
                    y = getattr(self, step[0])(y)
                else:
                    y = torch.cat([getattr(self, name)(y) for name in step], dim=1)
            outputs.append(y)
        return torch.cat(outputs, dim=1)


def block_a(pool_features: int) -> list[list]:
    return [[conv("branch1x1", 64)],
            [conv("branch5x5_1", 48), conv("branch5x5_2", 64, 5, padding=2)],
            [conv("branch3x3dbl_1", 64), conv("branch3x3dbl_2", 96, 3, padding=1),
             conv("branch3x3dbl_3", 96, 3, padding=1)],
            ["avg", conv("branch_pool", pool_features)]]


def block_b() -> list[list]:
    return [[conv("branch3x3", 384, 3, stride=2)],
            [conv("branch3x3dbl_1", 64), conv("branch3x3dbl_2", 96, 3, padding=1),
             conv("branch3x3dbl_3", 96, 3, stride=2)],
            ["max_s2"]]


def block_c(c7: int) -> list[list]:
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of the factorised 7x7
    return [[conv("branch1x1", 192)],
            [conv("branch7x7_1", c7), conv("branch7x7_2", c7, row[0], padding=row[1]),
             conv("branch7x7_3", 192, col[0], padding=col[1])],
            [conv("branch7x7dbl_1", c7), conv("branch7x7dbl_2", c7, col[0], padding=col[1]),
             conv("branch7x7dbl_3", c7, row[0], padding=row[1]), conv("branch7x7dbl_4", c7, col[0], padding=col[1]),
             conv("branch7x7dbl_5", 192, row[0], padding=row[1])],
            ["avg", conv("branch_pool", 192)]]


def block_d() -> list[list]:
    return [[conv("branch3x3_1", 192), conv("branch3x3_2", 320, 3, stride=2)],
            [conv("branch7x7x3_1", 192), conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3)),
             conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0)), conv("branch7x7x3_4", 192, 3, stride=2)],
            ["max_s2"]]


def block_e(pool: str) -> list[list]:
    def split(prefix):
        return [conv(prefix + "a", 384, (1, 3), padding=(0, 1)), conv(prefix + "b", 384, (3, 1), padding=(1, 0))]

    return [[conv("branch1x1", 320)],
            [conv("branch3x3_1", 384), split("branch3x3_2")],
            [conv("branch3x3dbl_1", 448), conv("branch3x3dbl_2", 384, 3, padding=1), split("branch3x3dbl_3")],
            [pool, conv("branch_pool", 192)]]


class InceptionV3Net(nn.Module):
    """Inception-v3 as in the 2015-12-05 TF graph; ``forward`` maps normalised 299x299 input to pool_3 (B, 2048)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        blocks = [("Mixed_5b", block_a(32)), ("Mixed_5c", block_a(64)), ("Mixed_5d", block_a(64)),
                  ("Mixed_6a", block_b()), ("Mixed_6b", block_c(128)), ("Mixed_6c", block_c(160)),
                  ("Mixed_6d", block_c(160)), ("Mixed_6e", block_c(192)), ("Mixed_7a", block_d()),
                  ("Mixed_7b", block_e("avg")), ("Mixed_7c", block_e("max"))]  # max: a quirk of the TF graph
        channels = 192
        for name, branches in blocks:
            block = Mixed(channels, branches)
            self.add_module(name, block)
            channels = block.out_channels
        self.mixed = [name for name, _ in blocks]
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in self.mixed:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


# -- preprocessing -----------------------------------------------------------------------------------

def _tf1_axis(in_size: int, out_size: int, device: torch.device):
    # TF1 computes scale = in / out and source = dst * scale in float32, without a half-pixel offset.
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    source = torch.arange(out_size, dtype=torch.float32) * scale
    low = source.floor()
    high = (low + 1).clamp_max(in_size - 1)
    return low.long().to(device), high.long().to(device), (source - low).to(device)


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of float (B, C, H, W) to (size, size) with TF1 ``resize_bilinear`` semantics.

    TF interpolates each output pixel as ``top + (bottom - top) * dy`` with ``top`` and ``bottom``
    interpolated along x first; interpolating every source row along x once and then picking rows gives
    the same float32 operations in the same order, at a fraction of the gathers.
    """
    if x.shape[-2:] == (size, size):
        return x  # scale 1: every weight is 0, TF returns the input unchanged
    x_low, x_high, dx = _tf1_axis(x.shape[3], size, x.device)
    y_low, y_high, dy = _tf1_axis(x.shape[2], size, x.device)
    left, right = x.index_select(3, x_low), x.index_select(3, x_high)
    rows = left + (right - left) * dx
    top, bottom = rows.index_select(2, y_low), rows.index_select(2, y_high)
    return top + (bottom - top) * dy[:, None]


def resize_clean(x: torch.Tensor, size: int) -> torch.Tensor:
    """PIL bicubic resize of each channel in float, clipped to [0, 255] (clean-fid's protocol; runs on CPU)."""
    planes = x.detach().float().cpu().numpy()
    out = np.empty((*planes.shape[:2], size, size), dtype=np.float32)
    for b in range(planes.shape[0]):
        for c in range(planes.shape[1]):
            image = Image.fromarray(planes[b, c]).resize((size, size), resample=Image.Resampling.BICUBIC)
            out[b, c] = np.asarray(image).clip(0, 255)
    return torch.from_numpy(out).to(x.device)


@contextlib.contextmanager
def _full_precision_convolutions(device: torch.device):
    """Switch off TF32 in cuDNN convolutions while the extractor runs.

    cuDNN may run float32 convolutions in TF32 (10-bit mantissa) by default: too coarse for features that must
    match the reference to 1e-4. Uses the precision API of torch >= 2.9 where it exists (mixing it with the
    legacy ``allow_tf32`` flag is an error there).
    """
    cudnn = torch.backends.cudnn
    if device.type != "cuda":
        yield
        return
    conv = getattr(cudnn, "conv", None)
    owner, attr, value = (conv, "fp32_precision", "ieee") if hasattr(conv, "fp32_precision") else \
        (cudnn, "allow_tf32", False)
    previous = getattr(owner, attr)
    setattr(owner, attr, value)
    try:
        yield
    finally:
        setattr(owner, attr, previous)


# -- the feature extractor -----------------------------------------------------------------------------

class InceptionV3TF(FeatureExtractor):
    """pool_3 features (2048) for FID/KID/PR/DC and the 1008 logits without bias for IS.

    ``forward`` takes float images in [-1, 1] of shape (B, C, H, W) with C in {1, 3} (grey is tiled to
    RGB), or uint8 images already quantised; float input is quantised to 8 bits the way
    ``ganzoo.metrics.features.quantize_uint8`` documents.
    """

    name = "inception_v3_tf"
    feature_dim = 2048
    num_classes = 1008

    def __init__(self, resize: str = "tf", weights_hash: str = ""):
        super().__init__()
        if resize not in RESIZES:
            raise ValueError(f'inception_v3_tf: resize must be one of {RESIZES}, got "{resize}"')
        self.resize, self.weights_hash = resize, weights_hash
        # channels_last: oneDNN (CPU) and cuDNN run these convolutions markedly faster in NHWC.
        self.net = InceptionV3Net().to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> Features:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"inception_v3_tf expects images (B, 1 or 3, H, W), got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float()
        elif not torch.isfinite(x).all():
            raise ValueError("inception_v3_tf: the images contain NaN or Inf (a diverged generator?)")
        else:
            x = quantize_uint8(x)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        resize = resize_bilinear_tf1 if self.resize == "tf" else resize_clean
        x = ((resize(x, INPUT_SIZE) - 128) / 128).contiguous(memory_format=torch.channels_last)
        with _full_precision_convolutions(x.device):
            pool = self.net(x)
        return Features(pool, pool @ self.net.fc.weight.T)  # IS uses the logits without the fc bias

    def protocol(self) -> dict:
        return {"extractor": self.name, "weights_hash": self.weights_hash, "resize": self.resize,
                "quantize": "round", "input_size": INPUT_SIZE}


def resolve_weights(weights: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The weight file and its SHA-256 prefix: ``weights``, else ``$GANZOO_INCEPTION_WEIGHTS``, else the cache.

    A local file whose name ends in ``-<hex>.<ext>`` (torch.hub naming) must match that SHA-256 prefix. A file
    with other weights is used as given, with a warning, and its own hash goes into the protocol, so its
    numbers are never ranked with numbers from the standard weights.
    """
    local = weights or os.environ.get(WEIGHTS_ENV)
    if not local:
        path = fetch(WEIGHTS_URL, WEIGHTS_FILE, sha256=WEIGHTS_SHA256, what=WHAT, subdir="weights", env_var=WEIGHTS_ENV)
        return path, WEIGHTS_SHA256
    path = local_file(local, WHAT, f"Download {WEIGHTS_URL} and pass its path (--weights or {WEIGHTS_ENV}).")
    match = re.search(r"-([0-9a-f]{8,64})\.\w+$", path.name)
    digest = verify(path, match.group(1) if match else None, WHAT)
    if not digest.startswith(WEIGHTS_SHA256):
        warnings.warn(f"{path} is not the standard Inception weight file (SHA-256 {digest[:8]}, standard "
                      f"{WEIGHTS_SHA256}): its FID/IS are not comparable with published values.", stacklevel=2)
    return path, digest[:8]


def inception_v3_tf(weights: str | None = None, resize: str = "tf") -> InceptionV3TF:
    """Factory registered as ``inception_v3_tf``: the extractor with verified weights loaded."""
    path, digest = resolve_weights(weights)
    model = InceptionV3TF(resize=resize, weights_hash=digest)
    model.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


def register_all(register) -> None:
    register("inception_v3_tf", inception_v3_tf,
             description="TF-ported Inception-v3 (2015-12-05): pool_3 features for FID/KID/PR/DC, logits for IS",
             reference="Szegedy et al. 2016, arXiv:1512.00567; FID: Heusel et al. 2017, arXiv:1706.08500",
             tags=("fid", "is", "default:image"), defaults={"weights": None, "resize": "tf"}, modalities=("image",),
             channels=(1, 3))
