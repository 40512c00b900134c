"""The plugin system: discovery through entry points, isolation of broken plugins, the registry's checks."""

import json
import subprocess
import sys

import pytest
import torch

import ganzoo
from ganzoo import hookimpl
from ganzoo.api.components import kind_from_user
from ganzoo.core.registry import UnknownComponentError, build_registry
from ganzoo.testing import fake_distribution


class TinyLoss(ganzoo.Loss):
    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        return (fake_logits - real_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return -fake_logits.mean()


class LossPlugin:
    @hookimpl
    def register_losses(self, register):
        register("tiny", TinyLoss, description="A test loss", reference="none")


def test_builtin_zoo_registers_through_entry_points():
    registry = build_registry()
    assert not registry.errors, [str(e) for e in registry.errors]
    assert {"architectures", "losses", "stabilizers", "datasets", "extractors"} <= set(registry.plugins)
    for name in ("architectures", "losses", "stabilizers", "datasets", "extractors"):
        assert registry.plugins[name].distribution == "ganzoo"
    hinge = registry.get("loss", "hinge")
    assert (hinge.plugin, hinge.distribution) == ("losses", "ganzoo")
    assert registry.plugins["losses"].hooks == ["register_losses"]


def test_in_process_plugin_is_registered_with_its_name():
    registry = build_registry({"my-losses": LossPlugin()})
    component = registry.get("loss", "tiny")
    assert component.plugin == "my-losses"
    assert isinstance(component.build(), TinyLoss)


def test_unknown_name_suggests_close_match():
    registry = build_registry()
    with pytest.raises(UnknownComponentError) as info:
        registry.get("loss", "hinje")
    assert str(info.value) == 'Unknown loss "hinje". Did you mean "hinge"? See: ganzoo list losses'


def test_duplicate_name_names_both_plugins_and_keeps_the_first():
    class Again:
        @hookimpl
        def register_losses(self, register):
            register("tiny", TinyLoss, description="again")
            register("tiny_other", TinyLoss, description="still registered")

    registry = build_registry({"first": LossPlugin(), "second": Again()}, load_entry_points=False)
    assert registry.get("loss", "tiny").plugin == "first"
    assert registry.get("loss", "tiny_other").plugin == "second"
    (error,) = registry.errors
    assert error.plugin == "second" and '"first"' in error.error and "already registered" in error.error


@pytest.mark.parametrize("meta, message", [
    ({"description": ""}, "description must be one non-empty line"),
    ({"description": "x", "modalities": ("audio",)}, "unknown modalities"),
    ({"description": "x", "colour": "red"}, "bad register() call"),
    ({"description": "x", "requires": {"optimizer": "adam"}}, "requires names unknown kinds"),
])
def test_bad_registration_is_that_plugins_error_only(meta, message):
    class Bad:
        @hookimpl
        def register_losses(self, register):
            register("broken", TinyLoss, **meta)

    registry = build_registry({"bad": Bad(), "good": LossPlugin()}, load_entry_points=False)
    assert ("loss", "tiny") in registry and ("loss", "broken") not in registry
    assert len(registry.errors) == 1 and message in registry.errors[0].error


def test_hook_that_raises_is_reported_and_others_load():
    class Raises:
        @hookimpl
        def register_losses(self, register):
            raise RuntimeError("boom")

    registry = build_registry({"raises": Raises(), "good": LossPlugin()}, load_entry_points=False)
    assert ("loss", "tiny") in registry
    assert registry.errors[0].plugin == "raises" and "RuntimeError: boom" in registry.errors[0].error


def test_invalid_names_are_rejected():
    class BadName:
        @hookimpl
        def register_losses(self, register):
            register("Hinge Loss", TinyLoss, description="x")

    registry = build_registry({"bad": BadName()}, load_entry_points=False)
    assert "Invalid loss name" in registry.errors[0].error


def test_unknown_hyperparameter_is_rejected_with_known_ones():
    registry = build_registry()
    with pytest.raises(ValueError, match='has no hyperparameter "decay_rate". Known: .*decay'):
        registry.get("stabilizer", "ema").hparams({"decay_rate": 0.9})


def test_kind_names_from_users():
    assert kind_from_user("losses") == "loss"
    assert kind_from_user("feature-extractors") == "feature_extractor"
    with pytest.raises(ValueError, match="Unknown component kind"):
        kind_from_user("optimisers")


BROKEN = "raise ImportError('missing dependency xyz')\n"
MISSPELLED = """
from ganzoo import hookimpl

@hookimpl
def register_losess(register):
    pass
"""
WORKING = """
import ganzoo
from ganzoo import hookimpl

class Zero(ganzoo.Loss):
    def d_loss(self, r, f, real_target=1.0):
        return (r * 0).sum()
    def g_loss(self, f, r=None):
        return (f * 0).sum()

@hookimpl
def register_losses(register):
    register("zero", Zero, description="Always zero", reference="test")
"""


def test_broken_entry_point_is_reported_and_the_rest_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_PLUGINS", "ganzoo,ganzoo-broken,ganzoo-typo,ganzoo-works")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    with fake_distribution(tmp_path / "a", "ganzoo-broken", BROKEN, {"broken": "ganzoo_broken"}), \
            fake_distribution(tmp_path / "b", "ganzoo-typo", MISSPELLED, {"typo": "ganzoo_typo"}), \
            fake_distribution(tmp_path / "c", "ganzoo-works", WORKING, {"works": "ganzoo_works"}):
        registry = build_registry()
    errors = {e.plugin: e for e in registry.errors}
    assert set(errors) == {"broken", "typo"}
    assert errors["broken"].distribution == "ganzoo-broken 0.1"
    assert "ImportError: missing dependency xyz" in errors["broken"].error
    assert 'unknown hook "register_losess"' in errors["typo"].error
    assert "it implements no known hook, so it registers nothing" in errors["typo"].error
    zero = registry.get("loss", "zero")
    assert (zero.plugin, zero.distribution, zero.version) == ("works", "ganzoo-works", "0.1")
    assert ("loss", "hinge") in registry  # the built-in zoo is unaffected


def test_allow_and_block_lists(tmp_path, monkeypatch):
    with fake_distribution(tmp_path, "ganzoo-works", WORKING, {"works": "ganzoo_works"}):
        monkeypatch.setenv("GANZOO_PLUGINS", "ganzoo")
        assert ("loss", "zero") not in build_registry()
        monkeypatch.setenv("GANZOO_PLUGINS", "ganzoo,works")
        assert ("loss", "zero") in build_registry()
        monkeypatch.delenv("GANZOO_PLUGINS")
        monkeypatch.setenv("GANZOO_BLOCK_PLUGINS", "ganzoo-works,losses")
        registry = build_registry()
        assert ("loss", "zero") not in registry and ("loss", "hinge") not in registry
        assert ("stabilizer", "ema") in registry


def test_every_component_documents_itself():
    registry = build_registry()
    for component in registry.all():  # (a one-line description is enforced by the registry itself)
        if component.kind in ("generator", "discriminator", "loss", "stabilizer"):
            assert component.reference.strip(), f"{component.kind} {component.name} names no reference"


def test_list_json_includes_description_and_reference():
    out = subprocess.run([sys.executable, "-m", "ganzoo", "list", "--format", "json"], capture_output=True,
                         text=True, check=True).stdout
    items = json.loads(out)
    kinds = {item["kind"] for item in items}
    assert kinds == {*ganzoo.KINDS, "metric"}  # the registered metrics follow the components
    assert [i["name"] for i in items if i["kind"] == "metric"] == ["fid", "is", "kid", "pr", "dc", "cond_accuracy",
                                                                   "intra_fid"]
    for item in items:
        assert item["description"] and "reference" in item and item["distribution"] == "ganzoo"


def test_check_pair_catches_a_wrong_shape():
    from ganzoo.testing import check_pair

    class G(torch.nn.Module):
        latent_dim = 2

        def forward(self, z):
            return z

    spec = ganzoo.DataSpec("vector", (3,))
    with pytest.raises(AssertionError, match="generator output"):
        check_pair(G(), torch.nn.Linear(3, 1), spec)


IMPOSTOR = """
import ganzoo
from ganzoo import hookimpl

class Fake(ganzoo.Loss):
    def d_loss(self, r, f, real_target=1.0):
        return (r * 0).sum()
    def g_loss(self, f, r=None):
        return (f * 0).sum()

@hookimpl(trylast=True)
def register_losses(register):
    register("hinge", Fake, description="Not the real hinge", reference="test")
    register("fancy", Fake, description="A new loss", reference="test")

@hookimpl
def register_stabilisers(register):
    pass
"""


def test_a_plugin_cannot_take_over_a_builtin_name_and_its_entry_point_name_may_repeat_a_builtin_one(
        tmp_path, monkeypatch):
    """The impostor's entry point is named "losses" like the built-in one, and it claims "hinge"."""
    monkeypatch.setenv("GANZOO_PLUGINS", "ganzoo,ganzoo-impostor")
    with fake_distribution(tmp_path, "ganzoo-impostor", IMPOSTOR, {"losses": "ganzoo_impostor"}):
        registry = build_registry()
    hinge = registry.get("loss", "hinge")
    assert (hinge.plugin, hinge.distribution) == ("losses", "ganzoo") and "Not the real" not in hinge.description
    assert registry.get("loss", "fancy").plugin == "ganzoo-impostor:losses"  # loaded, not dropped
    messages = {e.plugin: e.error for e in registry.errors}
    assert set(messages) == {"ganzoo-impostor:losses"}
    assert 'loss "hinge" is already registered by plugin "losses" (ganzoo)' in messages["ganzoo-impostor:losses"]
    assert "built-in names cannot be taken over" in messages["ganzoo-impostor:losses"]
    typo = [e.error for e in registry.errors if "register_stabilisers" in e.error]
    assert typo and "its other hooks (register_losses) still load" in typo[0]


def test_defaults_that_the_factory_does_not_take_are_a_registration_error():
    class Misfit:
        @hookimpl
        def register_losses(self, register):
            register("misfit", TinyLoss, description="defaults the factory lacks", defaults={"margin": 1.0})
            register("fine", TinyLoss, description="still registered")

    registry = build_registry({"misfit-plugin": Misfit()}, load_entry_points=False)
    assert ("loss", "fine") in registry and ("loss", "misfit") not in registry
    (error,) = registry.errors
    assert error.plugin == "misfit-plugin"
    assert "defaults name ['margin'], but its factory" in error.error and "takes no such parameter" in error.error


def test_check_plugin_reports_what_loading_would_report():
    from ganzoo.testing import check_plugin

    class Clashing:
        @hookimpl
        def register_losses(self, register):
            register("hinge", TinyLoss, description="mine")
            register("tiny_ok", TinyLoss, description="fine")

        @hookimpl
        def register_stabilisers(self, register):  # misspelled
            pass

    with pytest.raises(AssertionError) as info:
        check_plugin(Clashing(), name="clashing")
    message = str(info.value)
    assert "plugin 'clashing' has 2 problem(s)" in message
    assert 'loss "hinge" is already registered by plugin "losses" (ganzoo)' in message
    assert 'unknown hook "register_stabilisers"' in message
    assert check_plugin(LossPlugin(), name="good").get("loss", "tiny").plugin == "good"


# -- ganzoo.testing's contract checks fail on components that break the contract ------------------------


class _G(torch.nn.Module):
    def __init__(self, unused=False):
        super().__init__()
        self.latent_dim, self.net = 2, torch.nn.Linear(2, 3)
        self.unused = torch.nn.Linear(2, 2) if unused else None

    def forward(self, z):
        return torch.tanh(self.net(z))


def test_check_generator_finds_a_parameter_no_gradient_reaches():
    from ganzoo.testing import check_generator

    spec = ganzoo.DataSpec("vector", (3,))
    check_generator(_G(), spec)
    with pytest.raises(AssertionError, match=r"no gradient reaches parameters \['unused.weight', 'unused.bias'\]"):
        check_generator(_G(unused=True), spec)


def test_check_discriminator_finds_samples_mixed_by_batch_statistics():
    from ganzoo.testing import check_discriminator

    spec = ganzoo.DataSpec("vector", (3,))
    check_discriminator(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1)),
                        spec)
    batch_norm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    with pytest.raises(AssertionError, match="depends on the other samples"):
        check_discriminator(batch_norm, spec)
    with pytest.raises(AssertionError, match="one logit per sample"):
        check_discriminator(torch.nn.Linear(3, 2), spec)


def test_check_loss_finds_an_overflow_and_an_ignored_target():
    from ganzoo.testing import check_loss

    class Naive(ganzoo.Loss):  # log(sigmoid(x)) is -inf at x = -200
        def d_loss(self, real_logits, fake_logits, real_target=1.0):
            return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()

        def g_loss(self, fake_logits, real_logits=None):
            return -torch.log(torch.sigmoid(fake_logits)).mean()

    class Stable(Naive):
        def d_loss(self, real_logits, fake_logits, real_target=1.0):
            sp = torch.nn.functional.softplus
            return sp(-real_logits).mean() + sp(fake_logits).mean()

        def g_loss(self, fake_logits, real_logits=None):
            return torch.nn.functional.softplus(-fake_logits).mean()

    with pytest.raises(AssertionError, match=r"not finite at logits of \+-200"):
        check_loss(Naive())
    check_loss(Stable())
    with pytest.raises(AssertionError, match="ignores real_target"):
        check_loss(Stable(), targets=True)


class _Forgetful(ganzoo.Stabilizer):
    """Scales D's penalty by a counter it keeps but never checkpoints: a resumed run starts it again at 0."""

    def __init__(self, remember=False):
        self.remember, self.calls = remember, 0

    def d_penalty(self, ctx):
        self.calls += 1
        return 1e-2 * self.calls * ctx.real_logits.pow(2).mean()

    def state_dict(self):
        return {"calls": self.calls} if self.remember else {}

    def load_state_dict(self, state):
        self.calls = state.get("calls", 0)


def test_check_stabilizer_finds_state_missing_from_the_checkpoint(tmp_path):
    from ganzoo.testing import check_stabilizer

    result = check_stabilizer(_Forgetful, {"remember": True}, workdir=tmp_path / "remembers")
    assert [e["g_steps"] for e in result.evals] == [2, 4]
    with pytest.raises(AssertionError, match="resuming from a checkpoint changed the evaluations"):
        check_stabilizer(_Forgetful, {"remember": False}, workdir=tmp_path / "forgets")
