"""A registered component: a named factory plus the metadata the grid and the tables need."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from .conditional import discriminate, generate
from .contracts import MODALITIES, DataSpec
from .judgement import Judgement

KINDS = ("generator", "discriminator", "loss", "stabilizer", "dataset", "feature_extractor")
PLURALS = {
    "generator": "generators",
    "discriminator": "discriminators",
    "loss": "losses",
    "stabilizer": "stabilizers",
    "dataset": "datasets",
    "feature_extractor": "feature_extractors",
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.\-]*$")


def kind_from_user(text: str) -> str:
    """Accept ``loss``, ``losses``, ``feature-extractors`` ... and return the canonical kind."""
    key = text.strip().lower().replace("-", "_")
    for kind, plural in PLURALS.items():
        if key in (kind, plural):
            return kind
    if key in ("extractor", "extractors"):
        return "feature_extractor"
    choices = ", ".join(PLURALS.values())
    raise ValueError(f'Unknown component kind "{text}". Expected one of: {choices}')


# The kinds whose code runs inside a vectorised group's stacked computation (datasets and extractors run per member).
VECTORIZED_KINDS = ("generator", "discriminator", "loss", "stabilizer")


@dataclass(frozen=True)
class Component:
    """One registered factory and what it is compatible with.

    Args:
        kind: one of ``KINDS``.
        name: lowercase identifier, unique within its kind (``family_variant`` like timm).
        factory: builds the component; see ``ganzoo.api.hookspecs`` for each kind's signature.
        description: one line, shown by ``ganzoo list``.
        reference: the paper or project the component follows (author, year, title or arXiv id).
        tags: free-form labels; other components can require them (see ``requires``). ``"conditional"`` marks a
            part of a class-conditional GAN: it runs only on labelled data (``DataSpec.num_classes``).
        defaults: hyperparameters passed to the factory unless a suite overrides them.
        modalities: data modalities it works with. Undeclared (``None``), they are inferred from the factory:
            a generator or discriminator is built with its defaults for each modality's example data
            (``EXAMPLE_SPECS``, at a declared resolution and channel count) and run on a batch of it, and keeps the
            modalities where that works (none: the registration fails, asking for a declaration); a dataset
            takes its factory's ``spec_for(**defaults).modality``. Losses (they see logits only) and the kinds
            whose factory never sees the data before a run (stabilizers, extractors, datasets without
            ``spec_for``) default to every modality: declare ``modalities=("image",)`` for an image-only one.
        resolutions: image sizes it supports (``None``: any).
        channels: image channel counts it supports (``None``: any).
        requires: ``{kind: tag}``: the component chosen for that kind in the same run must carry the tag
            (label smoothing requires a loss tagged ``"targets"``).
        excludes: ``{kind: tag}``: no component chosen for that kind in the same run may carry the tag
            (PacGAN packing excludes stabilizers tagged ``"per_sample_gradient"``).
        judgement: datasets only: the headline metric, its direction, and what counts as collapsed,
            degraded and successful (``ganzoo.api.judgement``); ``None`` ranks by FID.
        aliases: former names that still find it (``registry.get``), never listed or put in a grid twice.
        vectorized: generators, discriminators, losses and stabilizers only: it trains correctly with the seeds
            of an experiment stacked into one vectorised computation (``ganzoo bench --executor vectorized``;
            docs/scaling.md, "Vectorised seeds"). Undeclared (``False``), every run that uses it trains on its own, with
            exactly its single-run semantics. ``ganzoo.testing.check_vectorized`` is the probe that checks it.
        plugin, distribution, version: who registered it, filled in by the registry.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    reference: str = ""
    tags: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    modalities: tuple[str, ...] | None = None
    resolutions: tuple[int, ...] | None = None
    channels: tuple[int, ...] | None = None
    requires: Mapping[str, str] = field(default_factory=dict)
    excludes: Mapping[str, str] = field(default_factory=dict)
    judgement: Judgement | None = None
    aliases: tuple[str, ...] = ()
    vectorized: bool = False
    plugin: str = ""
    distribution: str = ""
    version: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f'kind must be one of {KINDS}, got "{self.kind}"')
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(
                f'Invalid {self.kind} name "{self.name}": use lowercase letters, digits, "_", "." or "-", '
                "starting with a letter (e.g. resnet_sngan)"
            )
        if not callable(self.factory):
            raise ValueError(f'{self.kind} "{self.name}": factory must be callable, got {type(self.factory).__name__}')
        if not isinstance(self.description, str) or not self.description.strip() or "\n" in self.description.strip():
            raise ValueError(f'{self.kind} "{self.name}": description must be one non-empty line')
        for key in ("requires", "excludes"):
            unknown_kinds = [k for k in getattr(self, key) if k not in KINDS]
            if unknown_kinds:
                raise ValueError(f'{self.kind} "{self.name}": {key} names unknown kinds {unknown_kinds}')
        if self.judgement is not None and (self.kind != "dataset" or not isinstance(self.judgement, Judgement)):
            raise ValueError(f'{self.kind} "{self.name}": judgement is for datasets only and must be a '
                             "ganzoo.Judgement")
        if not isinstance(self.vectorized, bool):
            raise ValueError(f'{self.kind} "{self.name}": vectorized must be True or False, got {self.vectorized!r}')
        if self.vectorized and self.kind not in VECTORIZED_KINDS:
            raise ValueError(f'{self.kind} "{self.name}": vectorized applies to {", ".join(VECTORIZED_KINDS)} only')
        self._check_defaults_fit_factory()
        if self.modalities is None:  # last: inferring builds the factory, which needs valid metadata
            object.__setattr__(self, "tags", tuple(self.tags))
            object.__setattr__(self, "modalities", infer_modalities(self))
        if isinstance(self.modalities, str):
            raise ValueError(f'{self.kind} "{self.name}": modalities must be a tuple such as ("image",), got '
                             f"{self.modalities!r}")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad:
            raise ValueError(f'{self.kind} "{self.name}": unknown modalities {bad}; expected a subset of {MODALITIES}')
        # Freeze the mutable metadata so that one run cannot change another's defaults.
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        bad_aliases = [a for a in self.aliases if not isinstance(a, str) or not NAME_PATTERN.match(a)]
        if bad_aliases:
            raise ValueError(f'{self.kind} "{self.name}": invalid aliases {bad_aliases} (same rules as names)')
        object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "requires", MappingProxyType(dict(self.requires)))
        object.__setattr__(self, "excludes", MappingProxyType(dict(self.excludes)))
        if self.resolutions is not None:
            object.__setattr__(self, "resolutions", tuple(self.resolutions))
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(self.channels))

    def _check_defaults_fit_factory(self) -> None:
        """Every key of ``defaults`` must be a parameter of the factory: found at registration, not in a run."""
        try:
            signature = inspect.signature(self.factory)
        except (TypeError, ValueError):  # a builtin without an introspectable signature
            return
        parameters = signature.parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return
        accepted = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        unknown = sorted(set(self.defaults) - accepted)
        if unknown:
            name = getattr(self.factory, "__qualname__", repr(self.factory))
            raise ValueError(f'{self.kind} "{self.name}": defaults name {unknown}, but its factory {name}{signature} '
                             "takes no such parameter; fix the defaults or the factory")

    def incompatibility(self, spec: DataSpec) -> str | None:
        """Why this component cannot run on data of ``spec``, or ``None`` when it can."""
        if spec.modality not in self.modalities:
            return f"{self.kind} {self.name} supports {'/'.join(self.modalities)} data, not {spec.modality}"
        if "conditional" in self.tags and spec.num_classes is None:  # ganzoo.api.conditional.CONDITIONAL_TAG
            return f"{self.kind} {self.name} is class-conditional: it needs a labelled dataset (DataSpec.num_classes)"
        if spec.modality == "image":
            if self.resolutions is not None and spec.resolution not in self.resolutions:
                return f"{self.kind} {self.name} supports resolutions {list(self.resolutions)}, not {spec.resolution}"
            if self.channels is not None and spec.channels not in self.channels:
                return f"{self.kind} {self.name} supports {list(self.channels)} channels, not {spec.channels}"
        return None

    def hparams(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with ``overrides``.

        ``defaults`` declares every hyperparameter a component takes: unknown keys are rejected so that a
        typo in a suite never passes silently.
        """
        merged = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                known = ", ".join(sorted(self.defaults)) or "none"
                raise ValueError(
                    f'{self.kind} "{self.name}" has no hyperparameter "{key}". Known: {known}. '
                    f"See: ganzoo list {PLURALS[self.kind]}"
                )
            merged[key] = value
        return merged

    def build(self, *args, **overrides):
        """Call the factory with the defaults updated by ``overrides``."""
        return self.factory(*args, **self.hparams(overrides))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (no factory)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "reference": self.reference,
            "tags": list(self.tags),
            "defaults": dict(self.defaults),
            "modalities": list(self.modalities),
            "resolutions": None if self.resolutions is None else list(self.resolutions),
            "channels": None if self.channels is None else list(self.channels),
            "requires": dict(self.requires),
            "excludes": dict(self.excludes),
            "aliases": list(self.aliases),
            "vectorized": self.vectorized,
            "judgement": None if self.judgement is None else self.judgement.as_dict(),
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
        }


# What an undeclared generator or discriminator is tried on: the smallest data of each modality the zoo trains on.
EXAMPLE_SPECS = {"vector": DataSpec("vector", (2,)), "image": DataSpec("image", (3, 32, 32))}
LABELLED_CLASSES = 3


def example_spec(component: Component, modality: str) -> DataSpec:
    """The example data of ``modality`` at the component's first declared resolution and channel count."""
    spec = EXAMPLE_SPECS[modality]
    if modality == "image":
        channels = component.channels[0] if component.channels else spec.shape[0]
        side = component.resolutions[0] if component.resolutions else spec.shape[-1]
        spec = DataSpec("image", (channels, side, side))
    # Labelled: a class-conditional module needs num_classes, an unconditional one ignores it (and the labels).
    return DataSpec(spec.modality, spec.shape, num_classes=LABELLED_CLASSES)


def runs_on(component: Component, spec: DataSpec) -> str | None:
    """Why ``component`` (a generator or discriminator) cannot be built and run on ``spec``, or ``None``."""
    batch = 2
    labels = torch.arange(batch) % spec.num_classes if spec.num_classes else None
    # fork_rng: building initialises weights from the global stream, which registering must leave as it was.
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            module = component.build(spec)
            if component.kind == "generator":
                out = generate(module.eval(), torch.zeros(batch, module.latent_dim), labels)
                expected = [(batch, *spec.shape)]
            else:
                out = discriminate(module.eval(), torch.zeros(batch, *spec.shape), labels)
                expected = [(batch,), (batch, 1)]
    except Exception as exc:  # any failure means "not this modality"; its message goes into the error
        return f"{type(exc).__name__}: {exc}"
    if tuple(out.shape) not in expected:
        return f"output of shape {tuple(out.shape)}, expected {' or '.join(map(str, expected))}"
    return None


def infer_modalities(component: Component) -> tuple[str, ...]:
    """The modalities of a component that declared none (see ``Component.modalities``)."""
    if component.kind == "dataset":
        spec_for = getattr(component.factory, "spec_for", None)
        if not callable(spec_for):
            return MODALITIES
        try:
            return (spec_for(**component.defaults).modality,)
        except Exception as exc:
            raise ValueError(f'dataset "{component.name}" declares no modalities and its spec_for(**defaults) raised '
                             f'{type(exc).__name__}: {exc}; declare them, e.g. modalities=("image",)') from exc
    if component.kind not in ("generator", "discriminator"):
        return MODALITIES
    failures = {m: runs_on(component, example_spec(component, m)) for m in MODALITIES}
    found = tuple(m for m, failure in failures.items() if failure is None)
    if not found:
        tried = "; ".join(f"{m} data {example_spec(component, m).shape}: {failure}" for m, failure in failures.items())
        raise ValueError(f'{component.kind} "{component.name}" declares no modalities and builds and runs on none of '
                         f'the example data ({tried}); declare them, e.g. modalities=("image",), resolutions=(32,)')
    return found


COLUMN_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Metric:
    """A metric evaluations can compute, registered through ``register_metrics`` (the built-in ones too).

    Args:
        name: what ``eval.metrics`` and ``ganzoo eval --metrics`` name (same rules as component names).
        compute: ``compute(real, fake, protocol) -> float | Mapping[str, float]``. ``real`` is the protocol's
            ``ganzoo.metrics.ReferenceSet`` (``features``, ``logits``, float64 ``mu`` and ``sigma``), ``fake``
            the generated ``ganzoo.Features`` (``features``, ``logits``), ``protocol`` the ``EvalProtocol``.
            A float is recorded under ``name``; a mapping records each of its values (``is_mean``, ``is_std``).
        lower_is_better: the direction of its ``columns`` (the leaderboards' arrows).
        description: one line, shown by ``ganzoo list metrics``.
        columns: the values leaderboards show, each in this direction (default: ``(name,)``); the other values
            ``compute`` returns (a spread such as ``kid_std``) are recorded only.
        labels: column -> leaderboard header (default: the column's own name).
        needs_logits: computed only when the extractor gives class logits (IS), else left out of the result.
        needs_labels: a metric of class-conditional generators (``cond_accuracy``, ``intra_fid``): computed for every
            conditional G whether ``eval.metrics`` names it or not, never for an unconditional one; ``fake.labels``
            holds the class each sample was generated for, ``real.labels`` the reference's labels.
        needs_real_features: it reads ``real.features`` (or ``real.logits``), not only ``real.mu`` and ``real.sigma``:
            it cannot be computed against a statistics file (``ganzoo stats``), whose reference holds no features.
        reference: the paper or project the metric follows.
        plugin, distribution, version: who registered it, filled in by the registry.
    """

    name: str
    compute: Callable[..., Any]
    lower_is_better: bool
    description: str
    columns: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    needs_logits: bool = False
    needs_labels: bool = False
    needs_real_features: bool = True
    reference: str = ""
    plugin: str = ""
    distribution: str = ""
    version: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(f'Invalid metric name "{self.name}": use lowercase letters, digits, "_", "." or "-", '
                             "starting with a letter (e.g. sharpness)")
        if not callable(self.compute):
            raise ValueError(f'metric "{self.name}": compute must be callable (real, fake, protocol) -> float, '
                             f"got {type(self.compute).__name__}")
        if not isinstance(self.lower_is_better, bool):
            raise ValueError(f'metric "{self.name}": lower_is_better must be True or False (its direction), '
                             f"got {self.lower_is_better!r}")
        if not isinstance(self.description, str) or not self.description.strip() or "\n" in self.description.strip():
            raise ValueError(f'metric "{self.name}": description must be one non-empty line')
        columns = (self.name,) if not self.columns else self.columns
        if isinstance(columns, str) or len(set(columns)) != len(columns) or not all(
                isinstance(c, str) and COLUMN_PATTERN.match(c) for c in columns):
            raise ValueError(f'metric "{self.name}": columns must be distinct lowercase identifiers such as '
                             f'("precision", "recall"), got {self.columns!r}')
        unknown = sorted(set(self.labels) - set(columns))
        if unknown:
            raise ValueError(f'metric "{self.name}": labels name {unknown}, which are not among its columns '
                             f"{list(columns)}")
        object.__setattr__(self, "columns", tuple(columns))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def label(self, column: str) -> str:
        """How a leaderboard heads ``column``."""
        return self.labels.get(column, column)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (no function)."""
        return {"kind": "metric", "name": self.name, "description": self.description, "reference": self.reference,
                "lower_is_better": self.lower_is_better, "columns": list(self.columns), "labels": dict(self.labels),
                "needs_logits": self.needs_logits, "needs_labels": self.needs_labels,
                "needs_real_features": self.needs_real_features, "plugin": self.plugin,
                "distribution": self.distribution,
                "version": self.version}
