"""Built-in datasets: shapes, ranges, labels, determinism, mode metrics with known answers, downloads, folders.

Mode metrics are checked against hand-made samples and closed forms (scipy); downloads run against fake
archives in the original formats, served from tmp_path (file:// and a local http.server), never the network.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import pickle
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from sklearn.datasets import load_digits

from ganzoo import get_registry
from ganzoo.system.download import DownloadError
from ganzoo_plugins.datasets import digits, downloads, image_folder, mixtures

# -- 2-D mixtures ------------------------------------------------------------------------------------


def test_mixture_means_follow_the_published_layout():
    k = np.arange(8)
    ring = np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], axis=1)
    np.testing.assert_allclose(mixtures.ring_means(8).numpy(), ring, atol=1e-12)
    grid = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(p) for p in mixtures.grid_means(5).tolist()} == grid


@pytest.mark.parametrize("name,k,sigma", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_mixture_shapes_labels_determinism(name, k, sigma):
    ds = get_registry().get("dataset", name).build(n=5000, seed=3)
    assert ds.data.shape == (5000, 2) and ds.data.dtype == torch.float32
    assert ds.spec.modality == "vector" and ds.spec.num_classes == k and ds.default_extractor == "identity"
    low, high = ds.spec.value_range
    assert low == ds.data.min().item() and high == ds.data.max().item()
    # Each point lies near the mean its label names: the residuals have the component's sigma.
    residual = ds.data - ds.means[ds.labels]
    assert abs(residual.std().item() - sigma) < 0.05 * sigma
    assert torch.equal(ds.data, get_registry().get("dataset", name).build(n=5000, seed=3).data)
    assert not torch.equal(ds.data, get_registry().get("dataset", name).build(n=5000, seed=4).data)


def test_real_mixture_quality_matches_the_chi_square_closed_form():
    ds = mixtures.ring8(n=100_000, seed=0)
    m = ds.extra_metrics(ds.data)
    # |x - mu| / sigma of a 2-D isotropic Gaussian is chi with 2 dof: P(within 3 sigma) = chi2.cdf(9, 2).
    assert m["high_quality"] == pytest.approx(stats.chi2.cdf(9, df=2), abs=0.002)
    assert m["modes"] == 8 and m["mode_kl"] < 1e-3


def test_mode_metrics_exactly_the_means():
    means = mixtures.grid_means(5)
    m = mixtures.mode_metrics(means.repeat(4, 1), means, 0.05)
    assert m == {"modes": 25.0, "high_quality": 1.0, "mode_kl": 0.0}


def test_mode_metrics_far_away_samples_capture_nothing():
    means = mixtures.ring_means(8)
    m = mixtures.mode_metrics(torch.full((100, 2), 10.0), means, 0.01)
    assert m["modes"] == 0 and m["high_quality"] == 0
    assert m["mode_kl"] == pytest.approx(math.log(8))  # documented value for an empty histogram


def test_mode_metrics_three_modes_and_the_three_sigma_boundary():
    means = mixtures.ring_means(8).float()
    sigma = 0.01
    inside = means[[0, 0, 0, 2, 5]] + torch.tensor([2.9 * sigma, 0.0])
    outside = means[[1, 3]] + torch.tensor([0.0, 3.1 * sigma])
    nan = torch.full((1, 2), float("nan"))
    m = mixtures.mode_metrics(torch.cat([inside, outside, nan]), means, sigma)
    assert m["modes"] == 3
    assert m["high_quality"] == pytest.approx(5 / 8)
    p = np.array([3, 0, 1, 0, 0, 1, 0, 0]) / 5
    assert m["mode_kl"] == pytest.approx(stats.entropy(p, np.full(8, 1 / 8)))


def test_mode_metrics_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        mixtures.mode_metrics(torch.zeros(4, 3), mixtures.ring_means(8), 0.01)


# -- digits and stacked digits -----------------------------------------------------------------------


def test_digits_values_labels_and_split():
    sk = load_digits()
    ds = get_registry().get("dataset", "digits").build(resolution=8)
    assert ds.data.shape == (1797, 1, 8, 8) and ds.spec.num_classes == 10
    np.testing.assert_allclose(ds.data[:, 0].numpy(), sk.images / 8.0 - 1.0, atol=1e-6)
    assert ds.data.min() == -1 and ds.data.max() == 1
    assert torch.equal(ds.labels, torch.from_numpy(sk.target).long())
    train, test = digits.Digits(8, "train"), digits.Digits(8, "test")
    assert (len(train), len(test)) == (1438, 359)
    np.testing.assert_allclose(test.data[:, 0].numpy(), sk.images[4::5] / 8.0 - 1.0, atol=1e-6)


@pytest.mark.parametrize("resolution", [16, 32])
def test_digits_upsampling_is_nearest_by_blocks(resolution):
    small, big = digits.Digits(8), digits.Digits(resolution)
    assert big.spec.shape == (1, resolution, resolution)
    factor = resolution // 8
    blocks = big.data.reshape(-1, 1, 8, factor, 8, factor)
    assert torch.equal(blocks, small.data[:, :, :, None, :, None].expand_as(blocks))


def test_digits_rejects_bad_hparams():
    with pytest.raises(ValueError, match=r"resolution must be one of \(8, 16, 32\)"):
        digits.Digits(resolution=28)
    with pytest.raises(ValueError, match="split must be one of"):
        digits.Digits(split="valid")


def test_stacked_digits_channels_labels_and_balance():
    sk = load_digits()
    ds = digits.StackedDigits(n=3000, seed=1, resolution=8)
    assert ds.data.shape == (3000, 3, 8, 8) and ds.spec.num_classes == 1000
    expected = sk.images[ds.source_index.numpy()] / 8.0 - 1.0  # (n, 3, 8, 8)
    np.testing.assert_allclose(ds.data.numpy(), expected, atol=1e-6)
    t = sk.target[ds.source_index.numpy()]
    assert np.array_equal(ds.labels.numpy(), 100 * t[:, 0] + 10 * t[:, 1] + t[:, 2])
    assert torch.bincount(ds.labels, minlength=1000).tolist() == [3] * 1000
    assert torch.equal(ds.data, digits.StackedDigits(n=3000, seed=1, resolution=8).data)
    assert not torch.equal(ds.data, digits.StackedDigits(n=3000, seed=2, resolution=8).data)


def _class_means() -> torch.Tensor:
    """The mean image of each digit, (10, 1, 8, 8) in [-1, 1]: an unambiguous example of every class."""
    sk = load_digits()
    means = np.stack([sk.images[sk.target == d].mean(axis=0) for d in range(10)]) / 8.0 - 1.0
    return torch.from_numpy(means).float()[:, None]


def test_stacked_digits_modes_on_hand_made_triples():
    mean_image = _class_means()[:, 0]
    triples = [(1, 2, 3)] * 4 + [(9, 0, 7)] * 4 + [(5, 5, 5)] * 4
    samples = torch.stack([mean_image[list(t)] for t in triples])  # (12, 3, 8, 8)
    ds = digits.StackedDigits(n=1000, resolution=8)
    m = ds.extra_metrics(samples)
    assert m["modes"] == 3
    assert m["mode_kl"] == pytest.approx(math.log(1000 / 3))
    upsampled = digits.upsample(samples, 32)  # area-resizing undoes it: same answer at 32x32
    assert digits.StackedDigits(n=1000, resolution=32).extra_metrics(upsampled) == m
    garbage = ds.extra_metrics(torch.full((5, 3, 8, 8), float("nan")))
    assert garbage["modes"] == 0 and garbage["mode_kl"] == pytest.approx(math.log(1000))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ds.extra_metrics(samples[:, :1])


def test_digits_class_metrics():
    ds = digits.Digits(8)
    samples = _class_means().repeat(3, 1, 1, 1)  # every class equally often
    m = ds.extra_metrics(samples)
    data_share = np.bincount(load_digits().target, minlength=10) / 1797
    assert m["classes"] == 10
    assert m["class_kl"] == pytest.approx(stats.entropy(np.full(10, 0.1), data_share))


# -- downloaded datasets (fake archives, no network) ------------------------------------------------


def _idx_gz(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _fake_mnist(folder, n=(6, 4)) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for split, count in zip(("train", "test"), n, strict=True):
        images_file, labels_file = downloads._IDX_FILES[split]
        images, labels = rng.integers(0, 256, (count, 28, 28)), rng.integers(0, 10, count)
        _idx_gz(folder / images_file, images)
        _idx_gz(folder / labels_file, labels)
        out[split] = (images, labels)
    return out


def _numpy1_pickle(obj) -> bytes:
    # The real batches were pickled with numpy 1, which names numpy.core.multiarray.
    return pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def _fake_cifar(folder) -> dict:
    rng = np.random.default_rng(1)
    out = {}
    with tarfile.open(folder / downloads.CIFAR10_FILE, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data, labels = rng.integers(0, 256, (2, 3072)).astype(np.uint8), rng.integers(0, 10, 2).tolist()
            blob = _numpy1_pickle({b"data": data, b"labels": labels, b"batch_label": name.encode()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            out[name] = (data, labels)
    return out


def _point_table_at(monkeypatch, name, folder, base_url):
    sums = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in downloads.ARCHIVES[name].sha256}
    monkeypatch.setitem(downloads.ARCHIVES, name, downloads.Archive(base_url, sums, name))


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANZOO_CACHE", str(cache))
    return cache


def test_mnist_from_root_pads_to_32(monkeypatch, tmp_path, fresh_cache):
    truth = _fake_mnist(tmp_path)
    _point_table_at(monkeypatch, "mnist", tmp_path, "https://example.invalid/")
    ds = get_registry().get("dataset", "mnist").build(root=str(tmp_path), split="test")
    images, labels = truth["test"]
    assert ds.data.shape == (4, 1, 32, 32) and ds.default_extractor is None
    np.testing.assert_allclose(ds.data[:, 0, 2:30, 2:30].numpy(), images / 127.5 - 1.0, atol=1e-6)
    assert (ds.data[:, :, :2] == -1).all() and (ds.data[..., 30:] == -1).all()
    assert ds.labels.tolist() == labels.tolist()
    assert downloads.DownloadedImages("mnist", root=str(tmp_path), resolution=28).data.shape == (6, 1, 28, 28)


def test_fashion_mnist_download_through_file_url_then_cache(monkeypatch, tmp_path, fresh_cache):
    server = tmp_path / "server"
    server.mkdir()
    truth = _fake_mnist(server)
    _point_table_at(monkeypatch, "fashion_mnist", server, server.as_uri() + "/")
    monkeypatch.setenv("GANZOO_OFFLINE", "0")
    ds = downloads.DownloadedImages("fashion_mnist", split="train", resolution=28)
    np.testing.assert_allclose(ds.data[:, 0].numpy(), truth["train"][0] / 127.5 - 1.0, atol=1e-6)
    assert (fresh_cache / "fashion_mnist" / "train-images-idx3-ubyte.gz").is_file()
    monkeypatch.setenv("GANZOO_OFFLINE", "1")  # now served from the cache
    assert torch.equal(downloads.DownloadedImages("fashion_mnist", resolution=28).data, ds.data)


def test_cifar10_download_from_local_http_server(monkeypatch, tmp_path, fresh_cache):
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    truth = _fake_cifar(server_dir)
    handler = partial(SimpleHTTPRequestHandler, directory=str(server_dir))
    handler.log_message = lambda *args: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            _point_table_at(monkeypatch, "cifar10", server_dir, f"http://127.0.0.1:{httpd.server_address[1]}/")
            monkeypatch.setenv("GANZOO_OFFLINE", "0")
            train = downloads.DownloadedImages("cifar10", split="train")
        finally:
            httpd.shutdown()
            thread.join(timeout=5)
    expected = np.concatenate([truth[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert train.data.shape == (10, 3, 32, 32) and train.spec.channels == 3
    np.testing.assert_allclose(train.data.numpy(), expected / 127.5 - 1.0, atol=1e-6)
    assert train.labels.tolist() == [y for i in range(1, 6) for y in truth[f"data_batch_{i}"][1]]
    test = downloads.DownloadedImages("cifar10", split="test", resolution=16)  # from the cache now
    assert test.data.shape == (2, 3, 16, 16) and test.labels.tolist() == truth["test_batch"][1]


def test_offline_error_names_file_url_and_destination(fresh_cache):
    with pytest.raises(DownloadError) as info:
        downloads.DownloadedImages("mnist", split="train")
    message = str(info.value)
    url = downloads.ARCHIVES["mnist"].base_url + "train-images-idx3-ubyte.gz"
    assert url in message and "GANZOO_OFFLINE" in message
    assert str(fresh_cache / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert "root=" in message and "GANZOO_MNIST_ROOT" in message


def test_env_root_and_checksum_mismatch(monkeypatch, tmp_path, fresh_cache):
    _fake_mnist(tmp_path)
    monkeypatch.setenv("GANZOO_MNIST_ROOT", str(tmp_path))
    with pytest.raises(DownloadError, match="SHA-256"):  # the real table does not match the fake files
        downloads.DownloadedImages("mnist")
    _point_table_at(monkeypatch, "mnist", tmp_path, "https://example.invalid/")
    assert len(downloads.DownloadedImages("mnist")) == 6
    with pytest.raises(DownloadError, match=r"t10k-images-idx3-ubyte.gz is not in"):
        downloads.DownloadedImages("mnist", root=str(tmp_path / "elsewhere"), split="test")


def test_cifar_unpickler_refuses_other_objects():
    evil = pickle.dumps({b"data": print}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        downloads._NumpyOnlyUnpickler(io.BytesIO(evil), encoding="bytes").load()


def test_downloaded_datasets_reject_bad_hparams():
    with pytest.raises(ValueError, match='split must be "train" or "test"'):
        downloads.DownloadedImages("mnist", split="val")


# -- image folders -----------------------------------------------------------------------------------


def _wide_image(width=30, height=10) -> Image.Image:
    """Black sides, white centre square: after a centre crop only white remains."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    left = (width - height) // 2
    pixels[:, left:left + height] = 255
    return Image.fromarray(pixels)


def test_image_folder_reads_formats_recursively_and_centre_crops(tmp_path):
    (tmp_path / "sub").mkdir()
    for i, ext in enumerate(image_folder.EXTENSIONS):
        _wide_image().save(tmp_path / ("sub" if i % 2 else ".") / f"img{i}{ext}", quality=100, lossless=True)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = get_registry().get("dataset", "image_folder").build(path=str(tmp_path), resolution=8)
    assert ds.data.shape == (5, 3, 8, 8) and ds.default_extractor is None
    assert ds.data.min() > 0.9  # only the white centre survived (JPEG may perturb a little)
    grey = image_folder.ImageFolder(str(tmp_path), resolution=6, channels=1, limit=2)
    assert grey.data.shape == (2, 1, 6, 6)


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="path="):
        get_registry().get("dataset", "image_folder").build()
    with pytest.raises(ValueError, match="no images"):
        image_folder.ImageFolder(str(tmp_path))
    with pytest.raises(ValueError, match="not a folder"):
        image_folder.ImageFolder(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="channels must be 1"):
        image_folder.ImageFolder(str(tmp_path), channels=4)


def test_every_builtin_dataset_declares_its_modality():
    registered = {c.name: c for c in get_registry().list("dataset")}
    expected = {"ring8": "vector", "grid25": "vector", "digits": "image", "stacked_digits": "image",
                "mnist": "image", "fashion_mnist": "image", "cifar10": "image", "image_folder": "image"}
    for name, modality in expected.items():
        assert registered[name].modalities == (modality,)


@pytest.mark.parametrize("name, hparams, shape", [
    ("cifar10", {}, (3, 32, 32)),
    ("mnist", {"resolution": 28}, (1, 28, 28)),
    ("image_folder", {"path": "/nowhere", "resolution": 16}, (3, 16, 16)),
])
def test_spec_is_known_without_the_files(name, hparams, shape):
    import ganzoo
    from ganzoo.run.grid import data_spec_of

    component = ganzoo.build_registry().get("dataset", name)
    spec = data_spec_of(component, component.hparams(hparams))
    assert spec.modality == "image" and spec.shape == shape
