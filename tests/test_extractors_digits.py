"""The embedded digits classifiers and the identity extractor.

The held-out accuracy in the weights' JSON is recomputed here from scikit-learn's data directly (not
through the dataset code), the weights' hash is checked three ways, and the stacked classifier's 1000-way
distribution is compared with an outer product of the per-channel softmaxes.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits

from ganzoo import get_registry
from ganzoo.system.download import DownloadError, sha256_of
from ganzoo_plugins.extractors import digits as ext
from ganzoo_plugins.extractors.identity import Identity

FACTS = json.loads((ext.WEIGHTS_PATH.parent / "digits_classifier.json").read_text())


@pytest.fixture(scope="module")
def classifier():
    return get_registry().get("feature_extractor", "digits_classifier").build()


@pytest.fixture(scope="module")
def held_out():
    sk = load_digits()
    x = torch.tensor(sk.images[4::5] / 8.0 - 1.0, dtype=torch.float32)[:, None]
    return x, torch.tensor(sk.target[4::5])


def test_weights_hash_is_recorded_consistently():
    actual = sha256_of(ext.WEIGHTS_PATH)
    assert actual == ext.DIGITS_CLASSIFIER_SHA256 == FACTS["sha256"]


def test_held_out_accuracy_matches_its_record(classifier, held_out):
    x, y = held_out
    with torch.no_grad():
        correct = (classifier(x).logits.argmax(dim=1) == y).sum().item()
    assert len(y) == FACTS["test_size"] == 359
    assert correct / len(y) == pytest.approx(FACTS["test_accuracy"], abs=0.5 / len(y))
    assert FACTS["test_accuracy"] >= 0.97


def test_tampered_weights_are_refused(tmp_path):
    tampered = tmp_path / "digits_classifier.safetensors"
    shutil.copy(ext.WEIGHTS_PATH, tampered)
    with open(tampered, "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ValueError,
                       match="re-run scripts/train_digits_classifier.py and update DIGITS_CLASSIFIER_SHA256"):
        ext.load_digits_net(tampered)
    with pytest.raises(DownloadError, match="missing.safetensors does not exist. Re-run scripts/train_digits"):
        ext.load_digits_net(tmp_path / "missing.safetensors")


def test_features_are_the_pooled_last_convolution(classifier, held_out):
    x = held_out[0][:16]
    weights = load_file(str(ext.WEIGHTS_PATH))
    # Independent forward pass with torch.nn.functional and the raw tensors.
    h = torch.relu(torch.nn.functional.conv2d(x, weights["body.0.weight"], weights["body.0.bias"], padding=1))
    h = torch.relu(torch.nn.functional.conv2d(h, weights["body.2.weight"], weights["body.2.bias"], padding=1))
    h = torch.nn.functional.max_pool2d(h, 2)
    h = torch.relu(torch.nn.functional.conv2d(h, weights["body.5.weight"], weights["body.5.bias"], padding=1))
    pooled = h.mean(dim=(2, 3))
    with torch.no_grad():
        out = classifier(x)
    assert out.features.shape == (16, 64) and out.logits.shape == (16, 10)
    torch.testing.assert_close(out.features, pooled)
    torch.testing.assert_close(out.logits, pooled @ weights["head.weight"].T + weights["head.bias"])


@pytest.mark.parametrize("resolution", [16, 32])
def test_nearest_upsampled_inputs_give_the_same_features(classifier, held_out, resolution):
    x = held_out[0][:32]
    big = x.repeat_interleave(resolution // 8, dim=2).repeat_interleave(resolution // 8, dim=3)
    with torch.no_grad():
        torch.testing.assert_close(classifier(big).features, classifier(x).features)


def test_stacked_classifier_is_the_per_channel_product(classifier, held_out):
    stacked = get_registry().get("feature_extractor", "stacked_digits_classifier").build()
    x = held_out[0][:30].reshape(10, 3, 8, 8)
    with torch.no_grad():
        out = stacked(x)
        per_channel = classifier(x.reshape(30, 1, 8, 8))
    assert stacked.feature_dim == 192 and stacked.num_classes == 1000
    torch.testing.assert_close(out.features, per_channel.features.reshape(10, 192))
    p = torch.softmax(per_channel.logits.double(), dim=1).reshape(10, 3, 10).numpy()
    expected = np.einsum("na,nb,nc->nabc", p[:, 0], p[:, 1], p[:, 2])  # index 100 a + 10 b + c
    np.testing.assert_allclose(torch.softmax(out.logits.double(), dim=1).numpy(), expected.reshape(10, 1000),
                               rtol=1e-4, atol=1e-7)
    digits = per_channel.logits.argmax(dim=1).reshape(10, 3)
    assert out.logits.argmax(dim=1).tolist() == (digits @ torch.tensor([100, 10, 1])).tolist()


def test_extractors_reject_wrong_channels(classifier):
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        classifier(torch.zeros(2, 3, 8, 8))
    stacked = get_registry().get("feature_extractor", "stacked_digits_classifier").build()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        stacked(torch.zeros(2, 1, 8, 8))


def test_registration_metadata_and_protocol(classifier):
    registry = get_registry()
    assert registry.get("feature_extractor", "digits_classifier").channels == (1,)
    assert registry.get("feature_extractor", "stacked_digits_classifier").channels == (3,)
    assert registry.get("feature_extractor", "identity").modalities == ("vector",)
    assert len(classifier.weights_hash) >= 8 and ext.DIGITS_CLASSIFIER_SHA256.startswith(classifier.weights_hash)
    assert classifier.protocol() == {"extractor": "digits_classifier", "weights_hash": classifier.weights_hash}


def test_identity_returns_the_samples():
    identity = Identity()
    x = torch.randn(7, 2, dtype=torch.float64)
    out = identity(x)
    assert out.logits is None and identity.num_classes is None
    assert out.features.dtype == torch.float32 and identity.feature_dim == 2
    torch.testing.assert_close(out.features, x.float())
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        identity(torch.zeros(3))
