"""The example plugin, as a third party would use it: installed with pip (no network), then seen by the CLI."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganzoo.testing import plugin_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ganzoo-example-plugin"
sys.path.insert(0, str(EXAMPLE))
import ganzoo_example_plugin as example  # noqa: E402  (needs the sys.path entry above)

sys.path.remove(str(EXAMPLE))


def test_components_behave():
    loss = example.SymmetricLeastSquares()
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # closed form: 0.5 * mean((r - 1)^2) + 0.5 * mean((f + 1)^2) = 0.5 * 0.5 + 0.5 * 2
    assert loss.d_loss(real, fake).item() == pytest.approx(0.25 + 1.0)
    assert loss.g_loss(fake).item() == pytest.approx(0.5 * 1.0)
    d = torch.nn.Linear(2, 1)
    torch.nn.init.constant_(d.weight, 0.5)

    class Ctx:
        discriminator = d

    example.WeightClipping(clip=0.1).after_d_step(Ctx)
    assert d.weight.abs().max().item() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="clip must be positive"):
        example.WeightClipping(clip=0)


def test_components_pass_the_contract_checks(tmp_path):
    """What ganzoo.testing asks of any plugin (README, "Testing a plugin"), on the example's components."""
    from ganzoo.testing import check_loss, check_plugin, check_stabilizer

    registry = check_plugin(example, name="example")
    loss = registry.get("loss", "lsgan_symmetric")
    check_loss(loss.build(), targets="targets" in loss.tags)
    clip = registry.get("stabilizer", "weight_clip")
    result = check_stabilizer(clip.factory, clip.hparams(), "vector", tmp_path)
    assert [e["g_steps"] for e in result.evals] == [2, 4]


def test_registers_in_process_into_the_grid():
    from ganzoo.grid import Filters, build_grid
    from ganzoo.suite import load_suite

    with plugin_registry({"example": example}) as registry:
        assert registry.get("loss", "lsgan_symmetric").plugin == "example"
        grid = build_grid(load_suite("default"), registry, Filters(dataset=("ring8",)), seeds=[0])
    combos = {s.combination for s in grid.specs}
    assert {"mlp/mlp/lsgan_symmetric/none", "mlp/mlp/ns/weight_clip"} <= combos


@pytest.mark.slow  # a real pip install and three CLI processes: tens of seconds
@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools to build without network")
def test_pip_install_then_cli_lists_it(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target), "GANZOO_PLUGINS": "ganzoo,ganzoo-example-plugin"}
    listed = subprocess.run([sys.executable, "-m", "ganzoo", "list", "losses"], env=env, capture_output=True,
                            text=True, check=True).stdout
    line = next(ln for ln in listed.splitlines() if "lsgan_symmetric" in ln)
    assert "example" in line and "ganzoo-example-plugin 0.1.0" in line
    dry = subprocess.run([sys.executable, "-m", "ganzoo", "bench", "--all", "--dry-run", "--no-estimate",
                          "--dataset", "ring8", "--seeds", "1"], env=env, capture_output=True, text=True, check=True)
    assert "mlp/mlp/lsgan_symmetric/none" in dry.stdout and "mlp/mlp/ns/weight_clip" in dry.stdout
