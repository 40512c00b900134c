"""``modalities``: declared, or inferred from the factory, so that an image-only generator never lands in a vector
grid."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo import DataSpec
from ganzoo.testing import plugin_registry


class ConvGenerator(nn.Module):
    """Image-only: it reads spec.channels, which vector data does not have."""

    def __init__(self, spec, latent_dim=4):
        super().__init__()
        self.latent_dim, self.side = latent_dim, spec.resolution
        self.net = nn.Sequential(nn.Linear(latent_dim, 8 * self.side * self.side), nn.Unflatten(1, (8, self.side,
                                 self.side)), nn.Conv2d(8, spec.channels, 3, padding=1), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class MLPGenerator(nn.Module):
    """Any modality: the output is reshaped to whatever the spec says."""

    def __init__(self, spec, latent_dim=4):
        super().__init__()
        self.latent_dim, self.shape = latent_dim, spec.shape
        self.net = nn.Linear(latent_dim, int(torch.tensor(spec.shape).prod()))

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, *self.shape)


class EightPixelsOnly(ConvGenerator):
    def __init__(self, spec, latent_dim=4):
        if spec.resolution != 8:
            raise ValueError("8x8 only")
        super().__init__(spec, latent_dim)


class WrongShape(MLPGenerator):
    def forward(self, z):
        return super().forward(z)[:, :1]


class VectorData(ganzoo.Dataset):
    def __init__(self):
        self.data, self.spec = torch.zeros(4, 2), DataSpec("vector", (2,))

    @classmethod
    def spec_for(cls) -> DataSpec:
        return DataSpec("vector", (2,))


class Zoo:
    @ganzoo.hookimpl
    def register_generators(self, register):
        register("conv_only", ConvGenerator, description="conv", defaults={"latent_dim": 4})
        register("any_mlp", MLPGenerator, description="mlp", defaults={"latent_dim": 4})
        register("eight_px", EightPixelsOnly, description="8 px", defaults={"latent_dim": 4}, resolutions=(8,))
        register("declared", ConvGenerator, description="conv", defaults={"latent_dim": 4}, modalities=("image",))
        register("misshapen", WrongShape, description="bad output", defaults={"latent_dim": 4})

    @ganzoo.hookimpl
    def register_datasets(self, register):
        register("vector_data", VectorData, description="vectors")


@pytest.fixture(scope="module")
def registry():
    with plugin_registry({"modalities-test": Zoo()}, load_entry_points=False) as registry:
        yield registry


@pytest.mark.parametrize("name, modalities", [
    ("conv_only", ("image",)),  # not ("image", "vector"), the default it had before inference
    ("any_mlp", ("image", "vector")),
    ("eight_px", ("image",)),  # tried at its declared resolution
    ("declared", ("image",)),
])
def test_inferred_from_building_and_running_the_factory(registry, name, modalities):
    assert registry.get("generator", name).modalities == modalities


def test_an_image_only_generator_is_incompatible_with_vector_data(registry):
    reason = registry.get("generator", "conv_only").incompatibility(DataSpec("vector", (2,)))
    assert reason == "generator conv_only supports image data, not vector"


def test_a_factory_that_runs_on_no_example_asks_for_a_declaration(registry):
    errors = [str(e.error) for e in registry.errors if "misshapen" in str(e.error)]
    assert len(errors) == 1 and "declares no modalities" in errors[0] and 'modalities=("image",)' in errors[0]
    assert "output of shape (2, 1)" in errors[0]
    assert ("generator", "misshapen") not in registry


def test_a_dataset_is_inferred_from_its_spec_for(registry):
    assert registry.get("dataset", "vector_data").modalities == ("vector",)


def test_registering_leaves_the_global_stream_alone():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with plugin_registry({"modalities-test": Zoo()}, load_entry_points=False):
        pass
    assert torch.equal(torch.rand(2), expected)
