"""The Evaluator the harness calls: metric values, protocol records and the reference cache."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from ganzoo import Dataset, DataSpec, EvalProtocol, FeatureExtractor, Features, UnknownComponentError, hookimpl
from ganzoo.core.records import FAILED
from ganzoo.core.registry import build_registry
from ganzoo.metrics.evaluate import Evaluator, resolve_extractor_name
from ganzoo.metrics.reference import clear_memory_cache
from ganzoo.system import cpu

PROJECTION = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
CLASSES = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))


class Projection(FeatureExtractor):
    """A cheap stand-in for a network: fixed linear features and logits; counts the samples it sees."""

    name, feature_dim, num_classes, weights_hash = "projection", 4, 5, "fixed"
    seen = 0

    def __init__(self, logits: bool = True):
        super().__init__()
        self.logits = logits
        self.register_buffer("w", PROJECTION.clone())

    def forward(self, x):
        Projection.seen += x.shape[0]
        features = x.float() @ self.w
        return Features(features, features @ CLASSES if self.logits else None)


class Blobs(Dataset):
    def __init__(self, n=300, seed=0):
        self.spec = DataSpec("vector", (3,))
        self.data = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
        self.name = "blobs"


class _Plugin:
    @hookimpl
    def register_feature_extractors(self, register):
        register("projection", Projection, description="test projection", defaults={"logits": True})


@pytest.fixture(autouse=True)
def fresh_memory():
    clear_memory_cache()
    yield
    clear_memory_cache()


@pytest.fixture
def registry():
    return build_registry({"test-plugin": _Plugin()}, load_entry_points=False)


def fixed_sampler(samples):
    """``sample_fn`` over a fixed tensor, in order, recording the batch sizes it was asked for."""
    state = {"next": 0, "sizes": []}

    def sample(n):
        state["sizes"].append(n)
        out = samples[state["next"]:state["next"] + n]
        state["next"] += n
        return out

    return sample, state


def protocol(**overrides):
    base = {"extractor": "projection", "n_fake": 200, "n_real": 250, "kid_subsets": 5, "kid_subset_size": 100,
            "batch_size": 64}
    return EvalProtocol(**{**base, **overrides})


def test_metrics_match_an_independent_computation(registry, tmp_path):
    dataset = Blobs()
    fake = torch.randn(200, 3, generator=torch.Generator().manual_seed(5)) * 1.3 + 0.5
    sample, state = fixed_sampler(fake)
    result = Evaluator(dataset, protocol(), "cpu", cache_dir=tmp_path, registry=registry)(sample)
    assert set(result) == {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "density",
                           "coverage"}
    assert state["sizes"] == [64, 64, 64, 8]
    real_f, fake_f = (dataset.data[:250] @ PROJECTION).double().numpy(), (fake @ PROJECTION).double().numpy()
    mu1, mu2 = real_f.mean(0), fake_f.mean(0)
    s1, s2 = np.cov(real_f, rowvar=False), np.cov(fake_f, rowvar=False)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    assert result["fid"] == pytest.approx(expected, rel=1e-6)
    assert 1.0 <= result["is_mean"] <= 5.0 and 0.0 <= result["precision"] <= 1.0


def test_only_requested_metrics_and_no_is_without_logits(registry, tmp_path):
    dataset = Blobs()
    sample, _ = fixed_sampler(torch.randn(200, 3))
    evaluator = Evaluator(dataset, protocol(metrics=("fid", "is"), extractor_hparams={"logits": False}), "cpu",
                          cache_dir=tmp_path, registry=registry)
    assert set(evaluator(sample)) == {"fid"}


def test_equal_protocols_reuse_the_real_features(registry, tmp_path):
    dataset = Blobs()
    first = Evaluator(dataset, protocol(), "cpu", cache_dir=tmp_path, registry=registry)
    seen = Projection.seen
    second = Evaluator(dataset, protocol(), "cpu", cache_dir=tmp_path, registry=registry)
    assert Projection.seen == seen and second.fingerprint == first.fingerprint
    clear_memory_cache()  # a new process: the disk cache still answers
    third = Evaluator(dataset, protocol(), "cpu", cache_dir=tmp_path, registry=registry)
    assert Projection.seen == seen
    torch.testing.assert_close(third.real.features, first.real.features)
    np.testing.assert_array_equal(third.real.sigma, first.real.sigma)


def test_fingerprint_changes_with_what_changes_the_numbers(registry, tmp_path):
    dataset = Blobs()

    def fingerprint(**overrides):
        return Evaluator(dataset, protocol(**overrides), "cpu", cache_dir=tmp_path, registry=registry).fingerprint

    base = fingerprint()
    assert base == fingerprint()
    assert len({base, fingerprint(n_fake=100), fingerprint(n_real=100), fingerprint(kid_subset_size=50),
                fingerprint(metrics=("fid",)), fingerprint(extractor_hparams={"logits": False})}) == 6
    other = Evaluator(Blobs(seed=1), protocol(), "cpu", cache_dir=tmp_path, registry=registry)
    assert other.fingerprint != base  # other real data


def test_protocol_record_is_complete_and_json(registry, tmp_path):
    record = Evaluator(Blobs(n=120), protocol(), "cpu", cache_dir=tmp_path, registry=registry).protocol_record()
    json.dumps(record)
    assert record["extractor"] == "projection" and record["weights_hash"] == "fixed"
    assert record["n_real"] == 120 and record["n_fake"] == 200  # n_real is what the dataset could give
    assert (record["kid_subsets"], record["kid_subset_size"]) == (5, 100)
    assert record["metrics"] == sorted(EvalProtocol().metrics)


def test_auto_extractor_resolution(registry):
    """auto: the dataset's own extractor, else the one registered with the tag default:<modality>."""
    zoo = build_registry()
    vectors = Blobs()
    assert resolve_extractor_name("auto", vectors, zoo) == "identity"
    vectors.default_extractor = "projection"
    assert resolve_extractor_name("auto", vectors, registry) == "projection"
    images = Blobs()
    images.spec = DataSpec("image", (3, 8, 8))
    assert resolve_extractor_name("auto", images, zoo) == "inception_v3_tf"
    assert resolve_extractor_name("projection", images, zoo) == "projection"
    # Nothing tagged default:image, or the dataset's own extractor missing: one line that says what to do.
    with pytest.raises(ValueError, match='tag "default:image" and none is.*GANZOO_BLOCK_PLUGINS.*--extractor'):
        resolve_extractor_name("auto", images, registry)
    vectors.default_extractor = "mine"
    with pytest.raises(ValueError, match='"blobs" is evaluated with feature extractor "mine", which is not registered'):
        resolve_extractor_name("auto", vectors, registry)


@pytest.mark.parametrize("args, missing", [
    (["digits", "digits"], 'feature extractor "digits_classifier", which is not registered'),
    (["ring8", "ring8"], 'feature extractor "identity", which is not registered'),
])
def test_blocked_extractors_plugin_is_one_clear_line(monkeypatch, args, missing):
    from click.testing import CliRunner

    from ganzoo.cli import main
    from ganzoo.testing import plugin_registry

    monkeypatch.setenv("GANZOO_BLOCK_PLUGINS", "extractors")
    with plugin_registry():
        result = CliRunner().invoke(main, ["eval", *args, "-n", "20", "--device", "cpu"])
    assert result.exit_code == 1 and missing in result.output and "GANZOO_BLOCK_PLUGINS" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_blocked_extractors_plugin_fails_a_run_with_the_reason(monkeypatch, tmp_path):
    from ganzoo.run.grid import Filters, build_grid
    from ganzoo.run.suite import load_suite
    from ganzoo.run.train import run
    from ganzoo.testing import plugin_registry

    monkeypatch.setenv("GANZOO_BLOCK_PLUGINS", "extractors")
    with plugin_registry() as zoo:
        spec = build_grid(load_suite("default"), zoo, Filters(dataset=("digits",)), seeds=[0], g_steps=2).specs[0]
        result = run(spec, tmp_path, "cpu", zoo)
    assert result.status == FAILED
    first_line = result.error.splitlines()[0]
    assert 'evaluated with feature extractor "digits_classifier", which is not registered' in first_line


def test_bad_protocols_and_samples(registry, tmp_path):
    dataset = Blobs()
    with pytest.raises(ValueError, match=r"eval.metrics: unknown \['fidd'\]; choose among fid, is, kid, pr, dc"):
        Evaluator(dataset, protocol(metrics=("fid", "fidd")), "cpu", cache_dir=tmp_path, registry=registry)
    with pytest.raises(UnknownComponentError, match="projection"):
        Evaluator(dataset, protocol(extractor="projektion"), "cpu", cache_dir=tmp_path, registry=registry)
    evaluator = Evaluator(dataset, protocol(), "cpu", cache_dir=tmp_path, registry=registry)
    with pytest.raises(ValueError, match="NaN"):
        evaluator(lambda n: torch.full((n, 3), float("nan")))
    with pytest.raises(ValueError, match="returned 1 samples"):
        evaluator(lambda n: torch.zeros(1, 3))


class TinyImages(Dataset):
    def __init__(self):
        self.spec = DataSpec("image", (3, 8, 8))
        self.data = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1


def test_inception_end_to_end(tmp_path):
    from test_inception import random_inception_weights

    from ganzoo_plugins.extractors import inception

    class Plugin:
        @hookimpl
        def register_feature_extractors(self, register):
            inception.register_all(register)

    weights = random_inception_weights(tmp_path / "random.pth")
    registry = build_registry({"inception": Plugin()}, load_entry_points=False)
    proto = EvalProtocol(extractor_hparams={"weights": str(weights)}, n_fake=3, metrics=("fid", "is", "kid"),
                         kid_subset_size=3, kid_subsets=2)
    with pytest.warns(UserWarning) as caught:  # random weights, 3 samples of 2048-d features
        evaluator = Evaluator(TinyImages(), proto, "cpu", cache_dir=tmp_path, registry=registry)
    messages = " | ".join(str(c.message) for c in caught)
    assert "not the standard" in messages and "singular" in messages
    with pytest.warns(UserWarning, match="singular"):
        result = evaluator(lambda n: torch.rand(n, 3, 8, 8) * 2 - 1)
    assert set(result) == {"fid", "is_mean", "is_std", "kid_mean", "kid_std"}
    assert all(np.isfinite(v) for v in result.values())
    record = evaluator.protocol_record()
    assert record["resize"] == "tf" and "weights" not in record["extractor_hparams"] and record["is_splits"] == 3


def test_auto_uses_the_identity_extractor_for_vectors(tmp_path):
    from ganzoo import get_registry

    fake = torch.randn(200, 3, generator=torch.Generator().manual_seed(9)) + 0.2
    sample, _ = fixed_sampler(fake)
    evaluator = Evaluator(Blobs(), protocol(extractor="auto", metrics=("fid", "is")), "cpu", cache_dir=tmp_path,
                          registry=get_registry())
    result = evaluator(sample)
    assert evaluator.protocol_record()["extractor"] == "identity" and set(result) == {"fid"}  # no logits, no IS
    real, gen = Blobs().data[:250].double().numpy(), fake.double().numpy()
    s1, s2 = np.cov(real, rowvar=False), np.cov(gen, rowvar=False)
    expected = np.sum((real.mean(0) - gen.mean(0)) ** 2) + np.trace(s1 + s2) - 2 * np.trace(
        scipy.linalg.sqrtm(s1 @ s2).real)
    assert result["fid"] == pytest.approx(expected, rel=1e-6)


def test_a_tensor_whose_bytes_changed_in_place_gets_another_content_hash():
    """Same address, shape, dtype and version counter, other content: what a worker sees when one
    dataset's tensor is freed and the next dataset's lands where it was (ring-8, then grid-25)."""
    from ganzoo.metrics.reference import content_hash

    data = torch.zeros(2500, 2)
    before, version = content_hash(data), data._version
    data.data.copy_(torch.ones(2500, 2))  # .data writes do not bump the version counter
    assert data._version == version and content_hash(data) != before


@pytest.mark.skipif(not cpu.can_pin(), reason="the CPU kernels are pinned only on x86-64 with AVX2")
def test_a_reference_cached_under_other_kernels_is_not_the_one_a_pinned_run_compares_against(tmp_path):
    """The bug that made results/default irreproducible from a fresh cache: a process with the CPU libraries free
    (GANZOO_CPU_PINNING=0) wrote the digits reference first, and every later pinned run loaded its features,
    which differ from pinned ones in their last bits (FID in its eighth digit)."""
    import os
    import subprocess
    import sys

    if any(os.environ.get(key) != value for key, value in cpu.PINNED.items()):
        pytest.skip("this process does not run the pinned kernels")
    evaluate_digits = ("import sys, torch; from ganzoo import EvalProtocol; "
                       "from ganzoo.metrics.evaluate import Evaluator; "
                       "from ganzoo.core.registry import get_registry; torch.set_num_threads(1); "
                       "d = get_registry().get('dataset', 'digits').build(); "
                       "p = EvalProtocol(n_fake=100, n_real=1797, metrics=('fid',)); "
                       "Evaluator(d, p, 'cpu', cache_dir=sys.argv[1])")
    free = {k: v for k, v in os.environ.items() if k not in cpu.PINNED} | {"GANZOO_CPU_PINNING": "0"}
    subprocess.run([sys.executable, "-c", evaluate_digits, str(tmp_path / "shared")], env=free, check=True)

    from ganzoo.core.registry import get_registry

    digits = get_registry().get("dataset", "digits").build()
    digits_protocol = EvalProtocol(n_fake=100, n_real=1797, metrics=("fid",))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clear_memory_cache()
        shared = Evaluator(digits, digits_protocol, "cpu", cache_dir=tmp_path / "shared")
        clear_memory_cache()
        own = Evaluator(digits, digits_protocol, "cpu", cache_dir=tmp_path / "own")
    finally:
        torch.set_num_threads(threads)
    assert len(list((tmp_path / "shared").iterdir())) == 2  # the free process's entry and this one's, side by side
    assert torch.equal(shared.real.features, own.real.features)
