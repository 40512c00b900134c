"""Which versions of ganzoo, torch and each plugin trained a run, and what a sweep says when they changed.

Versions are recorded with every run, not keyed into run ids: putting them into ids would retrain everything
on every release. A sweep that reuses finished runs trained with other versions says so.
"""

from __future__ import annotations

import torch

from .. import __version__
from ..core.registry import Registry
from ..core.spec import RunSpec
from ..run.grid import Grid


def versions(spec: RunSpec, registry: Registry) -> dict[str, str]:
    """ganzoo, torch and every distribution that provided a component of ``spec``."""
    out = {"ganzoo": __version__, "torch": torch.__version__}
    parts = [("dataset", spec.dataset), ("generator", spec.generator), ("discriminator", spec.discriminator),
             ("loss", spec.loss)] + [("stabilizer", ref) for ref in spec.stack]
    for kind, ref in parts:
        component = registry.get(kind, ref.name)
        out[component.distribution] = component.version
    return out



def say_reused_versions(grid: Grid, rows: dict, skipped: list[str], registry: Registry, echo) -> None:
    """Finished runs are reused by id; say so when they were trained with other versions than installed now."""
    changes: dict[str, set[str]] = {}
    count = 0
    for spec in grid.specs:
        if spec.run_id not in skipped:
            continue
        then, now = rows[spec.run_id].get("versions") or {}, versions(spec, registry)
        changed = {f"{name} {then.get(name, '(none)')} -> {now.get(name, '(none)')}" for name in set(then) | set(now)
                   if then.get(name) != now.get(name)}
        if changed:
            count += 1
            for change in changed:
                changes.setdefault(change, set()).add(spec.run_id)
    if count:
        echo(f"{count} finished runs were trained with other versions than installed now "
             f"({'; '.join(sorted(changes))}); they are reused as they are. To train them again, use a new "
             "--results-dir.")


