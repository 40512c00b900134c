"""The built-in zoo inside the default grid, tested the way timm tests its models.

Parametrised over what is registered.
"""

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ganzoo.core.registry import build_registry
from ganzoo.core.spec import Budget
from ganzoo.metrics.evaluate import Evaluator
from ganzoo.report.samples import final_samples
from ganzoo.run.build import build_models, eval_generator
from ganzoo.run.evaluate import evaluation_samples
from ganzoo.run.grid import build_grid
from ganzoo.run.suite import available_suites, load_suite
from ganzoo.run.train import run

REGISTRY = build_registry()
DEFAULT_GRID = build_grid(load_suite("default"), REGISTRY, seeds=[0])
MODERN_GRID = build_grid(load_suite("modern-digits"), REGISTRY, seeds=[0])


@pytest.mark.parametrize("kind, axis", [("generator", "generator"), ("discriminator", "discriminator"),
                                        ("loss", "loss"), ("stabilizer", "stack")])
def test_the_default_and_modern_digits_train_every_builtin_component(kind, axis):
    # Class-conditional components train in conditional-digits instead (test_conditional checks that its grid
    # covers every one), the modern zoo in modern-digits: the default excludes both, so that its runs stay the
    # committed ones and its time does not grow.
    builtin = {c.name for c in REGISTRY.list(kind) if c.distribution == "ganzoo"
               and not {"conditional", "auxiliary_classifier"} & set(c.tags)}
    specs = DEFAULT_GRID.specs + MODERN_GRID.specs
    if axis == "stack":
        used = {ref.name for spec in specs for ref in spec.stack}
    else:
        used = {getattr(spec, axis).name for spec in specs}
    assert builtin <= used, f"built-in {kind}s in neither the default nor modern-digits: {sorted(builtin - used)}"


@pytest.mark.parametrize("spec", DEFAULT_GRID.specs + MODERN_GRID.specs,
                         ids=lambda s: f"{s.dataset.name}:{s.combination}")
def test_every_default_and_modern_combination_trains_and_saves_the_generator_it_evaluated(spec, tmp_path):
    """Each combination builds, takes G and D steps through its whole stack, moves its evaluated generator, and
    saves the very generator its final evaluation measured: reloaded from the checkpoint and evaluated again,
    it gives the recorded FID (a stack whose wrapper, EMA or packing, saved another module would fail here).

    Two G steps of 16 samples (the cost is building the models, not training them): the harness's numbers are
    checked elsewhere; here a combination that cannot train, save or evaluate fails by name.
    """
    budget = Budget(unit="g_steps", g_steps=2, batch_size=16, eval_every_g_steps=2)
    tiny = replace(spec, budget=budget, protocol=replace(spec.protocol, n_fake=128, metrics=("fid",)))
    result = run(tiny, tmp_path, "cpu", REGISTRY)
    assert result.status == "done", result.error
    assert (result.g_steps, result.d_steps >= result.g_steps) == (2, True)
    assert [e["g_steps"] for e in result.evals] == [2]  # evaluated once, at the end of the budget

    trained, saved_spec = final_samples(Path(result.artifacts["checkpoint"]), REGISTRY)
    assert saved_spec == tiny
    untrained = evaluation_samples(eval_generator(build_models(tiny, REGISTRY, torch.device("cpu"))), tiny, "cpu")
    assert trained.shape == untrained.shape and not torch.equal(trained, untrained)  # two steps moved G
    dataset = REGISTRY.get("dataset", tiny.dataset.name).build(**tiny.dataset.hparams)
    again = Evaluator(dataset, tiny.protocol, "cpu", registry=REGISTRY)(trained)["fid"]
    assert math.isfinite(result.final["fid"]) and again == pytest.approx(result.final["fid"], rel=1e-6)


@pytest.mark.parametrize("name", sorted(available_suites()))
def test_every_shipped_suite_builds_its_grid_offline(name):
    """Suites resolve every name and hyperparameter (a typo fails here), even when their data needs a download."""
    suite = load_suite(name)
    grid = build_grid(suite, REGISTRY)
    assert grid.specs and len(grid.specs) % len(suite.seeds) == 0
