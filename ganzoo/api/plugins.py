"""Discovering plugins through the ``ganzoo`` entry-point group, one entry point at a time.

A plugin that fails to import, or implements a hook that does not exist (a misspelled name), is
recorded as a ``LoadError`` naming the plugin and its distribution; every other plugin still loads.

Environment switches (comma-separated entry-point or distribution names):

- ``GANZOO_PLUGINS``: load only these (tests set it to ``ganzoo`` so a developer's plugins cannot leak in);
- ``GANZOO_BLOCK_PLUGINS``: load everything but these.

The core's own hook implementations (the built-in metrics, handed over by ``ganzoo.core.registry.core_plugins``)
are registered in every plugin manager, whatever the switches say and with or without the entry points:
every run evaluates through them.
"""

from __future__ import annotations

import importlib.metadata
import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "ganzoo"
BUILTIN_DISTRIBUTION = "ganzoo"  # the built-in zoo loads first and keeps its names, whatever the install order
ALLOW_ENV = "GANZOO_PLUGINS"
BLOCK_ENV = "GANZOO_BLOCK_PLUGINS"


@dataclass
class LoadError:
    """A plugin (or one of its components) that could not be loaded or registered."""

    plugin: str
    distribution: str
    error: str
    detail: str = ""

    def __str__(self):
        return f'Error loading plugin "{self.plugin}" ({self.distribution}): {self.error}'


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)


def _names_from_env(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def selection_from_env() -> tuple[str | None, str | None]:
    """The allow- and block-list as set now: a registry built under other settings holds other plugins."""
    return os.environ.get(ALLOW_ENV), os.environ.get(BLOCK_ENV)


def _selected(ep: importlib.metadata.EntryPoint, dist_name: str) -> bool:
    allow, block = _names_from_env(ALLOW_ENV), _names_from_env(BLOCK_ENV)
    names = {ep.name, dist_name}
    if allow is not None and not names & allow:
        return False
    return not (block and names & block)


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    return ep.dist.metadata["Name"] if ep.dist is not None else "unknown"


def _unique_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The group's entry points, the built-in zoo's first, then by distribution and name (not install order).

    The same distribution can be visible twice (e.g. an editable install plus a stale egg-info on
    sys.path); the first of each (name, value) is kept so that it is not registered twice.
    """
    seen, unique = set(), []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            unique.append(ep)
    return sorted(unique, key=lambda ep: (_dist_name(ep) != BUILTIN_DISTRIBUTION, _dist_name(ep).lower(), ep.name))


def create_plugin_manager(
    load_entry_points: bool = True, core_plugins: Mapping[str, object] | None = None, builtin_zoo: bool = True,
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo], list[LoadError]]:
    """A plugin manager with the ganzoo hookspecs, ``core_plugins`` (name -> module) and every selected entry
    point loaded.

    ``builtin_zoo=False`` leaves out the built-in distribution's entry points (the zoo's networks, losses,
    datasets and extractors), for readers of results that need only what the core and other plugins register.

    Returns:
        The manager, information about each loaded plugin by name, and the load errors.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos = register_core_plugins(pm, core_plugins or {})
    errors: list[LoadError] = []
    if not load_entry_points:
        return pm, infos, errors
    for ep in _unique_entry_points():
        dist_name = _dist_name(ep)
        version = ep.dist.version if ep.dist is not None else ""
        if not _selected(ep, dist_name) or (not builtin_zoo and dist_name == BUILTIN_DISTRIBUTION):
            continue
        where = f"{dist_name} {version}".strip()
        # A plugin is its distribution and entry point: another package's entry point named like a built-in
        # one ("losses") is registered as "<distribution>:losses" instead of being dropped.
        name = ep.name if pm.get_plugin(ep.name) is None else f"{dist_name}:{ep.name}"
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            errors.append(LoadError(name, where, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            continue
        if pm.is_registered(module) or pm.get_plugin(name) is not None:
            errors.append(LoadError(name, where, f"module {ep.value} is already registered as a plugin"))
            continue
        try:
            pm.register(module, name=name)
        except Exception as exc:  # pluggy validates hook signatures at registration
            errors.append(LoadError(name, where, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            continue
        infos[name] = PluginInfo(name, dist_name, version, ep.value)
    errors.extend(check_unknown_hooks(pm, infos))
    for name, info in infos.items():
        info.hooks = hook_names(pm, name)
    return pm, infos, errors


def register_core_plugins(pm: pluggy.PluginManager, core_plugins: Mapping[str, object]) -> dict[str, PluginInfo]:
    """Register ``core_plugins`` with ``pm``; they count as the built-in distribution (their names are kept)."""
    try:
        version = importlib.metadata.version(BUILTIN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = ""
    infos = {}
    for name, module in core_plugins.items():
        pm.register(module, name=name)
        infos[name] = PluginInfo(name, BUILTIN_DISTRIBUTION, version, module.__name__, hook_names(pm, name))
    return infos


def check_unknown_hooks(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> list[LoadError]:
    """Like ``pm.check_pending()``, but names every offending plugin and goes on.

    A hook without a spec is never called, so the plugin stays registered and its correctly spelled
    hooks still load; the message says so.
    """
    errors = []
    for hook_name in dir(pm.hook):
        if hook_name.startswith("_"):
            continue
        caller = getattr(pm.hook, hook_name)
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            info = infos.get(impl.plugin_name)
            where = f"{info.distribution} {info.version}".strip() if info else "unknown"
            known = ", ".join(name for name in dir(hookspecs) if name.startswith("register_"))
            valid = [h for h in hook_names(pm, impl.plugin_name) if h != hook_name and getattr(pm.hook, h).has_spec()]
            still = (f"its other hooks ({', '.join(valid)}) still load" if valid
                     else "it implements no known hook, so it registers nothing")
            errors.append(LoadError(impl.plugin_name, where,
                                    f'unknown hook "{hook_name}" (misspelled?); {still}. Known hooks: {known}'))
    return errors


def hook_names(pm: pluggy.PluginManager, plugin_name: str) -> list[str]:
    plugin = pm.get_plugin(plugin_name)
    if plugin is None:
        return []
    return sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))
