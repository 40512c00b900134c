"""R3GAN-lite (plugins/architectures/r3gan.py): what the paper's backbone promises beyond the shared contract.

The shared contracts (shapes, range, per-sample logits, double backward, gradients everywhere) run over every
registered architecture in tests/test_architectures.py, and the vectorised group check in tests/test_vectorized.py;
here: the residual blocks start as the identity, the grouped convs have the parameter count of their groups, the
initial weights have the Fixup-scaled variance, the resamplers are the [1, 3, 3, 1] filter, no normalisation
anywhere, an interrupted run resumes exactly, and spectral norm is refused for a reason that is real.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganzoo
from ganzoo import DataSpec
from ganzoo.core.registry import get_registry
from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec
from ganzoo.testing import check_resume, perturb
from ganzoo_plugins import architectures
from ganzoo_plugins.architectures.r3gan import InvertedBottleneck, downsample, upsample

REGISTRY = ganzoo.build_registry(load_entry_points=False, extra_plugins={"architectures": architectures})
GENERATOR = REGISTRY.get("generator", "r3gan")
DISCRIMINATOR = REGISTRY.get("discriminator", "r3gan")
DIGITS = DataSpec("image", (1, 8, 8))
RGB32 = DataSpec("image", (3, 32, 32))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _bottlenecks(module: nn.Module) -> list[InvertedBottleneck]:
    return [m for m in module.modules() if isinstance(m, InvertedBottleneck)]


def test_every_residual_block_is_the_identity_at_initialisation():
    torch.manual_seed(0)
    for module in (GENERATOR.build(RGB32, blocks=2), DISCRIMINATOR.build(RGB32, blocks=2)):
        blocks = _bottlenecks(module)
        assert len(blocks) == 2 * 4  # 2 blocks in each of the 4 stages 4, 8, 16, 32
        for block in blocks:
            x = torch.randn(2, block.expand.in_channels, 4, 4)
            assert torch.equal(block(x), x)
            assert not torch.equal(perturb(copy.deepcopy(block))(x), x)  # live once its last conv moves


def test_generator_at_initialisation_is_its_basis_resampled_to_the_image():
    """With every block the identity, G(z) = tanh(to_image(up(up(basis * W z)))): computed here by hand, with
    the bilinear upsampling written as its 0.25 / 0.75 weights (edges clamped) in numpy."""
    torch.manual_seed(0)
    g = GENERATOR.build(DataSpec("image", (3, 16, 16)), ch=16, latent_dim=8)
    z = torch.randn(2, 8)
    basis, w = g.basis.pattern.detach().numpy(), g.basis.modulation.weight.detach().numpy()
    h = basis[None] * (z.numpy() @ w.T)[:, :, None, None]  # (2, 16, 4, 4)
    for _ in range(2):
        h = _bilinear_up(_bilinear_up(h, axis=2), axis=3)
    to_image = g.to_image.weight.detach().numpy()[:, :, 0, 0]  # (3, 16)
    expected = np.tanh(np.einsum("oc,bchw->bohw", to_image, h))
    np.testing.assert_allclose(g(z).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def _bilinear_up(x: np.ndarray, axis: int) -> np.ndarray:
    """Half-pixel bilinear 2x upsampling along ``axis``: out[2i] = x[i-1]/4 + 3x[i]/4, out[2i+1] = 3x[i]/4 +
    x[i+1]/4, with x clamped at its ends."""
    x = np.moveaxis(x, axis, -1)
    left = np.concatenate([x[..., :1], x[..., :-1]], axis=-1)
    right = np.concatenate([x[..., 1:], x[..., -1:]], axis=-1)
    out = np.empty(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    out[..., 0::2] = 0.25 * left + 0.75 * x
    out[..., 1::2] = 0.75 * x + 0.25 * right
    return np.moveaxis(out, -1, axis)


def test_resampling_is_the_1331_low_pass_filter():
    x = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    filt = np.array([1.0, 3.0, 3.0, 1.0]) / 8
    down = downsample(x).numpy()
    rows = np.arange(1, 5)  # the output pixels whose 4-tap window lies inside the image (2i - 1 .. 2i + 2)
    for i in rows:
        for j in rows:
            window = x[0, :, 2 * i - 1:2 * i + 3, 2 * j - 1:2 * j + 3].numpy()
            np.testing.assert_allclose(down[0, :, i, j], np.einsum("a,b,cab->c", filt, filt, window), rtol=1e-12)
    np.testing.assert_allclose(upsample(x).numpy(), _bilinear_up(_bilinear_up(x.numpy(), 2), 3), rtol=1e-12)


def test_grouped_convs_have_the_parameter_count_of_their_groups():
    d = DISCRIMINATOR.build(DIGITS, ch=32, expansion=2, group_size=16)
    block = _bottlenecks(d)[0]
    # 32 channels widened to 64 in 4 groups of 16: each output channel sees its group's 16 inputs over 3x3.
    assert block.spatial.groups == 4
    assert block.spatial.weight.numel() == 64 * 16 * 9 and block.spatial.bias.numel() == 64
    assert sum(p.numel() for p in block.parameters()) == (32 * 64 + 64) + (64 * 16 * 9 + 64) + 64 * 32
    # Grouping is real: an output channel of group 0 does not depend on the inputs of group 1.
    x = torch.randn(1, 64, 8, 8, requires_grad=True)
    (grad,) = torch.autograd.grad(block.spatial(x)[0, 0].sum(), x)
    assert grad[0, :16].abs().sum() > 0 and grad[0, 16:].abs().sum() == 0
    # Fewer channels than a group: one group, the dense conv; a remainder that splits no group is refused.
    assert _bottlenecks(DISCRIMINATOR.build(DIGITS, ch=4))[0].spatial.groups == 1
    with pytest.raises(ValueError, match="group_size=16"):
        DISCRIMINATOR.build(DIGITS, ch=12)


def test_initial_weights_have_the_fixup_scaled_variance():
    """Branch convs start N(0, gain^2 L^(-1/2) / fan_in), gain = sqrt(2 / (1 + 0.2^2)), L = 12 blocks here; the
    other convs N(0, 1 / fan_in). Over ~10^5 values a sample standard deviation is within 0.3% of
    the truth (1 / sqrt(2n)): 3% is loose, while L^(-1/2) in place of L^(-1/4) would be off by 46%."""
    torch.manual_seed(0)
    g = GENERATOR.build(RGB32, ch=64, blocks=3)
    blocks = _bottlenecks(g)
    assert len(blocks) == 12
    gain = math.sqrt(2 / (1 + 0.2**2)) * 12 ** -0.25
    expand = torch.cat([b.expand.weight.flatten() for b in blocks])  # fan_in 64, 12 * 128 * 64 values
    spatial = torch.cat([b.spatial.weight.flatten() for b in blocks])  # fan_in 16 * 9, 12 * 128 * 144 values
    assert expand.std().item() == pytest.approx(gain / math.sqrt(64), rel=0.03)
    assert spatial.std().item() == pytest.approx(gain / math.sqrt(16 * 9), rel=0.03)
    assert abs(expand.mean().item()) < 0.01 * gain / 8
    assert all(b.project.weight.abs().sum() == 0 for b in blocks)
    assert all(b.expand.bias.abs().sum() == 0 and b.spatial.bias.abs().sum() == 0 for b in blocks)
    # Outside the branches: N(0, 1 / fan_in) (the z projection: fan_in 64, 64 * 64 values; the basis N(0, 1)).
    assert g.basis.modulation.weight.std().item() == pytest.approx(1 / 8, rel=0.05)
    assert g.basis.pattern.std().item() == pytest.approx(1.0, rel=0.1)


def test_no_normalisation_layer_anywhere():
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
    for module in (GENERATOR.build(RGB32), DISCRIMINATOR.build(RGB32)):
        found = [type(m).__name__ for m in module.modules() if isinstance(m, norms)]
        assert not found
        assert not any(hasattr(m, "parametrizations") for m in module.modules())


def test_widths_halve_above_32px_with_a_1x1_transition():
    side = 128
    g = GENERATOR.build(DataSpec("image", (3, side, side)), ch=32)
    d = DISCRIMINATOR.build(DataSpec("image", (3, side, side)), ch=32)
    widths = [stage[-1].expand.in_channels for stage in g.stages]  # 4, 8, 16, 32, 64, 128
    assert widths == [32, 32, 32, 32, 16, 8]
    transitions = [stage[0].conv for stage in g.stages[1:]]
    assert [t is not None for t in transitions] == [False, False, False, True, True]
    assert (transitions[3].in_channels, transitions[3].out_channels) == (32, 16)
    assert d.from_image.out_channels == 8 and d.basis.depthwise.groups == 32
    assert d(g(torch.randn(2, g.latent_dim))).shape == (2,)


def test_bad_hyperparameters_are_named():
    for bad in ({"ch": 0}, {"blocks": 0}, {"expansion": 1.5}, {"group_size": -1}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be an integer >= 1"):
            DISCRIMINATOR.build(DIGITS, **bad)
    with pytest.raises(ValueError, match="latent_dim"):
        GENERATOR.build(DIGITS, latent_dim=0)
    with pytest.raises(ValueError, match=r"supports square images of side \[8, 16, 32, 64, 128\]; got 28x28"):
        GENERATOR.build(DataSpec("image", (1, 28, 28)))


def test_spectral_norm_is_undefined_at_init_so_the_discriminator_excludes_it():
    d = DISCRIMINATOR.build(DIGITS)
    for layer in [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
        spectral_norm(layer)
    assert not torch.isfinite(d(torch.rand(2, *DIGITS.shape))).all()  # 0 / 0 in every zero-initialised conv
    assert "weight_normalisation" in get_registry().get("stabilizer", "spectral_norm").tags
    assert DISCRIMINATOR.excludes == {"stabilizer": "weight_normalisation"}


def test_an_interrupted_run_resumes_exactly(tmp_path):
    spec = RunSpec(dataset=ComponentRef("digits", {}),
                   generator=ComponentRef("r3gan", {"ch": 8, "blocks": 1, "latent_dim": 16}),
                   discriminator=ComponentRef("r3gan", {"ch": 8, "blocks": 1}),
                   loss=ComponentRef("ns", {}), stack_name="r1", stack=(ComponentRef("r1", {"gamma": 1.0}),),
                   seed=0, budget=Budget(batch_size=8, unit="g_steps", g_steps=4, eval_every_g_steps=2),
                   optim=Optim(), protocol=ganzoo.EvalProtocol(n_fake=64, n_real=64, metrics=("fid",), batch_size=64))
    result = check_resume(spec, get_registry(), tmp_path)
    assert [e["g_steps"] for e in result.evals] == [2, 4]
