"""``ganzoo new-plugin``: the package it writes registers a component of each kind that passes the contract checks."""

import importlib.util
import os
import subprocess
import sys

import pytest
import tomllib
import torch
from click.testing import CliRunner

from ganzoo import DataSpec
from ganzoo.cli import main
from ganzoo.testing import check_loss, check_pair, check_stabilizer, fake_distribution, plugin_registry

KINDS = ("generator", "discriminator", "loss", "stabilizer")


@pytest.fixture
def package(tmp_path):
    result = CliRunner().invoke(main, ["new-plugin", "ganzoo-acme", "--directory", str(tmp_path / "src")])
    assert result.exit_code == 0, result.output
    return tmp_path / "src" / "ganzoo-acme"


def test_writes_an_installable_package_with_tests(package):
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()) == [
        "README.md", "ganzoo_acme.py", "pyproject.toml", "tests/test_ganzoo_acme.py"]
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert project["project"]["name"] == "ganzoo-acme"
    assert project["project"]["entry-points"]["ganzoo"] == {"acme": "ganzoo_acme"}
    assert project["tool"]["setuptools"]["py-modules"] == ["ganzoo_acme"]
    tests = (package / "tests" / "test_ganzoo_acme.py").read_text()
    for check in ("check_plugin", "check_pair", "check_loss", "check_stabilizer"):
        assert f"{check}(" in tests, check
    compile(tests, "test_ganzoo_acme.py", "exec")


def test_refuses_a_bad_name_and_an_existing_folder(package):
    again = CliRunner().invoke(main, ["new-plugin", "ganzoo-acme", "--directory", str(package.parent)])
    assert again.exit_code == 1 and "exists already" in again.output
    bad = CliRunner().invoke(main, ["new-plugin", "Acme_GAN", "--directory", str(package.parent)])
    assert bad.exit_code == 1 and 'Plugin name "Acme_GAN"' in bad.output and "ganzoo-acme" in bad.output


def test_its_components_register_through_the_entry_point_and_pass_the_contracts(package, tmp_path, monkeypatch):
    entry_points = tomllib.loads((package / "pyproject.toml").read_text())["project"]["entry-points"]["ganzoo"]
    monkeypatch.setenv("GANZOO_PLUGINS", "ganzoo,ganzoo-acme")
    (tmp_path / "site").mkdir()
    with fake_distribution(tmp_path / "site", "ganzoo-acme", (package / "ganzoo_acme.py").read_text(), entry_points,
                           version="0.1.0"), plugin_registry() as registry:
        assert not registry.errors, registry.errors
        ours = {kind: [c for c in registry.list(kind) if c.plugin == "acme"] for kind in KINDS}
        assert {kind: [c.name for c in found] for kind, found in ours.items()} == {
            "generator": ["acme_mlp"], "discriminator": ["acme_mlp"], "loss": ["acme_logistic"],
            "stabilizer": ["acme_noise"]}
        assert {c.distribution for found in ours.values() for c in found} == {"ganzoo-acme"}
        listed = CliRunner().invoke(main, ["list"]).output
        assert sum(" acme " in line and "ganzoo-acme 0.1.0" in line for line in listed.splitlines()) == 4, listed

        torch.manual_seed(0)
        spec = DataSpec("image", (1, 8, 8))
        check_pair(ours["generator"][0].build(spec), ours["discriminator"][0].build(spec), spec)
        check_loss(ours["loss"][0].build(), targets="targets" in ours["loss"][0].tags)
        noise = ours["stabilizer"][0]
        result = check_stabilizer(noise.factory, noise.hparams(), "vector", tmp_path / "runs")
        assert [e["g_steps"] for e in result.evals] == [2, 4]


@pytest.mark.slow  # a real pip install, `ganzoo list` and the package's own pytest in subprocesses
@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools to build without network")
def test_pip_installed_it_appears_in_ganzoo_list_and_passes_its_own_tests(package, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(package)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target), "GANZOO_PLUGINS": "ganzoo,ganzoo-acme"}
    listed = subprocess.run([sys.executable, "-m", "ganzoo", "list"], env=env, capture_output=True, text=True,
                            check=True, timeout=300).stdout
    kinds = {line.split()[0] for line in listed.splitlines() if " acme " in line and "ganzoo-acme 0.1.0" in line}
    assert kinds == set(KINDS), listed
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout
