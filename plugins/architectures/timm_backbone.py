"""A discriminator built on any timm backbone: ``timm.create_model(name, num_classes=1, in_chans=C)``.

Projected GAN (Sauer et al. 2021, arXiv:2111.01007) showed that ImageNet features help a discriminator;
this component is the simpler thing underneath: a timm classifier with a one-logit head, trained from
scratch by default. Three adaptations make an ImageNet classifier a GAN discriminator:

- inputs smaller than ``min_size`` are upsampled (bilinear) to it first, for backbones that cannot take
  small images (a ViT wants its training size, ConvNeXt at least 32x32); the factory runs one forward
  pass on a blank image and names the fix when the backbone rejects the size. The default backbone,
  timm's ``test_resnet`` (0.37M parameters, the small ResNet timm keeps for fast tests), takes 8x8 as is;
- BatchNorm layers are replaced by a per-sample normalisation (``norm="layer"`` by default) so that
  gradient penalties and R1 see each sample's own gradient; ``norm="batch"`` keeps the backbone as is;
- pretrained weights are read only from a local file (``weights``) or from timm's caches, never
  downloaded; with them the input is mapped from [-1, 1] to the backbone's ImageNet normalisation.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo import DataSpec
from ganzoo.system.download import local_file

from .layers import check_norm, norm2d


def _per_sample_norm(module: nn.Module, norm: str) -> None:
    """Replace every BatchNorm2d under ``module`` by ``norm2d(norm)``, keeping its affine parameters."""
    from timm.layers import BatchNormAct2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            replacement = norm2d(norm, child.num_features)
            if child.affine and getattr(replacement, "weight", None) is not None:
                replacement.weight.data.copy_(child.weight.data)  # keeps timm's zero-init of residual branches
                replacement.bias.data.copy_(child.bias.data)
            if isinstance(child, BatchNormAct2d):  # timm fuses the activation into its BatchNorm
                replacement = nn.Sequential(replacement, child.drop, child.act)
            setattr(module, name, replacement)
        else:
            _per_sample_norm(child, norm)


def _cached_weights(model_name: str) -> Path | None:
    """The file of ``model_name``'s default pretrained weights in the Hugging Face or torch hub cache."""
    import timm
    from huggingface_hub import constants, try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename, cache_dir=constants.HF_HUB_CACHE)
            if isinstance(found, str):
                return Path(found)
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if path.is_file():
            return path
    return None


def _local_weights(model_name: str, weights: str) -> Path:
    if weights:
        return local_file(weights, "discriminator timm: weights", f"Give the path of a timm {model_name} checkpoint "
                          "(.safetensors or .pth).")
    path = _cached_weights(model_name)
    if path is None:
        raise ValueError(f'discriminator timm: no pretrained weights for "{model_name}" in the Hugging Face or torch '
                         "hub cache, and ganzoo never downloads them. Fetch them once (e.g. timm.create_model("
                         f'"{model_name}", pretrained=True) while online) or pass weights=PATH, '
                         "or set pretrained=False.")
    return path


class TimmDiscriminator(nn.Module):
    """A timm backbone with one logit; resizes small inputs and, for pretrained weights, normalises them."""

    def __init__(self, backbone: nn.Module, min_size: int, mean: tuple[float, ...] | None,
                 std: tuple[float, ...] | None):
        super().__init__()
        self.backbone = backbone
        self.min_size = min_size
        self.normalize = mean is not None
        if self.normalize:
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.min_size and min(x.shape[-2:]) < self.min_size:
            scale = self.min_size / min(x.shape[-2:])
            x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        if self.normalize:
            x = ((x + 1) / 2 - self.mean) / self.std
        return self.backbone(x).view(-1)


def _check_model_name(model_name: str) -> None:
    import timm

    if not timm.is_model(model_name):
        close = difflib.get_close_matches(model_name, timm.list_models(), n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f'discriminator timm: unknown timm model "{model_name}".{hint} See: timm.list_models()')


def _check_input_size(model: TimmDiscriminator, spec: DataSpec, model_name: str) -> None:
    """Run one blank image through ``model`` so that a size the backbone rejects fails here, with the fix."""
    was_training = model.training
    model.eval()  # batch statistics of one blank image would fail for reasons unrelated to its size
    try:
        with torch.no_grad():
            model(torch.zeros(1, *spec.shape))
    except (RuntimeError, AssertionError, ValueError) as exc:
        size = f"{spec.shape[1]}x{spec.shape[2]} inputs" + (
            f" upsampled to side {model.min_size}" if model.min_size else "")
        raise ValueError(f'discriminator timm: "{model_name}" cannot take {size} ({str(exc).splitlines()[0]}). '
                         "Set min_size to a side it accepts (e.g. 32, or its pretraining size for a ViT) so that "
                         "inputs are upsampled first.") from exc
    finally:
        model.train(was_training)


def timm_discriminator(spec: DataSpec, model_name: str = "test_resnet", pretrained: bool = False, weights: str = "",
                       min_size: int = 0, norm: str = "layer") -> TimmDiscriminator:
    """Build a discriminator from the timm model ``model_name``.

    Args:
        spec: image spec; any channel count (timm adapts the first conv, also for pretrained weights).
        model_name: any name from ``timm.list_models()``.
        pretrained: start from pretrained weights, read from ``weights`` or timm's caches (never downloaded).
        weights: path of a local checkpoint for ``pretrained``; empty to look in the caches.
        min_size: inputs with a smaller side are upsampled to it before the backbone; 0 never resizes.
        norm: what replaces the backbone's BatchNorms: ``layer``, ``instance`` (undefined on 1x1 maps, so it needs
            larger inputs), ``none``, or ``batch`` to keep them.

    Raises:
        ValueError: unknown model, weights not found locally, or bad ``norm``/``min_size``.
    """
    import timm

    if spec.modality != "image":
        raise ValueError(f"discriminator timm builds image models; got {spec.modality} data. Use mlp for vectors.")
    check_norm(norm, "discriminator timm")
    if min_size < 0:
        raise ValueError(f"discriminator timm: min_size must be >= 0 (0: never resize); got {min_size}")
    _check_model_name(model_name)
    kwargs = {"num_classes": 1, "in_chans": spec.channels}
    if pretrained:
        path = _local_weights(model_name, weights)
        # Point timm at the local file only: without a URL or hub id it has nothing to download.
        overlay = {"file": str(path), "url": None, "hf_hub_id": None, "source": None}
        backbone = timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    else:
        backbone = timm.create_model(model_name, pretrained=False, **kwargs)
    if norm != "batch":
        _per_sample_norm(backbone, norm)
    mean = std = None
    if pretrained:
        cfg = backbone.pretrained_cfg
        mean, std = _per_channel(cfg["mean"], spec.channels), _per_channel(cfg["std"], spec.channels)
    model = TimmDiscriminator(backbone, min_size, mean, std)
    _check_input_size(model, spec, model_name)
    return model


def _per_channel(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    """ImageNet statistics for ``channels`` inputs: as they are for 3, their mean repeated otherwise."""
    if channels == len(values):
        return tuple(values)
    return (sum(values) / len(values),) * channels
