"""The TF-ported Inception-v3 against torch-fidelity's port on shared random weights, and its weight handling.

No network: random weights in the reference state-dict layout stand in for the published file. Tests of the
published CIFAR-10 values run only when the real weights and CIFAR-10 are on disk (see the skip reasons).
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ganzoo.metrics import frechet_distance, inception_score, kernel_inception_distance
from ganzoo.metrics.fid import feature_statistics
from ganzoo.system.download import DownloadError, sha256_of
from ganzoo_plugins.extractors import inception
from ganzoo_plugins.extractors.inception import InceptionV3TF, resize_bilinear_tf1, resize_clean


def random_inception_weights(path: Path, seed: int = 0) -> Path:
    """Random weights in the reference layout, scaled so that activations stay O(1) through all 94 layers."""
    model, gen = InceptionV3TF(), torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.normal_(0, (2 / module.weight[0].numel()) ** 0.5, generator=gen)
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.weight.uniform_(0.5, 1.5, generator=gen)
            module.bias.normal_(0, 0.1, generator=gen)
            module.running_mean.normal_(0, 0.1, generator=gen)
            module.running_var.uniform_(0.5, 1.5, generator=gen)
        elif isinstance(module, torch.nn.Linear):
            module.weight.normal_(0, 0.05, generator=gen)
            module.bias.normal_(0, 1.0, generator=gen)
    torch.save(model.net.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    return random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth")


@pytest.fixture(scope="module")
def ours(weights_file):
    with pytest.warns(UserWarning, match="not the standard"):
        return inception.inception_v3_tf(weights=str(weights_file))


@pytest.fixture(scope="module")
def theirs(weights_file):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                       feature_extractor_weights_path=str(weights_file))


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (8, 3, 21, 17), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def both_features(ours, theirs, images):
    mine = ours(images.float() / 127.5 - 1)  # float in [-1, 1]; quantisation recovers the bytes
    with torch.no_grad():
        ref_features, ref_logits = theirs(images)
    return mine, ref_features, ref_logits


def test_state_dict_layout_is_the_reference_one(ours, theirs):
    mine = {k: tuple(v.shape) for k, v in ours.net.state_dict().items()}
    reference = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert mine == reference


def tf1_resize_by_definition(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 resize_bilinear (align_corners=False), one output pixel at a time, in float32."""
    in_h, in_w = image.shape
    sy, sx = np.float32(in_h) / np.float32(out_h), np.float32(in_w) / np.float32(out_w)
    out = np.empty((out_h, out_w), np.float32)
    for y in range(out_h):
        fy = np.float32(y) * sy
        y0, y1, dy = int(np.floor(fy)), min(int(np.ceil(fy)), in_h - 1), fy - np.float32(np.floor(fy))
        for x in range(out_w):
            fx = np.float32(x) * sx
            x0, x1, dx = int(np.floor(fx)), min(int(np.ceil(fx)), in_w - 1), fx - np.float32(np.floor(fx))
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * dx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * dx
            out[y, x] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("size_in, size_out", [((5, 7), 11), ((13, 9), 4), ((32, 32), 299)])
def test_tf1_resize_is_bit_exact(size_in, size_out):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.randint(0, 256, (1, 1, *size_in), generator=torch.Generator().manual_seed(0)).float()
    got = resize_bilinear_tf1(x, size_out)
    assert torch.equal(got, interpolate_bilinear_2d_like_tensorflow1x(x, size=(size_out, size_out),
                                                                      align_corners=False))
    if size_out < 50:
        assert np.array_equal(got[0, 0].numpy(), tf1_resize_by_definition(x[0, 0].numpy(), size_out, size_out))


def test_features_match_torch_fidelity(both_features):
    mine, ref_features, ref_logits = both_features
    assert mine.features.shape == (8, 2048) and mine.logits.shape == (8, 1008)
    torch.testing.assert_close(mine.features, ref_features, rtol=1e-4, atol=1e-4 * ref_features.abs().max().item())
    torch.testing.assert_close(mine.logits, ref_logits, rtol=1e-4, atol=1e-4 * ref_logits.abs().max().item())


def test_fid_on_the_same_images_matches_torch_fidelity_features(both_features):
    mine, ref, _ = both_features
    with pytest.warns(UserWarning, match="singular"):
        stats = [feature_statistics(f) for f in (mine.features[:4], mine.features[4:], ref[:4], ref[4:])]
    got, expected = frechet_distance(*stats[0], *stats[1]), frechet_distance(*stats[2], *stats[3])
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_fid_matches_the_torch_fidelity_pipeline(both_features):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    mine, ref, _ = both_features
    stats = [fid_features_to_statistics(ref[:4]), fid_features_to_statistics(ref[4:])]
    expected = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    with pytest.warns(UserWarning, match="singular"):
        got = frechet_distance(*feature_statistics(mine.features[:4]), *feature_statistics(mine.features[4:]))
    assert got == pytest.approx(expected, rel=1e-5)


def test_grey_is_tiled_and_uint8_input_is_accepted(ours, images):
    grey = images[:2, :1]
    tiled = ours(grey.expand(-1, 3, -1, -1).float() / 127.5 - 1)
    torch.testing.assert_close(ours(grey).features, tiled.features, rtol=0, atol=0)


def test_quantisation_rounds_to_the_nearest_level():
    from ganzoo.metrics import quantize_uint8

    levels = torch.arange(256, dtype=torch.float32)
    assert torch.equal(quantize_uint8(levels / 127.5 - 1), levels)  # real data stored as u/127.5 - 1 round-trips
    # 127.5 (x + 1) = 10.4 -> 10, 10.5 -> 11 (half up), beyond the range -> clamped.
    x = torch.tensor([10.4, 10.5, -3.0, 300.0], dtype=torch.float64) / 127.5 - 1
    assert quantize_uint8(x).tolist() == [10.0, 11.0, 0.0, 255.0]


def test_bad_input_raises(ours):
    with pytest.raises(ValueError, match="NaN"):
        ours(torch.full((1, 3, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="1 or 3"):
        ours(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="resize"):
        InceptionV3TF(resize="bicubic")


def test_clean_resize_is_pil_bicubic_in_float():
    from PIL import Image

    x = torch.rand(1, 2, 9, 13, generator=torch.Generator().manual_seed(3)) * 255
    plane = np.asarray(Image.fromarray(x[0, 1].numpy()).resize((299, 299), Image.Resampling.BICUBIC)).clip(0, 255)
    assert np.array_equal(resize_clean(x, 299)[0, 1].numpy(), plane)
    assert torch.allclose(resize_clean(torch.full((1, 1, 7, 7), 42.0), 299), torch.tensor(42.0))
    assert InceptionV3TF(resize="clean").protocol()["resize"] == "clean"


def test_protocol_names_the_weights(ours, weights_file):
    protocol = ours.protocol()
    assert protocol["extractor"] == "inception_v3_tf" and protocol["resize"] == "tf"
    assert protocol["weights_hash"] == sha256_of(weights_file)[:8]


def test_offline_without_weights_says_where_to_get_them(monkeypatch):
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    with pytest.raises(DownloadError) as info:
        inception.inception_v3_tf()
    message = str(info.value)
    assert inception.WEIGHTS_URL in message and inception.WEIGHTS_FILE in message and inception.WEIGHTS_ENV in message


def test_weights_are_checked_against_the_hash_in_their_name(tmp_path, weights_file, monkeypatch):
    wrong = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    wrong.write_bytes(weights_file.read_bytes())
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(wrong))
    with pytest.raises(DownloadError, match="SHA-256"):
        inception.resolve_weights()
    with pytest.raises(DownloadError, match="does not exist"):
        inception.resolve_weights(tmp_path / "missing.pth")


def test_registered_with_its_defaults():
    import ganzoo

    component = ganzoo.get_registry().get("feature_extractor", "inception_v3_tf")
    assert dict(component.defaults) == {"weights": None, "resize": "tf"}


# -- published values (need the real weights and CIFAR-10; never downloaded by the tests) ------------------

CIFAR_ENV = "GANZOO_CIFAR10_ROOT"
needs_real_data = pytest.mark.skipif(
    not (os.environ.get(inception.WEIGHTS_ENV) and os.environ.get(CIFAR_ENV)),
    reason=f"needs {inception.WEIGHTS_ENV}=<{inception.WEIGHTS_FILE}> and {CIFAR_ENV}=<folder with "
           "cifar-10-batches-py> (torchvision layout)",
)


@pytest.mark.slow
@needs_real_data
def test_published_cifar10_values():
    """torch-fidelity's regression values: first 5000 CIFAR-10 train vs 5000 test images."""
    import torchvision

    from ganzoo.metrics import extract_features

    root = os.environ[CIFAR_ENV]
    train = torchvision.datasets.CIFAR10(root, train=True, download=False).data[:5000]
    test = torchvision.datasets.CIFAR10(root, train=False, download=False).data[:5000]
    model = inception.inception_v3_tf()
    real, fake = (extract_features(model, torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(), batch_size=100)
                  for a in (train, test))
    fid = frechet_distance(*feature_statistics(real.features), *feature_statistics(fake.features))
    assert fid == pytest.approx(10.3233274, rel=1e-5)
    assert inception_score(real.logits) == pytest.approx((10.75051, 0.5778723), rel=1e-3)
    kid = kernel_inception_distance(real.features, fake.features)
    assert kid == pytest.approx((-2.907863e-05, 1.023118e-04), rel=1e-3, abs=1e-8)
