"""Generators and discriminators, tested the way timm tests its models: parametrised over the registry.

The registry here is built from the architectures plugin alone (registered in process), so these tests
do not depend on the other built-in plugins; ``test_entry_point_registers_the_same_components`` checks
that the installed entry point exposes the same set.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

import ganzoo
from ganzoo import DataSpec
from ganzoo.api.conditional import discriminate
from ganzoo.system.download import DownloadError
from ganzoo.testing import check_discriminator, check_generator, check_pair, perturb
from ganzoo_plugins import architectures

REGISTRY = ganzoo.build_registry(load_entry_points=False, extra_plugins={"architectures": architectures})
VECTOR_SPEC = DataSpec("vector", (2,))
SPECS = [VECTOR_SPEC] + [DataSpec("image", (c, r, r)) for r in (8, 16, 32) for c in (1, 3)]
DIGITS_SPEC = DataSpec("image", (1, 8, 8))
BATCH = 4


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: one thread runs them faster than two and is not stalled by parallel jobs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _spec_id(spec: DataSpec) -> str:
    return "vec2" if spec.modality == "vector" else f"{spec.shape[0]}x{spec.shape[1]}"


def _cases(kind: str, spectral_norm: bool = False) -> list:
    """Every (component, spec) pair the component's metadata declares compatible (``spectral_norm``: and whose
    weights all have a spectral norm at initialisation)."""
    return [pytest.param(c, s, id=f"{c.name}-{_spec_id(s)}")
            for c in REGISTRY.list(kind) for s in SPECS if c.incompatibility(s) is None
            and not (spectral_norm and c.name in ZERO_INITIALISED)]


# Architectures with zero-initialised weights, whose spectral norm W / sigma(W) is 0 / 0 at initialisation (their
# D excludes the spectral_norm stabilizer; tests/test_r3gan.py shows the NaN).
ZERO_INITIALISED = {"r3gan"}


def _sample(spec: DataSpec, n: int = BATCH) -> torch.Tensor:
    return torch.rand(n, *spec.shape) * 2 - 1


def _conv_and_linear(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def test_registry_lists_the_expected_components():
    assert {c.name for c in REGISTRY.list("generator")} == {"mlp", "dcgan", "resnet_sngan", "biggan_lite", "r3gan",
                                                            "stylegan2", "cond_dcgan", "cond_resnet_sngan"}
    assert {c.name for c in REGISTRY.list("discriminator")} == {"mlp", "dcgan", "resnet_sngan", "biggan_lite", "r3gan",
                                                                "stylegan2", "timm", "projection_dcgan",
                                                                "projection_resnet_sngan", "acgan_dcgan"}
    assert not REGISTRY.errors


def test_entry_point_registers_the_same_components():
    registry = ganzoo.build_registry()
    for kind in ("generator", "discriminator"):
        ours = {c.name for c in REGISTRY.list(kind)}
        installed = {c.name for c in registry.list(kind) if c.plugin == "architectures"}
        assert installed == ours, f"reinstall ganzoo (pip install -e .) if the entry point is stale: {kind}"


@pytest.mark.parametrize("component", REGISTRY.list("generator") + REGISTRY.list("discriminator"),
                         ids=lambda c: f"{c.kind}-{c.name}")
def test_metadata_is_complete(component):
    assert len(component.description) <= 140  # one non-empty line is enforced by the registry
    assert re.search(r"(19|20)\d\d", component.reference), "the reference names a year"
    assert component.modalities in (("vector",), ("image",))
    if component.modalities == ("vector",):
        assert component.resolutions is None
    elif component.resolutions is not None:  # powers of two from 8 (from 4x4), or 28 (StyleGAN2-lite, from 7x7)
        assert all(r >= 8 and (r & (r - 1) == 0 or r == 28) for r in component.resolutions)


@pytest.mark.parametrize("component,spec", _cases("generator"))
def test_generator_contract(component, spec):
    torch.manual_seed(0)
    g = component.build(spec)
    assert g.latent_dim == component.defaults["latent_dim"]
    check_generator(g, spec, BATCH)


@pytest.mark.parametrize("component,spec", _cases("discriminator"))
def test_discriminator_contract(component, spec):
    torch.manual_seed(0)
    check_discriminator(component.build(spec), spec, BATCH)


@pytest.mark.parametrize("component,spec", _cases("generator", spectral_norm=True))
def test_generator_accepts_spectral_norm_on_every_layer(component, spec):
    g = component.build(spec)  # BigGAN normalises G too; the spectral_norm stabilizer can do the same
    for layer in _conv_and_linear(g):
        spectral_norm(layer)
    out = g(torch.randn(BATCH, g.latent_dim))
    assert out.shape == (BATCH, *spec.shape) and torch.isfinite(out).all()


@pytest.mark.parametrize("component,spec", _cases("discriminator", spectral_norm=True))
def test_discriminator_accepts_spectral_norm_on_every_layer(component, spec):
    d = component.build(spec)
    layers = _conv_and_linear(d)
    assert layers, "the spectral_norm stabilizer finds Conv/Linear layers to wrap"
    for layer in layers:
        spectral_norm(layer)
    x = _sample(spec).requires_grad_(True)
    logits = d(x)
    assert torch.isfinite(logits).all()
    (grad_x,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    grad_x.pow(2).sum().backward()  # R1 on a spectrally normalised D
    assert all(torch.isfinite(p.grad).all() for p in d.parameters() if p.grad is not None)


@pytest.mark.parametrize("component", [c for c in REGISTRY.list("generator") + REGISTRY.list("discriminator")
                                       if c.resolutions], ids=lambda c: f"{c.kind}-{c.name}")
def test_declared_resolutions_build_and_others_are_refused(component):
    classes = 10 if "conditional" in component.tags else None  # conditional components need labelled data
    for side in component.resolutions:
        spec = DataSpec("image", (3, side, side), num_classes=classes)
        module = component.build(spec)
        if side <= 64 and component.kind == "discriminator":
            assert discriminate(module, _sample(spec, 2), torch.arange(2)).numel() == 2
    with pytest.raises(ValueError, match="supports square images"):
        component.build(DataSpec("image", (3, 12, 12), num_classes=classes))
    with pytest.raises(ValueError, match="vector"):
        component.build(VECTOR_SPEC)


def _pairs():
    gens = [c for c in REGISTRY.list("generator")]
    discs = [c for c in REGISTRY.list("discriminator")]
    out = []
    for g, d in itertools.product(gens, discs):
        spec = VECTOR_SPEC if "vector" in g.modalities else DIGITS_SPEC
        if g.incompatibility(spec) is None and d.incompatibility(spec) is None:
            out.append(pytest.param(g, d, spec, id=f"{g.name}-{d.name}"))
    return out


@pytest.mark.parametrize("g_component,d_component,spec", _pairs())
def test_pair_trains_a_few_steps(g_component, d_component, spec):
    torch.manual_seed(0)
    g, d = g_component.build(spec), d_component.build(spec)
    check_pair(g, d, spec)  # both contracts, and G learning through D
    opt_g = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
    before_g = [p.detach().clone() for p in g.parameters()]
    before_d = [p.detach().clone() for p in d.parameters()]
    real = _sample(spec, 16)
    for _ in range(2):
        fake = g(torch.randn(16, g.latent_dim))
        # Non-saturating GAN loss written out: D maximises log D(x) + log(1 - D(G(z))), G maximises log D(G(z)).
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-d(fake)).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        assert math.isfinite(d_loss.item()) and math.isfinite(g_loss.item())
    assert all(not torch.equal(a, b) for a, b in zip(before_g, g.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, d.parameters(), strict=True))


# -- what each architecture promises beyond the shared contract ------------------------------------------


def _linear_shapes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_mlp_defaults_are_pacgans_2d_setting():
    g = REGISTRY.get("generator", "mlp").build(VECTOR_SPEC)
    d = REGISTRY.get("discriminator", "mlp").build(VECTOR_SPEC)
    # REFERENCE: G = 2 -> 400 -> 400 -> 400 -> 400 -> 2, hidden layers without bias + BatchNorm + ReLU.
    assert _linear_shapes(g) == [(2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == 4
    assert all(m.bias is None for m in g.modules() if isinstance(m, nn.Linear) and m.out_features == 400)
    # D = three maxout layers of 200 units with 5 pieces, then linear -> 1.
    assert _linear_shapes(d) == [(2, 1000), (200, 1000), (200, 1000), (200, 1)]


def test_maxout_takes_the_max_over_each_units_pieces():
    torch.manual_seed(0)
    layer = architectures.mlp.Maxout(3, 4, pieces=5)
    x = torch.randn(6, 3)
    affine = (x.numpy() @ layer.linear.weight.detach().numpy().T) + layer.linear.bias.detach().numpy()
    expected = affine.reshape(6, 4, 5).max(axis=2)
    torch.testing.assert_close(layer(x), torch.from_numpy(expected))


def test_init_schemes_follow_the_papers():
    spec = DataSpec("image", (3, 32, 32))
    dcgan_g = REGISTRY.get("generator", "dcgan").build(spec, ch=64)
    weight = dcgan_g.blocks[0].weight  # 512 x 256 x 4 x 4 values: the sample std is within a few percent
    assert abs(weight.std().item() - 0.02) < 0.001 and abs(weight.mean().item()) < 0.001
    biggan_d = REGISTRY.get("discriminator", "biggan_lite").build(spec)
    head = biggan_d.head.weight  # (1, C): an orthogonal row has unit norm
    torch.testing.assert_close(torch.linalg.vector_norm(head), torch.tensor(1.0))
    conv = biggan_d.blocks[1].conv2.weight.flatten(1)  # (C, 9C): orthonormal rows
    torch.testing.assert_close(conv @ conv.T, torch.eye(conv.shape[0]), atol=1e-5, rtol=0)
    resnet_d = REGISTRY.get("discriminator", "resnet_sngan").build(spec, ch=64)
    conv = resnet_d.blocks[1].conv1.weight  # Glorot uniform with gain sqrt(2): bound sqrt(2) * sqrt(6 / fan sum)
    bound = math.sqrt(2) * math.sqrt(6 / (64 * 9 + 64 * 9))
    assert conv.abs().max() <= bound and conv.abs().max() > 0.95 * bound


def test_resnet_matches_the_sngan_cifar_layout_at_32px():
    spec = DataSpec("image", (3, 32, 32))
    g = REGISTRY.get("generator", "resnet_sngan").build(spec, ch=256)
    d = REGISTRY.get("discriminator", "resnet_sngan").build(spec, ch=128)
    assert len(g.blocks) == 3 and g.project.out_features == 256 * 16
    downs = [block.down for block in d.blocks]
    assert downs == [True, True, False, False]  # 32 -> 16 -> 8, then two 8x8 blocks
    assert d.blocks(_sample(spec, 2)).shape == (2, 128, 8, 8)


def test_biggan_feeds_every_latent_chunk_to_the_generator():
    spec = DataSpec("image", (1, 16, 16))
    g = REGISTRY.get("generator", "biggan_lite").build(spec, latent_dim=12)
    g.eval()  # fixed BatchNorm statistics, so the output depends on z alone
    perturb(g)
    assert g.chunks == [4, 4, 4]
    z = torch.randn(2, 12)
    for chunk in range(3):
        moved = z.clone()
        moved[:, 4 * chunk: 4 * chunk + 4] += 1.0
        assert not torch.allclose(g(z), g(moved)), f"latent chunk {chunk} has no effect"
    with pytest.raises(ValueError, match="chunks"):
        REGISTRY.get("generator", "biggan_lite").build(spec, latent_dim=2)


def _attention_blocks(module: nn.Module) -> int:
    return sum(isinstance(m, architectures.layers.SelfAttention2d) for m in module.modules())


def test_biggan_attention_is_optional_and_starts_as_identity():
    spec = DataSpec("image", (3, 16, 16))
    count = _attention_blocks
    assert count(REGISTRY.get("generator", "biggan_lite").build(spec)) == 1
    assert count(REGISTRY.get("discriminator", "biggan_lite").build(spec)) == 1
    assert count(REGISTRY.get("generator", "biggan_lite").build(spec, attn_resolution=0)) == 0
    with pytest.raises(ValueError, match="attn_resolution"):
        REGISTRY.get("generator", "biggan_lite").build(spec, attn_resolution=12)
    attention = architectures.layers.SelfAttention2d(16)
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(attention(x), x)  # gamma starts at 0
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    assert not torch.allclose(attention(x), x)


def _mixes_samples(d: nn.Module, spec: DataSpec) -> bool:
    x = _sample(spec).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).flatten()[0], x)
    return bool(grad[1:].abs().sum() > 0)


@pytest.mark.parametrize("name", ["dcgan", "resnet_sngan", "biggan_lite", "timm"])
def test_discriminator_norm_choice(name):
    component = REGISTRY.get("discriminator", name)
    # At 8x8 DCGAN normalises no layer (never the first); timm's stride-32 ResNet needs 64x64 for instance norm,
    # which is undefined on the 1x1 maps that smaller inputs leave.
    side = 64 if name == "timm" else 16
    spec = DataSpec("image", (1, side, side))
    for norm in ("none", "layer", "instance"):
        assert not _mixes_samples(component.build(spec, norm=norm), spec), norm
    # BatchNorm is available because the papers used it, and it really does couple the samples of a batch.
    assert _mixes_samples(component.build(spec, norm="batch"), spec)
    with pytest.raises(ValueError, match="unknown norm"):
        component.build(spec, norm="spectral")


def test_factories_refuse_the_wrong_modality():
    with pytest.raises(ValueError, match="vector data"):
        REGISTRY.get("generator", "mlp").build(DIGITS_SPEC)
    with pytest.raises(ValueError, match="image models"):
        REGISTRY.get("discriminator", "timm").build(VECTOR_SPEC)


# -- the timm discriminator ---------------------------------------------------------------------------------


def test_timm_default_swaps_batchnorm_for_per_sample_norm():
    d = REGISTRY.get("discriminator", "timm").build(DIGITS_SPEC)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    kept = REGISTRY.get("discriminator", "timm").build(DIGITS_SPEC, norm="batch")
    assert any(isinstance(m, nn.BatchNorm2d) for m in kept.modules())


def test_timm_upsamples_small_inputs_to_min_size():
    with pytest.raises(ValueError, match="min_size"):
        REGISTRY.get("discriminator", "timm").build(DIGITS_SPEC, model_name="convnext_atto")
    d = REGISTRY.get("discriminator", "timm").build(DIGITS_SPEC, model_name="convnext_atto", min_size=32)
    seen = []
    d.backbone.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    assert d(_sample(DIGITS_SPEC, 2)).shape == (2,)
    assert seen == [(2, 1, 32, 32)]


def test_timm_unknown_model_suggests_names():
    with pytest.raises(ValueError, match="resnet10t"):
        REGISTRY.get("discriminator", "timm").build(DIGITS_SPEC, model_name="resnet10tt")


def test_timm_pretrained_never_downloads(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    component = REGISTRY.get("discriminator", "timm")
    with pytest.raises(ValueError, match="never downloads"):
        component.build(DIGITS_SPEC, pretrained=True)
    with pytest.raises(DownloadError, match="missing.safetensors does not exist. Give the path of a timm"):
        component.build(DIGITS_SPEC, pretrained=True, weights=str(tmp_path / "missing.safetensors"))


def test_timm_pretrained_loads_a_local_file_and_adapts_channels(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("test_resnet", pretrained=False)  # an ImageNet-shaped checkpoint: RGB, 1000 classes
    path = tmp_path / "test_resnet.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    d = REGISTRY.get("discriminator", "timm").build(DIGITS_SPEC, pretrained=True, weights=str(path))
    rgb = source.conv1[0].weight
    # timm folds RGB filters into one grey channel by summing them; the 1000-class head is dropped.
    torch.testing.assert_close(d.backbone.conv1[0].weight, rgb.sum(dim=1, keepdim=True))
    assert d.backbone.fc.weight.shape[0] == 1 and d.normalize
    assert torch.isfinite(d(_sample(DIGITS_SPEC))).all()
