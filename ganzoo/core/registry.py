"""The registry: every component that the loaded plugins registered, with who registered it.

The core owns it. Each plugin's hook gets a ``register`` callback bound to that plugin, so the registry
knows the plugin and distribution behind every entry, rejects duplicates naming both plugins, and
records a bad registration as that plugin's error while the plugin's other components stay.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import threading
import traceback
from collections.abc import Callable, Iterable

import pluggy

from ..api.components import KINDS, PLURALS, Component, Metric
from ..api.plugins import BUILTIN_DISTRIBUTION, LoadError, PluginInfo, create_plugin_manager, selection_from_env
from ..api.trackers import TrackerType


class UnknownComponentError(KeyError):
    """A name that no plugin registered; the message suggests close names."""

    def __str__(self):
        return str(self.args[0])


class Registry:
    def __init__(self, plugin_manager: pluggy.PluginManager, plugins: dict[str, PluginInfo], errors: list[LoadError],
                 entry_points: bool = True):
        self.plugin_manager = plugin_manager
        self.plugins = plugins
        self.errors = list(errors)
        # What a new process (a worker) would need to rebuild this registry from the entry points alone.
        self.entry_points = entry_points
        self.selection = selection_from_env()
        self.in_process_plugins = sorted(name for name, _ in plugin_manager.list_name_plugin() if name not in plugins)
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self._aliases: dict[str, dict[str, str]] = {}  # kind -> former name -> name
        self._metrics: dict[str, Metric] = {}  # in registration order: the built-in ones first
        self._trackers: dict[str, TrackerType] = {}
        for kind in KINDS:
            self._collect(f"register_{PLURALS[kind]}", functools.partial(self._add, kind))
        self._collect("register_metrics", self._add_metric)
        self._collect("register_trackers", self._add_tracker)

    def _collect(self, hook: str, add: Callable[..., None]) -> None:
        """Call each plugin's ``hook`` with a ``register`` bound to that plugin; ``add`` keeps what it registers."""
        caller = getattr(self.plugin_manager.hook, hook)
        # Call each plugin's hook on its own, so that an exception is pinned on that plugin alone. The first
        # plugin to claim a name keeps it, and the built-in zoo goes first: a third-party plugin can never
        # take over "hinge" (whatever its load order or tryfirst/trylast marks), and the clash is its error.
        impls = sorted(caller.get_hookimpls(), key=lambda impl: not self._builtin(impl.plugin_name))
        for impl in impls:
            info = self.plugins.get(impl.plugin_name)
            dist = info.distribution if info else "(registered in process)"
            version = info.version if info else ""

            def register(name, factory, _plugin=impl.plugin_name, _dist=dist, _version=version, **meta):
                add(_plugin, _dist, _version, name, factory, meta)

            try:
                impl.function(register=register)
            except Exception as exc:
                where = f"{dist} {version}".strip()
                self.errors.append(
                    LoadError(impl.plugin_name, where, f"{hook} raised {type(exc).__name__}: {exc}",
                              traceback.format_exc())
                )

    def _add(self, kind, plugin, dist, version, name, factory, meta) -> None:
        where = f"{dist} {version}".strip()
        try:
            component = Component(kind=kind, name=name, factory=factory, plugin=plugin, distribution=dist,
                                  version=version, **meta)
        except TypeError as exc:  # an unknown keyword in register(...)
            self.errors.append(LoadError(plugin, where, f'{kind} "{name}": bad register() call: {exc}'))
            return
        except ValueError as exc:
            self.errors.append(LoadError(plugin, where, str(exc)))
            return
        existing = self._components[kind].get(name)
        if existing is not None:
            kept = ("built-in names cannot be taken over" if self._builtin(existing.plugin)
                    else "the first registration is kept")
            self.errors.append(
                LoadError(plugin, where,
                          f'{kind} "{name}" is already registered by plugin "{existing.plugin}" '
                          f"({existing.distribution}); "
                          f'plugin "{plugin}" must choose another name ({kept}).')
            )
            return
        self._components[kind][name] = component
        for alias in component.aliases:
            self._aliases.setdefault(kind, {}).setdefault(alias, name)

    def _add_metric(self, plugin, dist, version, name, compute, meta) -> None:
        where = f"{dist} {version}".strip()
        try:
            metric = Metric(name=name, compute=compute, plugin=plugin, distribution=dist, version=version, **meta)
        except TypeError as exc:  # a missing direction or description, or an unknown keyword
            self.errors.append(LoadError(plugin, where, f'metric "{name}": bad register() call: {exc}. Expected '
                                         "register(name, compute, *, lower_is_better, description, ...)"))
            return
        except ValueError as exc:
            self.errors.append(LoadError(plugin, where, str(exc)))
            return
        # Two metrics may not write the same value: one would silently overwrite the other in every evaluation.
        owners = {column: other for other in self._metrics.values() for column in (other.name, *other.columns)}
        clash = next((c for c in (metric.name, *metric.columns) if c in owners), None)
        if clash is not None:
            existing = owners[clash]
            self.errors.append(LoadError(
                plugin, where, f'metric "{name}": "{clash}" is already registered by plugin "{existing.plugin}" '
                               f'({existing.distribution}) as metric "{existing.name}"; plugin "{plugin}" must '
                               "choose other names (the first registration is kept)."))
            return
        self._metrics[name] = metric

    def _add_tracker(self, plugin, dist, version, name, factory, meta) -> None:
        where = f"{dist} {version}".strip()
        try:
            tracker = TrackerType(name=name, factory=factory, plugin=plugin, distribution=dist, version=version, **meta)
        except TypeError as exc:  # a missing description, or an unknown keyword
            self.errors.append(LoadError(plugin, where, f'tracker "{name}": bad register() call: {exc}. Expected '
                                         "register(name, factory, *, description, modules=(), install='', "
                                         "prepare=None)"))
            return
        except ValueError as exc:
            self.errors.append(LoadError(plugin, where, str(exc)))
            return
        existing = self._trackers.get(name)
        if existing is not None:
            self.errors.append(LoadError(plugin, where, f'tracker "{name}" is already registered by plugin '
                                         f'"{existing.plugin}" ({existing.distribution}); plugin "{plugin}" must '
                                         "choose another name (the first registration is kept)."))
            return
        self._trackers[name] = tracker

    def _builtin(self, plugin: str) -> bool:
        info = self.plugins.get(plugin)
        return info is not None and info.distribution == BUILTIN_DISTRIBUTION

    # -- lookups -------------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``; raises ``UnknownComponentError`` with a did-you-mean."""
        components = self._components[kind]
        if name in components:
            return components[name]
        alias_of = self._aliases.get(kind, {}).get(name)
        if alias_of is not None:  # a former name: old suites and stored run specs still resolve
            return components[alias_of]
        raise UnknownComponentError(_unknown(kind.replace("_", " "), name, components)
                                    + f" See: ganzoo list {PLURALS[kind]}")

    def list(self, kind: str, include: Iterable[str] | None = None,
             exclude: Iterable[str] | None = None) -> list[Component]:
        """Components of ``kind`` sorted by name, filtered by fnmatch patterns like timm's ``list_models``."""
        include, exclude = list(include or []), list(exclude or [])
        out = []
        for name in sorted(self._components[kind]):
            if include and not any(fnmatch.fnmatchcase(name, p) for p in include):
                continue
            if any(fnmatch.fnmatchcase(name, p) for p in exclude):
                continue
            out.append(self._components[kind][name])
        return out

    def metric(self, name: str) -> Metric:
        """The metric ``name``; raises ``UnknownComponentError`` with a did-you-mean."""
        if name in self._metrics:
            return self._metrics[name]
        raise UnknownComponentError(_unknown("metric", name, self._metrics) + " See: ganzoo list metrics")

    def metrics(self) -> list[Metric]:
        """Every registered metric, in registration order (the built-in ones first)."""
        return list(self._metrics.values())

    def metric_names(self) -> tuple[str, ...]:
        return tuple(self._metrics)

    def tracker(self, name: str) -> TrackerType:
        """The tracker ``name``; raises ``UnknownComponentError`` listing the registered ones."""
        if name in self._trackers:
            return self._trackers[name]
        raise UnknownComponentError(_unknown("tracker", name, self._trackers)
                                    + f" Registered trackers: {', '.join(sorted(self._trackers)) or 'none'}")

    def trackers(self) -> list[TrackerType]:
        """Every registered tracker, sorted by name."""
        return [self._trackers[name] for name in sorted(self._trackers)]

    def check_metrics(self, names: Iterable[str], where: str = "eval.metrics") -> tuple[str, ...]:
        """``names`` as a tuple when every one is registered; ``where`` is what the user wrote them in.

        Raises:
            ValueError: no name, or a name no plugin registered; the message lists the registered ones.
        """
        names, known = tuple(names), self.metric_names()
        unknown = [m for m in names if m not in known]
        if unknown or not names:
            raise ValueError(f"{where}: unknown {unknown}; choose among {', '.join(known)} (see: ganzoo list metrics)")
        return names

    def all(self) -> list[Component]:
        return [c for kind in KINDS for c in self.list(kind)]

    def __contains__(self, item: tuple[str, str]) -> bool:
        kind, name = item
        return name in self._components.get(kind, {})

    def tagged(self, kind: str, tag: str) -> list[Component]:
        """Components of ``kind`` that carry ``tag``, sorted by name."""
        return [c for c in self.list(kind) if tag in c.tags]

    def unlike_entry_points(self) -> str | None:
        """Why ``get_registry()`` in a new process (a worker) would not rebuild this registry, or ``None``."""
        if self.in_process_plugins:
            return f"has plugins registered in process ({', '.join(self.in_process_plugins)})"
        if not self.entry_points:
            return "was built without the entry points"
        if self.selection != selection_from_env():
            return "was built under other GANZOO_PLUGINS / GANZOO_BLOCK_PLUGINS settings"
        return None


def core_plugins() -> dict[str, object]:
    """The core's own hook implementations, registered in every registry: the built-in metrics.

    Imported when a registry is built, not with this module: importing ``ganzoo.metrics`` runs its
    ``__init__``, which imports the ``Evaluator``, which imports this module.
    """
    from ..metrics import builtin

    return {"ganzoo.metrics": builtin}


_lock = threading.Lock()
_registry: Registry | None = None
_metric_registry: Registry | None = None  # metric_registry()'s, while no full registry is built


def get_registry() -> Registry:
    """The process-wide registry, built from the entry points on first use."""
    global _registry
    with _lock:
        if _registry is None:
            pm, infos, errors = create_plugin_manager(core_plugins=core_plugins())
            _registry = Registry(pm, infos, errors)
        return _registry


def metric_registry() -> Registry:
    """A registry to read the metrics from: the process registry when it is built, else one without the zoo.

    The built-in zoo registers no metric (the core does, ``core_plugins``), so leaving its entry points out
    loses none, and a report or ``ganzoo compare`` never imports the zoo's networks. Other distributions'
    plugins load as usual: any of them may register a metric.
    """
    global _metric_registry
    with _lock:
        if _registry is not None:
            return _registry
        if _metric_registry is None:
            pm, infos, errors = create_plugin_manager(core_plugins=core_plugins(), builtin_zoo=False)
            _metric_registry = Registry(pm, infos, errors)
        return _metric_registry


def reset_registry(registry: Registry | None = None) -> None:
    """Forget the cached registry (or install ``registry``); tests use it after changing plugins."""
    global _registry, _metric_registry
    with _lock:
        _registry, _metric_registry = registry, None


def build_registry(extra_plugins: dict[str, object] | None = None, load_entry_points: bool = True) -> Registry:
    """A fresh registry with the entry points and, optionally, plugin objects registered in process."""
    pm, infos, errors = create_plugin_manager(load_entry_points, core_plugins())
    for name, plugin in (extra_plugins or {}).items():
        pm.register(plugin, name=name)
    return Registry(pm, infos, errors, entry_points=load_entry_points)


def _unknown(what: str, name: str, known) -> str:
    """'Unknown WHAT "NAME".', with a did-you-mean among ``known`` names when one is close."""
    message = f'Unknown {what} "{name}".'
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if close:
        message += " Did you mean " + " or ".join(f'"{c}"' for c in close) + "?"
    return message
