"""StyleGAN2-lite and its regularisers against per-sample definitions written out here, and through the harness.

The shared contracts (shapes, gradients, spectral norm, declared sides) are checked for every architecture in
tests/test_architectures.py; this file checks what is StyleGAN2's own: the modulated convolution, the minibatch
standard deviation, equalised learning rate, lazy R1 and path-length regularisation.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import ganzoo
from ganzoo import DataSpec, StepContext
from ganzoo.core.registry import get_registry
from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec
from ganzoo.testing import check_resume
from ganzoo_plugins.architectures import stylegan2
from ganzoo_plugins.stabilizers.path_length import PathLengthRegularizer, path_lengths
from ganzoo_plugins.stabilizers.penalties import LazyR1

DIGITS = DataSpec("image", (1, 8, 8))


def build(kind: str, spec: DataSpec = DIGITS, **hparams):
    return get_registry().get(kind, "stylegan2").build(spec, **hparams)


# -- the modulated convolution ----------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,demodulate", [(3, True), (1, False)], ids=["conv3x3", "torgb1x1"])
def test_grouped_modulated_conv_equals_its_per_sample_definition(kernel, demodulate):
    torch.manual_seed(0)
    batch, in_ch, out_ch = 3, 5, 4
    x, weight = torch.randn(batch, in_ch, 6, 6), torch.randn(out_ch, in_ch, kernel, kernel)
    styles = torch.rand(batch, in_ch) + 0.5
    grouped = stylegan2.modulated_conv2d(x, weight, styles, demodulate=demodulate)
    for b in range(batch):
        w = weight.clone()
        for i in range(in_ch):  # modulate: scale input channel i of every filter by sample b's style i
            w[:, i] = w[:, i] * styles[b, i]
        if demodulate:
            for o in range(out_ch):  # demodulate: each output filter to unit L2 norm (eps 1e-8)
                w[o] = w[o] / math.sqrt(float((w[o] ** 2).sum()) + 1e-8)
        by_hand = F.conv2d(x[b:b + 1], w, padding=kernel // 2)
        torch.testing.assert_close(grouped[b:b + 1], by_hand, atol=1e-5, rtol=1e-5)


def test_demodulation_gives_unit_variance_outputs_for_unit_variance_inputs():
    """What demodulation is for: whatever the style's scale, i.i.d. N(0, 1) inputs give outputs of std ~1."""
    torch.manual_seed(0)
    x = torch.randn(2, 64, 16, 16)
    out = stylegan2.modulated_conv2d(x, torch.randn(32, 64, 3, 3), torch.full((2, 64), 7.0))
    assert abs(float(out[:, :, 1:-1, 1:-1].std()) - 1.0) < 0.05  # borders see zero padding


# -- equalised learning rate -------------------------------------------------------------------------------


def test_equalised_layers_store_unit_normal_weights_and_scale_them_by_hes_constant():
    torch.manual_seed(0)
    conv = stylegan2.EqualConv2d(32, 16, 3)
    assert abs(float(conv.weight.detach().std()) - 1.0) < 0.05 and float(conv.bias.detach().abs().sum()) == 0.0
    fan_in = 32 * 3 * 3
    he_std = math.sqrt(2.0 / fan_in)  # He et al. 2015; StyleGAN divides out leaky ReLU's sqrt(2) gain
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 32, 5, 5)
    expected = F.conv2d(x, conv.weight * he_std / math.sqrt(2.0), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)

    mapping_layer = stylegan2.EqualLinear(64, 8, lr_mul=0.01)
    # Stored at N(0, 1) / lr_mul, so that weight * lr_mul is N(0, 1): Adam's steps on the stored weight move the
    # layer 100 times less than on an lr_mul=1 layer.
    assert abs(float(mapping_layer.weight.detach().std()) - 100.0) < 5.0
    with torch.no_grad():
        mapping_layer.bias.normal_()
    v = torch.randn(3, 64)
    expected = v @ (mapping_layer.weight * 0.01 * math.sqrt(2.0 / 64) / math.sqrt(2.0)).T + 0.01 * mapping_layer.bias
    torch.testing.assert_close(mapping_layer(v), expected)


def test_the_mapping_normalises_z_and_uses_lr_multiplier_001_by_default():
    g = build("generator")
    assert all(layer.lr_mul == 0.01 for layer in g.mapping_network.layers)
    assert len(g.mapping_network.layers) == 2
    z = torch.randn(2, g.latent_dim)
    torch.testing.assert_close(g.mapping(z), g.mapping(5.0 * z))  # z's scale is normalised away
    assert g.mapping(z).shape == (2, g.num_ws, g.w_dim)


# -- minibatch standard deviation ---------------------------------------------------------------------------


def test_minibatch_stddev_matches_a_hand_computation():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2)
    out = stylegan2.minibatch_stddev(x, group=4)
    assert out.shape == (8, 4, 2, 2)
    torch.testing.assert_close(out[:, :3], x)
    data = x.double().numpy()
    for n in range(8):
        members = [m for m in range(8) if m % 2 == n % 2]  # 8 samples, groups of 4: n, n+2, n+4, n+6
        std = np.sqrt(data[members].var(axis=0) + 1e-8)  # population variance over the group, per feature
        np.testing.assert_allclose(out[n, 3].numpy(), np.full((2, 2), std.mean()), rtol=1e-5)


def _coupled_samples(d: nn.Module, batch: int = 8) -> set[int]:
    """The samples whose input moves the first sample's logit."""
    x = (torch.rand(batch, *DIGITS.shape) * 2 - 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x)[0], x)
    return {n for n in range(batch) if grad[n].abs().sum() > 0}


def test_minibatch_stddev_is_opt_in_and_couples_only_a_group():
    assert _coupled_samples(build("discriminator")) == {0}  # the default keeps the per-sample contract
    assert _coupled_samples(build("discriminator", mbstd_group=4)) == {0, 2, 4, 6}
    with pytest.raises(ValueError, match="not a multiple of mbstd_group"):
        build("discriminator", mbstd_group=4)(torch.zeros(6, *DIGITS.shape))
    with pytest.raises(ValueError, match="mbstd_group must be 0"):
        build("discriminator", mbstd_group=1)


# -- generator structure -----------------------------------------------------------------------------------


@pytest.mark.parametrize("side,start", [(8, 4), (28, 7), (32, 4)])
def test_the_generator_starts_from_a_learned_constant_and_sums_a_torgb_per_side(side, start):
    spec = DataSpec("image", (3, side, side))
    g = build("generator", spec, ch=8, max_ch=16)
    assert g.const.shape[-2:] == (start, start)
    assert len(g.to_rgbs) == int(math.log2(side // start)) + 1
    assert g.num_ws == len(g.convs) + len(g.to_rgbs)
    assert build("discriminator", spec, ch=8, max_ch=16)(torch.zeros(2, *spec.shape)).shape == (2,)


def test_noise_strength_controls_the_per_pixel_noise():
    torch.manual_seed(0)
    g = build("generator").train()
    z = torch.randn(2, g.latent_dim)
    torch.testing.assert_close(g(z), g(z))  # strengths start at 0: no noise yet
    with torch.no_grad():
        g.convs[-1].noise_strength.fill_(1.0)
    assert not torch.allclose(g(z), g(z))  # training: fresh noise every call
    # Evaluation: the layer's fixed noise map, so G is a function of z (a reloaded checkpoint gives its samples).
    g.eval()
    torch.testing.assert_close(g(z), g(z))
    with torch.no_grad():
        g.convs[-1].noise_const.zero_()
        g.convs[-1].noise_strength.fill_(0.0)
        silent = g(z)
        g.convs[-1].noise_strength.fill_(1.0)
    torch.testing.assert_close(g(z), silent)  # eval noise is exactly the stored map (zeroed here)


def test_style_mixing_takes_the_last_layers_from_a_second_latent():
    torch.manual_seed(0)
    g = build("generator", mixing_prob=1.0)
    z = torch.randn(3, g.latent_dim)
    ws = g.mapping(z)
    torch.manual_seed(1)
    mixed = g.mix_styles(ws, z)
    torch.manual_seed(1)
    torch.rand(())  # the draw that decides to mix
    other = g.mapping(torch.randn_like(z))
    cutoff = int(torch.randint(1, g.num_ws, ()))
    torch.testing.assert_close(mixed[:, :cutoff], ws[:, :cutoff])
    torch.testing.assert_close(mixed[:, cutoff:], other[:, cutoff:])
    with pytest.raises(ValueError, match="mixing_prob"):
        build("generator", mixing_prob=1.5)


def test_unsupported_sides_are_refused_with_the_supported_list():
    with pytest.raises(ValueError, match=r"supports square images of side \[8, 16, 28, 32, 64\]; got 24x24"):
        build("generator", DataSpec("image", (1, 24, 24)))


# -- lazy R1 -----------------------------------------------------------------------------------------------


class SmallD(nn.Module):
    """A non-linear D without batch statistics: R1's input gradient differs per sample."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 64, 1)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).flatten(1)).squeeze(1)


def test_lazy_r1_is_gamma_k_times_r1_on_every_kth_d_step_and_nothing_between():
    torch.manual_seed(0)
    d, real = SmallD(), torch.randn(4, 1, 8, 8)
    gamma, every = 3.0, 4
    # R1 written out: gamma / 2 * mean over samples of ||d D(x_i) / d x_i||^2, one sample at a time.
    norms = []
    for i in range(4):
        xi = real[i:i + 1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(d(xi).sum(), xi)
        norms.append(float(grad.pow(2).sum()))
    r1 = gamma / 2 * sum(norms) / 4
    lazy = LazyR1(gamma, every)
    ctx = StepContext(generator=nn.Identity(), discriminator=d, loss=None, real=real)
    penalties = [lazy.d_penalty(ctx) for _ in range(9)]
    for step, penalty in enumerate(penalties):
        if step % every == 0:
            assert penalty is not None and penalty.requires_grad
            assert float(penalty.detach()) == pytest.approx(every * r1, rel=1e-5)
        else:
            assert penalty is None, step
    assert lazy.state_dict() == {"d_steps": 9}
    resumed = LazyR1(gamma, every)
    resumed.load_state_dict(lazy.state_dict())
    assert [resumed.d_penalty(ctx) is None for _ in range(4)] == [True, True, True, False]  # D steps 9 to 12
    with pytest.raises(ValueError, match="every"):
        LazyR1(10.0, 0)


# -- path-length regularisation ----------------------------------------------------------------------------


def test_path_lengths_of_a_linear_synthesis_are_its_closed_form():
    """images = A ws (flattened): J^T y = A^T y, so each length is sqrt(mean over layers of |(A^T y)_layer|^2)."""
    torch.manual_seed(0)
    num_ws, w_dim, shape = 3, 4, (1, 2, 2)
    a = torch.randn(4, num_ws * w_dim, dtype=torch.float64)

    def synthesis(ws):
        return (ws.flatten(1) @ a.T).view(-1, *shape)

    ws = torch.randn(5, num_ws, w_dim, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, *shape, dtype=torch.float64)
    lengths, _ = path_lengths(synthesis, ws, y)
    jty = (y.flatten(1) @ a).view(5, num_ws, w_dim)
    expected = torch.stack([jty[b].pow(2).sum(1).mean().sqrt() for b in range(5)])
    torch.testing.assert_close(lengths, expected)


def test_pl_reg_penalises_deviation_from_the_moving_average_every_kth_g_step():
    torch.manual_seed(0)
    g = build("generator", ch=8, max_ch=16, latent_dim=8, w_dim=8, mapping_layers=2)
    pl = PathLengthRegularizer(weight=2.0, decay=0.5, every=2, batch_shrink=2)
    assert pl.wrap_generator(g) is g
    ctx = StepContext(generator=g, discriminator=nn.Identity(), loss=None, fake=torch.zeros(8, *DIGITS.shape))
    torch.manual_seed(5)
    penalty = pl.g_penalty(ctx)
    # The same draws by hand: 4 latents (8 / batch_shrink), then the directions y.
    torch.manual_seed(5)
    z = torch.randn(4, 8)
    lengths, _ = path_lengths(g.synthesis, g.mapping(z))
    mean = 0.5 * float(lengths.mean())  # the average moves halfway (decay 0.5) from 0
    assert float(pl.mean_length) == pytest.approx(mean, rel=1e-6)
    assert float(penalty) == pytest.approx(2.0 * 2 * float((lengths - mean).pow(2).mean()), rel=1e-5)
    penalty.backward()
    assert g.mapping_network.layers[0].weight.grad is not None  # it trains the mapping too, through w
    assert pl.g_penalty(ctx) is None and pl.g_penalty(ctx) is not None
    assert pl.state_dict() == {"g_steps": 3, "mean_length": pytest.approx(float(pl.mean_length))}


def test_pl_reg_refuses_a_generator_without_w_and_the_grid_never_pairs_them():
    dcgan = get_registry().get("generator", "dcgan").build(DIGITS)
    with pytest.raises(ValueError, match="needs a style-based generator with mapping"):
        PathLengthRegularizer().wrap_generator(dcgan)
    component = get_registry().get("stabilizer", "pl_reg")
    assert component.requires == {"generator": "style_based"}
    assert "style_based" in get_registry().get("generator", "stylegan2").tags


# -- through the harness -----------------------------------------------------------------------------------


def _digits_spec(stack: tuple[ComponentRef, ...]) -> RunSpec:
    small = {"ch": 8, "max_ch": 16}
    return RunSpec(
        dataset=ComponentRef("digits", {}),
        generator=ComponentRef("stylegan2", {**small, "latent_dim": 16, "w_dim": 16, "mapping_layers": 2}),
        discriminator=ComponentRef("stylegan2", {**small, "mbstd_group": 4}),
        loss=ComponentRef("ns", {}),
        stack_name="+".join(ref.name for ref in stack) or "none",
        stack=stack,
        seed=0,
        budget=Budget(batch_size=8, unit="g_steps", g_steps=4, eval_every_g_steps=2),
        optim=Optim(),
        protocol=ganzoo.EvalProtocol(n_fake=64, n_real=64, metrics=("fid",), batch_size=64),
    )


@pytest.mark.filterwarnings("ignore:64 samples of 64-d features")  # a tiny protocol: FID only has to be finite
def test_stylegan2_with_lazy_r1_and_path_length_resumes_exactly(tmp_path):
    """The pair, lazy R1 and pl_reg train in ganzoo.run.train and their state survives a checkpoint (both
    regularisers run on the first step and then every 2nd, so the resumed half runs them too)."""
    stack = (ComponentRef("r1_lazy", {"gamma": 1.0, "every": 2}), ComponentRef("pl_reg", {"every": 2}))
    result = check_resume(_digits_spec(stack), get_registry(), tmp_path)
    assert result.g_steps == 4 and all(math.isfinite(e["metrics"]["fid"]) for e in result.evals)


def test_pl_reg_run_with_another_generator_fails_with_the_reason(tmp_path):
    from ganzoo.run.train import run

    spec = replace(_digits_spec((ComponentRef("pl_reg", {}),)), generator=ComponentRef("dcgan", {"ch": 8}))
    result = run(spec, tmp_path, "cpu", get_registry())
    assert result.status == "failed" and "needs a style-based generator" in result.error
