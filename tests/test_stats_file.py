"""Reference statistics files (``ganzoo stats``): the pytorch-fid layout, its metadata, and evaluating against it.

On the 60 random 4x4 images of ``test_cli_eval``'s test registry, whose extractor takes the pixels as features, so
the features are known without running any extractor.
"""

import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_cli import write_suite
from test_cli_eval import TinyGrey, _Plugin, numpy_fid, write_images

from ganzoo.api.judgement import Judgement
from ganzoo.cli import main
from ganzoo.core.registry import build_registry, reset_registry
from ganzoo.core.spec import EvalProtocol
from ganzoo.metrics.evaluate import Evaluator
from ganzoo.metrics.reference import clear_memory_cache
from ganzoo.metrics.stats_file import StatsFileError, read_stats
from ganzoo.run.suite import SuiteError, load_suite


@pytest.fixture
def registry():
    clear_memory_cache()
    reset_registry(build_registry({"cli-test": _Plugin()}, load_entry_points=False))
    yield
    reset_registry()
    clear_memory_cache()


@pytest.fixture
def fake(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (50, 4, 4, 1), dtype=np.uint8)
    return write_images(tmp_path / "fake", pixels)


def real_features() -> np.ndarray:
    """What the ``flatten`` extractor gives for the dataset: its pixels, one row per image."""
    return TinyGrey().data.reshape(60, -1).double().numpy()


def fake_features(folder) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p), dtype=np.float64).reshape(-1) / 127.5 - 1
                     for p in sorted(folder.glob("*.png"))])


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def stats_file(tmp_path):
    path = tmp_path / "ref.npz"
    result = invoke("stats", "tiny_grey", "--out", path, "--device", "cpu")
    assert result.exit_code == 0, result.output
    return path


def evaluate(*args):
    result = invoke("eval", *args, "--format", "json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_file_holds_numpys_mean_and_covariance_and_what_made_them(registry, tmp_path):
    path = stats_file(tmp_path)
    with np.load(path, allow_pickle=False) as archive:  # numpy's own reader, as pytorch-fid reads it
        arrays = {k: archive[k] for k in archive.files}
    features = real_features()
    assert arrays["mu"].dtype == np.float64 and arrays["sigma"].dtype == np.float64
    np.testing.assert_allclose(arrays["mu"], features.mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(arrays["sigma"], np.cov(features, rowvar=False), rtol=0, atol=1e-14)
    meta = {k: v for k, v in arrays.items() if k not in ("mu", "sigma")}
    assert all(v.ndim == 0 for v in meta.values())
    assert meta["extractor"].dtype.kind == "U" and str(meta["extractor"]) == "flatten"
    assert str(meta["weights_hash"]) == "none" and int(meta["n"]) == 60
    assert str(meta["dataset"]) == "tiny_grey" and str(meta["split"]) == "reference"
    # The samples' identity: SHA-256 of the reference tensor's bytes, computed here by hand.
    assert str(meta["content"]) == hashlib.sha256(TinyGrey().data.numpy().tobytes()).hexdigest()[:16]
    read = read_stats(path)  # and back through the reader the evaluator uses
    assert read.annotated and read.extractor == "flatten" and read.extractor_hparams == {}
    assert read.extractor_protocol == {"weights_hash": "none"} and read.n == 60
    assert read.reference_key() == {"dataset": "tiny_grey", "split": "reference", "n": 60,
                                    "content": str(meta["content"])}


def test_fid_against_the_file_equals_fid_against_the_data(registry, tmp_path, fake):
    path = stats_file(tmp_path)
    from_data = evaluate("tiny_grey", fake, "--metrics", "fid,is")
    from_file = evaluate(path, fake)  # default metrics: those a file allows, FID and IS
    assert set(from_file) == {"fid", "is_mean", "is_std", "protocol"}
    assert from_file["fid"] == from_data["fid"] and from_file["is_mean"] == from_data["is_mean"]
    assert from_file["fid"] == pytest.approx(numpy_fid(real_features(), fake_features(fake)), rel=1e-6)
    # The file names the samples it measured, so the protocol record (and its fingerprint) is the data's.
    assert from_file["protocol"] == from_data["protocol"]


def test_a_pytorch_fid_file_is_used_with_a_warning(registry, tmp_path, fake):
    features = real_features()
    path = tmp_path / "pytorch_fid.npz"
    np.savez(path, mu=features.mean(axis=0), sigma=np.cov(features, rowvar=False))
    with pytest.warns(UserWarning, match="cannot be checked"):
        result = evaluate(path, fake, "--extractor", "flatten", "--metrics", "fid")
    assert result["fid"] == pytest.approx(numpy_fid(features, fake_features(fake)), rel=1e-6)
    assert result["protocol"]["n_real"] == 0 and result["protocol"]["reference"]["split"] == "statistics"
    refused = invoke("eval", path, fake, "--extractor", "flatten", "--n-real", "60", "--device", "cpu")
    assert refused.exit_code != 0 and "does not say how many samples" in refused.output


def test_a_file_made_under_another_protocol_is_refused(registry, tmp_path, fake):
    path = stats_file(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    other = tmp_path / "other.npz"
    np.savez(other, **{**arrays, "weights_hash": np.asarray("abcd1234")})
    result = invoke("eval", other, fake, "--device", "cpu")
    assert result.exit_code != 0
    assert "weights_hash: file abcd1234, evaluation none" in result.output and "ganzoo stats" in result.output
    result = invoke("eval", path, fake, "--n-real", "30", "--device", "cpu")
    assert result.exit_code != 0 and "n_real: file 60, evaluation 30" in result.output
    wrong_size = tmp_path / "wide.npz"
    np.savez(wrong_size, mu=np.zeros(3), sigma=np.eye(3))
    result = invoke("eval", wrong_size, fake, "--extractor", "flatten", "--device", "cpu")
    assert result.exit_code != 0 and "3-d features" in result.output


def test_metrics_that_need_real_features_are_refused_by_name(registry, tmp_path, fake):
    path = stats_file(tmp_path)
    result = invoke("eval", path, fake, "--metrics", "fid,kid,pr", "--device", "cpu")
    assert result.exit_code != 0
    assert "kid, pr need the real features themselves" in result.output and "fid, is" in result.output
    with pytest.raises(StatsFileError, match="no sigma"):
        np.savez(tmp_path / "half.npz", mu=np.zeros(3))
        read_stats(tmp_path / "half.npz")


def test_a_suites_eval_reference_is_what_runs_evaluate_against(registry, tmp_path):
    path = stats_file(tmp_path)
    protocol = EvalProtocol(n_fake=40, metrics=("fid",), reference=str(path))
    fake = torch.randint(0, 256, (40, 1, 4, 4), generator=torch.Generator().manual_seed(3)).float() / 127.5 - 1
    from_file = Evaluator(TinyGrey(), protocol, "cpu")
    from_data = Evaluator(TinyGrey(), EvalProtocol(n_fake=40, metrics=("fid",)), "cpu")
    assert from_file.real.features is None
    assert from_file(fake) == from_data(fake) and from_file.fingerprint == from_data.fingerprint

    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "ref.npz").write_bytes(path.read_bytes())
    suite = load_suite(write_suite(tmp_path / "suite" / "tiny.toml",
                                   eval={"n_fake": 256, "metrics": ["fid"], "reference": "ref.npz"}))
    plan = suite.datasets[0]
    assert plan.protocol.reference == str((tmp_path / "suite" / "ref.npz").resolve())
    # A dataset's declared n_real would contradict the file's own count: the file decides it.
    assert plan.protocol_for(Judgement(n_fake=100, n_real=500)).n_real is None
    with pytest.raises(SuiteError, match="ganzoo stats REAL --out missing.npz"):
        load_suite(write_suite(tmp_path / "suite" / "bad.toml", eval={"n_fake": 256, "reference": "missing.npz"}))


def test_run_ids_without_a_reference_file_are_unchanged():
    """``reference`` is left out of a spec's canonical form at its default, like every field added after run ids."""
    from testzoo import tiny_spec

    assert "reference" not in tiny_spec().canonical()["protocol"]
