"""Discovering plugins through the ``ganzoo`` entry-point group, one entry point at a time.

A plugin that fails to import, or implements a hook that does not exist (a misspelled name), is
recorded as a ``LoadError`` naming the plugin and its distribution; every other plugin still loads.

Environment switches (comma-separated entry-point or distribution names):

- ``GANZOO_PLUGINS``: load only these (tests set it to ``ganzoo`` so a developer's plugins cannot leak in);
- ``GANZOO_BLOCK_PLUGINS``: load everything but these.
"""

from __future__ import annotations

import importlib.metadata
import os
import traceback
from dataclasses import dataclass, field

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "ganzoo"
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


def _unique_entry_points() -> list[importlib.metadata.EntryPoint]:
    # The same distribution can be visible twice (e.g. an editable install plus a stale egg-info on
    # sys.path); keep the first of each (name, value) so it is not registered twice.
    seen, unique = set(), []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            unique.append(ep)
    return unique


def create_plugin_manager(
    load_entry_points: bool = True,
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo], list[LoadError]]:
    """A plugin manager with the ganzoo hookspecs and every selected entry point loaded.

    Returns:
        The manager, information about each loaded plugin by name, and the load errors.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    errors: list[LoadError] = []
    if not load_entry_points:
        return pm, infos, errors
    for ep in _unique_entry_points():
        dist = ep.dist
        dist_name = dist.metadata["Name"] if dist is not None else "unknown"
        version = dist.version if dist is not None else ""
        if not _selected(ep, dist_name):
            continue
        where = f"{dist_name} {version}".strip()
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            errors.append(LoadError(ep.name, where, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            continue
        if pm.is_registered(module) or pm.get_plugin(ep.name) is not None:
            errors.append(LoadError(ep.name, where,
                                    f'a plugin named "{ep.name}" or module {ep.value} is already registered'))
            continue
        try:
            pm.register(module, name=ep.name)
        except Exception as exc:  # pluggy validates hook signatures at registration
            errors.append(LoadError(ep.name, where, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            continue
        infos[ep.name] = PluginInfo(ep.name, dist_name, version, ep.value)
    errors.extend(check_unknown_hooks(pm, infos))
    for name, info in infos.items():
        info.hooks = hook_names(pm, name)
    return pm, infos, errors


def check_unknown_hooks(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> list[LoadError]:
    """Like ``pm.check_pending()``, but names every offending plugin and unregisters it instead of stopping."""
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
            info = infos.pop(impl.plugin_name, None)
            where = f"{info.distribution} {info.version}".strip() if info else "unknown"
            known = ", ".join(name for name in dir(hookspecs) if name.startswith("register_"))
            errors.append(
                LoadError(
                    impl.plugin_name,
                    where,
                    f'unknown hook "{hook_name}" (misspelled?). Known hooks: {known}',
                )
            )
            if pm.get_plugin(impl.plugin_name) is not None:
                pm.unregister(name=impl.plugin_name)
    return errors


def hook_names(pm: pluggy.PluginManager, plugin_name: str) -> list[str]:
    plugin = pm.get_plugin(plugin_name)
    if plugin is None:
        return []
    return sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))
