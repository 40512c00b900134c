"""``ganzoo bench``: train a suite's grid (or print it with ``--dry-run``) and write the leaderboard."""

from __future__ import annotations

import fnmatch
import math
import sys
import textwrap
from pathlib import Path

import click

from ..api.components import PLURALS
from ..core.records import DIVERGED, DONE, FAILED
from ..core.registry import get_registry
from ..core.store import STORE_FILE
from .common import FINITE_POSITIVE, check_device, log_option, results_dir_option, table, user_errors, warn_errors


def _check_patterns(registry, filters) -> None:
    """A filter that matches no registered name is a typo: say so, with a did-you-mean, before anything runs."""
    for kind in ("generator", "discriminator", "loss", "stabilizer", "dataset"):
        names = [c.name for c in registry.list(kind)] + (["none"] if kind == "stabilizer" else [])
        for pattern in getattr(filters, kind):
            if "+" in pattern or any(fnmatch.fnmatchcase(name, pattern) for name in names):
                continue  # "+" names a suite's stack, which only the suite knows
            if any(ch in pattern for ch in "*?["):
                raise click.BadParameter(f'no registered {kind} matches "{pattern}". See: ganzoo list {PLURALS[kind]}',
                                         param_hint=f"--{kind}")
            try:
                registry.get(kind, pattern)
            except KeyError as exc:
                raise click.BadParameter(str(exc), param_hint=f"--{kind}") from exc


# The Ray settings' options and the values that mean "not given" (a given one is refused without --executor ray).
RAY_OPTIONS = {"address": "--address", "runs_per_gpu": "--runs-per-gpu", "storage": "--ray-storage",
               "max_retries": "--ray-max-retries"}
RAY_DEFAULTS = {"address": None, "runs_per_gpu": 1, "storage": "shared", "max_retries": None}


def _filter_options(func):
    for kind in ("dataset", "stabilizer", "loss", "discriminator", "generator"):
        func = click.option(f"--{kind}", f"{kind}_patterns", multiple=True, metavar="GLOB",
                            help=f"Only combinations whose {kind} matches (repeatable).")(func)
    return func


@click.command("bench")
@click.option("--all", "all_", is_flag=True, help="Every registered, compatible combination of the suite's design.")
@click.option("--suite", default=None,
              help="Suite name (shipped) or path to a TOML file. Default: the embedded default.")
@results_dir_option
@click.option("--seeds", type=click.IntRange(min=1), default=None, help="Seeds 0..N-1 instead of the suite's seeds.")
@click.option("--seed-offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Shift every seed by this much: a replicate of the suite on disjoint seeds (e.g. 1000).")
@click.option("--kimg", type=FINITE_POSITIVE, default=None,
              help="Override a budget counted in kimg (keeps its number of evaluations).")
@click.option("--g-steps", type=click.IntRange(min=1), default=None,
              help="Override a budget counted in G steps (keeps its number of evaluations).")
@_filter_options
@click.option("--design", type=click.Choice(["one-factor", "full", "fractional"]), default=None,
              help="How each axis's levels combine (default: the suite's design). one-factor: the suite's baseline "
              "and one change at a time; full: every cell of the cross product; fractional: a seeded, balanced "
              "sample of those cells. In full and fractional designs the filters select each axis's levels. "
              "A design other than the suite's trains as suite SUITE-DESIGN. See docs/designs.md.")
@click.option("--cells", type=click.IntRange(min=1), default=None,
              help="With --design fractional: the cells to train per dataset (default: enough for every pair of "
              "levels of the two largest axes).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="With --design fractional: the share of the compatible cells to train, instead of --cells.")
@click.option("--design-seed", type=int, default=None,
              help="With --design fractional: the seed that picks the cells (default: the suite's, else 0); the "
              "same seed picks the same cells.")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when available), cpu or cuda[:N]. With --executor ray: the cluster's.")
@click.option("--executor", type=click.Choice(["auto", "inline", "processes", "vectorized", "ray", "slurm"]),
              default="auto", show_default=True, help="auto: one single-thread worker process per core on a CPU, "
              "inline on a GPU. vectorized: the seeds of each experiment train as one stacked computation, each seed "
              "still its own run (--dry-run lists what cannot and why). ray: one Ray task per run (pip install "
              "'ganzoo[ray]'). slurm: one SLURM job per run, as job arrays (pip install 'ganzoo[slurm]').")
@click.option("--max-group", type=click.IntRange(min=1), default=None,
              help="With --executor vectorized: the most seeds trained as one group (default 32).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Runs trained side by side: worker processes (with --device cuda they share the GPU), "
              "the most Ray tasks in flight (default: what the cluster's resources allow), or the most jobs of a "
              "SLURM array running at once (default: submitit's 256).")
@click.option("--address", default=None, metavar="ADDR",
              help="With --executor ray: the cluster to join (auto, or ray://HOST:10001); default: a local Ray "
              "instance started for this sweep.")
@click.option("--runs-per-gpu", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --executor ray: runs packed on each GPU (each task asks for 1/N of a GPU).")
@click.option("--ray-storage", type=click.Choice(["shared", "ship"]), default="shared", show_default=True,
              help="With --executor ray: shared: every node writes run folders in --results-dir (same path on "
              "every node); ship: runs train in a temporary folder and their files are sent back to the driver.")
@click.option("--ray-max-retries", type=click.IntRange(min=0), default=None,
              help="With --executor ray: how many times a run whose worker or node died is started again before "
              "it is recorded failed (default 2). A retried run resumes from its last checkpoint (shared storage).")
@click.option("--slurm", "slurm_pairs", multiple=True, metavar="KEY=VALUE",
              help="With --executor slurm (repeatable): each job's resources and where the jobs run. Keys: cluster "
              "(slurm, or local: on this machine), partition, time (minutes or [D-]HH:MM:SS; default 60), "
              "cpus_per_task (default 1), gpus_per_node (default 0), mem_gb, account, qos, constraint, max_requeues "
              "(on timeout; default 3), array_size (default 1000). docs/scaling.md says more.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None,
              help="Train in bf16 autocast instead of the suite's precision (fp32 by default). Part of each run's spec "
              "and protocol: such runs rank in tables of their own.")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Image data, G and D in NHWC memory format (default: the suite's setting). Part of the spec.")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="torch.compile G and D (default: the suite's setting). Part of the spec.")
@click.option("--keep-checkpoints", is_flag=True,
              help="Keep each finished run's training state (D, optimiser states), not only its evaluated G.")
@log_option
@click.option("--dry-run", is_flag=True, help="Print the grid, its size and estimated time; train nothing.")
@click.option("--no-estimate", is_flag=True, help="With --dry-run: skip the timed probe of each combination.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def bench_command(all_, suite, results_dir, seeds, seed_offset, kimg, g_steps, generator_patterns,
                  discriminator_patterns, loss_patterns, stabilizer_patterns, dataset_patterns, design, cells,
                  fraction, design_seed, device, executor,
                  max_group, jobs,
                  address, runs_per_gpu, ray_storage, ray_max_retries, slurm_pairs, precision, channels_last,
                  compile_, keep_checkpoints, trackers, dry_run, no_estimate, progress):
    """Train every combination of a suite under its fixed budget, over seeds, and write the leaderboard."""
    from ..run.grid import Filters
    from ..run.suite import load_suite, with_seed_offset

    filters = Filters(generator_patterns, discriminator_patterns, loss_patterns, stabilizer_patterns, dataset_patterns)
    if not all_ and filters == Filters():
        raise click.UsageError("Say --all to train every combination, "
                               "or narrow it with --generator/--loss/... filters.")
    ray_settings = {"address": address, "runs_per_gpu": runs_per_gpu, "storage": ray_storage,
                    "max_retries": ray_max_retries}
    if executor == "ray":  # the device is the cluster's, checked when the executor has joined it
        from ..sweep.ray import import_ray

        try:
            import_ray()
        except ImportError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        check_device(None, None, device)
        given = [RAY_OPTIONS[k] for k, v in ray_settings.items() if v != RAY_DEFAULTS[k]]
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply to --executor ray.")
    if ray_max_retries is None:
        del ray_settings["max_retries"]  # the executor's default
    slurm_settings = _slurm_settings(executor, slurm_pairs)
    if max_group is not None and executor != "vectorized":
        raise click.UsageError("--max-group applies to --executor vectorized only.")
    registry = get_registry()
    warn_errors(registry)
    _check_patterns(registry, filters)
    if cells is not None and fraction is not None:
        raise click.UsageError("--cells and --fraction both size a fractional design: give one of them.")
    with user_errors():
        seed_list = list(range(seed_offset, seed_offset + seeds)) if seeds else None
        the_suite = _with_design(load_suite(suite), design, cells, fraction, design_seed)
        _run_bench(registry, with_seed_offset(the_suite, seed_offset), filters, seed_list,
                   {"kimg": kimg, "g_steps": g_steps}, results_dir, device, executor, jobs, dry_run, no_estimate,
                   progress, keep_checkpoints=keep_checkpoints, ray_settings=ray_settings,
                   slurm_settings=slurm_settings,
                   compute={"precision": precision, "channels_last": channels_last, "compile": compile_},
                   max_group=max_group, trackers=trackers)


def _slurm_settings(executor: str, pairs: tuple[str, ...]) -> dict | None:
    """``--slurm KEY=VALUE`` pairs as the SLURM executor's settings, checked before anything is written."""
    if executor != "slurm":
        if pairs:
            raise click.UsageError("--slurm only applies to --executor slurm.")
        return None
    from ..sweep.slurm import import_submitit, parse_settings

    try:
        import_submitit()
    except ImportError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        return parse_settings(pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--slurm") from exc


def _with_design(the_suite, design, cells, fraction, seed):
    """The suite under ``--design``; ``--cells``, ``--fraction`` and ``--design-seed`` replace its fraction's."""
    from ..run.suite import Fraction, with_design

    if cells is None and fraction is None and seed is None:
        return with_design(the_suite, design)
    own = the_suite.fraction
    if cells is None and fraction is None:
        cells, fraction = own.cells, own.fraction
    return with_design(the_suite, design, Fraction(cells, fraction, own.seed if seed is None else seed))


def _run_bench(registry, the_suite, filters, seed_list, budget, results_dir, device, executor, jobs, dry_run,
               no_estimate, progress, keep_checkpoints=False, ray_settings=None, compute=None,
               max_group=None, slurm_settings=None, trackers=()) -> None:
    from dataclasses import replace

    overrides = {k: v for k, v in (compute or {}).items() if v is not None}
    if overrides:  # applied to every run; the suite's own [compute] settings the rest
        the_suite = replace(the_suite, datasets=[replace(plan, compute=replace(plan.compute, **overrides))
                                                 for plan in the_suite.datasets])
    from ..run.grid import build_grid
    from ..sweep import bench, estimate

    if dry_run:
        from ..sweep.executors import default_jobs

        grid = build_grid(the_suite, registry, filters, seed_list, budget["kimg"], budget["g_steps"])
        if not grid.specs:
            from ..run.grid import explain_empty
            from ..run.suite import SuiteError

            raise SuiteError(explain_empty(the_suite, registry, filters, seeds=seed_list, kimg=budget["kimg"],
                                           g_steps=budget["g_steps"]))
        parallel = 1 if executor == "inline" else (jobs or default_jobs(device))
        finished = _finished_runs(results_dir, the_suite.name)
        estimates = None if no_estimate else estimate(grid, registry=registry, device=device,
                                                       threads=1 if parallel > 1 else None, skip=finished,
                                                       on_probe=lambda what: click.echo(f"timing {what}", err=True))
        _print_grid(grid, estimates, parallel, finished, the_suite)
        if executor == "vectorized":
            _print_vectorized_plan(grid, registry, max_group, finished)
        return
    summary = bench(the_suite, results_dir, registry=registry, filters=filters, seeds=seed_list,
                    kimg=budget["kimg"], g_steps=budget["g_steps"], device=device, executor=executor, jobs=jobs,
                    keep_checkpoints=keep_checkpoints, ray_settings=ray_settings if executor == "ray" else None,
                    slurm_settings=slurm_settings,
                    progress=progress, max_group=max_group, trackers=trackers, echo=click.echo)
    counts = {s: list(summary.results.values()).count(s) for s in (DONE, DIVERGED, FAILED)}
    click.echo(f"Trained {len(summary.results)} runs: {counts[DONE]} {DONE}, {counts[DIVERGED]} {DIVERGED}, "
               f"{counts[FAILED]} {FAILED}; {len(summary.skipped)} already finished.")
    for path in summary.report_paths:
        click.echo(f"wrote {path}")
    _print_untrained(summary.grid)
    if summary.grid.left_out:
        click.echo(f"left out: {len(summary.grid.left_out)} combinations or components that cannot run "
                   "(--dry-run names each with its reason)")
    if counts[FAILED]:
        sys.exit(1)


def _print_vectorized_plan(grid, registry, max_group, finished: set[str]) -> None:
    """Which runs would train in vectorised groups, and why each combination left out of them trains one by one."""
    from ..run.vectorized.plan import DEFAULT_MAX_GROUP, describe_plan, plan_units

    todo = [spec for spec in grid.specs if spec.run_id not in finished]
    max_group = max_group or DEFAULT_MAX_GROUP
    units = plan_units(todo, registry, max_group)
    groups = [u for u in units if u.vectorized]
    click.echo(f"\nvectorized: {describe_plan(units, max_group)}")
    for unit in groups:
        spec = unit.specs[0]
        click.echo(f"  group of {len(unit.specs)}: {spec.dataset.name} {spec.combination} seeds "
                   f"{', '.join(str(s.seed) for s in unit.specs)}")
    alone: dict[str, tuple[str, int]] = {}
    for unit in units:
        if not unit.vectorized:
            key = f"{unit.specs[0].dataset.name} {unit.specs[0].combination}"
            alone[key] = (unit.reason, alone.get(key, ("", 0))[1] + 1)
    if alone:
        click.echo(f"one by one ({sum(n for _, n in alone.values())} runs):")
        for what, (why, n) in alone.items():
            click.echo(f"  {what} ({n} run{'s' if n > 1 else ''}): {why}")


def _finished_runs(results_dir: Path, suite: str) -> set[str]:
    """Run ids of ``suite`` that the store holds as finished (none when there is no store yet)."""
    from ..core.records import FINISHED
    from ..core.store import Store

    if not (results_dir / STORE_FILE).is_file():
        return set()
    store = Store(results_dir, readonly=True)
    try:
        return {row["run_id"] for row in store.runs(suite) if row["status"] in FINISHED}
    finally:
        store.close()


def _print_evaluation_heavy(grid, estimates) -> None:
    """One line per dataset and protocol whose evaluations would take longer than the training they measure."""
    heavy = estimates.evaluation_heavy()
    by_protocol = {}
    for spec in grid.specs:
        if spec.run_id in heavy:
            by_protocol.setdefault((spec.dataset.name, spec.protocol.n_fake, spec.protocol.n_real), spec.run_id)
    for (dataset, n_fake, n_real), run_id in by_protocol.items():
        spent = estimates.eval_seconds[run_id]
        click.echo(f"evaluation longer than training: {dataset} ({n_fake} generated vs {n_real or 'all'} real "
                   f"samples per evaluation) spends about {spent:.0f} s of a run's {estimates.seconds[run_id]:.0f} s "
                   "evaluating; smaller n_fake/n_real in the suite's [eval] (or [datasets.eval]) cut it")


def _print_grid(grid, estimates=None, parallel: int = 1, finished: set[str] = frozenset(), suite=None) -> None:
    """The grid, one row per run: its estimate, "finished" for runs the store holds, or why its probe failed."""
    seconds = estimates.seconds if estimates else {}
    failures = estimates.failures if estimates else {}

    def est(spec):
        if spec.run_id in finished:
            return "finished"
        if spec.run_id in failures:
            return "probe failed"
        return f"{seconds[spec.run_id]:.1f}" if spec.run_id in seconds else ""

    def eval_share(spec):
        spent = estimates.eval_seconds.get(spec.run_id) if estimates and spec.run_id not in finished else None
        return "" if spent is None or math.isnan(spent) else f"{spent:.1f}"

    rows = [{"run_id": s.run_id, "dataset": s.dataset.name, "combination": s.combination, "seed": s.seed,
             "budget": f"{s.budget.kimg if s.budget.unit == 'kimg' else s.budget.g_steps} {s.budget.unit}",
             "est_s": est(s), "of_which_eval_s": eval_share(s)} for s in grid.specs]
    click.echo(table(rows, ["run_id", "dataset", "combination", "seed", "budget", "est_s", "of_which_eval_s"]))
    click.echo("")
    for line in describe_designs(grid, suite):
        click.echo(line)
    combos = {(s.dataset.name, s.combination) for s in grid.specs}
    todo = len(grid.specs) - len(finished & {s.run_id for s in grid.specs})
    click.echo(f"{len(grid.specs)} runs: {len(combos)} combinations x seeds; {todo} to train"
               + (f", {len(grid.specs) - todo} already finished" if todo < len(grid.specs) else ""))
    if seconds:
        total = sum(v for v in seconds.values() if not math.isnan(v))
        line = f"estimated time: {total / 60:.1f} min on this device (from timed probes of each combination)"
        if parallel > 1:
            line = (f"estimated time: {total / parallel / 60:.1f} min with {parallel} runs at a time "
                    f"({total / 60:.1f} min of single-thread runs, from timed probes of each combination)")
        click.echo(line)
        _print_evaluation_heavy(grid, estimates)
    if failures:
        by_combination = {}
        for spec in grid.specs:
            if spec.run_id in failures:
                by_combination.setdefault(f"{spec.dataset.name} {spec.combination}", failures[spec.run_id])
        click.echo(f"\nprobe failed ({len(by_combination)} combinations; their runs would fail the same way):")
        for what, why in by_combination.items():
            click.echo(f"  {what}: {why}")
    _print_untrained(grid)
    if grid.left_out:
        click.echo(f"\nleft out ({len(grid.left_out)}):")
        for what, why in grid.left_out:
            click.echo(f"  {what}: {why}")



def _print_untrained(grid) -> None:
    """Every component asked for that trains in no run, with why on each dataset: nothing is dropped silently."""
    if grid.untrained:
        click.echo(f"\nasked for, but trains in no run ({len(grid.untrained)}):")
        for what, by_dataset in grid.untrained:
            if len(by_dataset) == 1:
                click.echo(f"  {what}: {': '.join(next(iter(by_dataset.items())))}")
                continue
            click.echo(f"  {what}:")
            for dataset, why in by_dataset.items():
                click.echo(f"    {dataset}: {why}")


def describe_designs(grid, suite=None) -> list[str]:
    """Per dataset: the design, its levels and cells and, for a fractional design, how balanced it is."""
    lines = []
    if suite is not None:
        own = sorted({plan.design for plan in suite.datasets if plan.design and plan.design != suite.design})
        lines.append(f"suite {suite.name}: {suite.design} design"
                     + (f" (some datasets: {', '.join(own)}; each dataset's line below)" if own else ""))
    for design in grid.designs:
        levels = " x ".join(f"{axis} ({len(names)})" for axis, names in design.levels.items())
        if design.design == "one-factor":
            lines.append(f"design: {design.dataset}: one-factor around {design.baseline}: {design.crossed} rows, "
                         f"{design.compatible} compatible, {len(design.cells)} pass the filters")
            continue
        lines.append(f"design: {design.dataset}: {design.design}, {levels} = {design.crossed} cells, "
                     f"{design.compatible} compatible, {len(design.cells)} to train")
        for axis, names in design.levels.items():
            lines.append(f"  {axis}: {', '.join(names) or '(none that can run)'}")
        if design.design == "fractional":
            capped = (f" (asked for {design.asked_cells}: every compatible cell trains)"
                      if design.asked_cells > design.compatible else "")
            lines.append(f"  fraction: seed {design.seed}, {min(design.asked_cells, design.compatible)} of "
                         f"{design.compatible} compatible cells{capped}")
            if design.balance:
                spread = ", ".join(f"{axis} {lo}-{hi}" for axis, (lo, hi) in design.balance.items())
                lines.append(f"  balance (fewest-most cells per level): {spread}")
            if design.pairs:
                lines.append(f"  pairs of levels of two axes in its cells: {design.pairs[0]} of the "
                             f"{design.pairs[1]} the compatible cells hold")
        lines += textwrap.wrap(f"cells ({len(design.cells)}): {', '.join(design.cells) or 'none'}", width=116,
                               initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
    return lines
