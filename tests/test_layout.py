"""The one map of ganzoo's layers: imports run downwards only, nothing imports in a circle, nothing by string.

Every ``import`` in ``ganzoo/`` is read with ``ast`` (function-level, lazy imports included) and resolved to
the module it names. An import that reaches a higher layer (the plugin API importing the training loop, a run
importing the reporter) fails here by name, and so does any cycle among ganzoo's modules, lazy or not.
``docs/architecture.md`` states the same layers; a test below keeps the two in step.

An import of ``a.b.c`` is an edge to ``a.b.c`` (and ``from a.b import c`` to ``a.b.c`` when ``c`` is a module,
else to ``a.b``). The package ``a.b``'s ``__init__`` also runs first, but that is the package's own import:
it is an edge only where some module imports the package itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from pathlib import Path

import pytest

import ganzoo

PACKAGE = Path(ganzoo.__file__).parent
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"

# Lowest first: a module may import its own layer and the layers below it. Each entry is a top-level module
# (``ganzoo/NAME.py``) or package (``ganzoo/NAME/``) of ganzoo; every one of them is in exactly one layer.
LAYERS = {
    "base": ("system",),
    "api": ("api",),
    "core": ("core", "metrics"),
    "run": ("run",),
    "sweep": ("sweep",),
    "report": ("report",),
    "top": ("cli", "testing", "__init__", "__main__"),
}
RANK = {"base": 0, "api": 1, "core": 2, "run": 3, "sweep": 4, "report": 4, "top": 5}
# Sweep and report sit side by side: the driver writes the report at the end (both read the store, in core).
ALLOWED_SIDEWAYS = {("sweep", "ganzoo.report")}


def layer_of(module: str) -> str:
    head = module.split(".")[1] if module != "ganzoo" else "__init__"
    for layer, heads in LAYERS.items():
        if head in heads:
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__} and docs/architecture.md")


def module_name(path: Path) -> str:
    parts = ("ganzoo", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) if len(parts) > 1 else "ganzoo"


MODULES = sorted(PACKAGE.rglob("*.py"))
SOURCES = {module_name(p): (p.read_text(), p.name == "__init__.py") for p in MODULES}
# ``__version__`` is the first line of ganzoo/__init__.py, so reading it needs nothing the package imports.
ROOT_NAMES_NEEDING_NOTHING = {"__version__"}
MODULE_NAMES = frozenset(SOURCES)


def imports_of(source: str, module: str, is_package: bool, modules: Collection[str] = MODULE_NAMES) -> list[str]:
    """Every ganzoo module that ``source`` (the code of ``module``) imports, relative imports resolved;
    ``modules``: the names of ganzoo's modules and packages."""
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
            # ``from ganzoo.report import stats`` imports the module ganzoo.report.stats; ``from .spec import
            # RunSpec`` the module ganzoo.core.spec. A name that is no module is taken from ``target`` itself.
            submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            others = [a.name for a in node.names if f"{target}.{a.name}" not in modules]
            found += submodules
            if others and not (target == "ganzoo" and set(others) <= ROOT_NAMES_NEEDING_NOTHING):
                found.append(target)
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


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the ganzoo modules it imports, for ``sources``: module -> (its code, whether it is a package)."""
    return {module: {t for t in imports_of(code, module, is_package, sources.keys()) if t != module}
            for module, (code, is_package) in sources.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other in a circle (strongly connected, Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:  # the graph has about a hundred modules: recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def imports_by_string(source: str) -> list[str]:
    """``importlib.import_module("ganzoo...")`` and ``__import__("ganzoo...")`` (or a relative name): imports
    that the graph cannot see."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        if called in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                and isinstance(first.value, str) and first.value.split(".")[0] in ("ganzoo", ""):
            found.append(f"{called}({first.value!r}) at line {node.lineno}")
    return found


def test_every_listed_layer_entry_exists_and_every_module_has_a_layer():
    listed = [head for heads in LAYERS.values() for head in heads]
    twice = sorted({head for head in listed if listed.count(head) > 1})
    assert not twice, f"listed twice in LAYERS: {twice}"
    missing = [head for head in listed if head != "__init__" and f"ganzoo.{head}" not in SOURCES]
    assert not missing, f"LAYERS lists modules that do not exist: {missing}"
    tops = {p.stem for p in PACKAGE.glob("*.py")} | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert not tops - set(listed), f"modules of ganzoo/ in no layer: {sorted(tops - set(listed))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_run_downwards(path):
    module = module_name(path)
    upward = upward_imports(path.read_text(), module, path.name == "__init__.py")
    assert not upward, f"{module} ({layer_of(module)} layer) imports upwards: {', '.join(upward)}"


def test_no_import_cycles():
    found = cycles(import_graph(SOURCES))
    assert not found, "modules that import each other in a circle (lazy imports count): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_no_imports_by_string():
    """An import by string is invisible to the checks above; import the module, lazily if it must be late."""
    found = {module: hits for module, (code, _) in SOURCES.items() if (hits := imports_by_string(code))}
    assert not found, f"imports by string inside ganzoo: {found}"


def test_no_prefixed_module_families():
    """A family of modules sharing a prefix is a package in all but name: it gets its folder."""
    prefixed = [p.name for p in PACKAGE.glob("*.py") if p.stem.split("_")[0] in ("cli", "report", "executor")]
    assert not prefixed, f"prefixed modules at the top of ganzoo/: {prefixed}"


def test_the_check_catches_an_upward_import():
    """The check itself can fail: a lazy import of the training loop inside the plugin API is caught."""
    source = (PACKAGE / "api" / "contracts.py").read_text() + "\n\ndef _late():\n    from ..run.train import run\n"
    assert upward_imports(source, "ganzoo.api.contracts") == ["ganzoo.run.train (run)"]
    assert upward_imports("from ..report import leaderboard\n", "ganzoo.sweep.driver") == []
    assert upward_imports("from ..report import leaderboard\n", "ganzoo.metrics.fid") == [
        "ganzoo.report.leaderboard (report)"]
    assert upward_imports("import ganzoo.sweep.driver\n", "ganzoo.run.train") == ["ganzoo.sweep.driver (sweep)"]


def test_the_check_catches_a_planted_cycle():
    """A lazy import that closes a circle is caught, with every module on it; the real graph plus that
    import has exactly that one cycle."""
    planted = dict(SOURCES)
    code, is_package = planted["ganzoo.system.checks"]
    planted["ganzoo.system.checks"] = (code + "\n\ndef _late():\n    from ..core.spec import Budget\n", is_package)
    assert cycles(import_graph(planted)) == [["ganzoo.core.spec", "ganzoo.system.checks"]]
    chain = {"ganzoo.a": ("from . import b\n", False), "ganzoo.b": ("import ganzoo.c\n", False),
             "ganzoo.c": ("def f():\n    from .a import x\n", False), "ganzoo.d": ("from . import a\n", False)}
    assert cycles(import_graph(chain)) == [["ganzoo.a", "ganzoo.b", "ganzoo.c"]]


def test_the_check_catches_an_import_by_string():
    source = ("import importlib\nfrom importlib import import_module\n"
              "m = importlib.import_module('ganzoo.metrics.builtin')\nn = __import__('ganzoo.run.train')\n"
              "o = import_module('.report', 'ganzoo')\np = importlib.import_module('numpy')\n")
    assert imports_by_string(source) == ["import_module('ganzoo.metrics.builtin') at line 3",
                                         "__import__('ganzoo.run.train') at line 4",
                                         "import_module('.report') at line 5"]


def documented_layers(text: str) -> dict[str, tuple[str, ...]]:
    """The layers as docs/architecture.md states them: lines ``N. **layer**: `module`, `package/`, ...``."""
    layers = {}
    for name, rest in re.findall(r"^\d+\. \*\*(\w+)\*\*[^:\n]*: (.+)$", text, flags=re.MULTILINE):
        layers[name] = tuple(m.rstrip("/").removesuffix(".py") for m in re.findall(r"`([^`]+)`", rest))
    return layers


def test_the_architecture_doc_states_the_same_layers():
    documented = documented_layers(ARCHITECTURE.read_text())
    assert list(documented) == list(LAYERS), "docs/architecture.md names other layers, or in another order"
    for layer, heads in LAYERS.items():
        assert sorted(documented[layer]) == sorted(heads), (
            f"layer {layer}: docs/architecture.md lists {sorted(documented[layer])}, tests/test_layout.py "
            f"{sorted(heads)}")
    assert documented_layers("1. **base** (lowest): `cpu`, `files.py`, `sweep/`\n") == {
        "base": ("cpu", "files", "sweep")}
