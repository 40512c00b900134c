"""Adaptive discriminator augmentation (ADA): augment everything D sees, as often as D overfits.

Karras et al. 2020 apply a pipeline of transforms to every image D sees, real and generated alike, in D's steps
and G's (differentiably, so G learns through them). Each transform is applied to each sample with probability p.
Because each is skipped with probability 1 - p, the augmented distribution still determines the clean one, so G
has no reason to produce augmented images: the augmentations do not "leak" (the paper finds this holds for p up to
about 0.8). p is tuned during training by an overfitting
heuristic: r_t = E[sign(D(x_real))], the share of real images D calls real minus the share it calls fake, over
the last ``interval`` D steps. Every ``interval`` D steps p moves by ``sign(r_t - target)`` times the images those
steps showed over ``speed_kimg`` thousand, so p can go from 0 to 1 in ``speed_kimg`` kimg; it stays in [0, 1].

The transforms and their distributions are the paper's (Appendix B):

- pixel blitting: ``xflip`` (mirror, half the time), ``rotate90`` (a uniform multiple of 90 degrees), ``xint``
  (integer translation, uniform in +-1/8 of the image, the border filled by reflection);
- geometric, one resampling with bilinear interpolation and reflection padding: ``scale`` (isotropic, lognormal
  2^N(0, 0.2)), ``rotate`` (uniform angle, before and after ``aniso``, each with probability 1 - sqrt(1 - p) so that
  a sample is rotated with probability p), ``aniso`` (x by 2^N(0, 0.2), y by its inverse), ``xfrac`` (translation
  N(0, 0.125) of the image size per axis);
- colour, on images in [-1, 1] whose grey is 0: ``brightness`` (add N(0, 0.2)), ``contrast`` (scale by
  2^N(0, 0.5)), ``lumaflip`` (mirror about the grey axis, half the time), ``hue`` (rotate about the grey axis by a
  uniform angle; three channels only), ``saturation`` (scale away from the grey axis by 2^N(0, 1)).

Every call draws the same random numbers whatever p is, so the random streams (and a resumed run) do not
depend on p. The deterministic transforms take their parameters explicitly, so they can be checked on their own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import Stabilizer, StepContext

from .diffaugment import _check_images, per_sample

GROUPS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
TRANSFORMS = tuple(name for names in GROUPS.values() for name in names)  # also the order they are applied in

# The paper's strengths (Appendix B, "ADA" defaults).
XINT_MAX = 0.125  # of the image size
SCALE_STD = 0.2  # of log2 of the scale factor, isotropic and anisotropic
XFRAC_STD = 0.125  # of the image size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # of log2
SATURATION_STD = 1.0  # of log2


# -- the deterministic transforms ------------------------------------------------------------------------------


def xflip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror sample ``b`` left-right where ``flip[b]``."""
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def rotate90(x: torch.Tensor, quarters: torch.Tensor) -> torch.Tensor:
    """Rotate sample ``b`` by ``quarters[b]`` (0..3) quarter turns counter-clockwise (square images)."""
    out = x
    for k in (1, 2, 3):
        out = torch.where((quarters == k).view(-1, 1, 1, 1), x.rot90(k, dims=(2, 3)), out)
    return out


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside ``[0, size)`` mirrored back in about the edge pixels (numpy's ``mode="reflect"``)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    folded = index.remainder(period)
    return torch.where(folded >= size, period - folded, folded)


def translate_reflect(x: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """Move sample ``b`` down by ``shift_y[b]`` and right by ``shift_x[b]`` pixels, filling by reflection.

    A gather, so that the gradient reaches every pixel that is shown (some twice).
    """
    batch, _, height, width = x.shape
    rows = _reflect(torch.arange(height, device=x.device).view(1, height, 1) - shift_y.view(-1, 1, 1), height)
    cols = _reflect(torch.arange(width, device=x.device).view(1, 1, width) - shift_x.view(-1, 1, 1), width)
    index = torch.arange(batch, device=x.device).view(-1, 1, 1)
    return x.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2)


def sample_grid(x: torch.Tensor, inverse: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """Resample sample ``b`` where ``moved[b]``: output pixel at normalised position q shows input position
    ``inverse[b] @ (q, 1)`` (``inverse``: ``(B, 3, 3)``, the inverse of the transform of the content), bilinear,
    the border filled by reflection. Other samples are returned as they are, exactly."""
    grid = F.affine_grid(inverse[:, :2, :].to(x.dtype), list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return torch.where(moved.view(-1, 1, 1, 1), warped, x)


def scaling(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` scale matrices."""
    out = torch.eye(3, dtype=sx.dtype, device=sx.device).repeat(len(sx), 1, 1)
    out[:, 0, 0], out[:, 1, 1] = sx, sy
    return out


def rotation(angle: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` rotations by ``angle`` radians."""
    out = torch.eye(3, dtype=angle.dtype, device=angle.device).repeat(len(angle), 1, 1)
    cos, sin = angle.cos(), angle.sin()
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = cos, -sin, sin, cos
    return out


def translation(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` translations, in normalised coordinates (the image spans [-1, 1])."""
    out = torch.eye(3, dtype=tx.dtype, device=tx.device).repeat(len(tx), 1, 1)
    out[:, 0, 2], out[:, 1, 2] = tx, ty
    return out


def colour_matrix(x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``matrix[b] @ pixel + offset[b]`` at every pixel of sample ``b`` (``(B, C, C)`` and ``(B, C)``)."""
    return torch.einsum("bij,bjhw->bihw", matrix.to(x.dtype), x) + offset.to(x.dtype).view(*offset.shape, 1, 1)


def grey_axis(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The unit vector along which every channel is equal: grey."""
    return torch.full((channels,), channels ** -0.5, dtype=dtype, device=device)


def hue_rotation(angle: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` rotations by ``angle`` about the unit 3-vector ``axis`` (Rodrigues' formula)."""
    axis = axis.to(angle.dtype)
    zero = torch.zeros((), dtype=angle.dtype, device=angle.device)
    ux, uy, uz = axis.unbind()  # tensors, not floats: no read-back from a GPU
    cross = torch.stack([torch.stack([zero, -uz, uy]), torch.stack([uz, zero, -ux]), torch.stack([-uy, ux, zero])])
    outer = torch.outer(axis, axis)
    eye = torch.eye(3, dtype=angle.dtype, device=angle.device)
    cos, sin = angle.cos().view(-1, 1, 1), angle.sin().view(-1, 1, 1)
    return cos * eye + sin * cross + (1 - cos) * outer


# -- the random pipeline ---------------------------------------------------------------------------------------


def _chosen(batch: int, p: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Which samples a transform applies to: each with probability ``p``."""
    return torch.rand(batch, device=device) < p


def _log2_normal(batch: int, std: float, device: torch.device) -> torch.Tensor:
    return torch.exp2(torch.randn(batch, device=device) * std)


def augment_images(x: torch.Tensor, p: torch.Tensor | float, transforms: tuple[str, ...]) -> torch.Tensor:
    """``x`` with each of ``transforms`` applied to each sample with probability ``p`` (in ``TRANSFORMS`` order).

    Every transform of ``transforms`` draws its random numbers whatever ``p`` and the coin tosses give.
    """
    batch, channels, height, width = x.shape
    device = x.device
    p = torch.as_tensor(p, dtype=torch.float64, device=device)
    on = set(transforms)

    if "xflip" in on:
        x = xflip(x, _chosen(batch, p, device) & (torch.rand(batch, device=device) < 0.5))
    if "rotate90" in on:
        if height != width:
            raise ValueError(f"ada: rotate90 turns square images only, got {height}x{width}; leave it out of the "
                             "policy (e.g. policy=\"xflip,xint,geom,color\")")
        x = rotate90(x, torch.randint(0, 4, (batch,), device=device) * _chosen(batch, p, device))
    if "xint" in on:
        chosen = _chosen(batch, p, device)
        shift = (torch.rand(2, batch, device=device) * 2 - 1) * XINT_MAX  # of the image size
        pixels = (shift * torch.tensor([[height], [width]], device=device)).round().long() * chosen
        x = translate_reflect(x, pixels[0], pixels[1])

    if on & set(GROUPS["geom"]):
        # The transform of the content is T = T_n ... T_1 (T_1 first); grid_sample needs where each output pixel
        # comes from, T^-1 = T_1^-1 ... T_n^-1. Identity where no transform was chosen.
        inverse = torch.eye(3, device=device).repeat(batch, 1, 1)
        moved = torch.zeros(batch, dtype=torch.bool, device=device)

        def then(chosen: torch.Tensor, step_inverse: torch.Tensor) -> None:
            nonlocal inverse, moved
            eye = torch.eye(3, device=device).expand_as(step_inverse)
            inverse = inverse @ torch.where(chosen.view(-1, 1, 1), step_inverse, eye)
            moved = moved | chosen

        if "scale" in on:
            s = _log2_normal(batch, SCALE_STD, device)
            then(_chosen(batch, p, device), scaling(1 / s, 1 / s))
        # Two rotations, each with probability 1 - sqrt(1 - p): a sample is rotated with probability p.
        p_rotate = 1 - torch.sqrt(1 - p.clamp(max=1.0))
        if "rotate" in on:
            angle = (torch.rand(batch, device=device) * 2 - 1) * math.pi
            then(_chosen(batch, p_rotate, device), rotation(-angle))
        if "aniso" in on:
            s = _log2_normal(batch, SCALE_STD, device)
            then(_chosen(batch, p, device), scaling(1 / s, s))
        if "rotate" in on:
            angle = (torch.rand(batch, device=device) * 2 - 1) * math.pi
            then(_chosen(batch, p_rotate, device), rotation(-angle))
        if "xfrac" in on:
            t = torch.randn(2, batch, device=device) * XFRAC_STD * 2  # the image spans 2 in normalised coordinates
            then(_chosen(batch, p, device), translation(-t[0], -t[1]))
        x = sample_grid(x, inverse, moved)

    if on & set(GROUPS["color"]):
        matrix = torch.eye(channels, device=device).repeat(batch, 1, 1)
        offset = torch.zeros(batch, channels, device=device)
        grey = grey_axis(channels, torch.float32, device)
        onto_grey = torch.outer(grey, grey)
        if "brightness" in on:
            offset = offset + per_sample(torch.randn(batch, device=device) * BRIGHTNESS_STD * _chosen(batch, p, device),
                                         offset)
        if "contrast" in on:
            c = torch.where(_chosen(batch, p, device), _log2_normal(batch, CONTRAST_STD, device), 1.0)
            matrix, offset = matrix * c.view(-1, 1, 1), offset * c.view(-1, 1)
        if "lumaflip" in on:
            flip = _chosen(batch, p, device) & (torch.rand(batch, device=device) < 0.5)
            mirror = torch.eye(channels, device=device) - 2 * onto_grey
            step = torch.where(flip.view(-1, 1, 1), mirror, torch.eye(channels, device=device))
            matrix, offset = step @ matrix, (step @ offset.unsqueeze(-1)).squeeze(-1)
        if "hue" in on:
            angle = (torch.rand(batch, device=device) * 2 - 1) * math.pi
            chosen = _chosen(batch, p, device)
            if channels not in (1, 3):
                raise ValueError(f"ada: hue rotates colours about the grey axis of RGB images, not {channels} "
                                 "channels; leave it out of the policy")
            if channels == 3:  # one channel is all grey: a rotation about it changes nothing
                step = torch.where(chosen.view(-1, 1, 1), hue_rotation(angle, grey), torch.eye(3, device=device))
                matrix, offset = step @ matrix, (step @ offset.unsqueeze(-1)).squeeze(-1)
        if "saturation" in on:
            s = torch.where(_chosen(batch, p, device), _log2_normal(batch, SATURATION_STD, device), 1.0)
            step = onto_grey + s.view(-1, 1, 1) * (torch.eye(channels, device=device) - onto_grey)
            matrix, offset = step @ matrix, (step @ offset.unsqueeze(-1)).squeeze(-1)
        x = colour_matrix(x, matrix, offset)
    return x


def parse_policy(policy: str) -> tuple[str, ...]:
    """The transforms a comma-separated ``policy`` names (groups expanded), in the order they are applied."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in GROUPS and name not in TRANSFORMS]
    if unknown or not names:
        raise ValueError(f'ada: unknown policy "{policy}"; use a comma-separated subset of the groups '
                         f"{list(GROUPS)} and the transforms {list(TRANSFORMS)}")
    chosen = {t for name in names for t in GROUPS.get(name, (name,))}
    return tuple(t for t in TRANSFORMS if t in chosen)


def adjusted_p(p: torch.Tensor, sign_sum: torch.Tensor, images: int, target: float, speed_kimg: float) -> torch.Tensor:
    """p after an adjustment: ``sign_sum`` is the sum of sign(D(real)) over the ``images`` real images it saw."""
    r_t = sign_sum / images
    return (p + torch.sign(r_t - target) * images / (speed_kimg * 1000)).clamp(0.0, 1.0)


class ADA(Stabilizer):
    """Augments every batch D sees with probability p, and adjusts p to keep D's sign on real data at ``target``.

    Args:
        policy: comma-separated groups (``blit``, ``geom``, ``color``) and single transforms (``xflip``, ...).
        target: the value of r_t = E[sign(D(x_real))] that p is steered towards (0.6 in the paper).
        speed_kimg: thousands of real images over which p can go from 0 to 1 (500 in the paper; a short CPU
            budget needs far fewer for p to move at all).
        interval: D steps between adjustments (4 in the paper).
        p: the initial p. With ``speed_kimg=inf`` it stays there: fixed-probability augmentation.
    """

    def __init__(self, policy: str = "blit,geom,color", target: float = 0.6, speed_kimg: float = 500.0,
                 interval: int = 4, p: float = 0.0):
        if not -1.0 <= target <= 1.0:
            raise ValueError(f"ada: target is a mean of signs and must lie in [-1, 1], got {target}")
        if not speed_kimg > 0:
            raise ValueError(f"ada: speed_kimg must be positive (inf fixes p), got {speed_kimg}")
        if int(interval) != interval or interval < 1:
            raise ValueError(f"ada: interval must be a positive integer number of D steps, got {interval}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"ada: p is a probability and must lie in [0, 1], got {p}")
        self.policy = parse_policy(policy)
        self.target, self.speed_kimg, self.interval = float(target), float(speed_kimg), int(interval)
        # On D's device, in float64: reading p back every step would stall a GPU, and the adjustments are exact.
        # A single run holds one value (shape ()), a vectorised group one per member (K,).
        self.p = torch.tensor(float(p), dtype=torch.float64)
        self.sign_sum = torch.zeros((), dtype=torch.float64)  # sum of sign(D(real)) since the last adjustment
        self.images = 0  # real images those D steps showed
        self.d_steps_since = 0  # D steps since the last adjustment

    def augment(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        # In a vectorised group each member's slice is augmented with its own p and its own random draws.
        self.p = self.p.to(x.device)
        return self._augment(x, self.p) if ctx is None else ctx.per_member(self._augment, x, self.p)

    def _augment(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        _check_images(x, "ada")
        return augment_images(x, p, self.policy)

    def after_d_step(self, ctx: StepContext) -> None:
        logits = ctx.real_logits.detach()
        self.sign_sum = self.sign_sum.to(logits.device) + torch.sign(logits).double().sum(-1)
        self.images += logits.shape[-1]
        self.d_steps_since += 1
        if self.d_steps_since == self.interval:
            self.p = adjusted_p(self.p.to(logits.device), self.sign_sum, self.images, self.target, self.speed_kimg)
            self.sign_sum, self.images, self.d_steps_since = torch.zeros_like(self.sign_sum), 0, 0

    def report(self) -> dict[str, float]:
        return {"p": float(self.p)}

    def state_dict(self) -> dict:
        return {"p": float(self.p), "sign_sum": float(self.sign_sum), "images": self.images,
                "d_steps_since": self.d_steps_since}

    def load_state_dict(self, state: dict) -> None:
        self.p = torch.tensor(float(state["p"]), dtype=torch.float64)
        self.sign_sum = torch.tensor(float(state["sign_sum"]), dtype=torch.float64)
        self.images, self.d_steps_since = int(state["images"]), int(state["d_steps_since"])

    # In a vectorised group p and the sign sums are one per member, shape (K,); every member takes the same D steps.
    def stack_members(self, members: list[ADA], generator: nn.Module, discriminator: nn.Module) -> None:
        device = next(discriminator.parameters()).device
        self.p = torch.stack([m.p.to(device) for m in members])
        self.sign_sum = torch.stack([m.sign_sum.to(device) for m in members])
        self.images, self.d_steps_since = members[0].images, members[0].d_steps_since

    def unstack_into(self, k: int, member: ADA) -> None:
        member.p, member.sign_sum = self.p[k].clone(), self.sign_sum[k].clone()
        member.images, member.d_steps_since = self.images, self.d_steps_since
