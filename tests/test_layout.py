"""The package's folders are its layers: imports run downwards only, and no prefixed module family is left.

Every ``import`` in ``ganzoo/`` is read with ``ast`` (function-level, lazy imports included), resolved to
the module it names, and checked against the layer of the importing module. A new import that reaches
upwards (the plugin API importing the training loop, a run importing the reporter) fails here by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ganzoo

PACKAGE = Path(ganzoo.__file__).parent

# Lowest first. A module may import its own layer and the layers below it.
LAYERS = {
    "api": {"hookspecs", "plugins", "registry", "components", "contracts", "judgement", "checks", "download", "cpu",
            "files", "conditional"},
    "run": {"spec", "suite", "grid", "build", "train", "artifacts", "records", "pictures", "evaluate", "metrics",
            "reproducibility", "vectorized", "design", "coverage"},
    "sweep": {"sweep"},
    "report": {"report"},
    "top": {"cli", "testing", "__init__", "__main__", "scaffold"},
}
RANK = {"api": 0, "run": 1, "sweep": 2, "report": 2, "top": 3}
# Sweep and report sit side by side: the reporter reads the store, and the driver writes the report at the end.
ALLOWED_SIDEWAYS = {("report", "ganzoo.sweep.store"), ("sweep", "ganzoo.report")}


def layer_of(module: str) -> str:
    head = module.split(".")[1] if module != "ganzoo" else "__init__"
    for layer, heads in LAYERS.items():
        if head in heads:
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def module_name(path: Path) -> str:
    parts = ("ganzoo", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) if len(parts) > 1 else "ganzoo"


def imports_of(source: str, module: str, is_package: bool) -> list[str]:
    """Every ganzoo module that ``source`` (the code of ``module``) imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "ganzoo"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ganzoo":
                continue
            if target != "ganzoo":  # ``from ganzoo import __version__`` or a submodule: counted below
                found.append(target)
            # ``from ganzoo.report import stats`` imports the module ganzoo.report.stats
            found += [f"{target}.{a.name}" for a in node.names
                      if (PACKAGE.parent / f"{target}.{a.name}".replace(".", "/")).with_suffix(".py").exists()]
    return found


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    here = layer_of(module)
    upward = []
    for target in imports_of(source, module, is_package):
        there = layer_of(target)
        if RANK[there] < RANK[here] or there == here:
            continue
        if RANK[there] == RANK[here] and any(here == h and target.startswith(t) for h, t in ALLOWED_SIDEWAYS):
            continue
        upward.append(f"{target} ({there})")
    return upward


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_run_downwards(path):
    module = module_name(path)
    upward = upward_imports(path.read_text(), module, path.name == "__init__.py")
    assert not upward, f"{module} ({layer_of(module)} layer) imports upwards: {', '.join(upward)}"


def test_no_prefixed_module_families():
    """A family of modules sharing a prefix is a package in all but name: it gets its folder."""
    prefixed = [p.name for p in PACKAGE.glob("*.py") if p.stem.split("_")[0] in ("cli", "report", "executor")]
    assert not prefixed, f"prefixed modules at the top of ganzoo/: {prefixed}"


def test_the_check_catches_an_upward_import():
    """The check itself can fail: a lazy import of the training loop inside the plugin API is caught."""
    source = (PACKAGE / "contracts.py").read_text() + "\n\ndef _late():\n    from .train import run\n"
    assert upward_imports(source, "ganzoo.contracts") == ["ganzoo.train (run)"]
    assert upward_imports("from ..report import leaderboard\n", "ganzoo.sweep.driver") == []
    assert upward_imports("from ..report import leaderboard\n", "ganzoo.metrics.fid") == [
        "ganzoo.report (report)", "ganzoo.report.leaderboard (report)"]
