"""Each built-in loss against its closed form, written out by hand in numpy, at known logits."""

import inspect

import numpy as np
import pytest
import torch

import ganzoo
import ganzoo_plugins.losses as losses_plugin
from ganzoo.testing import check_loss

REAL = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
FAKE = np.array([-2.0, 0.3, 1.5, -6.0, 0.1])


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


# (d_loss(real, fake), g_loss(fake, real)) with real target 1.
CLOSED_FORMS = {
    "ns": (lambda r, f: np.mean(-np.log(sigmoid(r))) + np.mean(-np.log(1 - sigmoid(f))),
           lambda f, r: np.mean(-np.log(sigmoid(f)))),
    "minimax": (lambda r, f: np.mean(-np.log(sigmoid(r))) + np.mean(-np.log(1 - sigmoid(f))),
                lambda f, r: np.mean(np.log(1 - sigmoid(f)))),
    "hinge": (lambda r, f: np.mean(relu(1 - r)) + np.mean(relu(1 + f)),
              lambda f, r: -np.mean(f)),
    "wasserstein": (lambda r, f: np.mean(f) - np.mean(r),
                    lambda f, r: -np.mean(f)),
    "lsgan": (lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f**2),
              lambda f, r: 0.5 * np.mean((f - 1) ** 2)),
    "rasgan": (lambda r, f: np.mean(-np.log(sigmoid(r - f.mean()))) + np.mean(-np.log(1 - sigmoid(f - r.mean()))),
             lambda f, r: np.mean(-np.log(sigmoid(f - r.mean()))) + np.mean(-np.log(1 - sigmoid(r - f.mean())))),
    # Pairs (r_i, f_i): D wants each real above its own fake, G the reverse.
    "rpgan": (lambda r, f: np.mean(-np.log(sigmoid(r - f))),
              lambda f, r: np.mean(-np.log(sigmoid(f - r)))),
}


@pytest.fixture(scope="module")
def registry():
    return ganzoo.build_registry(load_entry_points=False, extra_plugins={"losses": losses_plugin})


def t(values):
    return torch.tensor(values, dtype=torch.float64)


def test_every_loss_has_a_closed_form_test(registry):
    assert {c.name for c in registry.list("loss")} == set(CLOSED_FORMS)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_loss_matches_closed_form(registry, name):
    loss = registry.get("loss", name).build()
    d_form, g_form = CLOSED_FORMS[name]
    real = t(REAL) if loss.uses_real_logits_in_g else None
    assert loss.d_loss(t(REAL), t(FAKE)).item() == pytest.approx(d_form(REAL, FAKE), rel=1e-10)
    assert loss.g_loss(t(FAKE), real).item() == pytest.approx(g_form(FAKE, REAL), rel=1e-10)


def _finite_difference(fn, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_loss_gradients_match_finite_differences_of_closed_form(registry, name):
    # Relativistic losses couple the samples through batch means: every logit must get its full gradient.
    loss = registry.get("loss", name).build()
    d_form, g_form = CLOSED_FORMS[name]
    real, fake = t(REAL).requires_grad_(True), t(FAKE).requires_grad_(True)
    d_real, d_fake = torch.autograd.grad(loss.d_loss(real, fake), (real, fake))
    np.testing.assert_allclose(d_real.numpy(), _finite_difference(lambda r: d_form(r, FAKE), REAL), atol=1e-6)
    np.testing.assert_allclose(d_fake.numpy(), _finite_difference(lambda f: d_form(REAL, f), FAKE), atol=1e-6)
    (g_fake,) = torch.autograd.grad(loss.g_loss(fake, real if loss.uses_real_logits_in_g else None), (fake,))
    np.testing.assert_allclose(g_fake.numpy(), _finite_difference(lambda f: g_form(f, REAL), FAKE), atol=1e-6)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_column_logits_equal_flat_logits(registry, name):
    loss = registry.get("loss", name).build()
    flat = loss.d_loss(t(REAL), t(FAKE))
    column = loss.d_loss(t(REAL)[:, None], t(FAKE)[:, None])
    assert column.item() == pytest.approx(flat.item())
    with pytest.raises(ValueError, match="one logit per sample"):
        loss.d_loss(t(REAL).view(5, 1, 1), t(FAKE))


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_loss_contract(registry, name):
    """What ganzoo.testing checks of any plugin's loss: finite scalars, both sides used, finite at +-200 ..."""
    component = registry.get("loss", name)
    check_loss(component.build(), targets="targets" in component.tags)


@pytest.mark.parametrize("name,target", [("ns", 0.9), ("minimax", 0.9), ("lsgan", 0.8)])
def test_real_target_is_honoured(registry, name, target):
    loss = registry.get("loss", name).build()
    if name == "lsgan":
        expected = 0.5 * np.mean((REAL - target) ** 2) + 0.5 * np.mean(FAKE**2)
    else:
        smoothed = -target * np.log(sigmoid(REAL)) - (1 - target) * np.log(1 - sigmoid(REAL))
        expected = np.mean(smoothed) + np.mean(-np.log(1 - sigmoid(FAKE)))
    assert loss.d_loss(t(REAL), t(FAKE), real_target=target).item() == pytest.approx(expected, rel=1e-10)


def test_targets_tag_marks_exactly_the_losses_with_a_real_target(registry):
    tagged = {c.name for c in registry.list("loss") if "targets" in c.tags}
    assert tagged == {"ns", "minimax", "lsgan"}
    for name in set(CLOSED_FORMS) - tagged:
        loss = registry.get("loss", name).build()
        # The default target is accepted and changes nothing; any other is refused.
        d_form = CLOSED_FORMS[name][0]
        assert loss.d_loss(t(REAL), t(FAKE), real_target=1.0).item() == pytest.approx(d_form(REAL, FAKE), rel=1e-10)
        with pytest.raises(ValueError, match="no real target"):
            loss.d_loss(t(REAL), t(FAKE), real_target=0.9)


def test_bad_real_target_is_rejected(registry):
    with pytest.raises(ValueError, match="real_target"):
        registry.get("loss", "ns").build().d_loss(t(REAL), t(FAKE), real_target=1.5)


def test_only_the_relativistic_losses_need_real_logits_in_g(registry):
    needs = {c.name for c in registry.list("loss") if c.build().uses_real_logits_in_g}
    assert needs == {"rasgan", "rpgan"}
    assert registry.get("loss", "rals") is registry.get("loss", "rasgan")  # the former name still resolves
    with pytest.raises(ValueError, match="real logits"):
        registry.get("loss", "rals").build().g_loss(t(FAKE), None)


def test_minimax_saturates_where_non_saturating_does_not(registry):
    # When D confidently rejects fakes (logit -10), d/df log(1 - sigmoid(f)) = -sigmoid(f) ~ 0 but
    # d/df -log sigmoid(f) = -sigmoid(-f) ~ -1: the reason the non-saturating form exists.
    grads = {}
    for name in ("minimax", "ns"):
        fake = torch.tensor([-10.0], requires_grad=True)
        registry.get("loss", name).build().g_loss(fake).backward()
        grads[name] = fake.grad.item()
    assert grads["minimax"] == pytest.approx(-sigmoid(-10.0), rel=1e-5)
    assert grads["ns"] == pytest.approx(-sigmoid(10.0), rel=1e-5)


def test_metadata_names_the_paper_and_lists_every_hparam(registry):
    for component in registry.list("loss"):
        assert "arXiv:" in component.reference and any(str(y) in component.reference for y in range(2014, 2020))
        params = [p for p in inspect.signature(component.factory).parameters.values() if p.name != "self"]
        assert {p.name for p in params} == set(component.defaults)


def test_rpgan_at_hand_computed_values(registry):
    # Two pairs, worked by hand: D(x) - D(G(z)) = (2 - 0, 0 - 1) = (2, -1), so
    # D loss = (log(1 + e^-2) + log(1 + e^1)) / 2 and G loss = (log(1 + e^2) + log(1 + e^-1)) / 2.
    loss = registry.get("loss", "rpgan").build()
    real, fake = t([2.0, 0.0]), t([0.0, 1.0])
    d_expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(1.0))) / 2  # 0.72968...
    g_expected = (np.log1p(np.exp(2.0)) + np.log1p(np.exp(-1.0))) / 2  # 1.22968...
    assert loss.d_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-12)
    assert loss.g_loss(fake, real).item() == pytest.approx(g_expected, rel=1e-12)
    # Swapping the roles of the two batches swaps the two losses: G's game is D's mirror.
    assert loss.g_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-12)


def test_rpgan_pairs_samples_where_rasgan_compares_with_the_batch_mean(registry):
    rpgan, rasgan = (registry.get("loss", n).build() for n in ("rpgan", "rasgan"))
    assert rpgan.d_loss(t(REAL), t(FAKE)).item() != pytest.approx(rasgan.d_loss(t(REAL), t(FAKE)).item(), rel=1e-3)
    # Reordering the fakes changes which real each is paired with: rpgan moves, rasgan (means only) does not.
    shuffled = t(FAKE[::-1].copy())
    assert rpgan.d_loss(t(REAL), shuffled).item() != pytest.approx(rpgan.d_loss(t(REAL), t(FAKE)).item(), rel=1e-3)
    assert rasgan.d_loss(t(REAL), shuffled).item() == pytest.approx(rasgan.d_loss(t(REAL), t(FAKE)).item(), rel=1e-12)
    # Pairing needs one fake per real; comparing with a mean does not.
    with pytest.raises(ValueError, match="same size"):
        rpgan.d_loss(t(REAL), t(FAKE[:3]))
    rasgan.d_loss(t(REAL), t(FAKE[:3]))
