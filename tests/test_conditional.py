"""Class-conditional GANs through the harness: the components' contracts, how labels are drawn, which pairs a grid
keeps and why, stabilizers with labels, and a conditional run evaluated again from its checkpoint."""

import copy
import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import DataSpec, EvalProtocol, StepContext
from ganzoo.api.conditional import check_pairing, discriminate
from ganzoo.core.registry import get_registry
from ganzoo.run.artifacts import CHECKPOINT, SAMPLES
from ganzoo.run.build import latent_sampler
from ganzoo.run.evaluate import class_rows
from ganzoo.run.grid import build_grid
from ganzoo.run.suite import load_suite, parse_suite
from ganzoo.testing import check_discriminator, check_generator, check_pair, check_stabilizer

REGISTRY = get_registry()
CONDITIONAL_G = [c for c in REGISTRY.list("generator") if "conditional" in c.tags]
CONDITIONAL_D = [c for c in REGISTRY.list("discriminator") if "conditional" in c.tags]


def _spec(side: int, channels: int = 1, classes: int = 10) -> DataSpec:
    return DataSpec("image", (channels, side, side), num_classes=classes)


def test_the_zoo_lists_conditional_generators_and_a_projection_discriminator():
    assert {"cond_dcgan", "cond_resnet_sngan"} <= {c.name for c in CONDITIONAL_G}
    assert {"projection_dcgan", "projection_resnet_sngan", "acgan_dcgan"} <= {c.name for c in CONDITIONAL_D}
    assert all("Miyato & Koyama 2018" in REGISTRY.get("discriminator", n).reference
               for n in ("projection_dcgan", "projection_resnet_sngan"))


@pytest.mark.parametrize("side,channels,classes", [(8, 1, 10), (16, 3, 4), (32, 1, 10)])
@pytest.mark.parametrize("component", CONDITIONAL_G, ids=lambda c: c.name)
def test_conditional_generators_meet_the_contract(component, side, channels, classes):
    spec = _spec(side, channels, classes)
    g = component.build(spec)
    assert g.conditional and g.num_classes == classes
    check_generator(g, spec)


@pytest.mark.parametrize("side,channels,classes", [(8, 1, 10), (16, 3, 4), (32, 1, 10)])
@pytest.mark.parametrize("component", CONDITIONAL_D, ids=lambda c: c.name)
def test_conditional_discriminators_meet_the_contract_with_and_without_spectral_norm(component, side, channels,
                                                                                     classes):
    spec = _spec(side, channels, classes)
    d = component.build(spec)
    check_discriminator(d, spec)
    normalised = REGISTRY.get("stabilizer", "spectral_norm").build().wrap_discriminator(copy.deepcopy(d))
    check_discriminator(normalised, spec)  # R1's double backward through the normalised embedding too


@pytest.mark.parametrize("g_name,d_name", [("cond_dcgan", "projection_dcgan"), ("cond_dcgan", "acgan_dcgan"),
                                           ("cond_resnet_sngan", "projection_resnet_sngan")])
def test_conditional_pairs_fit_together(g_name, d_name):
    spec = _spec(8)
    check_pair(REGISTRY.get("generator", g_name).build(spec), REGISTRY.get("discriminator", d_name).build(spec), spec)


def test_the_projection_is_psi_plus_the_inner_product_with_the_class_embedding():
    d = REGISTRY.get("discriminator", "projection_dcgan").build(_spec(8)).eval()
    x, y = torch.rand(5, 1, 8, 8) * 2 - 1, torch.tensor([0, 3, 3, 9, 1])
    phi = d.trunk(x)
    by_hand = phi @ d.head.weight[0] + d.head.bias[0] + (d.embed.weight[y] * phi).sum(1)
    torch.testing.assert_close(d(x, y), by_hand)


def test_conditional_batchnorm_applies_the_gain_and_bias_of_each_sample_s_class():
    g = REGISTRY.get("generator", "cond_dcgan").build(_spec(8))
    norm = g.project_norm
    with torch.no_grad():
        norm.gain.weight.copy_(torch.arange(10.0)[:, None].expand_as(norm.gain.weight))
        norm.bias.weight.fill_(0.5)
    h, y = torch.randn(6, norm.gain.weight.shape[1], 4, 4), torch.tensor([0, 1, 2, 2, 5, 9])
    expected = y.float()[:, None, None, None] * F.batch_norm(h, None, None, training=True) + 0.5
    torch.testing.assert_close(norm(h, y), expected)


def test_a_conditional_module_refuses_unlabelled_data_with_a_fix():
    for component in CONDITIONAL_G + CONDITIONAL_D:
        with pytest.raises(ValueError, match="needs a labelled dataset"):
            component.build(DataSpec("image", (1, 8, 8)))
        assert "labelled dataset" in component.incompatibility(DataSpec("image", (1, 8, 8)))
        assert component.incompatibility(_spec(8)) is None


def test_check_pairing_refuses_what_the_grid_leaves_out():
    spec = _spec(8)
    cond_g = REGISTRY.get("generator", "cond_dcgan").build(spec)
    plain_g = REGISTRY.get("generator", "dcgan").build(spec)
    projection = REGISTRY.get("discriminator", "projection_dcgan").build(spec)
    check_pairing(cond_g, projection, 10)
    with pytest.raises(ValueError, match="conditional but G is not"):
        check_pairing(plain_g, projection, 10)
    with pytest.raises(ValueError, match="takes 10 classes but the dataset has 4"):
        check_pairing(cond_g, projection, 4)
    with pytest.raises(ValueError, match="has no labels"):
        check_pairing(cond_g, projection, None)
    with pytest.raises(ValueError, match="called without labels"):
        discriminate(projection, torch.zeros(2, 1, 8, 8), None)


# -- labels in the harness --------------------------------------------------------------------------------


class _LabelEcho(nn.Module):
    """A conditional "G" whose sample is its label (channel 0) and the first latent (channel 1)."""

    conditional, num_classes, latent_dim = True, 7, 3

    def forward(self, z, y):
        return torch.stack([y.float(), z[:, 0]], 1)


def test_evaluation_labels_cycle_over_the_stream_whatever_the_batches_and_leave_the_latents_alone():
    sample = latent_sampler(_LabelEcho(), seed=5, device="cpu")
    drawn = torch.cat([sample(n) for n in (4, 9, 1, 6)])
    assert drawn[:, 0].long().tolist() == (torch.arange(20) % 7).tolist()
    plain = nn.Linear(3, 1, bias=False)
    plain.latent_dim = 3
    with torch.no_grad():
        plain.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
    unconditional = latent_sampler(plain, seed=5, device="cpu")
    first_latents = torch.cat([unconditional(n) for n in (4, 9, 1, 6)])[:, 0]
    torch.testing.assert_close(drawn[:, 1], first_latents)  # labels take nothing from the latents' stream


def test_labelled_batches_are_the_batches_an_unconditional_run_draws():
    dataset = REGISTRY.get("dataset", "digits").build()
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x, y = dataset.sample_labelled(64, a)
    torch.testing.assert_close(x, dataset.sample(64, b))
    assert torch.equal(a.get_state(), b.get_state())  # the stream moved on the same way
    index = torch.randint(len(dataset), (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(y, dataset.labels[index])


def test_class_rows_put_class_c_in_row_c():
    samples = (torch.arange(80) % 10).float().view(80, 1, 1, 1).expand(80, 1, 2, 2)
    rows = class_rows(samples, 10).view(10, 8, 1, 2, 2)
    assert all((rows[c] == c).all() for c in range(10))


# -- the grid ---------------------------------------------------------------------------------------------


def _full_digits_suite():
    return parse_suite({
        "name": "pairs", "design": "full", "seeds": [0], "auto_stacks": False,
        "stacks": {"acgan": ["acgan"], "pac": ["pac"], "r1": ["r1"]},
        "datasets": [{"name": "digits",
                      "components": {"generator": ["dcgan", "cond_dcgan"],
                                     "discriminator": ["dcgan", "projection_dcgan", "acgan_dcgan"],
                                     "loss": ["ns"], "stack": ["none", "acgan", "pac", "r1"]},
                      "budget": {"unit": "g_steps", "g_steps": 10, "batch_size": 8}}],
    })


def test_the_grid_pairs_conditional_components_only_where_the_labels_mean_something():
    grid = build_grid(_full_digits_suite(), REGISTRY)
    kept = {s.combination for s in grid.specs}
    assert kept == {"dcgan/dcgan/ns/none", "dcgan/dcgan/ns/pac", "dcgan/dcgan/ns/r1",
                    "cond_dcgan/projection_dcgan/ns/none", "cond_dcgan/projection_dcgan/ns/r1",
                    "cond_dcgan/acgan_dcgan/ns/acgan"}
    reasons = dict(grid.left_out)
    assert 'requires a discriminator tagged "conditional"' in reasons["digits: cond_dcgan/dcgan/ns/none"]
    assert 'requires a generator tagged "conditional"' in reasons["digits: dcgan/projection_dcgan/ns/none"]
    assert 'requires a stabilizer tagged "auxiliary_classifier"' in reasons["digits: cond_dcgan/acgan_dcgan/ns/none"]
    assert 'requires a discriminator tagged "auxiliary_classifier"' in reasons[
        "digits: cond_dcgan/projection_dcgan/ns/acgan"]
    assert 'cannot run with a discriminator tagged "conditional"' in reasons[
        "digits: cond_dcgan/projection_dcgan/ns/pac"]


def test_the_default_suite_trains_no_conditional_component_and_the_conditional_suite_trains_them_all():
    default = build_grid(load_suite("default"), REGISTRY)
    with open(Path(__file__).parents[1] / "results" / "default" / "runs.csv", newline="") as f:
        committed = sum(1 for _ in csv.DictReader(f))
    assert len(default.specs) == committed  # the grid is the committed default's, run for run
    tagged = {c.name for kind in ("generator", "discriminator", "stabilizer") for c in REGISTRY.list(kind)
              if {"conditional", "auxiliary_classifier"} & set(c.tags)}
    used = {name for s in default.specs for name in (s.generator.name, s.discriminator.name,
                                                      *(r.name for r in s.stack))}
    assert not used & tagged
    conditional = build_grid(load_suite("conditional-digits"), REGISTRY)
    covered = {name for s in conditional.specs for name in (s.generator.name, s.discriminator.name,
                                                              *(r.name for r in s.stack))}
    assert tagged <= covered and not conditional.left_out


# -- stabilizers with labels ------------------------------------------------------------------------------

# pl_reg needs a style-based G (mapping and synthesis), which no conditional generator is.
LABEL_AWARE = [c for c in REGISTRY.list("stabilizer") if "image" in c.modalities and c.name not in ("pac", "pl_reg")]


@pytest.mark.filterwarnings("ignore:intra_fid")  # the kit's 10 samples a class in 16-d features
@pytest.mark.parametrize("component", LABEL_AWARE, ids=lambda c: c.name)
def test_every_stabilizer_but_pac_trains_a_conditional_pair_and_resumes_exactly(component, tmp_path):
    result = check_stabilizer(component.factory, component.hparams(), "image", tmp_path, conditional=True)
    assert "intra_fid" in result.evals[-1]["metrics"]  # the kit's extractor has no logits: no cond_accuracy


def test_penalties_judge_each_sample_by_its_own_label():
    spec = _spec(8)
    d = REGISTRY.get("discriminator", "projection_dcgan").build(spec)
    r1 = REGISTRY.get("stabilizer", "r1").build()
    x, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([1, 2, 3, 4])
    ctx = StepContext(generator=nn.Identity(), discriminator=d, loss=None, real=x, real_labels=y)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(xg, y).sum(), xg)
    torch.testing.assert_close(r1.d_penalty(ctx), 5.0 * grad.pow(2).flatten(1).sum(1).mean())
    ctx.real_labels = torch.tensor([5, 6, 7, 8])
    assert not torch.allclose(r1.d_penalty(ctx), 5.0 * grad.pow(2).flatten(1).sum(1).mean())


def test_acgan_adds_the_class_cross_entropy_and_says_what_it_needs():
    class FixedClassifier(nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def classify(self, x):
            return self.logits[: len(x)]

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    real_y, fake_y = torch.tensor([0, 2]), torch.tensor([1, 1])
    log_p = logits.log_softmax(1)
    ce_real, ce_fake = -log_p[[0, 1], real_y].mean(), -log_p[[0, 1], fake_y].mean()
    acgan = REGISTRY.get("stabilizer", "acgan").build(weight=0.5)
    ctx = StepContext(generator=nn.Identity(), discriminator=FixedClassifier(logits), loss=None,
                      real=torch.zeros(2, 1), fake=torch.zeros(2, 1), real_labels=real_y, fake_labels=fake_y)
    torch.testing.assert_close(acgan.d_penalty(ctx), 0.5 * (ce_real + ce_fake))
    torch.testing.assert_close(acgan.g_penalty(ctx), 0.5 * ce_fake)
    ctx.fake_labels = None
    with pytest.raises(ValueError, match="conditional generator"):
        acgan.g_penalty(ctx)
    ctx.discriminator = nn.Identity()
    with pytest.raises(ValueError, match="no classify"):
        acgan.d_penalty(ctx)


# -- a conditional run, end to end --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:intra_fid")  # 20 samples a class in 64-d features: a tiny protocol
def test_a_conditional_run_reports_the_conditional_metrics_and_eval_of_its_checkpoint_repeats_them(tmp_path):
    from ganzoo.cli.eval import evaluate_run_checkpoint
    from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec
    from ganzoo.run.train import run

    spec = RunSpec(dataset=ComponentRef("digits", {"resolution": 8, "split": "all"}),
                   generator=ComponentRef("cond_dcgan", {"latent_dim": 16, "ch": 8}),
                   discriminator=ComponentRef("projection_dcgan", {"ch": 8, "norm": "none"}),
                   loss=ComponentRef("ns", {}), stack_name="ema", stack=(ComponentRef("ema", {}),), seed=0,
                   budget=Budget(batch_size=16, unit="g_steps", g_steps=6, eval_every_g_steps=3), optim=Optim(),
                   protocol=EvalProtocol(n_fake=200, n_real=400, metrics=("fid",)))
    result = run(spec, tmp_path / "run", device="cpu")
    assert result.status == "done", result.error
    final = result.evals[-1]["metrics"]
    assert {"cond_accuracy", "intra_fid"} <= set(final)
    again, _, _ = evaluate_run_checkpoint(tmp_path / "run" / CHECKPOINT, torch.device("cpu"))
    assert again["cond_accuracy"] == final["cond_accuracy"] and again["intra_fid"] == pytest.approx(final["intra_fid"])
    assert (tmp_path / "run" / SAMPLES).is_file()


@pytest.mark.filterwarnings("ignore:intra_fid")
def test_a_conditional_pair_trains_on_mnist5k(tmp_path):
    from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec
    from ganzoo.run.train import run

    spec = RunSpec(dataset=ComponentRef("mnist5k", {"resolution": 32, "split": "all"}),
                   generator=ComponentRef("cond_dcgan", {"latent_dim": 16, "ch": 4}),
                   discriminator=ComponentRef("projection_dcgan", {"ch": 4, "norm": "none"}),
                   loss=ComponentRef("ns", {}), stack_name="none", stack=(), seed=0,
                   budget=Budget(batch_size=8, unit="g_steps", g_steps=1, eval_every_g_steps=1), optim=Optim(),
                   protocol=EvalProtocol(n_fake=40, n_real=200, metrics=("fid",)))
    result = run(spec, tmp_path, device="cpu")
    assert result.status == "done", result.error
    assert {"cond_accuracy", "intra_fid"} <= set(result.final)

