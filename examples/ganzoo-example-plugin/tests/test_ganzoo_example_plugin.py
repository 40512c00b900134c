"""ganzoo-example-plugin's components against ganzoo's contracts: the checks ganzoo's own zoo passes."""

import ganzoo_example_plugin as plugin
import pytest

from ganzoo import DataSpec
from ganzoo.testing import (
    check_dataset,
    check_discriminator,
    check_feature_extractor,
    check_generator,
    check_loss,
    check_metric,
    check_pair,
    check_plugin,
    check_stabilizer,
)

SPECS = [DataSpec("vector", (2,)), DataSpec("image", (1, 8, 8)), DataSpec("image", (3, 16, 16))]


def shape_id(spec):
    return "x".join(map(str, spec.shape))


@pytest.fixture(scope="module")
def registry():
    # Registered beside the installed zoo, as `ganzoo list` would: fails on a clash, a typo or bad metadata.
    return check_plugin(plugin, name="example-plugin")


def test_registers_what_it_declares(registry):
    ours = [(c.kind, c.name) for c in registry.all() if c.plugin == "example-plugin"]
    ours += [("metric", m.name) for m in registry.metrics() if m.plugin == "example-plugin"]
    assert ours == [
        ("generator", "example_plugin_mlp"),
        ("discriminator", "example_plugin_mlp"),
        ("loss", "example_plugin_logistic"),
        ("stabilizer", "example_plugin_noise"),
        ("dataset", "example_plugin_spiral"),
        ("feature_extractor", "example_plugin_random_features"),
        ("metric", "example_plugin_mean_gap"),
    ]


@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_generator_contract(registry, spec):
    check_generator(registry.get("generator", "example_plugin_mlp").build(spec), spec)


@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_discriminator_contract(registry, spec):
    check_discriminator(registry.get("discriminator", "example_plugin_mlp").build(spec), spec)


def test_loss_contract(registry):
    component = registry.get("loss", "example_plugin_logistic")
    check_loss(component.build(), targets="targets" in component.tags)


@pytest.mark.parametrize("modality", ["vector", "image"])
def test_stabilizer_trains_in_the_harness_and_resumes_exactly(registry, modality, tmp_path):
    component = registry.get("stabilizer", "example_plugin_noise")
    check_stabilizer(component.factory, component.hparams(), modality, tmp_path)


def test_dataset_contract(registry):
    check_dataset(registry.get("dataset", "example_plugin_spiral"), registry=registry)


@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_feature_extractor_contract(registry, spec):
    check_feature_extractor(registry.get("feature_extractor", "example_plugin_random_features"), spec)


def test_metric_contract(registry):
    check_metric(registry.metric("example_plugin_mean_gap"))


@pytest.mark.parametrize("spec", SPECS, ids=shape_id)
def test_generator_trains_through_the_discriminator(registry, spec):
    check_pair(registry.get("generator", "example_plugin_mlp").build(spec),
               registry.get("discriminator", "example_plugin_mlp").build(spec), spec)
