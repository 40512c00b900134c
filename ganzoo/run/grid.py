"""From a suite and the registry to the list of run specs: the benchmark grid.

Each axis has levels (the suite's components patterns; in a crossed design, the command line's filters
replace them for the axes they name); the design combines them into cells (one-factor rows around a
baseline, the full cross product, or a balanced fraction of it: ``design.py``). Only cells that can run are
kept; every combination left out is reported with its reason (a vector MLP never meets an image
discriminator; label smoothing never meets the hinge loss), and every component asked for that trains in no
run is named with why (``Grid.untrained``).
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from ..api.components import PLURALS, Component
from ..api.contracts import DataSpec
from ..core.registry import Registry
from ..core.spec import Budget, ComponentRef, RunSpec
from .coverage import FILTERED, INCOMPATIBLE, KIND_OF_AXIS, TRAINS, UNSAMPLED, Coverage, asked_for, untrained
from .design import balance, fractional_cells, pairs_covered, pairwise_size
from .suite import AXES, CROSSED_DESIGNS, DatasetPlan, Fraction, Suite, SuiteError


@dataclass
class DesignSummary:
    """One dataset's design, as the dry run prints it."""

    dataset: str
    design: str
    levels: dict[str, list[str]]  # axis -> the levels the design combines
    crossed: int  # cells of the cross product of the levels (one-factor: rows of the design)
    compatible: int  # of them, those whose components can run together
    cells: list[str]  # the combinations that train, after the filters
    baseline: str = ""  # one-factor designs
    seed: int | None = None  # fractional designs: the seed that picked the cells
    asked_cells: int | None = None  # fractional designs: the cells asked for, before capping at ``compatible``
    balance: dict[str, tuple[int, int]] = field(default_factory=dict)  # fractional: axis -> min, max cells per level
    pairs: tuple[int, int] | None = None  # fractional: pairs of levels in its cells, of those compatible cells hold


@dataclass
class Grid:
    specs: list[RunSpec] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (combination or component, reason)
    designs: list[DesignSummary] = field(default_factory=list)
    # Components asked for that train in no run: (kind and name, {dataset: why}).
    untrained: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@dataclass(frozen=True)
class Filters:
    """Glob patterns from the command line; a combination is kept when every axis matches (empty = all)."""

    generator: tuple[str, ...] = ()
    discriminator: tuple[str, ...] = ()
    loss: tuple[str, ...] = ()
    stabilizer: tuple[str, ...] = ()
    dataset: tuple[str, ...] = ()

    def of_axis(self, axis: str) -> tuple[str, ...]:
        return getattr(self, KIND_OF_AXIS[axis])

    def keeps(self, combo: dict[str, Any], stack_name: str, dataset: str) -> bool:
        return not self.failing(combo, stack_name, dataset)

    def failing(self, combo: dict[str, Any], stack_name: str, dataset: str) -> list[str]:
        """The filters a combination does not match, as the command line spells them."""
        def match(patterns, *names):
            return not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)

        stack_members = [c.name for c in combo["stack"]] or ["none"]
        names = {"generator": [combo["generator"].name], "discriminator": [combo["discriminator"].name],
                 "loss": [combo["loss"].name], "stabilizer": [stack_name, *stack_members], "dataset": [dataset]}
        return [" ".join(f"--{kind} {p}" for p in getattr(self, kind))
                for kind, of_combo in names.items() if not match(getattr(self, kind), *of_combo)]


def explain_empty(suite: Suite, registry: Registry, filters: Filters, **grid_args) -> str:
    """Why ``filters`` leave no run of ``suite``: how many runs each axis's filter keeps on its own."""
    from dataclasses import fields

    unfiltered = build_grid(suite, registry, Filters(), **grid_args)
    if not unfiltered.specs:
        return (f"Suite {suite.name} has no compatible combination to train"
                + (f" ({len(unfiltered.left_out)} left out; see --dry-run)" if unfiltered.left_out else ""))
    lines = [f"No run of suite {suite.name} ({len(unfiltered.specs)} runs) passes the filters; filters on "
             "different axes must all match:"]
    for field_ in fields(Filters):
        patterns = getattr(filters, field_.name)
        if patterns:
            alone = build_grid(suite, registry, Filters(**{field_.name: patterns}), **grid_args)
            lines.append(f"  --{field_.name} {' '.join(patterns)}: keeps {len(alone.specs)} runs on its own")
    for what, by_dataset in build_grid(suite, registry, filters, **grid_args).untrained:
        kind, name = what.split(" ", 1)
        if any(fnmatch.fnmatchcase(name, p) for p in getattr(filters, "stabilizer" if kind == "stack" else kind)):
            lines.append(f"  {what}: " + "; ".join(f"{dataset}: {why}" for dataset, why in by_dataset.items()))
    return "\n".join(lines)


def data_spec_of(component: Component, hparams: dict[str, Any]) -> DataSpec:
    """The dataset's DataSpec, without loading the data when the factory can tell it (``spec_for``)."""
    spec_for = getattr(component.factory, "spec_for", None)
    if callable(spec_for):
        return spec_for(**hparams)
    return component.factory(**hparams).spec


def resolve_stacks(suite: Suite, registry: Registry) -> dict[str, list[ComponentRef]]:
    """The suite's named stacks plus, with ``auto_stacks``, one stack per registered stabilizer."""
    stacks = dict(suite.stacks)
    if suite.auto_stacks:
        for component in registry.list("stabilizer"):
            stacks.setdefault(component.name, [ComponentRef(component.name, {})])
    return stacks


def build_grid(suite: Suite, registry: Registry, filters: Filters = Filters(), seeds: list[int] | None = None,
               kimg: float | None = None, g_steps: int | None = None) -> Grid:
    """Every run spec of ``suite``: compatible combinations (by the suite's design) x seeds."""
    grid = Grid()
    stacks = resolve_stacks(suite, registry)
    coverages = []
    for plan in suite.datasets:
        if filters.dataset and not any(fnmatch.fnmatchcase(plan.dataset.name, p) for p in filters.dataset):
            continue
        coverages.append(_plan_grid(plan, suite, registry, stacks, filters, seeds, kimg, grid, g_steps))
    asked = asked_for(registry, {axis: filters.of_axis(axis) for axis in AXES}, stacks)
    grid.untrained = untrained(asked, grid.specs, coverages)
    return grid


def _plan_grid(plan: DatasetPlan, suite: Suite, registry: Registry, stacks: dict[str, list[ComponentRef]],
               filters: Filters, seeds: list[int] | None, kimg: float | None, grid: Grid,
               g_steps: int | None = None) -> Coverage:
    dataset_component = registry.get("dataset", plan.dataset.name)
    registry.check_metrics(plan.protocol.metrics)  # a plugin's metric is known only here, not when the suite is read
    dataset_hparams = dataset_component.hparams(plan.dataset.hparams)
    spec = data_spec_of(dataset_component, dataset_hparams)
    dataset_ref = ComponentRef(dataset_component.name, dataset_hparams)
    design = suite.design_of(plan)
    patterns = _axis_patterns(plan, design, filters)
    candidates = _candidates(patterns, registry, stacks, spec, dataset_ref.name, grid)
    budget = plan.budget if kimg is None else _with_kimg(plan.budget, kimg, dataset_ref.name)
    budget = budget if g_steps is None else _with_g_steps(budget, g_steps, dataset_ref.name)
    # An extra row may name what the one-factor sweep leaves out (WGAN-GP's loss and stack only make sense
    # together), as long as it is registered and compatible with the data.
    extra_allowed = _extra_allowed(registry, stacks, spec) if plan.extra else {}
    protocol = plan.protocol_for(dataset_component.judgement)  # the dataset's evaluation sizes where unset
    seeds_of = _seeds_of_rows(plan, suite, seeds)
    combos = list(_design(design, plan, candidates, dataset_ref.name, extra_allowed))
    _check_row_seeds(plan, combos, dataset_ref.name)
    coverage = Coverage(dataset_ref.name, spec, design, candidates, patterns,
                        {name: [ref.name for ref in refs] for name, refs in stacks.items()},
                        baseline=_label(plan.baseline) if design == "one-factor" else "")
    compatible = []
    for combo_names in combos:
        combo = _resolve(combo_names, plan, registry, stacks)
        reason = _incompatibility(combo, dataset_component)
        if reason:
            coverage.outcomes[_cell(combo_names)] = (INCOMPATIBLE, reason)
            grid.left_out.append((f"{dataset_ref.name}: {_label(combo_names)}", reason))
        else:
            compatible.append((combo_names, combo))
    summary = _summary(plan, design, candidates, combos, compatible)
    if design == "fractional":
        compatible = _fraction(compatible, candidates, suite.fraction_of(plan), summary, coverage)
    for combo_names, combo in compatible:
        failing = filters.failing(combo, combo_names["stack"], dataset_ref.name)
        if failing:
            coverage.outcomes[_cell(combo_names)] = (FILTERED, f"{_label(combo_names)} does not pass "
                                                               f"{'; '.join(failing)}")
            continue
        coverage.outcomes[_cell(combo_names)] = (TRAINS, "")
        summary.cells.append(_label(combo_names))
        for seed in seeds_of(combo_names):
            grid.specs.append(RunSpec(
                dataset=dataset_ref,
                generator=_ref(combo["generator"], plan),
                discriminator=_ref(combo["discriminator"], plan),
                loss=_ref(combo["loss"], plan),
                stack_name=combo_names["stack"],
                stack=tuple(_stack_ref(c, ref, plan)
                            for c, ref in zip(combo["stack"], stacks[combo_names["stack"]], strict=True)),
                seed=seed,
                budget=budget,
                optim=plan.optim,
                protocol=protocol,
                compute=plan.compute,
            ))
    grid.designs.append(summary)
    return coverage


def _summary(plan: DatasetPlan, design: str, candidates: dict[str, list[str]], combos: list[dict[str, str]],
             compatible: list) -> DesignSummary:
    summary = DesignSummary(plan.dataset.name, design, candidates, len(combos), len(compatible), [])
    if design == "one-factor":
        summary.baseline = _label(plan.baseline)
    return summary


def _fraction(compatible: list, candidates: dict[str, list[str]], fraction: Fraction, summary: DesignSummary,
              coverage: Coverage) -> list:
    """A fractional design's cells: a seeded, balanced sample of the compatible ones (each dataset draws its own
    from the suite's seed); ``summary`` gets its size, balance and pairs, ``coverage`` the cells it leaves out."""
    levels, cells = [candidates[a] for a in AXES], [_cell(names) for names, _ in compatible]
    if fraction.cells is not None:
        size = fraction.cells
    elif fraction.fraction is not None:
        size = max(1, round(fraction.fraction * len(cells)))
    else:  # enough for every pair of levels of the two largest axes
        size = pairwise_size(levels) if all(levels) else 0
    chosen = fractional_cells(levels, cells, size, seed=f"{fraction.seed}/{coverage.dataset}")
    for cell in set(cells) - set(chosen):
        coverage.outcomes[cell] = (UNSAMPLED, f"the fractional design trains {len(chosen)} of the {len(cells)} "
                                              "compatible cells (--cells or --fraction sizes it)")
    summary.seed, summary.asked_cells = fraction.seed, size
    summary.balance = dict(zip(AXES, balance(chosen, levels), strict=True)) if chosen else {}
    summary.pairs = pairs_covered(chosen, cells, len(AXES))
    return [(names, combo) for names, combo in compatible if _cell(names) in set(chosen)]


def _cell(names: dict[str, str]) -> tuple[str, ...]:
    return tuple(names[a] for a in AXES)


def _label(names: dict[str, str]) -> str:
    return "/".join(names[a] for a in AXES)


def _seeds_of_rows(plan: DatasetPlan, suite: Suite, seeds: list[int] | None):
    """combination names -> its seeds: ``--seeds`` for every row; else the row's own (``row_seeds``), the
    baseline's (``baseline_seeds``), the dataset's or the suite's."""
    rows = {_row_key(plan, row["axes"]): row["seeds"] for row in plan.row_seeds}
    if plan.baseline_seeds:
        rows.setdefault(_row_key(plan, {}), plan.baseline_seeds)

    def seeds_of(combo_names: dict[str, str]) -> list[int]:
        return seeds or rows.get(tuple(combo_names[a] for a in AXES)) or plan.seeds or suite.seeds

    return seeds_of


def _row_key(plan: DatasetPlan, axes: dict[str, str]) -> tuple[str, ...]:
    """The row that changes ``axes`` from the baseline, as a tuple over AXES."""
    return tuple(axes.get(a, plan.baseline.get(a)) for a in AXES)


def _check_row_seeds(plan: DatasetPlan, combos: list[dict[str, str]], dataset: str) -> None:
    """A row_seeds entry must name a row of the design: a typo would otherwise silently train one seed."""
    rows = {tuple(c[a] for a in AXES) for c in combos}
    for row in plan.row_seeds:
        if _row_key(plan, row["axes"]) not in rows:
            raise SuiteError(f"Dataset {dataset}: row_seeds names {row['axes']}, which is no row of the suite's "
                             f"design (rows: {', '.join(sorted('/'.join(r) for r in rows))})")


def _extra_allowed(registry: Registry, stacks: dict[str, list[ComponentRef]], spec: DataSpec) -> dict[str, tuple]:
    """Per axis, every registered name compatible with the data, whatever the suite's patterns say."""
    allowed = {axis: tuple(c.name for c in registry.list(KIND_OF_AXIS[axis]) if not c.incompatibility(spec))
               for axis in ("generator", "discriminator", "loss")}
    allowed["stack"] = tuple(name for name in stacks if not any(
        registry.get("stabilizer", ref.name).incompatibility(spec) for ref in stacks[name]))
    return allowed


def _with_kimg(budget: Budget, kimg: float, dataset: str) -> Budget:
    """``--kimg`` overrides a kimg budget and keeps its number of evaluations; a G-step budget cannot take it."""
    if budget.unit != "kimg":
        raise SuiteError(f'--kimg overrides budgets counted in kimg, but dataset {dataset} counts {budget.unit} '
                         f'(budget.unit = "{budget.unit}" in the suite): change budget.{budget.unit} there instead')
    every = None if budget.eval_every_kimg is None else kimg * budget.eval_every_kimg / budget.kimg
    return replace(budget, kimg=kimg, eval_every_kimg=every)


def _with_g_steps(budget: Budget, g_steps: int, dataset: str) -> Budget:
    """``--g-steps`` overrides a G-step budget and keeps its number of evaluations."""
    if budget.unit != "g_steps":
        raise SuiteError(f"--g-steps overrides budgets counted in G steps, but dataset {dataset} counts "
                         f"{budget.unit} (budget.unit in the suite): use --kimg instead")
    every = (None if budget.eval_every_g_steps is None
             else max(1, round(g_steps * budget.eval_every_g_steps / budget.g_steps)))
    return replace(budget, g_steps=int(g_steps), eval_every_g_steps=every)


def _axis_patterns(plan: DatasetPlan, design: str, filters: Filters) -> dict[str, dict[str, Any]]:
    """Per axis, the patterns that choose its levels: the suite's components tables; in a crossed design, the
    command line's filters instead for the axes they name (they select levels: the design crosses them)."""
    patterns = {axis: {"include": [], "exclude": [], **plan.components.get(axis, {}), "from_filters": False}
                for axis in AXES}
    if design in CROSSED_DESIGNS:
        for axis in AXES:
            if filters.of_axis(axis):
                patterns[axis] = {"include": list(filters.of_axis(axis)), "exclude": [], "from_filters": True}
    return patterns


def _candidates(patterns, registry, stacks, spec, dataset_name, grid) -> dict[str, list[str]]:
    out = {}
    for axis in AXES:
        if axis == "stack":
            names = [n for n in stacks if _matches(n, patterns[axis])]
            if patterns[axis]["from_filters"]:
                names += _stacks_holding(stacks, patterns[axis]["include"], names)
            keep = []
            for name in names:
                try:
                    members = [registry.get("stabilizer", ref.name) for ref in stacks[name]]
                except KeyError as exc:
                    raise SuiteError(f'Stack "{name}": {exc}') from exc
                reasons = [reason for m in members if (reason := m.incompatibility(spec))]
                if reasons:
                    grid.left_out.append((f"{dataset_name}: stack {name}", reasons[0]))
                else:
                    keep.append(name)
            out[axis] = keep
            continue
        keep = []
        for component in registry.list(KIND_OF_AXIS[axis], patterns[axis]["include"], patterns[axis]["exclude"]):
            reason = component.incompatibility(spec)
            if reason:
                grid.left_out.append((f"{dataset_name}: {axis} {component.name}", reason))
            else:
                keep.append(component.name)
        out[axis] = keep
    return out


def _stacks_holding(stacks: dict[str, list[ComponentRef]], patterns: list[str], chosen: list[str]) -> list[str]:
    """The stacks (beyond ``chosen``) that hold a stabilizer a pattern matches, for the patterns that match no
    stack's name: ``--stabilizer ema`` selects "spectral_norm+ema" when no stack is called "ema"."""
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(name, p) for name in stacks)]
    return [name for name in stacks if name not in chosen
            and any(fnmatch.fnmatchcase(ref.name, p) for ref in stacks[name] for p in unmatched)]


def _matches(name: str, patterns: dict[str, list[str]]) -> bool:
    include, exclude = patterns["include"], patterns["exclude"]
    if include and not any(fnmatch.fnmatchcase(name, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(name, p) for p in exclude)


def _design(design: str, plan: DatasetPlan, candidates: dict[str, list[str]], dataset_name: str,
            extra_allowed: dict[str, tuple[str, ...]] | None = None):
    """Yield {axis: name} combinations: the cross product, or one factor at a time around the baseline.

    ``extra_allowed``: per axis, the names an extra row may use beyond the candidates (registered and
    compatible, but left out of the one-factor sweep by the suite's patterns).
    """
    extra_allowed = extra_allowed or {}
    if design in CROSSED_DESIGNS:  # a fractional design samples the cross product
        for values in itertools.product(*(candidates[a] for a in AXES)):
            yield dict(zip(AXES, values, strict=True))
        return
    baseline = plan.baseline
    for axis in AXES:
        if baseline[axis] not in candidates[axis]:
            raise SuiteError(f'Dataset {dataset_name}: baseline {axis} "{baseline[axis]}" is not registered, '
                             f"not compatible or filtered out by the suite. Candidates: {candidates[axis]}")
    for extra in plan.extra:
        for axis, name in extra.items():
            if name not in candidates[axis] and name not in extra_allowed.get(axis, ()):
                raise SuiteError(f'Dataset {dataset_name}: extra combination {extra} names {axis} "{name}", which is '
                                 f"not registered, not compatible or filtered out. Candidates: {candidates[axis]}")
    seen = []
    for combo in [dict(baseline)] + [{**baseline, axis: name} for axis in AXES for name in candidates[axis]] + [
            {**baseline, **extra} for extra in plan.extra]:
        if combo not in seen:  # an extra row that the design already has is one row, not two
            seen.append(combo)
            yield combo


def _resolve(names: dict[str, str], plan, registry: Registry, stacks) -> dict[str, Any]:
    combo = {axis: registry.get(KIND_OF_AXIS[axis], names[axis]) for axis in ("generator", "discriminator", "loss")}
    combo["stack"] = [registry.get("stabilizer", ref.name) for ref in stacks[names["stack"]]]
    return combo


def _incompatibility(combo: dict[str, Any], dataset: Component) -> str | None:
    """Check every ``requires`` and ``excludes`` of every chosen component against the others' tags."""
    chosen = {"generator": [combo["generator"]], "discriminator": [combo["discriminator"]],
              "loss": [combo["loss"]], "stabilizer": combo["stack"], "dataset": [dataset]}
    for component in [c for group in chosen.values() for c in group]:
        for kind, tag in component.requires.items():
            if not any(tag in other.tags for other in chosen.get(kind, [])):
                names = ", ".join(o.name for o in chosen.get(kind, [])) or "none"
                return f'{component.kind} {component.name} requires a {kind} tagged "{tag}" ({names} is not)'
        for kind, tag in component.excludes.items():
            clashing = [o.name for o in chosen.get(kind, []) if o is not component and tag in o.tags]
            if clashing:
                return (f'{component.kind} {component.name} cannot run with a {kind} tagged "{tag}" '
                        f'({", ".join(clashing)} is); see: ganzoo list {PLURALS[kind]}')
    return None


def _ref(component: Component, plan: DatasetPlan) -> ComponentRef:
    overrides = plan.component_hparams.get(component.kind, {}).get(component.name, {})
    return ComponentRef(component.name, component.hparams(overrides))


def _stack_ref(component: Component, ref: ComponentRef, plan: DatasetPlan) -> ComponentRef:
    overrides = {**plan.component_hparams.get("stabilizer", {}).get(component.name, {}), **ref.hparams}
    return ComponentRef(component.name, component.hparams(overrides))
