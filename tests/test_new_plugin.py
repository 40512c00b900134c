"""``ganzoo new-plugin``: for every kind, the package it writes registers its component and passes its own tests;
``examples/ganzoo-example-plugin`` is that template with every kind, committed as a fresh rendering gives it.

Fast: each package is made visible as an installed distribution (``fake_distribution``), registered in a fresh
registry, and its generated tests run with pytest in this process. Slow: each is ``pip install -e``-ed into a
temporary virtual environment that sees this one's packages, listed by ``ganzoo list`` and tested by pytest.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner

from ganzoo.cli import main
from ganzoo.cli.new_plugin import EXAMPLE_KINDS, EXAMPLE_NAME
from ganzoo.cli.plugin_template import PLUGIN_KINDS, plugin_names, render_plugin
from ganzoo.testing import fake_distribution, plugin_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / EXAMPLE_NAME
REGENERATE = f"ganzoo new-plugin {EXAMPLE_NAME} --kind all --directory examples --force"


def new_plugin(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["new-plugin", *args])
    return result.exit_code, result.output


def package_name(kind: str) -> str:
    """One distribution per kind, so that the modules of different packages never share a name in sys.modules."""
    return f"ganzoo-acme-{kind.replace('_', '-')}"


def registered_by(registry, entry: str) -> list[tuple[str, str]]:
    ours = [(c.kind, c.name) for c in registry.all() if c.plugin == entry]
    return ours + [("metric", m.name) for m in registry.metrics() if m.plugin == entry]


class Outcomes:
    """A pytest plugin that records each test's outcome in the in-process run."""

    def __init__(self):
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            self.outcomes[report.nodeid] = report.outcome


def run_its_tests(package: Path) -> dict[str, str]:
    """The package's tests, run by pytest in this process with an empty configuration (not ganzoo's)."""
    outcomes = Outcomes()
    code = pytest.main([str(package / "tests"), "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                        "-c", str(package / "pyproject.toml"), "--rootdir", str(package)], plugins=[outcomes])
    assert code == 0, (code, outcomes.outcomes)
    return outcomes.outcomes


# -- the command ---------------------------------------------------------------------------------------------


def test_default_is_the_four_trainable_kinds(tmp_path):
    code, output = new_plugin("ganzoo-acme", "--directory", str(tmp_path))
    assert code == 0, output
    package = tmp_path / "ganzoo-acme"
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()) == [
        "README.md", "ganzoo_acme.py", "pyproject.toml", "tests/test_ganzoo_acme.py"]
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert project["project"]["name"] == "ganzoo-acme"
    assert project["project"]["entry-points"]["ganzoo"] == {"acme": "ganzoo_acme"}
    assert project["tool"]["setuptools"]["py-modules"] == ["ganzoo_acme"]
    module = (package / "ganzoo_acme.py").read_text()
    hooks = [line.split("(")[0] for line in module.splitlines() if line.startswith("def register_")]
    assert hooks == ["def register_generators", "def register_discriminators", "def register_losses",
                     "def register_stabilizers"]
    assert "generator acme_mlp, discriminator acme_mlp, loss acme_logistic, stabilizer acme_noise" in output


@pytest.mark.parametrize("kind, hook", [("dataset", "register_datasets"), ("feature-extractor",
                         "register_feature_extractors"), ("metric", "register_metrics")])
def test_kind_chooses_the_hooks(tmp_path, kind, hook):
    code, output = new_plugin("ganzoo-acme", "--kind", kind, "--kind", "loss", "-d", str(tmp_path))
    assert code == 0, output
    module = (tmp_path / "ganzoo-acme" / "ganzoo_acme.py").read_text()
    assert [line for line in module.splitlines() if line.startswith("def register_")] == [
        "def register_losses(register):", f"def {hook}(register):"]


def test_refuses_a_bad_name_an_unknown_kind_and_an_existing_folder_unless_forced(tmp_path):
    assert new_plugin("ganzoo-acme", "-d", str(tmp_path))[0] == 0
    code, output = new_plugin("ganzoo-acme", "-d", str(tmp_path))
    assert code == 1 and "exists already" in output and "--force" in output
    code, output = new_plugin("Acme_GAN", "-d", str(tmp_path))
    assert code == 1 and 'Plugin name "Acme_GAN"' in output and "ganzoo-acme" in output
    code, output = new_plugin("ganzoo-other", "--kind", "sampler", "-d", str(tmp_path))
    assert code == 1 and 'Unknown kind "sampler"' in output and "feature_extractor" in output
    assert not (tmp_path / "ganzoo-other").exists()
    module = tmp_path / "ganzoo-acme" / "ganzoo_acme.py"
    module.write_text("edited")
    code, output = new_plugin("ganzoo-acme", "--kind", "all", "--force", "-d", str(tmp_path))
    assert code == 0 and "def register_metrics" in module.read_text()


# -- every kind's package, registered and tested in process ---------------------------------------------------

# The stabilizer's tests train through the harness (tens of seconds): the fast suite runs them in the example,
# which holds every kind (tests/test_example_plugin.py).
KIND_CASES = [pytest.param(kind, marks=pytest.mark.slow) if kind == "stabilizer" else kind for kind in PLUGIN_KINDS]


@pytest.mark.parametrize("kind", KIND_CASES)
def test_each_kind_registers_through_its_entry_point_and_passes_its_tests(kind, tmp_path, monkeypatch):
    name = package_name(kind)
    code, output = new_plugin(name, "--kind", kind, "-d", str(tmp_path / "src"))
    assert code == 0, output
    package = tmp_path / "src" / name
    entry_points = tomllib.loads((package / "pyproject.toml").read_text())["project"]["entry-points"]["ganzoo"]
    (entry,) = entry_points
    module = name.replace("-", "_")
    monkeypatch.setenv("GANZOO_PLUGINS", f"ganzoo,{name}")
    (tmp_path / "site").mkdir()
    with fake_distribution(tmp_path / "site", name, (package / f"{module}.py").read_text(), entry_points,
                           version="0.1.0"), plugin_registry() as registry:
        assert not registry.errors, registry.errors
        prefix = entry.replace("-", "_")
        (registered,) = registered_by(registry, entry)
        assert registered[0] == kind and registered[1].startswith(f"{prefix}_")
        assert "declares no modalities" not in str(registry.errors)
        outcomes = run_its_tests(package)
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes
    assert any(f"test_{kind}" in node for node in outcomes), outcomes  # its kind's own contract test ran


# -- for real: pip install -e ----------------------------------------------------------------------------------


def venv_seeing_this_one(folder: Path) -> Path:
    """A virtual environment whose interpreter also sees this environment's packages (ganzoo, torch, pytest)."""
    venv.create(folder, with_pip=False)
    python = folder / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir, not a bare path: it also reads the .pth files there (an editable ganzoo's among them).
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "parent.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    return python


@pytest.mark.slow  # eight pip installs (each kind, the example), `ganzoo list` and their pytest, in subprocesses
@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools to build without network")
def test_pip_install_e_each_kind_then_list_it_and_pass_its_own_tests(tmp_path):
    python = venv_seeing_this_one(tmp_path / "venv")
    packages = {}
    for kind in PLUGIN_KINDS:
        name = package_name(kind)
        assert new_plugin(name, "--kind", kind, "-d", str(tmp_path / "src"))[0] == 0
        packages[name] = tmp_path / "src" / name
    # And the committed example (every kind), copied so that the build leaves nothing in the checkout.
    packages[EXAMPLE_NAME] = Path(shutil.copytree(EXAMPLE, tmp_path / "src" / EXAMPLE_NAME))
    for name in packages:
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                        "--no-build-isolation", "--no-index", "-e", str(packages[name])],
                       check=True, capture_output=True, timeout=300)
    env = {**os.environ, "GANZOO_PLUGINS": ",".join(["ganzoo", *packages])}
    env.pop("PYTHONPATH", None)
    listed = subprocess.run([python, "-m", "ganzoo", "list"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            check=True, timeout=300).stdout
    for kind in PLUGIN_KINDS:
        name = package_name(kind)
        lines = [line for line in listed.splitlines() if f"{name} 0.1.0" in line]
        assert [line.split()[0] for line in lines] == [kind], listed
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                            *(str(p / "tests") for p in packages.values())],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and " failed" not in tests.stdout, tests.stdout



# -- examples/: the template with every kind ---------------------------------------------------------------------

def test_the_committed_example_is_a_fresh_rendering_of_the_template():
    committed = {p.relative_to(EXAMPLE).as_posix(): p.read_text() for p in EXAMPLE.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)}
    fresh = render_plugin(EXAMPLE_NAME, EXAMPLE_KINDS)
    assert sorted(committed) == sorted(fresh), f"examples/ differs from the template; regenerate it: {REGENERATE}"
    stale = [path for path, text in fresh.items() if committed[path] != text]
    assert not stale, f"{stale} differ from the template; regenerate them: {REGENERATE}"


def test_the_example_registers_every_kind_and_passes_its_tests(tmp_path, monkeypatch):
    names = plugin_names(EXAMPLE_NAME)
    entry_points = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]["ganzoo"]
    monkeypatch.setenv("GANZOO_PLUGINS", f"ganzoo,{EXAMPLE_NAME}")
    source = (EXAMPLE / f"{names['module']}.py").read_text()
    with fake_distribution(tmp_path, EXAMPLE_NAME, source, entry_points, version="0.1.0"), \
            plugin_registry() as registry:
        assert not registry.errors, registry.errors
        assert [kind for kind, _ in registered_by(registry, names["entry"])] == list(PLUGIN_KINDS)
        outcomes = run_its_tests(EXAMPLE)
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes
    assert {kind for kind in PLUGIN_KINDS if any(f"test_{kind}" in node for node in outcomes)} == set(PLUGIN_KINDS)


def test_the_examples_components_enter_the_default_grid(tmp_path, monkeypatch):
    from ganzoo.run.grid import Filters, build_grid
    from ganzoo.run.suite import load_suite

    names = plugin_names(EXAMPLE_NAME)
    prefix = names["prefix"]
    monkeypatch.syspath_prepend(str(EXAMPLE))
    module = importlib.import_module(names["module"])
    try:
        with plugin_registry({names["entry"]: module}) as registry:
            grid = build_grid(load_suite("default"), registry, Filters(dataset=("ring8", "digits")), seeds=[0])
    finally:
        sys.modules.pop(names["module"], None)
    combos = {(s.dataset.name, s.combination) for s in grid.specs}
    assert {("ring8", f"{prefix}_mlp/mlp/ns/none"), ("ring8", f"mlp/mlp/{prefix}_logistic/none"),
            ("ring8", f"mlp/mlp/ns/{prefix}_noise"), ("digits", f"{prefix}_mlp/dcgan/ns/none")} <= combos
