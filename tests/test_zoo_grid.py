"""The built-in zoo inside the default grid, tested the way timm tests its models.

Parametrised over what is registered.
"""

from dataclasses import replace

import pytest

from ganzoo.grid import build_grid
from ganzoo.registry import build_registry
from ganzoo.spec import Budget
from ganzoo.suite import available_suites, load_suite
from ganzoo.train import run

REGISTRY = build_registry()
DEFAULT_GRID = build_grid(load_suite("default"), REGISTRY, seeds=[0])


@pytest.mark.parametrize("kind, axis", [("generator", "generator"), ("discriminator", "discriminator"),
                                        ("loss", "loss"), ("stabilizer", "stack")])
def test_default_suite_trains_every_builtin_component(kind, axis):
    builtin = {c.name for c in REGISTRY.list(kind) if c.distribution == "ganzoo"}
    if axis == "stack":
        used = {ref.name for spec in DEFAULT_GRID.specs for ref in spec.stack}
    else:
        used = {getattr(spec, axis).name for spec in DEFAULT_GRID.specs}
    assert builtin <= used, f"built-in {kind}s missing from the default suite: {sorted(builtin - used)}"


@pytest.mark.parametrize("spec", DEFAULT_GRID.specs, ids=lambda s: f"{s.dataset.name}:{s.combination}")
def test_every_default_combination_trains_a_few_steps(spec, tmp_path):
    budget = Budget(unit="g_steps", g_steps=3, batch_size=32)  # three G steps whatever the stack
    tiny = replace(spec, budget=budget,
                   protocol=replace(spec.protocol, n_fake=128, metrics=("fid", "pr")))
    result = run(tiny, tmp_path, "cpu", REGISTRY)
    assert result.status == "done", result.error
    assert result.g_steps == 3 and result.final["fid"] >= 0


@pytest.mark.parametrize("name", sorted(available_suites()))
def test_every_shipped_suite_builds_its_grid_offline(name):
    """Suites resolve every name and hyperparameter (a typo fails here), even when their data needs a download."""
    suite = load_suite(name)
    grid = build_grid(suite, REGISTRY)
    assert grid.specs and len(grid.specs) % len(suite.seeds) == 0
