"""Why a component asked for trains in no run: what the dry run and ``bench`` print, so nothing disappears.

A component is asked for when a filter on its axis names it (``--loss hinge``) or, on an axis the command line
does not filter, when it is registered. One that trains in no run of the grid is named with, for each
dataset, the first of these that holds:

1. it cannot run on the data (an image-only generator on vector data);
2. the design has no level with it (the suite's components patterns leave it out);
3. every cell of the design with it is incompatible, and with what (a conditional discriminator needs a
   conditional generator);
4. its cells do not pass the other filters (a one-factor design changes one axis at a time);
5. its cells are not among those a fractional design trains.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.components import Component
from ..api.contracts import DataSpec
from ..core.registry import Registry
from ..core.spec import RunSpec
from .suite import AXES

KIND_OF_AXIS = {"generator": "generator", "discriminator": "discriminator", "loss": "loss", "stack": "stabilizer"}

# What became of a cell of a design.
TRAINS, INCOMPATIBLE, FILTERED, UNSAMPLED = "trains", "incompatible", "filtered", "unsampled"


@dataclass
class Coverage:
    """One dataset's design cell by cell: what the reasons are read from."""

    dataset: str
    spec: DataSpec
    design: str
    levels: dict[str, list[str]]  # axis -> the levels the design combines
    patterns: dict[str, dict[str, Any]]  # axis -> include, exclude, from_filters: what chose its levels
    stacks: dict[str, list[str]]  # stack name -> its stabilizers
    baseline: str = ""  # one-factor designs
    outcomes: dict[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)  # cell -> (TRAINS..., why)


@dataclass(frozen=True)
class Asked:
    """A component asked for: a generator, discriminator, loss or stabilizer, or a stack the filters name."""

    kind: str  # generator, discriminator, loss, stabilizer or stack
    name: str
    component: Component | None  # None for a stack
    named: bool  # named by a filter, not only registered

    @property
    def axis(self) -> str:
        return "stack" if self.kind in ("stabilizer", "stack") else self.kind

    def in_level(self, level: str, stacks: Mapping[str, list[str]]) -> bool:
        return self.name in stacks.get(level, ()) if self.kind == "stabilizer" else level == self.name

    def trains_in(self, spec: RunSpec) -> bool:
        if self.kind == "stabilizer":
            return any(ref.name == self.name for ref in spec.stack)
        if self.kind == "stack":
            return spec.stack_name == self.name
        return getattr(spec, self.kind).name == self.name


def asked_for(registry: Registry, patterns_of: Mapping[str, tuple[str, ...]],
              stacks: Mapping[str, Any]) -> list[Asked]:
    """What the command line asks for: per axis, the registered components its patterns match (all of them
    when it has none); on the stack axis also the stacks a pattern names that no stabilizer does ("none")."""
    asked = []
    for axis in AXES:
        kind, patterns = KIND_OF_AXIS[axis], patterns_of[axis]
        asked += [Asked(kind, c.name, c, bool(patterns)) for c in registry.list(kind, patterns)]
    stabilizers = {c.name for c in registry.list("stabilizer")}
    asked += [Asked("stack", name, None, True) for name in stacks if name not in stabilizers
              and any(fnmatch.fnmatchcase(name, p) for p in patterns_of["stack"])]
    return asked


def untrained(asked: list[Asked], specs: list[RunSpec], coverages: list[Coverage]) -> list[tuple[str, dict[str, str]]]:
    """(component, {dataset: why}) for every component asked for that trains in no run."""
    out = []
    for item in asked:
        if coverages and not any(item.trains_in(spec) for spec in specs):
            out.append((f"{item.kind} {item.name}", {c.dataset: why(item, c) for c in coverages}))
    return out


def why(item: Asked, coverage: Coverage) -> str:
    """Why ``item`` trains in no run of one dataset's design (the module's reasons, first that holds)."""
    if item.component is not None and (reason := item.component.incompatibility(coverage.spec)):
        return reason
    axis = AXES.index(item.axis)
    levels = {level for level in coverage.levels[item.axis] if item.in_level(level, coverage.stacks)}
    if not levels:
        return _not_in_design(item, coverage)
    cells = [outcome for cell, outcome in coverage.outcomes.items() if cell[axis] in levels]
    if not cells:
        empty = [a for a in AXES if not coverage.levels[a]]
        return f"the design has no {' and no '.join(empty)} that can run on {coverage.dataset}"
    by_status: dict[str, list[str]] = {}
    for status, reason in cells:
        by_status.setdefault(status, []).append(reason)
    if FILTERED in by_status:
        hint = (f" (a one-factor design changes one axis at a time from {coverage.baseline}: --design full "
                "crosses what the filters name)" if coverage.design == "one-factor" else "")
        return f"no cell with it passes the filters: {by_status[FILTERED][0]}{hint}"
    if UNSAMPLED in by_status:
        return f"none of its {len(by_status[UNSAMPLED])} compatible cells is in the fraction: {by_status[UNSAMPLED][0]}"
    reasons = Counter(by_status[INCOMPATIBLE])
    # The reason that names the component itself says best what it cannot run with.
    own = [r for r, _ in reasons.most_common() if f"{item.kind} {item.name} " in r]
    reason = own[0] if own else reasons.most_common(1)[0][0]
    return (f"incompatible in every cell of the design with it ({len(cells)}): {reason}"
            + (f" (and {len(reasons) - 1} other reasons)" if len(reasons) > 1 else ""))


def _not_in_design(item: Asked, coverage: Coverage) -> str:
    patterns, axis = coverage.patterns[item.axis], item.axis
    suite_s = f"the suite's {coverage.dataset} components"
    text = f"not in the {coverage.design} design: "
    if patterns["from_filters"]:
        text += f"the filters select {axis} {', '.join(patterns['include'])}"
    elif any(fnmatch.fnmatchcase(item.name, p) for p in patterns["exclude"]):
        text += f"{suite_s} exclude it (exclude_{axis} = {json.dumps(patterns['exclude'])})"
    elif patterns["include"]:
        text += f"{suite_s} select {axis} = {json.dumps(patterns['include'])}"
    else:
        text += f"no {axis} of the suite holds it"
    if item.named and coverage.design == "one-factor":
        text += "; --design full crosses the components the filters name"
    return text
