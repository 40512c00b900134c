"""``check_dataset``, ``check_feature_extractor``, ``check_metric`` and ``check_loss``: every built-in passes, and
each check fails on a component broken in one named way, with a message that names the fault and its fix."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ganzoo
from ganzoo import Dataset, DataSpec, FeatureExtractor, Features, Loss, Metric
from ganzoo.core.registry import get_registry
from ganzoo.testing import check_dataset, check_feature_extractor, check_loss, check_metric, plugin_registry
from ganzoo_plugins.datasets import downloads
from ganzoo_plugins.extractors.inception import InceptionV3TF

REGISTRY = get_registry()
BUILTIN = "ganzoo"


def builtin(kind: str) -> list[str]:
    return [c.name for c in REGISTRY.list(kind) if c.distribution == BUILTIN]


# -- every built-in passes -----------------------------------------------------------------------------------

# The datasets that read files are given small stand-ins; the others build as a user's run builds them.
FILE_DATASETS = {"mnist", "fashion_mnist", "cifar10", "image_folder"}


def test_every_builtin_dataset_extractor_and_metric_is_checked():
    """The parametrisations below cover what is registered: a new built-in cannot go unchecked."""
    assert set(DATASETS) == set(builtin("dataset"))
    assert set(EXTRACTORS) == set(builtin("feature_extractor"))
    assert set(METRICS) == {m.name for m in REGISTRY.metrics() if m.distribution == BUILTIN}


def idx_gz(path, array: np.ndarray) -> None:
    """An idx file of unsigned bytes, as MNIST publishes them."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def cifar_tar(path) -> None:
    """CIFAR-10's archive layout with two random images per batch (pickled as numpy 1 did)."""
    rng = np.random.default_rng(1)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {b"data": rng.integers(0, 256, (2, 3072)).astype(np.uint8), b"labels": [1, 7]}
            blob = pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def stand_in_files(name: str, folder, monkeypatch) -> dict:
    """Files for a dataset that reads them, with the checksum table pointed at them; returns its hparams."""
    folder.mkdir()
    if name == "image_folder":
        for i in range(3):
            Image.fromarray(np.full((10, 12, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
        return {"path": str(folder), "resolution": 8}
    rng = np.random.default_rng(0)
    for filename in downloads.ARCHIVES[name].sha256:
        if filename == downloads.CIFAR10_FILE:
            cifar_tar(folder / filename)
        elif "labels" in filename:
            idx_gz(folder / filename, rng.integers(0, 10, 5))
        else:
            idx_gz(folder / filename, rng.integers(0, 256, (5, 28, 28)))
    sums = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in downloads.ARCHIVES[name].sha256}
    monkeypatch.setitem(downloads.ARCHIVES, name, downloads.Archive("https://example.invalid/", sums, name))
    monkeypatch.setenv("GANZOO_CACHE", str(folder.parent / "cache"))
    return {"root": str(folder)}


DATASETS = builtin("dataset")


@pytest.mark.parametrize("name", DATASETS)
def test_builtin_dataset_passes_check_dataset(name, tmp_path, monkeypatch):
    hparams = stand_in_files(name, tmp_path / "files", monkeypatch) if name in FILE_DATASETS else {}
    dataset = check_dataset(REGISTRY.get("dataset", name), hparams, registry=REGISTRY)
    assert isinstance(dataset, Dataset) and len(dataset) > 0


EXTRACTORS = builtin("feature_extractor")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n == "inception_v3_tf" else n for n in EXTRACTORS])
def test_builtin_extractor_passes_check_feature_extractor(name):
    component = REGISTRY.get("feature_extractor", name)
    if name == "inception_v3_tf":  # its standard weights are a download: random ones keep the shapes and the code
        extractor = InceptionV3TF(weights_hash="random")
        checked = check_feature_extractor(extractor, DataSpec("image", (3, 32, 32)), batch=2)
    else:
        checked = check_feature_extractor(component)
    assert checked.feature_dim > 0


METRICS = [m.name for m in REGISTRY.metrics() if m.distribution == BUILTIN]


@pytest.mark.parametrize("name", METRICS)
def test_builtin_metric_passes_check_metric(name):
    check_metric(REGISTRY.metric(name))


def test_metric_is_exported_at_the_top_level():
    assert ganzoo.Metric is Metric and "Metric" in ganzoo.__all__
    assert isinstance(REGISTRY.metric("fid"), ganzoo.Metric)


# -- datasets broken one way each ----------------------------------------------------------------------------


class Blobs(Dataset):
    """40 labelled 2-D points in two blobs: the dataset the faults below are made from."""

    def __init__(self, n: int = 40):
        self.labels = torch.arange(n) % 2
        self.data = (self.labels.float()[:, None] * 2 - 1) * 0.5 + 0.1 * torch.randn(
            n, 2, generator=torch.Generator().manual_seed(0))
        self.spec = DataSpec("vector", (2,), num_classes=2, value_range=(-1.0, 1.0))

    @classmethod
    def spec_for(cls, n: int = 40) -> DataSpec:
        return DataSpec("vector", (2,), num_classes=2)


class LabelsOfOtherSamples(Blobs):
    def sample_labelled(self, n, generator):  # one draw too many: other indices than sample's
        torch.randint(len(self), (1,), generator=generator)
        return super().sample_labelled(n, generator)


class GlobalStream(Blobs):
    def sample(self, n, generator):  # ignores the generator it is given
        return self.data[torch.randint(len(self), (n,))]


class WrongSpecFor(Blobs):
    @classmethod
    def spec_for(cls, n: int = 40) -> DataSpec:
        return DataSpec("vector", (3,), num_classes=2)


class OutOfRange(Blobs):
    def __init__(self):
        super().__init__()
        self.data = self.data * 10


class LabelsWithoutClasses(Blobs):
    def __init__(self):
        super().__init__()
        self.spec = DataSpec("vector", (2,))


class FreshRealSamples(Blobs):
    def real_samples(self, n, generator):  # fresh draws, but the note still says "resampled"
        return 0.5 * torch.randn(n, 2, generator=generator).clamp(-1, 1)


class UnknownExtractor(Blobs):
    default_extractor = "no_such_extractor"


BROKEN_DATASETS = [
    (LabelsOfOtherSamples, "sample_labelled must draw the very samples sample draws"),
    (GlobalStream, "draw only from the torch.Generator it is given"),
    (WrongSpecFor, r"spec_for\(\*\*hparams\) gives"),
    (OutOfRange, "outside spec.value_range"),
    (LabelsWithoutClasses, "has labels but spec.num_classes is None"),
    (FreshRealSamples, "overrides real_samples but not real_samples_note"),
    (UnknownExtractor, '"no_such_extractor" is not a registered feature extractor'),
]


def test_the_blobs_pass():
    check_dataset(Blobs, registry=REGISTRY)


@pytest.mark.parametrize("factory, fault", BROKEN_DATASETS, ids=[f.__name__ for f, _ in BROKEN_DATASETS])
def test_check_dataset_names_the_fault(factory, fault):
    with pytest.raises(AssertionError, match=fault):
        check_dataset(factory, registry=REGISTRY)


def test_check_dataset_rejects_a_factory_that_returns_no_dataset():
    with pytest.raises(AssertionError, match="must return an instance of a ganzoo.Dataset subclass"):
        check_dataset(lambda: torch.zeros(3, 2))


def test_check_dataset_leaves_the_global_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_dataset(Blobs)
    assert torch.equal(torch.rand(3), expected)


# -- feature extractors broken one way each ------------------------------------------------------------------


class Projection(FeatureExtractor):
    """Flattened samples times a fixed matrix: the extractor the faults below are made from."""

    name, weights_hash, feature_dim, num_classes = "projection", "none", 3, None

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 3, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        return Features(x.flatten(1) @ self.weight)


class WrongDimension(Projection):
    feature_dim = 8


class BatchStatistics(Projection):
    def forward(self, x):
        features = x.flatten(1) @ self.weight
        return Features(features - features.mean(0))  # depends on the other samples of the batch


class LogitsWithoutClasses(Projection):
    def forward(self, x):
        return Features(x.flatten(1) @ self.weight, logits=x.flatten(1))


class NoWeightsHash(Projection):
    weights_hash = ""


BROKEN_EXTRACTORS = [
    (WrongDimension, "declares feature_dim = 8 but gives 3 features"),
    (BatchStatistics, "change with the batch it is in"),
    (LogitsWithoutClasses, "gives logits but num_classes is None"),
    (NoWeightsHash, "set weights_hash"),
]
VECTORS = DataSpec("vector", (2,))


def test_the_projection_passes():
    check_feature_extractor(Projection(), VECTORS)


@pytest.mark.parametrize("cls, fault", BROKEN_EXTRACTORS, ids=[c.__name__ for c, _ in BROKEN_EXTRACTORS])
def test_check_feature_extractor_names_the_fault(cls, fault):
    with pytest.raises(AssertionError, match=fault):
        check_feature_extractor(cls(), VECTORS)


def test_check_feature_extractor_wants_the_registered_name():
    class Registered:
        @ganzoo.hookimpl
        def register_feature_extractors(self, register):
            register("projection_v2", Projection, description="a fixed projection", modalities=("vector",))

    with plugin_registry({"kit-test": Registered()}, load_entry_points=False) as registry:
        with pytest.raises(AssertionError, match="registered as 'projection_v2'"):
            check_feature_extractor(registry.get("feature_extractor", "projection_v2"))


# -- metrics broken one way each -----------------------------------------------------------------------------


def mean_gap(real, fake, protocol):
    """Distance between the feature means: lower is better."""
    return float((real.features.mean(0) - fake.features.mean(0)).norm())


def wrong_direction(real, fake, protocol):
    return mean_gap(real, fake, protocol)


def missing_column(real, fake, protocol):
    return {"gap_mean": mean_gap(real, fake, protocol)}


def reads_logits(real, fake, protocol):
    return float(fake.logits.softmax(1).max(1).values.mean())


def global_stream(real, fake, protocol):
    noise = torch.rand(())  # the global stream, not a seeded generator of its own
    return mean_gap(real, fake, protocol) + float(noise)


def in_place(real, fake, protocol):
    real.features -= fake.features.mean(0)
    return float(real.features.mean(0).norm())


BROKEN_METRICS = [
    (Metric("gap", wrong_direction, lower_is_better=False, description="x"), "yet lower_is_better=False"),
    (Metric("gap", missing_column, lower_is_better=True, description="x"), r"without its declared columns \['gap'\]"),
    (Metric("confidence", reads_logits, lower_is_better=False, description="x"), "declares needs_logits=True"),
    (Metric("gap", global_stream, lower_is_better=True, description="x"), "two calls on the same features"),
    (Metric("gap", in_place, lower_is_better=True, description="x"), "changed real.features in place"),
]


def test_the_mean_gap_passes():
    check_metric(Metric("gap", mean_gap, lower_is_better=True, description="x"))


@pytest.mark.parametrize("metric, fault", BROKEN_METRICS, ids=[m.compute.__name__ for m, _ in BROKEN_METRICS])
def test_check_metric_names_the_fault(metric, fault):
    with pytest.raises(AssertionError, match=fault):
        check_metric(metric)


# -- losses: the relativistic G side -------------------------------------------------------------------------


class RelativisticAverage(Loss):
    """RaSGAN written as a newcomer would: its g_loss reads real logits, but uses_real_logits_in_g is unset."""

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        softplus = nn.functional.softplus
        return softplus(-(real_logits - fake_logits.mean())).mean() + softplus(fake_logits - real_logits.mean()).mean()

    def g_loss(self, fake_logits, real_logits=None):
        softplus = nn.functional.softplus
        return softplus(-(fake_logits - real_logits.mean())).mean() + softplus(real_logits.flatten()
                                                                               - fake_logits.mean()).mean()


def test_check_loss_names_uses_real_logits_in_g():
    with pytest.raises(AssertionError, match="must set the class attribute uses_real_logits_in_g = True"):
        check_loss(RelativisticAverage())

    class Declared(RelativisticAverage):
        uses_real_logits_in_g = True

    check_loss(Declared())
