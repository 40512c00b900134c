"""Which runs of a sweep train together as vectorised groups, and why the others train one by one.

Runs group when they are one experiment (their specs equal but for the seed) and every component they use
is registered with ``vectorized=True``. A combination that cannot be vectorised is not an error: its runs
train as single runs, and ``ganzoo bench --executor vectorized --dry-run`` lists the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.registry import Registry
from ...core.spec import RunSpec

ONE_SEED = "one seed to train: nothing to stack it with"
DEFAULT_MAX_GROUP = 32  # seeds per group; past this, a CPU gains little (the prototype: 3.6x at 8, 2.2x at 32)


@dataclass
class Unit:
    """What one worker trains at a time: a group of seeds (``reason`` None) or one run, with why it is alone."""

    specs: list[RunSpec]
    reason: str | None = None

    @property
    def vectorized(self) -> bool:
        return self.reason is None  # a run alone always says why (plan_units)


def why_not_vectorized(spec: RunSpec, registry: Registry) -> str | None:
    """Why runs of ``spec``'s combination cannot be trained in a vectorised group, or ``None`` when they can."""
    if not spec.compute.is_default:
        return "it sets [compute] (bf16, channels_last or compile): vectorised groups train in fp32 eager mode"
    refs = [("generator", spec.generator), ("discriminator", spec.discriminator), ("loss", spec.loss)]
    refs += [("stabilizer", ref) for ref in spec.stack]
    for kind, ref in refs:
        component = registry.get(kind, ref.name)
        if not component.vectorized:
            return (f'{kind} "{component.name}" does not declare vectorized=True '
                    f"({component.distribution or component.plugin or 'its plugin'} registers it without it)")
    return None


def describe_plan(units: list[Unit], max_group: int) -> str:
    """One line: how many runs train in how many groups (what ``bench`` and ``--dry-run`` both print)."""
    groups = [unit for unit in units if unit.vectorized]
    runs = sum(len(unit.specs) for unit in units)
    return (f"{sum(len(unit.specs) for unit in groups)} of {runs} runs train in {len(groups)} vectorised "
            f"group{'' if len(groups) == 1 else 's'} (at most {max_group} seeds each)")


def plan_units(specs: list[RunSpec], registry: Registry, max_group: int = DEFAULT_MAX_GROUP) -> list[Unit]:
    """Split ``specs`` into groups of at most ``max_group`` seeds of one experiment, in the order experiments
    first appear; runs that cannot be grouped become units of one with the reason."""
    if max_group < 1:
        raise ValueError(f"The largest vectorised group must hold at least 1 seed, got {max_group}")
    by_experiment: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by_experiment.setdefault(spec.experiment_key, []).append(spec)
    units: list[Unit] = []
    for members in by_experiment.values():
        why = why_not_vectorized(members[0], registry)
        if why is None and len(members) == 1:
            why = ONE_SEED
        if why is not None:
            units += [Unit([spec], why) for spec in members]
            continue
        # Near-equal groups (10 seeds under a cap of 8: 5 + 5, not 8 + 2) so no group is nearly empty.
        n_groups = -(-len(members) // max_group)
        size = -(-len(members) // n_groups)
        for i in range(0, len(members), size):
            chunk = members[i:i + size]  # one seed is left over when size is 1 (--max-group 1) or 3 seeds split 2 + 1
            units.append(Unit(chunk) if len(chunk) > 1 else
                         Unit(chunk, f"the seed left over when the experiment's seeds were split into groups of at "
                                     f"most {max_group}"))
    # Largest first (a stable sort: the suite's order within a size), so that workers do not sit idle while the
    # last large group trains alone at the end of a sweep.
    return sorted(units, key=lambda unit: -len(unit.specs))
