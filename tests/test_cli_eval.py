"""``ganzoo eval REAL FAKE`` through click's test runner: folders, datasets, checkpoints, formats and errors."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner
from PIL import Image

from ganzoo import Dataset, DataSpec, FeatureExtractor, Features, hookimpl
from ganzoo.cli.eval import eval_command
from ganzoo.core.registry import build_registry, reset_registry
from ganzoo.metrics.reference import clear_memory_cache

MIXER = torch.randn(16, 6, generator=torch.Generator().manual_seed(0))


class Flatten(FeatureExtractor):
    """Pixels as features; logits from a fixed random matrix."""

    name, feature_dim, num_classes, weights_hash = "flatten", 16, 6, "none"

    def forward(self, x):
        features = x.reshape(x.shape[0], -1).float()
        return Features(features, features @ MIXER)


class TinyGrey(Dataset):
    default_extractor = "flatten"

    def __init__(self):
        self.spec = DataSpec("image", (1, 4, 4))
        levels = torch.randint(0, 256, (60, 1, 4, 4), generator=torch.Generator().manual_seed(1))
        self.data = levels.float() / 127.5 - 1
        self.name = "tiny_grey"


class _Plugin:
    @hookimpl
    def register_feature_extractors(self, register):
        register("flatten", Flatten, description="pixels as features", defaults={})

    @hookimpl
    def register_datasets(self, register):
        register("tiny_grey", TinyGrey, description="60 random 4x4 grey images", defaults={})


@pytest.fixture
def test_registry():
    clear_memory_cache()
    reset_registry(build_registry({"cli-test": _Plugin()}, load_entry_points=False))
    yield
    reset_registry()
    clear_memory_cache()


def write_images(folder, array):
    folder.mkdir()
    for i, image in enumerate(array):
        Image.fromarray(image.squeeze()).save(folder / f"{i:03d}.png")
    return folder


def invoke(*args):
    return CliRunner().invoke(eval_command, [str(a) for a in args])


def numpy_fid(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(0) - b.mean(0)
    return diff @ diff + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)


def test_dataset_against_folder_json(test_registry, tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (50, 4, 4, 1), dtype=np.uint8)
    folder = write_images(tmp_path / "fake", pixels)
    result = invoke("tiny_grey", folder, "--format", "json", "--kid-subset-size", "20", "--device", "cpu")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "density",
                        "coverage", "protocol"}
    protocol = out["protocol"]
    assert protocol["extractor"] == "flatten" and (protocol["n_real"], protocol["n_fake"]) == (60, 50)
    real = TinyGrey().data.reshape(60, -1).numpy()
    fake = pixels.reshape(50, -1) / 127.5 - 1
    assert out["fid"] == pytest.approx(numpy_fid(real, fake), rel=1e-6)


def test_table_and_sample_count(test_registry, tmp_path):
    folder = write_images(tmp_path / "fake", np.zeros((30, 4, 4, 1), dtype=np.uint8) + 7)
    result = invoke("tiny_grey", folder, "-n", "25", "--metrics", "fid,pr", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "kid" not in result.output.split("protocol")[0]
    assert "n_real=25" in result.output and "n_fake=25" in result.output


def test_checkpoint_side_draws_from_the_generator(test_registry, tmp_path, monkeypatch):
    class Generator(torch.nn.Module):
        latent_dim = 2

        def forward(self, z):
            return torch.tanh(z @ torch.ones(2, 16)).reshape(-1, 1, 4, 4)

    import ganzoo.run.build

    monkeypatch.setattr(ganzoo.run.build, "load_generator", lambda path, device: (Generator(), None))
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"stand-in")
    result = invoke("tiny_grey", checkpoint, "-n", "40", "--metrics", "fid,is", "--format", "json",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["protocol"]["n_fake"] == 40


def test_errors_name_the_problem(test_registry, tmp_path):
    result = invoke("tiny_grey", tmp_path / "nowhere")
    assert result.exit_code == 2 and "neither a folder of images" in result.output
    result = invoke("tiny_grey", "tiny_grey", "--metrics", "fid,fidd")
    assert result.exit_code == 1 and "--metrics: unknown ['fidd']" in result.output
    result = invoke("tiny_grey", "tiny_grey", "--weights", tmp_path / "w.pth")
    assert result.exit_code == 1 and 'has no hyperparameter "weights"' in result.output


def test_two_folders_with_the_standard_inception(tmp_path):
    from test_inception import random_inception_weights

    weights = random_inception_weights(tmp_path / "random.pth")
    rng = np.random.default_rng(3)
    real = write_images(tmp_path / "real", rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8))
    fake = write_images(tmp_path / "fake", rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8))
    with pytest.warns(UserWarning):
        result = invoke(real, fake, "--weights", weights, "--metrics", "fid,is", "--format", "json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert np.isfinite(out["fid"]) and out["is_mean"] >= 1.0
    assert out["protocol"]["extractor"] == "inception_v3_tf" and out["protocol"]["resize"] == "tf"
    assert len(out["protocol"]["weights_hash"]) == 8


def test_image_folders_read_back_exactly(tmp_path):
    from ganzoo.metrics import read_images

    rgb = np.random.default_rng(4).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    images = read_images(write_images(tmp_path / "rgb", rgb))
    assert images.shape == (5, 3, 6, 7)
    np.testing.assert_array_equal(((images + 1) * 127.5).round().numpy(), rgb.transpose(0, 3, 1, 2))
    grey = read_images(write_images(tmp_path / "grey", rgb[..., :1]), n=2)
    assert grey.shape == (2, 1, 6, 7)
    Image.fromarray(rgb[0, :3]).save(tmp_path / "rgb" / "999.png")
    with pytest.raises(ValueError, match="one size"):
        read_images(tmp_path / "rgb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        read_images(tmp_path / "empty")


def test_an_undecodable_image_is_one_line_naming_it(tmp_path):
    from PIL import Image

    for folder in ("real", "fake"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            Image.new("L", (8, 8), color=i * 40).save(tmp_path / folder / f"{i}.png")
    (tmp_path / "fake" / "3.png").write_bytes(b"not a png")
    good = (tmp_path / "real" / "0.png").read_bytes()
    (tmp_path / "real" / "9.png").write_bytes(good[: len(good) // 2])  # truncated: opens, fails to decode
    for real, fake, culprit in (("fake", "real", "3.png"), ("real", "fake", "9.png")):
        result = CliRunner().invoke(eval_command, [str(tmp_path / real), str(tmp_path / fake), "--extractor",
                                           "digits_classifier", "--metrics", "fid"])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert culprit in result.output and "remove or replace it" in result.output


def test_eval_of_a_run_checkpoint_reproduces_the_recorded_numbers_and_fingerprint(tmp_path):
    import json

    from ganzoo.core.records import DONE
    from ganzoo.core.registry import build_registry
    from ganzoo.core.store import Store
    from ganzoo.run.grid import Filters
    from ganzoo.run.suite import load_suite
    from ganzoo.sweep import bench

    summary = bench(load_suite("default"), tmp_path, registry=build_registry(), progress=False, echo=lambda _: None,
                    executor="inline", seeds=[1], g_steps=40,
                    filters=Filters(dataset=("ring8",), loss=("ns",), stabilizer=("ema",)))
    assert list(summary.results.values()) == [DONE]
    (row,) = Store(tmp_path, readonly=True).runs("default")
    result = CliRunner().invoke(eval_command, [str(tmp_path / "runs" / row["run_id"]), "--format", "json",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["protocol"]["fingerprint"] == row["fingerprint"]
    assert {k: v for k, v in out.items() if k not in ("protocol", "recorded")} == row["metrics"]  # exactly equal


def test_eval_of_a_runs_dataset_and_checkpoint_under_its_protocol_gives_its_fingerprint(tmp_path):
    """Regression: `ganzoo eval REAL FAKE` built its protocol record by hand (no reference, is_splits, pr_k, dc_k,
    seed), so its fingerprint could never equal a run's. Under the run's protocol and evaluation latents the two
    agree on the fingerprint and on every number."""
    import testzoo

    from ganzoo.cli import main
    from ganzoo.run.evaluate import EVAL_SEED_OFFSET
    from ganzoo.run.train import run
    from ganzoo.testing import plugin_registry

    spec = testzoo.tiny_spec("blobs", seed=3, g_steps=2, eval_every_g_steps=2)
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as registry:
        result = run(spec, tmp_path / "run", "cpu", registry)
        assert result.status == "done", result.error
        p = spec.protocol
        out = CliRunner().invoke(main, [
            "eval", "blobs", str(tmp_path / "run" / "checkpoint.pt"), "-n", str(p.n_fake), "--n-real", str(p.n_real),
            "--metrics", ",".join(p.metrics), "--batch-size", str(p.batch_size), "--device", "cpu",
            "--seed", str(spec.seed + EVAL_SEED_OFFSET), "--format", "json"])
        assert out.exit_code == 0, out.output
        data = json.loads(out.output)
        assert data.pop("protocol") == {**result.protocol, "fingerprint": result.fingerprint}
        assert set(data) == {"precision", "recall"}  # the run also recorded its dataset's own measure (modes)
        assert data.items() <= result.evals[-1]["metrics"].items()  # exactly equal
        # Another sample count is another protocol, and says so.
        other = CliRunner().invoke(main, ["eval", "blobs", str(tmp_path / "run" / "checkpoint.pt"), "-n", "40",
                                          "--metrics", "pr", "--device", "cpu", "--format", "json"])
        assert other.exit_code == 0, other.output
        assert json.loads(other.output)["protocol"]["fingerprint"] != result.fingerprint
