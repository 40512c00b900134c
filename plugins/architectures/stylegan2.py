"""StyleGAN2-lite (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", arXiv:1912.04958).

What is kept from StyleGAN2 (config F):
- G's mapping network: z normalised to unit second moment, then an MLP of ``mapping_layers`` equalised-LR
  layers with leaky ReLU and a learning-rate multiplier of 0.01, giving w; every synthesis layer reads its
  own copy of w (``ws``, shape ``(B, num_ws, w_dim)``), which style mixing and path-length regularisation use;
- a learned constant input, modulated and demodulated 3x3 convolutions (the weight scaled per sample by the
  style, then divided by its norm; computed for the whole batch as one grouped convolution), per-pixel noise
  with a learned per-channel strength, and the skip-connection output (a toRGB at every side, the image so far
  upsampled and summed);
- D's residual architecture: fromRGB at full size, residual down-blocks scaled by 1/sqrt(2), then a 3x3 conv,
  a fully connected layer and the logit; an optional minibatch standard deviation layer (one feature);
- equalised learning rate everywhere: weights stored N(0, 1) and scaled at run time by He's constant.

What is simplified: resampling is bilinear (G) and 2x2 average pooling (D) instead of the FIR filters and
their custom CUDA kernels; widths are small (``ch`` = 16 at the image side, doubling at each halving up to
``max_ch`` = 64; z and w of 64, 2 mapping layers as in StyleGAN2-ADA's CIFAR setting) so that a 2-core CPU
trains 8x8 digits; images end in ``tanh``, which the zoo's contract asks of
every image generator (StyleGAN2's output is linear). Style mixing is off by default (``mixing_prob`` 0; the
paper trains with 0.9). The minibatch standard deviation layer is off by default too (``mbstd_group`` 0; the
paper uses groups of 4): it makes each logit depend on the other samples of its group, which the
discriminator contract forbids because R1 and gradient penalties then differentiate the sum of the logits
rather than each sample's own (as StyleGAN2's code does). Lazy R1 and path-length regularisation are the
``r1_lazy`` and ``pl_reg`` stabilizers; the paper's lazy regularisation also rescales Adam's rate and
betas for the regularised steps, which the harness's single optimiser step does not.

The sides are powers of two from 8 (a 4x4 start) and 28 (MNIST's, from 7x7).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo import DataSpec

from .layers import image_levels

RESOLUTIONS = (8, 16, 28, 32, 64)
LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' second moment through leaky ReLU, as StyleGAN2 does


def he_gain(fan_in: int) -> float:
    """He's constant sqrt(2 / fan_in) divided by the activation gain sqrt(2): StyleGAN's runtime weight scale."""
    return 1.0 / math.sqrt(fan_in)


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


class EqualLinear(nn.Linear):
    """A linear layer with equalised learning rate.

    The weight is stored N(0, 1) / ``lr_mul`` and used as ``weight * lr_mul / sqrt(in)``, the bias as
    ``bias * lr_mul``: Adam's step, of about the same size for every parameter, then moves each layer's output
    alike, and ``lr_mul`` scales this layer's effective learning rate (0.01 in the mapping network). It stays an
    ``nn.Linear`` so that the ``spectral_norm`` stabilizer finds it.
    """

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__(in_features, out_features)
        self.lr_mul = lr_mul
        self.weight_gain = lr_mul * he_gain(in_features)
        with torch.no_grad():
            self.weight.normal_().div_(lr_mul)
            self.bias.fill_(bias_init / lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)


class EqualConv2d(nn.Conv2d):
    """A stride-1 "same" convolution with equalised learning rate (weight N(0, 1), scaled by 1/sqrt(fan-in))."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True):
        super().__init__(in_ch, out_ch, kernel, padding=kernel // 2, bias=bias)
        self.weight_gain = he_gain(in_ch * kernel * kernel)
        with torch.no_grad():
            self.weight.normal_()
            if bias:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     eps: float = 1e-8) -> torch.Tensor:
    """StyleGAN2's modulated convolution, every sample at once as one grouped convolution.

    Args:
        x: ``(B, in, H, W)`` features.
        weight: ``(out, in, k, k)``, already scaled (equalised learning rate).
        styles: ``(B, in)``: sample b's weight is ``weight * styles[b]`` along the input channels.
        demodulate: divide each output channel's filter by its L2 norm over (in, k, k), per sample.
        eps: added to the squared norm before the square root.

    Returns:
        ``(B, out, H, W)``, "same" padding.
    """
    batch, in_ch, height, width = x.shape
    out_ch, _, kernel, _ = weight.shape
    w = weight.unsqueeze(0) * styles.view(batch, 1, in_ch, 1, 1)  # (B, out, in, k, k)
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
    # The batch folds into the channels: group b convolves sample b with its own weight.
    out = F.conv2d(x.reshape(1, batch * in_ch, height, width), w.reshape(batch * out_ch, in_ch, kernel, kernel),
                   padding=kernel // 2, groups=batch)
    return out.view(batch, out_ch, height, width)


class StyleConv(nn.Module):
    """Modulated 3x3 convolution (after a 2x bilinear upsampling when ``up``), noise, bias, leaky ReLU.

    The noise is drawn afresh in training; in eval mode it is a fixed map drawn once at construction (StyleGAN2's
    ``noise_mode="const"``), so that an evaluated G is a function of z alone: a reloaded checkpoint and the run
    that saved it give the same samples for the same latents.
    """

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, up: bool, side: int):
        super().__init__()
        self.up = up
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.weight_gain = he_gain(in_ch * 9)
        self.noise_strength = nn.Parameter(torch.zeros(1, out_ch, 1, 1))  # the paper's starts at 0 too
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))
        self.register_buffer("noise_const", torch.randn(1, 1, side, side))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = upsample(x)
        x = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w))
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        return lrelu(x + self.noise_strength * noise + self.bias)


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to the image channels, without demodulation (as in StyleGAN2)."""

    def __init__(self, in_ch: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, in_ch, 1, 1))
        self.weight_gain = he_gain(in_ch)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), demodulate=False) + self.bias


class MappingNetwork(nn.Module):
    """z -> w: z normalised to unit second moment, then ``layers`` equalised-LR layers scaled by ``lr_mul``."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int, lr_mul: float):
        super().__init__()
        widths = [latent_dim] + [w_dim] * layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul) for a, b in itertools.pairwise(widths))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x


def widths(side: int, base: int, ch: int, max_ch: int) -> dict[int, int]:
    """Channels at each side from ``base`` to ``side``: ``ch`` at the image side, doubling per halving, capped."""
    out, width = {}, ch
    while side >= base:
        out[side] = min(width, max_ch)
        side, width = side // 2, width * 2
    return out


class StyleGAN2Generator(nn.Module):
    """``G(z) = synthesis(mapping(z))``; both halves are public for path-length regularisation (``pl_reg``)."""

    def __init__(self, latent_dim: int, channels: int, side: int, base: int, ch: int, max_ch: int, w_dim: int,
                 mapping_layers: int, mapping_lr_mul: float, mixing_prob: float):
        super().__init__()
        self.latent_dim, self.w_dim, self.mixing_prob = latent_dim, w_dim, mixing_prob
        self.mapping_network = MappingNetwork(latent_dim, w_dim, mapping_layers, mapping_lr_mul)
        sides = sorted(widths(side, base, ch, max_ch).items())
        self.const = nn.Parameter(torch.randn(1, sides[0][1], base, base))
        self.convs = nn.ModuleList([StyleConv(sides[0][1], sides[0][1], w_dim, up=False, side=sides[0][0])])
        self.to_rgbs = nn.ModuleList([ToRGB(sides[0][1], channels, w_dim)])
        for (_, in_ch), (out_side, out_ch) in itertools.pairwise(sides):
            self.convs.extend([StyleConv(in_ch, out_ch, w_dim, up=True, side=out_side),
                               StyleConv(out_ch, out_ch, w_dim, up=False, side=out_side)])
            self.to_rgbs.append(ToRGB(out_ch, channels, w_dim))
        self.num_ws = len(self.convs) + len(self.to_rgbs)  # one w per layer that takes a style

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` -> ``ws`` of shape ``(B, num_ws, w_dim)``: w repeated for every styled layer."""
        return self.mapping_network(z).unsqueeze(1).expand(-1, self.num_ws, -1)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """``ws`` ``(B, num_ws, w_dim)`` -> images in [-1, 1]; layer i reads ``ws[:, i]``."""
        styles = iter(ws.unbind(1))
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, next(styles))
        image = self.to_rgbs[0](x, next(styles))
        for level, to_rgb in enumerate(self.to_rgbs[1:]):
            x = self.convs[2 * level + 1](x, next(styles))
            x = self.convs[2 * level + 2](x, next(styles))
            image = upsample(image) + to_rgb(x, next(styles))
        return torch.tanh(image)

    def mix_styles(self, ws: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Style mixing regularisation: from a random layer on, each sample takes the w of a second latent."""
        if torch.rand(()) >= self.mixing_prob:
            return ws
        other = self.mapping(torch.randn_like(z))
        cutoff = int(torch.randint(1, self.num_ws, ()))
        return torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ws = self.mapping(z)
        if self.training and self.mixing_prob > 0:
            ws = self.mix_styles(ws, z)
        return self.synthesis(ws)


def minibatch_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one feature map: the standard deviation over a group of samples, averaged over (C, H, W).

    Sample n is in the group of the samples n' with n' = n mod (B / group), as in StyleGAN2; ``group`` is capped
    at the batch size, and the batch must then be a multiple of it.
    """
    batch, channels, height, width = x.shape
    group = min(group, batch)
    if batch % group:
        raise ValueError(f"discriminator stylegan2: the batch of {batch} is not a multiple of mbstd_group={group}; "
                         "change the batch size or mbstd_group")
    y = x.reshape(group, batch // group, channels, height, width)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B / group,)
    feature = std.repeat(group).view(batch, 1, 1, 1).expand(batch, 1, height, width)
    return torch.cat([x, feature], dim=1)


class DBlock(nn.Module):
    """StyleGAN2's residual D block: two 3x3 convs then 2x average pooling; a pooled 1x1 skip; sum / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, in_ch, 3)
        self.conv2 = EqualConv2d(in_ch, out_ch, 3)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        h = F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)
        return (h + skip) * math.sqrt(0.5)


class StyleGAN2Discriminator(nn.Module):
    def __init__(self, channels: int, side: int, base: int, ch: int, max_ch: int, mbstd_group: int):
        super().__init__()
        self.mbstd_group = mbstd_group
        sides = sorted(widths(side, base, ch, max_ch).items(), reverse=True)
        self.from_rgb = EqualConv2d(channels, sides[0][1], 1)
        self.blocks = nn.Sequential(*(DBlock(a, b) for (_, a), (_, b) in itertools.pairwise(sides)))
        width = sides[-1][1]
        self.conv = EqualConv2d(width + (1 if mbstd_group else 0), width, 3)
        self.fc = EqualLinear(width * base * base, width)
        self.out = EqualLinear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(lrelu(self.from_rgb(x)))
        if self.mbstd_group:
            h = minibatch_stddev(h, self.mbstd_group)
        h = lrelu(self.fc(lrelu(self.conv(h)).flatten(1)))
        return self.out(h).squeeze(1)


def _geometry(spec: DataSpec, component: str) -> tuple[int, int]:
    """(side, base): the image side and the side the networks start (G) or end (D) at: 7 for 28, else 4."""
    image_levels(spec, component, RESOLUTIONS)  # the modality, squareness and supported-side checks
    side = spec.resolution
    return side, 7 if side % 7 == 0 else 4


def _check_widths(component: str, **values: int) -> None:
    bad = {k: v for k, v in values.items() if not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f"{component}: {', '.join(values)} must be integers >= 1; got {bad}")


def stylegan2_generator(spec: DataSpec, latent_dim: int = 64, w_dim: int = 64, mapping_layers: int = 2,
                        mapping_lr_mul: float = 0.01, ch: int = 16, max_ch: int = 64,
                        mixing_prob: float = 0.0) -> StyleGAN2Generator:
    """Build a StyleGAN2-lite generator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        latent_dim: dimension of z (StyleGAN2: 512).
        w_dim: dimension of w and of every style input (StyleGAN2: 512).
        mapping_layers: layers of the mapping MLP (StyleGAN2: 8; 2 in StyleGAN2-ADA's CIFAR setting).
        mapping_lr_mul: learning-rate multiplier of the mapping layers (StyleGAN2: 0.01).
        ch: channels at the image side; each halving of the side doubles them, up to ``max_ch``.
        max_ch: the widest layer (StyleGAN2: 512).
        mixing_prob: probability that a training batch mixes the styles of two latents (StyleGAN2: 0.9).
    """
    component = "generator stylegan2"
    side, base = _geometry(spec, component)
    _check_widths(component, latent_dim=latent_dim, w_dim=w_dim, ch=ch, max_ch=max_ch, mapping_layers=mapping_layers)
    if not 0.0 <= mixing_prob <= 1.0 or mapping_lr_mul <= 0:
        raise ValueError(f"{component}: need mixing_prob in [0, 1] and mapping_lr_mul > 0; got "
                         f"mixing_prob={mixing_prob}, mapping_lr_mul={mapping_lr_mul}")
    return StyleGAN2Generator(latent_dim, spec.channels, side, base, ch, max_ch, w_dim, mapping_layers,
                              mapping_lr_mul, mixing_prob)


def stylegan2_discriminator(spec: DataSpec, ch: int = 16, max_ch: int = 64,
                            mbstd_group: int = 0) -> StyleGAN2Discriminator:
    """Build a StyleGAN2-lite residual discriminator for images of ``spec``.

    Args:
        spec: image spec with a square side in ``RESOLUTIONS``.
        ch: channels at the image side; each halving of the side doubles them, up to ``max_ch``.
        max_ch: the widest layer (StyleGAN2: 512).
        mbstd_group: group size of the minibatch standard deviation layer (StyleGAN2: 4); 0 leaves it out, which
            keeps each logit a function of its own sample (the discriminator contract).
    """
    component = "discriminator stylegan2"
    side, base = _geometry(spec, component)
    _check_widths(component, ch=ch, max_ch=max_ch)
    if not isinstance(mbstd_group, int) or mbstd_group < 0 or mbstd_group == 1:
        raise ValueError(f"{component}: mbstd_group must be 0 (off) or a group size >= 2; got {mbstd_group!r}")
    return StyleGAN2Discriminator(spec.channels, side, base, ch, max_ch, mbstd_group)
