"""Built-in stabilizers against closed forms, torch.linalg, numpy and a minimal run of the harness's step."""

import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import testzoo
import torch
from torch import nn

import ganzoo
import ganzoo_plugins.losses as losses_plugin
import ganzoo_plugins.stabilizers as stabilizers_plugin
from ganzoo import StepContext
from ganzoo.core.spec import ComponentRef
from ganzoo.run import artifacts
from ganzoo.testing import check_stabilizer, plugin_registry
from ganzoo_plugins.stabilizers.ada import ADA, hue_rotation, rotation, sample_grid, translate_reflect, translation
from ganzoo_plugins.stabilizers.diffaugment import brightness, contrast, cutout, saturation, translate
from ganzoo_plugins.stabilizers.penalties import gradient_penalty, squared_gradient_penalty

IMAGE_ONLY = {"diffaugment", "consistency", "ada", "pl_reg"}


@pytest.fixture(scope="module")
def registry():
    return ganzoo.build_registry(load_entry_points=False,
                                 extra_plugins={"stabilizers": stabilizers_plugin, "losses": losses_plugin})


def build(registry, name, **overrides):
    return registry.get("stabilizer", name).build(**overrides)


class Affine(nn.Module):
    """D(x) = w . flatten(x) + b: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


class HalfSquaredNorm(nn.Module):
    """D(x) = |x|^2 / 2: its input gradient is x."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1)


def ctx_for(discriminator, real=None, fake=None, **kwargs):
    return StepContext(generator=nn.Identity(), discriminator=discriminator, loss=None, real=real, fake=fake, **kwargs)


# -- metadata ------------------------------------------------------------------------------------


def test_metadata_names_the_paper_modalities_and_every_hparam(registry):
    components = registry.list("stabilizer")
    assert len(components) == 17
    for component in components:
        assert "arXiv:" in component.reference and any(str(y) in component.reference for y in range(2016, 2022))
        params = inspect.signature(component.factory).parameters
        assert set(params) - {"self"} == set(component.defaults), component.name
        expected = ("image",) if component.name in IMAGE_ONLY else ("image", "vector")
        assert component.modalities == expected, component.name
    assert dict(registry.get("stabilizer", "label_smoothing").requires) == {"loss": "targets"}


def test_optim_overrides(registry):
    assert build(registry, "ttur").optim_overrides() == {"lr_g": 1e-4, "lr_d": 4e-4}
    assert build(registry, "d_steps").optim_overrides() == {"d_steps": 5}
    others = [c.name for c in registry.list("stabilizer") if c.name not in ("ttur", "d_steps")]
    assert all(build(registry, name).optim_overrides() == {} for name in others)
    with pytest.raises(ValueError, match="positive integer"):
        build(registry, "d_steps", n=0)


# -- spectral norm -------------------------------------------------------------------------------


def test_spectral_norm_makes_largest_singular_value_one(registry):
    torch.manual_seed(0)
    disc = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ConvTranspose2d(8, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 1))
    build(registry, "spectral_norm").wrap_discriminator(disc)
    x = torch.randn(2, 3, 6, 6)
    for _ in range(60):  # one power iteration per training-mode forward pass
        disc(x)
    disc.eval()
    for layer, dim in ((disc[0], 0), (disc[1], 1), (disc[3], 0)):
        weight = layer.weight.detach().movedim(dim, 0).flatten(1)
        assert torch.linalg.svdvals(weight)[0].item() == pytest.approx(1.0, abs=1e-3), type(layer).__name__


def test_spectral_norm_leaves_generator_and_normalised_layers_alone(registry):
    torch.manual_seed(0)
    gen, disc = nn.Linear(4, 4), nn.Sequential(nn.Embedding(10, 5), nn.Linear(5, 1))
    already = nn.utils.parametrizations.spectral_norm(nn.Linear(3, 3))
    stabilizer = build(registry, "spectral_norm")
    stabilizer.wrap_generator(gen)
    stabilizer.wrap_discriminator(nn.Sequential(already))
    stabilizer.wrap_discriminator(disc)
    assert not nn.utils.parametrize.is_parametrized(gen)
    assert len(already.parametrizations.weight) == 1
    assert all(nn.utils.parametrize.is_parametrized(layer, "weight") for layer in disc)
    build(registry, "spectral_norm", apply_to_generator=True).wrap_generator(gen)
    assert nn.utils.parametrize.is_parametrized(gen, "weight")


# -- gradient penalties --------------------------------------------------------------------------

W = [0.3, -1.2, 2.0, 0.5]


@pytest.mark.parametrize("shape", [(6, 4), (6, 1, 2, 2)])
def test_gradient_penalty_of_affine_d(shape):
    disc = Affine(W)
    real, fake = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    norm = np.linalg.norm(W)
    penalty = gradient_penalty(disc, real, fake, weight=10.0)
    assert penalty.item() == pytest.approx(10.0 * (norm - 1.0) ** 2, rel=1e-10)
    # The penalty must train D: d/dw 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|.
    penalty.backward()
    expected = 20.0 * (norm - 1.0) * np.array(W) / norm
    np.testing.assert_allclose(disc.w.grad.numpy(), expected, rtol=1e-10)


def test_gradient_penalty_of_quadratic_d_at_given_interpolates():
    real, fake = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    alpha = torch.rand(5, dtype=torch.float64)
    mixed = alpha[:, None].numpy() * real.numpy() + (1 - alpha[:, None].numpy()) * fake.numpy()
    expected = 10.0 * np.mean((np.linalg.norm(mixed, axis=1) - 1.0) ** 2)
    assert gradient_penalty(HalfSquaredNorm(), real, fake, 10.0, alpha).item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="one shape"):
        gradient_penalty(HalfSquaredNorm(), real, fake[:4])


@pytest.mark.parametrize("name,side", [("r1", "real"), ("r2", "fake")])
def test_r1_r2_of_affine_and_quadratic_d(registry, name, side):
    batch = {"real": torch.randn(4, 4, dtype=torch.float64), "fake": 3 + torch.randn(4, 4, dtype=torch.float64)}
    stabilizer = build(registry, name, gamma=2.0)
    affine = stabilizer.d_penalty(ctx_for(Affine(W), **batch))
    assert affine.item() == pytest.approx(0.5 * 2.0 * np.sum(np.square(W)), rel=1e-10)
    quadratic = stabilizer.d_penalty(ctx_for(HalfSquaredNorm(), **batch))
    expected = 0.5 * 2.0 * np.mean(np.sum(batch[side].numpy() ** 2, axis=1))
    assert quadratic.item() == pytest.approx(expected, rel=1e-10)


def test_gradient_penalty_stabilizer_uses_the_batches_d_saw(registry):
    disc = Affine(W)
    ctx = ctx_for(disc, real=torch.randn(3, 4, dtype=torch.float64), fake=torch.randn(3, 4, dtype=torch.float64))
    value = build(registry, "gradient_penalty").d_penalty(ctx)
    assert value.item() == pytest.approx(10.0 * (np.linalg.norm(W) - 1.0) ** 2, rel=1e-10)
    assert squared_gradient_penalty(disc, ctx.real, 10.0).item() == pytest.approx(5.0 * np.sum(np.square(W)))
    with pytest.raises(ValueError, match="ctx.fake"):
        build(registry, "gradient_penalty").d_penalty(ctx_for(disc, real=ctx.real))


# -- EMA -----------------------------------------------------------------------------------------


def _set_constant(module, value):
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


@pytest.mark.parametrize("start_step", [0, 2])
def test_ema_matches_closed_form_after_k_steps(registry, start_step):
    decay, values = 0.9, [0.5, 2.0, -1.0, 4.0, 3.0, 1.5]
    gen = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    _set_constant(gen, values[0])
    ema = build(registry, "ema", decay=decay, start_step=start_step, warmup=False)
    ema.wrap_generator(gen)
    for step, value in enumerate(values[1:]):
        _set_constant(gen, value)
        gen(torch.randn(4, 3))  # changes BatchNorm's running statistics, which the shadow copies
        ema.after_g_step(StepContext(generator=gen, discriminator=nn.Identity(), loss=None, step=step))
    # Steps before start_step copy the weights; afterwards e <- d e + (1 - d) v.
    expected = values[start_step]
    for value in values[start_step + 1:]:
        expected = decay * expected + (1 - decay) * value
    shadow = ema.eval_generator(gen)
    assert shadow is not gen
    for p in shadow.parameters():
        assert not p.requires_grad
        torch.testing.assert_close(p, torch.full_like(p, expected))
    torch.testing.assert_close(shadow[1].running_mean, gen[1].running_mean)


def test_ema_warmup_follows_the_num_updates_rule():
    """With warm-up the t-th averaged step uses min(decay, (1 + t) / (10 + t)): 0.1, 2/11, 3/12, ..."""
    from ganzoo_plugins.stabilizers.ema import EMA

    gen = nn.Linear(2, 2)
    _set_constant(gen, 0.0)
    ema = EMA(decay=0.999, start_step=1)
    ema.wrap_generator(gen)
    values = [1.0, 3.0, -2.0, 5.0]
    for step, value in enumerate(values):
        _set_constant(gen, value)
        ema.after_g_step(StepContext(generator=gen, discriminator=nn.Identity(), loss=None, step=step))
    expected = values[0]  # step 0 < start_step: copied
    for t, value in enumerate(values[1:]):
        d = min(0.999, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * value
    torch.testing.assert_close(ema.shadow.weight, torch.full((2, 2), expected))


def test_ema_state_round_trips_through_safe_torch_load(registry, tmp_path):
    gen = nn.Linear(3, 2)
    ema = build(registry, "ema", decay=0.5)
    ema.wrap_generator(gen)
    _set_constant(gen, 1.0)
    ema.after_g_step(StepContext(generator=gen, discriminator=nn.Identity(), loss=None))
    torch.save(ema.state_dict(), tmp_path / "ema.pt")
    state = torch.load(tmp_path / "ema.pt", weights_only=True)
    restored = build(registry, "ema", decay=0.5)
    restored.load_state_dict(state)  # before G exists: applied when the shadow is made
    shadow = restored.eval_generator(nn.Linear(3, 2))
    torch.testing.assert_close(shadow.weight, ema.shadow.weight)
    assert restored.num_updates == 1


def test_ema_follows_generator_rewrapped_later_in_the_stack(registry):
    gen = nn.Linear(3, 3)
    ema = build(registry, "ema")
    ema.wrap_generator(gen)
    build(registry, "spectral_norm", apply_to_generator=True).wrap_generator(gen)
    ema.after_g_step(StepContext(generator=gen, discriminator=nn.Identity(), loss=None))
    assert ema.shadow.state_dict().keys() == gen.state_dict().keys()


# -- DiffAugment ---------------------------------------------------------------------------------


def test_colour_transforms_match_closed_forms():
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64) * 2 - 1
    arr, factor = x.numpy(), torch.tensor([0.25, 1.75], dtype=torch.float64)
    f = factor.numpy()[:, None, None, None]
    channel_mean = arr.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(saturation(x, factor).numpy(), (arr - channel_mean) * f + channel_mean)
    image_mean = arr.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(contrast(x, factor).numpy(), (arr - image_mean) * f + image_mean)
    np.testing.assert_allclose(brightness(x, factor).numpy(), arr + f)


def test_random_colour_on_constant_images_only_shifts_brightness(registry):
    # On a constant image saturation and contrast have nothing to scale: the output is c + shift, shift in [-0.5, 0.5].
    torch.manual_seed(0)
    x = torch.full((64, 3, 4, 4), 0.2)
    out = build(registry, "diffaugment", policy="color").augment(x, None)
    shift = out - 0.2
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= 0.5 and shift.flatten(1)[:, 0].unique().numel() == 64  # one draw per sample


def test_translate_and_cutout_match_numpy():
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float64).view(2, 1, 5, 6) + 1
    arr = x.numpy()
    moved = translate(x, torch.tensor([1, -2]), torch.tensor([-1, 0])).numpy()
    expected = np.zeros_like(arr)
    expected[0, :, 1:, :-1] = arr[0, :, :-1, 1:]  # down 1, left 1
    expected[1, :, :-2, :] = arr[1, :, 2:, :]  # up 2
    np.testing.assert_array_equal(moved, expected)
    cut = cutout(x, torch.tensor([-1, 3]), torch.tensor([2, 4]), (3, 3)).numpy()
    expected = arr.copy()
    expected[0, :, 0:2, 2:5] = 0  # box overhangs the top border
    expected[1, :, 3:5, 4:6] = 0  # and the bottom-right corner
    np.testing.assert_array_equal(cut, expected)


def test_diffaugment_is_differentiable_per_sample_and_changes_images(registry):
    torch.manual_seed(0)
    x = (torch.rand(16, 3, 16, 16) + 0.5).requires_grad_(True)  # no zero pixels: zeros come from the transforms
    for policy in ("translation", "cutout", "color,translation,cutout"):
        out = build(registry, "diffaugment", policy=policy).augment(x, None)
        assert out.shape == x.shape
        changed = (out != x).flatten(1).any(1)
        assert changed.sum() >= 12, policy  # a zero shift has chance 1/81 per sample
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        assert grad.abs().sum() > 0
    cut = build(registry, "diffaugment", policy="cutout").augment(x, None)
    zeros = (cut == 0).all(1).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 64).all()  # an 8x8 box, clipped at the borders
    assert len({tuple(m.nonzero()[0].tolist()) for m in (cut == 0).all(1)}) > 1  # boxes differ between samples


def test_diffaugment_rejects_bad_policy_and_vectors(registry):
    with pytest.raises(ValueError, match="unknown policy"):
        build(registry, "diffaugment", policy="colour")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        build(registry, "diffaugment").augment(torch.zeros(4, 2), None)


# -- ADA -------------------------------------------------------------------------------------------


def test_ada_blitting_and_resampling_match_numpy_and_each_other():
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float64).view(2, 1, 5, 6)
    arr = x.numpy()
    moved = translate_reflect(x, torch.tensor([1, -2]), torch.tensor([-3, 0])).numpy()
    padded = np.pad(arr, ((0, 0), (0, 0), (3, 3), (3, 3)), mode="reflect")
    np.testing.assert_array_equal(moved[0], padded[0, :, 2:7, 6:12])  # down 1, left 3
    np.testing.assert_array_equal(moved[1], padded[1, :, 5:10, 3:9])  # up 2
    # Resampling: a quarter turn and a one-pixel shift land pixel centres on pixel centres.
    square = torch.rand(3, 2, 6, 6, dtype=torch.float64)
    every = torch.ones(3, dtype=torch.bool)
    quarter = sample_grid(square, rotation(torch.full((3,), -math.pi / 2, dtype=torch.float64)), every)
    np.testing.assert_allclose(quarter.numpy(), np.rot90(square.numpy(), -1, axes=(2, 3)), atol=1e-6)
    right = sample_grid(square, translation(torch.full((3,), -2 / 6, dtype=torch.float64), torch.zeros(3)), every)
    np.testing.assert_allclose(right[..., 1:].numpy(), square[..., :-1].numpy(), atol=1e-6)  # the border reflects
    assert torch.equal(sample_grid(square, rotation(torch.ones(3)), torch.zeros(3, dtype=torch.bool)), square)


def test_ada_colour_transforms_are_the_hand_computed_ones():
    x = torch.rand(4, 3, 5, 5) * 2 - 1
    grey = x.mean(1, keepdim=True)
    for policy, expected in [("lumaflip", x - 2 * grey), ("saturation", None)]:
        torch.manual_seed(0)
        out = ADA(policy, p=1.0).augment(x, None)
        if expected is not None:  # half the samples flip: each is itself or mirrored about grey
            flipped = torch.isclose(out, expected, atol=1e-6).flatten(1).all(1)
            assert (flipped | (out == x).flatten(1).all(1)).all() and 0 < flipped.sum() < 4
        else:  # the grey part stays, the rest is scaled by one factor per sample
            assert torch.allclose(out.mean(1, keepdim=True), grey, atol=1e-6)
            factor = (out - grey).flatten(1).norm(dim=1) / (x - grey).flatten(1).norm(dim=1)
            assert torch.allclose(out - grey, (x - grey) * factor.view(-1, 1, 1, 1), atol=1e-5)
    third_turn = hue_rotation(torch.tensor([2 * math.pi / 3]), torch.full((3,), 3 ** -0.5))[0]
    assert torch.allclose(third_turn, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]), atol=1e-6)  # R->G->B->R
    torch.manual_seed(0)
    brighter = ADA("brightness", p=1.0).augment(x, None) - x
    assert torch.allclose(brighter, brighter[:, :1, :1, :1].expand_as(x), atol=1e-6)
    assert 0.1 < brighter[:, 0, 0, 0].abs().mean() < 0.4  # N(0, 0.2): mean |b| = 0.16


@pytest.mark.parametrize("channels", [1, 3])
def test_ada_at_p_0_is_the_identity_and_at_p_1_xflip_is_torch_flip(channels):
    x = torch.rand(16, channels, 8, 8) * 2 - 1
    assert torch.equal(ADA(p=0.0).augment(x, None), x)
    torch.manual_seed(0)
    out = ADA("xflip", p=1.0).augment(x, None)
    flipped = (out == torch.flip(x, dims=[3])).flatten(1).all(1)
    assert (flipped | (out == x).flatten(1).all(1)).all() and 4 <= flipped.sum() <= 12  # flips half of the time
    torch.manual_seed(0)
    changed = (ADA(p=1.0).augment(x, None) != x).flatten(1).any(1)
    assert changed.all()


def test_ada_is_differentiable_all_the_way_to_g():
    generator = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))
    fake = generator(torch.randn(6, 4))
    fake.retain_grad()
    ADA(p=1.0).augment(fake, None).square().sum().backward()
    assert (fake.grad.flatten(1).abs().sum(1) > 0).all()  # every sample's gradient reaches G's output
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())


def test_ada_adjusts_p_by_the_sign_of_real_logits_as_the_paper_says(tmp_path):
    ada = ADA(target=0.6, speed_kimg=0.1, interval=2, p=0.5)  # each adjustment moves p by 2 * 4 / 100 = 0.08
    # Mean logit is positive in every step, but mostly negative signs: r_t uses signs, not values.
    steps = [[100.0, -1, -1, -1], [100.0, -1, -1, -1],  # r_t = -0.5 < 0.6: p 0.5 -> 0.42
             [1.0, 1, 1, 1], [1.0, 1, 1, -1],  # r_t = (4 + 2) / 8 = 0.75 > 0.6: p -> 0.50
             [1.0, 1, 1, 1], [1.0, 1, -1, -1],  # r_t = (4 + 0) / 8 = 0.5: p -> 0.42
             [1.0, 1, 1, 1]]  # half an interval: not yet
    expected = [0.5, 0.42, 0.42, 0.5, 0.5, 0.42, 0.42]
    for logits, p in zip(steps, expected, strict=True):
        ada.after_d_step(ctx_for(None, real_logits=torch.tensor(logits)))
        assert float(ada.p) == pytest.approx(p, abs=1e-12)
    assert ada.report() == {"p": pytest.approx(0.42)}
    torch.save(ada.state_dict(), tmp_path / "ada.pt")  # mid-interval: the sign sum travels too
    restored = ADA(target=0.6, speed_kimg=0.1, interval=2)
    restored.load_state_dict(torch.load(tmp_path / "ada.pt", weights_only=True))
    for a in (ada, restored):
        a.after_d_step(ctx_for(None, real_logits=torch.tensor([1.0, 1, 1, 1])))
    assert float(ada.p) == float(restored.p) == pytest.approx(0.5)  # r_t = 1 > 0.6
    x = torch.rand(8, 3, 8, 8)
    torch.manual_seed(3)
    first = ada.augment(x, None)
    torch.manual_seed(3)
    assert torch.equal(restored.augment(x, None), first)
    low = ADA(speed_kimg=0.1, interval=1)  # clamped at 0 and at 1
    low.after_d_step(ctx_for(None, real_logits=-torch.ones(4)))
    high = ADA(speed_kimg=0.001, interval=1, p=0.9)
    high.after_d_step(ctx_for(None, real_logits=torch.ones(4)))
    assert float(low.p) == 0.0 and float(high.p) == 1.0


def test_ada_p_is_in_every_evaluation_of_a_trained_run_and_its_checkpoint(tmp_path):
    # 0.08 kimg: each adjustment (2 D steps of 8 images) moves p by 0.2.
    result = check_stabilizer(ADA, {"speed_kimg": 0.08, "interval": 2}, "image", tmp_path)
    values = [e["stabilizers"]["under_test.p"] for e in result.evals]
    assert len(values) == 2 and all(0.0 <= v <= 1.0 and round(v / 0.2, 9).is_integer() for v in values)
    final = artifacts.load_checkpoint(tmp_path / "straight" / artifacts.CHECKPOINT)
    assert final["result"]["evals"][-1]["stabilizers"] == {"under_test.p": values[-1]}


def test_ada_rejects_bad_settings_and_non_images():
    for bad, match in [({"policy": "blur"}, "unknown policy"), ({"target": 2.0}, "target"),
                       ({"speed_kimg": 0.0}, "speed_kimg"), ({"interval": 0}, "interval"), ({"p": 1.5}, "probability")]:
        with pytest.raises(ValueError, match=match):
            ADA(**bad)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ADA().augment(torch.zeros(4, 2), None)
    with pytest.raises(ValueError, match="square"):
        ADA("rotate90").augment(torch.zeros(2, 3, 4, 6), None)
    with pytest.raises(ValueError, match="RGB"):
        ADA("hue").augment(torch.zeros(2, 2, 4, 4), None)


# -- LeCam, consistency, noise, label smoothing ---------------------------------------------------


def test_lecam_value_anchor_updates_and_state(registry, tmp_path):
    lecam = build(registry, "lecam", weight=0.5, decay=0.9)
    real, fake = np.array([1.0, 2.0, 4.0]), np.array([-1.0, 0.5, -3.0])
    ctx = ctx_for(None, real_logits=torch.tensor(real), fake_logits=torch.tensor(fake))
    # Before any update the anchors are the current means.
    expected = 0.5 * (np.mean((real - fake.mean()) ** 2) + np.mean((fake - real.mean()) ** 2))
    assert lecam.d_penalty(ctx).item() == pytest.approx(expected)
    lecam.after_d_step(ctx)
    ctx2 = ctx_for(None, real_logits=torch.tensor(real + 1), fake_logits=torch.tensor(fake - 1))
    lecam.after_d_step(ctx2)
    anchor_r, anchor_f = 0.9 * real.mean() + 0.1 * (real + 1).mean(), 0.9 * fake.mean() + 0.1 * (fake - 1).mean()
    expected = 0.5 * (np.mean((real + 1 - anchor_f) ** 2) + np.mean((fake - 1 - anchor_r) ** 2))
    assert lecam.d_penalty(ctx2).item() == pytest.approx(expected)
    torch.save(lecam.state_dict(), tmp_path / "lecam.pt")
    restored = build(registry, "lecam", weight=0.5, decay=0.9)
    restored.load_state_dict(torch.load(tmp_path / "lecam.pt", weights_only=True))
    assert restored.d_penalty(ctx2).item() == pytest.approx(expected)


def test_consistency_is_zero_for_an_invariant_d_and_trains_d_otherwise(registry):
    torch.manual_seed(0)
    images = torch.zeros(8, 3, 16, 16)
    images[:, :, 4:12, 4:12] = torch.rand(8, 3, 8, 8)  # content stays inside under 2-pixel shifts

    def ctx_with(disc):
        return ctx_for(disc, real=images, fake=images.flip(1), real_logits=disc(images),
                       fake_logits=disc(images.flip(1)))

    bcr = build(registry, "consistency")
    def total(x):  # invariant to flips and to shifts that keep all content inside the image
        return x.sum(dim=(1, 2, 3))

    assert bcr.d_penalty(ctx_with(total)).item() == pytest.approx(0.0, abs=1e-5)
    disc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 1))
    penalty = bcr.d_penalty(ctx_with(disc))
    penalty.backward()
    assert penalty.item() > 0 and disc[1].weight.grad.abs().sum() > 0


def test_instance_noise_anneals_linearly_to_zero(registry):
    noise = build(registry, "instance_noise", sigma0=0.2)
    assert [noise.sigma(p) for p in (0.0, 0.25, 1.0, 1.5)] == pytest.approx([0.2, 0.15, 0.0, 0.0])
    x = torch.zeros(200_000)
    torch.manual_seed(0)
    assert noise.augment(x, ctx_for(None, progress=0.5)).std().item() == pytest.approx(0.1, rel=0.02)
    assert torch.equal(noise.augment(x, ctx_for(None, progress=1.0)), x)


def test_label_smoothing_gives_the_smoothed_cross_entropy(registry):
    kwargs = build(registry, "label_smoothing").d_loss_kwargs()
    assert kwargs == {"real_target": 0.9}
    real, fake = np.array([0.5, -1.0, 2.0]), np.array([0.0, 1.0, -2.0])

    def log_sig(x):
        return -np.log1p(np.exp(-x))

    expected = np.mean(-0.9 * log_sig(real) - 0.1 * log_sig(-real)) + np.mean(-log_sig(-fake))
    loss = registry.get("loss", "ns").build()
    assert loss.d_loss(torch.tensor(real), torch.tensor(fake), **kwargs).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="real_target"):
        build(registry, "label_smoothing", real_target=0.0)


# -- every stabilizer through the harness's own loop ----------------------------------------------


@pytest.fixture(scope="module")
def zoo():
    plugins = {"testzoo": testzoo, "stabilizers": stabilizers_plugin, "losses": losses_plugin}
    with plugin_registry(plugins, load_entry_points=False) as reg:
        yield reg


@pytest.mark.parametrize("modality", ["image", "vector"])
def test_every_stabilizer_trains_and_resumes_exactly_in_the_harness(registry, modality, tmp_path):
    """Each stabilizer in ganzoo.run.train: every hook point it has, its state through a real checkpoint, exact
    resume."""
    trained = []
    for component in registry.list("stabilizer"):
        if modality not in component.modalities:
            continue
        # pl_reg differentiates a style-based G's images with respect to its w: the kit's linear G has no w
        # (tests/test_stylegan2.py trains it with stylegan2 and checks its resume).
        if "generator" in component.requires:
            continue
        # acgan trains an AC-GAN D's class head: only a class-conditional pair has one (and labels).
        needs_labels = component.requires.get("discriminator") == "auxiliary_classifier"
        result = check_stabilizer(component.factory, component.hparams(), modality, tmp_path / component.name,
                                  conditional=needs_labels)
        assert result.g_steps == 4 and len(result.evals) == 2, component.name
        trained.append(component.name)
    assert len(trained) == (16 if modality == "image" else 13)


# -- PacGAN packing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3,), (2, 4, 4)])
def test_pac_feeds_d_the_concatenation_of_m_consecutive_samples(registry, shape):
    """D(pack) must equal D applied to the members concatenated by hand (channels for images)."""
    pac = build(registry, "pac", m=3)
    spec = ganzoo.DataSpec("vector" if len(shape) == 1 else "image", shape)
    wide = pac.discriminator_spec(spec)
    assert wide.shape == (3 * shape[0], *shape[1:])
    w = torch.randn(int(np.prod(wide.shape)), dtype=torch.float64)
    d = pac.wrap_discriminator(Affine(w))
    x = torch.randn(6, *shape, dtype=torch.float64)
    by_hand = torch.stack([torch.cat([x[i], x[i + 1], x[i + 2]]).flatten() @ w + 0.5 for i in (0, 3)])
    torch.testing.assert_close(d(x), by_hand)
    with pytest.raises(ValueError, match="multiple of the pack size m=3"):
        d(x[:4])
    with pytest.raises(ValueError, match="m .samples per pack. must be an integer >= 1"):
        build(registry, "pac", m=0)


def test_pac_in_training_gives_one_logit_per_pack(zoo):
    spec = testzoo.tiny_spec("blobs", stack=(ComponentRef("pac", {"m": 2}),), loss="ns", g_steps=1,
                             eval_every_g_steps=1)
    models = ganzoo.run.build.build_models(spec, zoo, torch.device("cpu"))
    batch = spec.budget.batch_size
    assert models.discriminator(models.dataset.sample(batch, torch.Generator().manual_seed(0))).numel() == batch // 2


# -- hook points between backward and the optimiser step --------------------------------------------


class ClipToZero(ganzoo.Stabilizer):
    """Clips the gradients of D (or G) to norm 0 before each step: Adam then never moves those weights."""

    def __init__(self, target="discriminator"):
        self.target, self.calls = target, 0

    def _clip(self, module):
        assert all(p.grad is not None for p in module.parameters() if p.requires_grad)  # after backward
        torch.nn.utils.clip_grad_norm_(module.parameters(), 0.0)
        self.calls += 1

    def before_d_step(self, ctx):
        if self.target == "discriminator":
            self._clip(ctx.discriminator)

    def before_g_step(self, ctx):
        if self.target == "generator":
            self._clip(ctx.generator)


@pytest.mark.parametrize("target", ["discriminator", "generator"])
def test_before_step_hooks_see_the_gradients_and_act_before_the_optimiser(zoo, target):
    from ganzoo.run.train import OneRun, build_run, d_step, g_step

    spec = testzoo.tiny_spec("blobs", loss="ns", g_steps=3, eval_every_g_steps=3)
    r = build_run(spec, Path("unused"), torch.device("cpu"), zoo)
    clip = ClipToZero(target)
    r.models.stabilizers.append(clip)
    before = {name: [p.detach().clone() for p in getattr(r.models, name).parameters()]
              for name in ("generator", "discriminator")}
    one = OneRun(r)
    for _ in range(3):
        d_step(one, spec.budget.batch_size)
        g_step(one, spec.budget.batch_size)
    assert clip.calls == 3
    for name, old in before.items():
        moved = any(not torch.equal(a, b) for a, b in zip(old, getattr(r.models, name).parameters(), strict=True))
        assert moved == (name != target), name  # the clipped network alone stays where it started
