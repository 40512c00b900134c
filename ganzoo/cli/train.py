"""``ganzoo train``: one combination, for someone debugging a component.

It builds the same run spec a suite would (so the run lands in the same store and is skipped by a
later sweep that asks for the same spec) and prints every evaluation as it happens.
"""

from __future__ import annotations

import json
import sys

import click

from ..api.components import kind_from_user
from ..core.records import FAILED
from .common import FINITE_POSITIVE, check_device, log_option, results_dir_option, user_errors


def _parse_hparam(text: str) -> tuple[str, str, object]:
    """``generator.ch=32`` -> ("generator", "ch", 32); values are read as JSON, else kept as strings."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise click.BadParameter(f'"{text}": expected KIND.KEY=VALUE, e.g. generator.ch=32', param_hint="--hparam")
    target, raw = text.split("=", 1)
    kind, key = target.split(".", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    try:
        return kind_from_user(kind), key, value
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hparam") from exc


@click.command("train")
@click.option("--dataset", required=True, help="Registered dataset (see: ganzoo list datasets).")
@click.option("--generator", required=True)
@click.option("--discriminator", required=True)
@click.option("--loss", default=None,
              help="Default: the suite's baseline loss for the dataset, else the registered loss tagged \"default\".")
@click.option("--stabilizer", "stabilizers", multiple=True, help="Stabilizers of the stack, in order (repeatable).")
@click.option("--hparam", "hparams", multiple=True, metavar="KIND.KEY=VALUE",
              help="Hyperparameter override, e.g. generator.ch=32 or dataset.resolution=16 (repeatable).")
@click.option("--suite", default=None,
              help="Take budget, optimiser and protocol from this suite (default: the embedded default, or for a "
              "dataset it does not train the shipped suite that does; else --kimg or --g-steps sets the budget).")
@click.option("--kimg", type=FINITE_POSITIVE, default=None,
              help="Budget in kimg (for datasets whose suite budget counts kimg).")
@click.option("--g-steps", type=click.IntRange(min=1), default=None,
              help="Budget in G steps (for datasets whose suite budget counts G steps).")
@click.option("--seed", type=int, default=0, show_default=True)
@results_dir_option
@click.option("--device", default="auto", show_default=True, callback=check_device,
              help="auto (CUDA when available), cpu or cuda[:N].")
@log_option
def train_command(dataset, generator, discriminator, loss, stabilizers, hparams, suite, kimg, g_steps, seed,
                  results_dir, device, trackers):
    """Train one combination and print its evaluations."""
    from ..core.registry import get_registry
    from ..run.suite import load_suite

    with user_errors():
        registry = get_registry()
        registry.get("dataset", dataset)  # an unknown name fails first, with a did-you-mean
        base = load_suite(suite)
        plan = _plan_of(base, dataset)
        if not plan and suite is None:  # the default does not train it: a shipped suite that does
            base, plan = _shipped_plan(dataset) or (base, plan)
            if plan:
                click.echo(f'Budget, optimiser and protocol from suite "{base.name}", which trains {dataset} '
                           "(--suite NAME to choose another)")
        loss = loss or _default_loss(registry, plan, base.name, dataset)
        if not plan:
            plan = _budget_only_plan(base.name, dataset, kimg, g_steps, searched=suite is None)
        for kind, name in (("dataset", dataset), ("generator", generator), ("discriminator", discriminator),
                           ("loss", loss), *(("stabilizer", s) for s in stabilizers)):
            registry.get(kind, name)  # unknown names fail here, with a did-you-mean
        _train(base.raw, plan, dataset, generator, discriminator, loss, stabilizers, hparams, (kimg, g_steps), seed,
               results_dir, device, trackers)


def _plan_of(suite, dataset: str) -> dict:
    return next((d for d in suite.raw["datasets"] if d["name"] == dataset), {})


def _shipped_plan(dataset: str):
    """(suite, its plan for ``dataset``) of the shipped suite that trains it, short (CPU) suites first; or None."""
    from ..run.suite import available_suites, load_suite

    # Among short suites, the shortest name is the general one: stacked-mnist-short before
    # r3gan-stacked-mnist-short, which studies one paper's table on the same data.
    names = sorted(available_suites(), key=lambda name: (not name.endswith("-short"), len(name), name))
    for name in names:
        suite = load_suite(name)
        plan = _plan_of(suite, dataset)
        if plan:
            return suite, plan
    return None


def _budget_only_plan(suite_name: str, dataset: str, kimg, g_steps, searched: bool = True) -> dict:
    """No suite trains ``dataset`` (``searched``: no shipped one either): the budget comes from the command line."""
    if g_steps is not None:
        return {"name": dataset, "budget": {"unit": "g_steps", "g_steps": g_steps}}
    if kimg is not None:
        return {"name": dataset, "budget": {"unit": "kimg", "kimg": kimg}}
    where = (f'No shipped suite trains dataset "{dataset}"' if searched
             else f'Suite "{suite_name}" does not train "{dataset}"')
    raise click.UsageError(f"{where}: say its budget with --g-steps N or --kimg N, or --suite NAME of a suite that "
                           "trains it")


def _default_loss(registry, plan: dict, suite_name: str, dataset: str) -> str:
    """The suite's baseline loss for ``dataset``, else the one registered loss tagged ``"default"``."""
    if plan.get("baseline", {}).get("loss"):
        return plan["baseline"]["loss"]
    tagged = [c.name for c in registry.tagged("loss", "default")]
    if len(tagged) != 1:
        raise click.UsageError(f'Say --loss: suite "{suite_name}" has no baseline for dataset "{dataset}" and '
                               f'{len(tagged) or "no"} registered losses are tagged "default". See: ganzoo list losses')
    return tagged[0]


# The tables ``parse_suite`` merges itself, by the suite's rules (a dataset counting its budget in another unit
# than the suite's does not inherit the suite's amounts). They are passed on unmerged, top level and dataset
# level, so that `ganzoo train` gets exactly the budget, optimiser, protocol and compute `ganzoo bench` does.
SUITE_TABLES = ("budget", "optim", "eval", "compute")


def _component_hparams(planned: dict, names: dict, overrides: dict, stabilizers: tuple[str, ...]) -> dict:
    """The dataset's ``component_hparams`` with the ``--hparam`` overrides on top (they win).

    Stabilizer overrides name the stabilizer: ``stabilizer.ema.decay=0.99``.
    """
    merged = {kind: {name: dict(values) for name, values in by_name.items()} for kind, by_name in planned.items()}
    for kind, values in overrides.items():
        if kind in names:
            merged.setdefault(kind, {}).setdefault(names[kind], {}).update(values)
    for key, value in overrides.get("stabilizer", {}).items():
        name, _, param = key.partition(".")
        if name not in stabilizers or not param:
            raise click.BadParameter(f'"stabilizer.{key}": expected stabilizer.NAME.KEY=VALUE with NAME in the stack',
                                     param_hint="--hparam")
        merged.setdefault("stabilizer", {}).setdefault(name, {})[param] = value
    return merged


def _train(base, plan, dataset, generator, discriminator, loss, stabilizers, hparams, budget, seed, results_dir,
           device, trackers=()):
    from ..run.grid import Filters
    from ..run.suite import parse_suite
    from ..sweep.driver import bench

    stack_name = "+".join(stabilizers) or "none"
    overrides: dict = {}
    for kind, key, value in map(_parse_hparam, hparams):
        overrides.setdefault(kind, {})[key] = value
    names = {"generator": generator, "discriminator": discriminator, "loss": loss}
    raw = {
        "name": "train",
        "design": "one-factor",
        "seeds": [seed],
        "auto_stacks": False,
        **{table: dict(base[table]) for table in SUITE_TABLES if table in base},
        # The suite's settings for every dataset (widths, penalty weights); the dataset's own come below.
        "hparams": base.get("hparams", {}),
        "stacks": {stack_name: list(stabilizers)},
        "datasets": [{
            "name": dataset,
            **{table: dict(plan[table]) for table in SUITE_TABLES if table in plan},
            "hparams": {**plan.get("hparams", {}), **overrides.get("dataset", {})},
            "baseline": {**names, "stack": stack_name},
            # Only the baseline: each axis is restricted to the one component asked for.
            "components": {**{axis: [name] for axis, name in names.items()}, "stack": [stack_name]},
            # The suite's own settings for this dataset first (widths, penalty weights), then --hparam.
            "component_hparams": _component_hparams(plan.get("component_hparams", {}), names, overrides,
                                                    stabilizers),
        }],
    }
    the_suite = parse_suite(raw, source="ganzoo train")
    summary = bench(the_suite, results_dir, filters=Filters(), kimg=budget[0], g_steps=budget[1], device=device,
                    executor="inline", trackers=trackers, echo=click.echo)
    from ..core.store import Store

    store = Store(results_dir)
    try:
        for run_id in summary.results or summary.skipped:
            for evaluation in store.evaluations(run_id):
                metrics = ", ".join(f"{k}={v:.4g}" for k, v in {**evaluation.metrics, **evaluation.stabilizers}.items())
                click.echo(f"kimg {evaluation.kimg:.3g}  d_loss {evaluation.d_loss:.4g}  "
                           f"g_loss {evaluation.g_loss:.4g}  {metrics}")
            row = next(r for r in store.runs("train") if r["run_id"] == run_id)
            click.echo(f"run {run_id}: {row['status']} in {row['seconds'] or 0:.1f} s; folder {store.run_dir(run_id)}")
            if row["status"] == FAILED:
                click.echo(row["error"], err=True)
                sys.exit(1)
    finally:
        store.close()
