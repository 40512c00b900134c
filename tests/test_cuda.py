"""On a CUDA device (``pytest -m cuda``): training, the extractors and the metrics give what the CPU gives."""

from dataclasses import replace

import pytest
import torch

from ganzoo.core.registry import build_registry
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import load_suite
from ganzoo.run.train import run

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_a_default_run_trains_on_cuda(tmp_path):
    registry = build_registry()
    grid = build_grid(load_suite("default"), registry, Filters(dataset=("digits",), stabilizer=("spectral_norm+ema",)),
                      seeds=[0], kimg=2)
    result = run(grid.specs[0], tmp_path, "cuda", registry)
    assert result.status == "done", result.error
    assert result.device.startswith("cuda") and result.peak_mem_mb > 0 and result.final["fid"] > 0


def test_digits_classifier_features_match_the_cpu():
    registry = build_registry()
    extractor = registry.get("feature_extractor", "digits_classifier").build().eval()
    images = registry.get("dataset", "digits").build().reference(256)
    with torch.no_grad():
        on_cpu = extractor(images)
        on_gpu = extractor.to("cuda")(images.to("cuda"))
    torch.testing.assert_close(on_gpu.features.cpu(), on_cpu.features, rtol=1e-4, atol=1e-4)


def test_inception_features_match_the_cpu(tmp_path):
    from test_inception import random_inception_weights

    from ganzoo_plugins.extractors.inception import inception_v3_tf

    weights = random_inception_weights(tmp_path / "random.pth")
    extractor = inception_v3_tf(weights=str(weights)).eval()
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        on_cpu = extractor(images)
        on_gpu = extractor.to("cuda")(images.to("cuda"))
    # TF32 is switched off inside the extractor, so only float32 reduction order differs.
    torch.testing.assert_close(on_gpu.features.cpu(), on_cpu.features, rtol=1e-4, atol=1e-5)


def test_determinism_on_cuda_is_close(tmp_path):
    registry = build_registry()
    spec = build_grid(load_suite("default"), registry, Filters(dataset=("ring8",), stabilizer=("none",), loss=("ns",)),
                      seeds=[0], kimg=1).specs[0]
    spec = replace(spec, protocol=replace(spec.protocol, n_fake=512, n_real=512))
    a = run(spec, tmp_path / "a", "cuda", registry)
    b = run(spec, tmp_path / "b", "cuda", registry)
    assert a.status == b.status == "done"
    assert a.final["fid"] == pytest.approx(b.final["fid"], rel=1e-3)


def test_runs_packed_on_one_gpu_train_and_say_so(tmp_path):
    """--jobs 2 --device cuda: two worker processes share the GPU; each run's record names the packing."""
    from ganzoo.sweep.executors import ProcessExecutor

    registry = build_registry()
    specs = build_grid(load_suite("default"), registry, Filters(dataset=("digits",), stabilizer=("none",),
                                                                generator=("dcgan",), discriminator=("dcgan",)),
                       seeds=[0, 1], g_steps=20).specs
    results = list(ProcessExecutor("cuda", jobs=2).execute([(s, tmp_path / s.run_id) for s in specs],
                                                           lambda spec: True))
    assert [r.status for r in results] == ["done", "done"], [r.error for r in results]
    assert all(r.device.endswith(", 2 runs per GPU)") and r.peak_mem_mb > 0 for r in results)


@pytest.mark.filterwarnings("ignore:intra_fid")  # the conditional case's tiny protocol
@pytest.mark.parametrize("case", ["ring8-mlp", "digits-dcgan", "digits-conditional"])
def test_a_vectorised_group_member_equals_its_single_run_on_cuda(case, tmp_path):
    from test_vectorized import base_spec, spec_for

    from ganzoo.core.registry import get_registry
    from ganzoo.testing import check_vectorized

    spec = spec_for("generator", "cond_dcgan") if case == "digits-conditional" else base_spec(case != "ring8-mlp")
    # cuDNN and cuBLAS may pick other kernels for batched shapes than for single ones: a looser bound than the
    # CPU's 1e-5, still far below any difference between two seeds.
    check_vectorized(spec, get_registry(), seeds=(0, 1, 2), steps=(1, 10), rtol=1e-4, workdir=tmp_path,
                     device="cuda")
