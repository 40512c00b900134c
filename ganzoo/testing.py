"""Helpers for testing plugins (ganzoo's own tests use them too).

``plugin_registry`` installs a registry with extra in-process plugins for the duration of a ``with``
block; ``fake_distribution`` makes an entry point visible to ``importlib.metadata`` without pip;
``check_pair`` runs the generator/discriminator contract on a DataSpec; ``check_plugin`` registers a
plugin beside the installed zoo and fails with every problem ganzoo would report when loading it.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import torch

from . import registry as registry_module
from .contracts import DataSpec
from .registry import Registry, build_registry, reset_registry


@contextlib.contextmanager
def plugin_registry(plugins: dict[str, object] | None = None, load_entry_points: bool = True) -> Iterator[Registry]:
    """Make ``get_registry()`` return a registry with ``plugins`` added; restore the previous one afterwards."""
    previous = registry_module._registry
    registry = build_registry(plugins, load_entry_points=load_entry_points)
    reset_registry(registry)
    try:
        yield registry
    finally:
        reset_registry(previous)


@contextlib.contextmanager
def fake_distribution(root: Path, name: str, module_source: str, entry_points: dict[str, str],
                      version: str = "0.1") -> Iterator[Path]:
    """Write ``<name>-<version>.dist-info`` with ganzoo entry points and a module under ``root``; put it on sys.path.

    Args:
        root: an empty folder (e.g. pytest's ``tmp_path``).
        name: distribution name; the module is ``<name with - replaced by _>.py``.
        module_source: the plugin module's code.
        entry_points: entry-point name -> ``module[:attr]`` in the ``ganzoo`` group.
    """
    module = name.replace("-", "_")
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{lines}\n")
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(module, None)


def check_plugin(plugin: object, name: str = "plugin-under-test") -> Registry:
    """Register ``plugin`` (a module or object with ganzoo hooks) as ganzoo would, beside the installed zoo.

    Raises ``AssertionError`` listing every problem with it: a name that clashes with a built-in or another
    installed component, ``defaults`` its factory does not take, a misspelled hook, bad metadata, a hook
    that raises. Returns the registry, in which the plugin's components can be looked up and built.
    """
    from .plugins import PluginInfo, check_unknown_hooks, create_plugin_manager

    manager, infos, errors = create_plugin_manager()
    manager.register(plugin, name=name)
    errors = errors + check_unknown_hooks(manager, {name: PluginInfo(name, "(under test)", "", "")})
    registry = Registry(manager, infos, errors)
    problems = [f"{error.error}" for error in registry.errors if error.plugin == name]
    if problems:
        raise AssertionError(f"plugin {name!r} has {len(problems)} problem(s):\n- " + "\n- ".join(problems))
    return registry


def check_pair(generator: torch.nn.Module, discriminator: torch.nn.Module, spec: DataSpec, batch: int = 4) -> None:
    """Assert the generator/discriminator contract of ``ganzoo.contracts`` on random latents."""
    with torch.no_grad():
        _check_pair(generator, discriminator, spec, batch)


def _check_pair(generator: torch.nn.Module, discriminator: torch.nn.Module, spec: DataSpec, batch: int) -> None:
    z = torch.randn(batch, generator.latent_dim)
    x = generator(z)
    assert x.shape == (batch, *spec.shape), f"generator output {tuple(x.shape)}, expected {(batch, *spec.shape)}"
    low, high = spec.value_range
    if spec.modality == "image":
        assert float(x.min()) >= low - 1e-5 and float(x.max()) <= high + 1e-5, "generator output outside the data range"
    logits = discriminator(x)
    assert logits.shape in ((batch,), (batch, 1)), f"discriminator output {tuple(logits.shape)}, expected ({batch},)"
