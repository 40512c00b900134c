"""Do the committed results still come out of the code? Retrain a results folder's runs and compare them.

A committed table is only worth its numbers if the code beside it produces them. This rebuilds the grid of the
suite a results folder was trained from (its ``runs.csv`` names the suite; ``--seed-offset`` for a replicate),
retrains the runs it lists (all, or ``--sample N`` spread evenly over its rows) the way ``ganzoo bench`` does
(one single-thread worker process per job, the CPU kernels pinned), and compares every final metric with the
committed one exactly as the CSV prints it. A run whose id is not in today's grid means the suite or a
component's defaults changed since: the folder has to be retrained.

    python benchmarks/reproduce_results.py results/conditional-digits
    python benchmarks/reproduce_results.py results/default-replicate --seed-offset 1000 --sample 12

The last line is ``reproduced=K/N``; the exit status is 1 when a run differs or is missing. Bit for bit is
only promised on the machine that computed the folder (its ``machine.json``: CPU model, kernel settings, torch
version; an Intel Xeon and an AMD EPYC differ in every run even with the kernels pinned): elsewhere the script
says so first, and ``--verdicts`` is the comparison that holds.

``--verdicts`` retrains the runs of the rows the committed leaderboard decides (better or worse) and of their
baselines, all their seeds (``--sample N``: N decided rows, taken in turn over the datasets), and every run of a
crossed table whose ``effects.csv`` decides a component (its effects are estimated from all its runs together);
recomputes the leaderboard and the effects with those runs replaced by the retrained ones (the other rows stay,
so each table's Holm family is the committed one), each run's headline from its retrained curve
(``Judgement.window``), and checks each verdict: *held* (decided the same again), *undecided* (not
decided, the difference still of the same sign) or *REVERSED* (decided the other way, or the difference changed
sign). The last line is ``verdicts held=K/N reversed=R``; the exit status is 1 when one reversed.

    python benchmarks/reproduce_results.py results/conditional-digits --verdicts --sample 1
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from ganzoo.core.records import COMPARED_METRICS

KEYS = ["dataset", "generator", "discriminator", "loss", "stack"]
DECIDED = ("better", "worse")
CURVES = "_curves"  # a retrained run's evaluations, beside its final metrics


def _train(spec_data: dict) -> dict:
    import torch

    from ganzoo.core.records import Evaluation
    from ganzoo.core.spec import RunSpec
    from ganzoo.run.train import run

    torch.set_num_threads(1)  # as ganzoo bench trains on a CPU: one thread a run
    with tempfile.TemporaryDirectory() as run_dir:
        result = run(RunSpec.from_dict(spec_data), Path(run_dir), "cpu")
    # The curves too: a table's headline may be the mean of a run's last evaluations (Judgement.window).
    curves = [dict(Evaluation.metrics_of(e)) for e in result.evals]
    return {"status": result.status, "error": result.error or "", **result.final, CURVES: curves}


def _differences(fresh: dict, committed: pd.Series) -> list[str]:
    fresh = {k: v for k, v in fresh.items() if k != CURVES}
    out = []
    for metric in COMPARED_METRICS:
        if metric not in committed or pd.isna(committed[metric]):
            continue
        value = fresh.get(metric)
        same = value is not None and (float(value) == float(committed[metric])
                                      or (math.isnan(float(value)) and math.isnan(float(committed[metric]))))
        if not same:
            out.append(f"{metric} {value!r} (committed {committed[metric]!r})")
    return out


def _even_sample(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` runs spread over the rows: each row's lowest seeds first, rows taken in turn."""
    by_row = [group.sort_values("seed") for _, group in table.groupby("experiment", sort=True)]
    picked, depth = [], 0
    while len(picked) < n and any(depth < len(group) for group in by_row):
        picked += [group.index[depth] for group in by_row if depth < len(group)][: n - len(picked)]
        depth += 1
    return table.loc[picked]


def _machine_note(results: Path) -> None:
    """Say first when this machine is not the one whose numbers the folder holds (bit for bit is not expected)."""
    from ganzoo.system import cpu

    recorded = results / cpu.MACHINE_FILE
    if not recorded.is_file():
        print(f"{results}: no {cpu.MACHINE_FILE}, so whether this machine computed it is unknown")
        return
    mismatch = cpu.bit_for_bit_mismatch(json.loads(recorded.read_text()))
    if mismatch:
        print(f"{results}: not the machine that computed it ({mismatch}): runs are not expected to equal the "
              "committed ones bit for bit; --verdicts compares what holds across machines")


def _decided_rows(board: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """The rows the leaderboard decides (better or worse): ``n`` of them taken in turn over the datasets, or all."""
    decided = board[board["verdict"].isin(DECIDED)]
    if n is None:
        return decided
    by_dataset = [group for _, group in decided.groupby("dataset", sort=True)]
    picked, depth = [], 0
    while len(picked) < n and any(depth < len(group) for group in by_dataset):
        picked += [group.index[depth] for group in by_dataset if depth < len(group)][: n - len(picked)]
        depth += 1
    return decided.loc[picked]


def _verdict_of(committed: str, fresh: str, same_direction: bool) -> str:
    """held, undecided or REVERSED: the retrained verdict of what the committed tables decided."""
    if fresh in DECIDED and fresh != committed or not same_direction:
        return "REVERSED"
    return "held" if fresh == committed else "undecided"


def _upward(effect: float, scale: str) -> bool:
    """Whether an effect raises the headline: a ratio above 1 on the log scale, a difference above 0 on the linear."""
    return float(effect) > (1.0 if scale == "log" else 0.0)


def _check_verdicts(args, committed: pd.DataFrame, suite, specs: dict, pool) -> int:
    from ganzoo.core.registry import build_registry
    from ganzoo.report.effects import effects
    from ganzoo.report.leaderboard import leaderboard
    from ganzoo.sweep.driver import suite_record

    record = suite_record(suite, build_registry())
    judgements = {name: record.judgement(name) for name in record.datasets}
    board = pd.read_csv(args.results / "leaderboard.csv", keep_default_na=False)
    rows = _decided_rows(board, args.sample)
    baselines = board[board["is_baseline"].astype(str) == "True"]
    wanted = {tuple(r[KEYS]) for _, r in rows.iterrows()} | {
        tuple(b[KEYS]) for _, b in baselines.iterrows() if b["dataset"] in set(rows["dataset"])}
    chosen = committed[[tuple(r) in wanted for r in committed[KEYS].itertuples(index=False)]]
    # A crossed table's effects are estimated from every run of the table together: it is retrained whole.
    effects_csv = args.results / "effects.csv"
    components = pd.read_csv(effects_csv, keep_default_na=False) if effects_csv.exists() else pd.DataFrame()
    components = components[components["verdict"].isin(DECIDED)] if len(components) else components
    crossed = set(components["dataset"]) if len(components) else set()
    chosen = committed[committed.index.isin(chosen.index) | committed["dataset"].isin(crossed)]
    missing = [run_id for run_id in chosen.index if run_id not in specs]
    if missing:
        print(f"{len(missing)} runs are not in today's grid of {suite.name} (retrain the folder), e.g. {missing[:3]}")
        return 1
    print(f"{args.results}: retraining {len(chosen)} runs: {len(rows)} decided rows and their baselines, and "
          f"every run of the crossed tables {sorted(crossed) or '(none)'} ({args.jobs} single-thread workers)",
          flush=True)
    runs = committed.copy()
    for run_id, fresh in zip(chosen.index, pool.map(_train, [specs[i].canonical() for i in chosen.index]),
                             strict=True):
        runs.loc[run_id, "status"] = fresh["status"]
        for metric, value in fresh.items():
            if metric in runs.columns and metric not in ("status", "error", CURVES):
                runs.loc[run_id, metric] = value
        judgement = judgements[runs.loc[run_id, "dataset"]]
        if "headline" in runs.columns:  # the table's headline, from the retrained curve as load_runs reads it
            runs.loc[run_id, "headline"] = judgement.run_headline([c.get(judgement.headline, math.nan)
                                                                   for c in fresh[CURVES]])
    again = leaderboard(runs.reset_index(), record.to_dict(), judgements).set_index(KEYS)
    outcomes = []
    for _, row in rows.iterrows():
        fresh = again.loc[tuple(row[KEYS])]
        outcomes.append(_verdict_of(row["verdict"], fresh["verdict"],
                                    (float(fresh["diff"]) > 0) == (float(row["diff"]) > 0)))
        label = f"{row['dataset']} {'/'.join(str(row[a]) for a in KEYS[1:])}"
        print(f"{label}: committed {row['verdict']} (diff {float(row['diff']):+.3g}, Holm p {row['p_holm']}), "
              f"retrained {fresh['verdict']} (diff {float(fresh['diff']):+.3g}, Holm p {fresh['p_holm']:.3g}): "
              f"{outcomes[-1]}", flush=True)
    if len(components):
        effects_again = effects(runs.reset_index(), record.to_dict(), judgements)[0].set_index(
            ["dataset", "axis", "component"])
        for _, row in components.iterrows():
            fresh = effects_again.loc[(row["dataset"], row["axis"], row["component"])]
            outcomes.append(_verdict_of(row["verdict"], fresh["verdict"],
                                        _upward(fresh["effect"], fresh["scale"]) == _upward(row["effect"],
                                                                                             row["scale"])))
            print(f"{row['dataset']} {row['axis']} {row['component']} (against {row['reference']}): committed "
                  f"{row['verdict']} (effect {float(row['effect']):.3g}, Holm p {row['p_holm']}), retrained "
                  f"{fresh['verdict']} (effect {float(fresh['effect']):.3g}, Holm p {float(fresh['p_holm']):.3g}): "
                  f"{outcomes[-1]}", flush=True)
    print(f"verdicts held={outcomes.count('held')}/{len(outcomes)} reversed={outcomes.count('REVERSED')}")
    return 1 if "REVERSED" in outcomes else 0


def main() -> int:
    import ganzoo  # noqa: F401  (pins the CPU kernels before anything computes)
    from ganzoo.core.registry import build_registry
    from ganzoo.run.grid import build_grid
    from ganzoo.run.suite import load_suite, with_seed_offset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder with a runs.csv (e.g. results/default)")
    parser.add_argument("--suite", help="the suite it was trained from (default: runs.csv's suites column)")
    parser.add_argument("--seed-offset", type=int, default=0, help="as given to ganzoo bench for a replicate")
    parser.add_argument("--sample", type=int, help="retrain this many runs, spread over the rows (default: all); "
                        "with --verdicts, this many decided rows with all their seeds and their baselines")
    parser.add_argument("--verdicts", action="store_true",
                        help="check that the committed verdicts hold, not that the numbers are the same")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    committed = pd.read_csv(args.results / "runs.csv").set_index("run_id")
    suite_name = args.suite or committed["suites"].iloc[0].split(",")[0].strip()
    suite = with_seed_offset(load_suite(suite_name), args.seed_offset)
    grid = build_grid(suite, build_registry())
    specs = {spec.run_id: spec for spec in grid.specs}
    if args.verdicts:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            return _check_verdicts(args, committed, suite, specs, pool)
    _machine_note(args.results)
    chosen = _even_sample(committed, args.sample) if args.sample else committed
    missing = [run_id for run_id in chosen.index if run_id not in specs]
    for run_id in missing:
        print(f"{run_id} {chosen.loc[run_id, 'experiment']}: not in today's grid of {suite_name} (retrain the folder)")
    todo = [run_id for run_id in chosen.index if run_id in specs]
    print(f"{args.results}: retraining {len(todo)} of {len(committed)} runs of suite {suite_name} "
          f"({args.jobs} single-thread workers)", flush=True)
    same = 0
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        results = pool.map(_train, [specs[run_id].canonical() for run_id in todo])
        for run_id, fresh in zip(todo, results, strict=True):
            row = committed.loc[run_id]
            combination = "/".join(str(row[axis]) for axis in ("generator", "discriminator", "loss", "stack"))
            label = f"{run_id} {row['dataset']} {combination} seed {row['seed']}"
            if fresh["status"] != row["status"]:
                print(f"{label}: DIFFERS, status {fresh['status']} (committed {row['status']}) {fresh['error'][:200]}")
                continue
            differences = _differences(fresh, row)
            same += not differences
            print(f"{label}: {'same' if not differences else 'DIFFERS, ' + '; '.join(differences)}", flush=True)
    print(f"reproduced={same}/{len(chosen)}")
    return 0 if same == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
