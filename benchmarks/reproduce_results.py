"""Do the committed results still come out of the code? Retrain a results folder's runs and compare, bit for bit.

A committed table is only worth its numbers if the code beside it produces them. This rebuilds the grid of the
suite a results folder was trained from (its ``runs.csv`` names the suite; ``--seed-offset`` for a replicate),
retrains the runs it lists (all, or ``--sample N`` spread evenly over its rows) the way ``ganzoo bench`` does
(one single-thread worker process per job, the CPU kernels pinned), and compares every final metric with the
committed one exactly as the CSV prints it. A run whose id is not in today's grid means the suite or a
component's defaults changed since: the folder has to be retrained.

    python benchmarks/reproduce_results.py results/conditional-digits
    python benchmarks/reproduce_results.py results/default-replicate --seed-offset 1000 --sample 12

The last line is ``reproduced=K/N``; the exit status is 1 when a run differs or is missing.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

METRICS = ["fid", "mode_kl", "modes", "high_quality", "precision", "recall", "classes", "class_kl", "is_mean",
           "kid_mean", "cond_accuracy", "intra_fid"]


def _train(spec_data: dict) -> dict:
    import torch

    from ganzoo.spec import RunSpec
    from ganzoo.train import run

    torch.set_num_threads(1)  # as ganzoo bench trains on a CPU: one thread a run
    with tempfile.TemporaryDirectory() as run_dir:
        result = run(RunSpec.from_dict(spec_data), Path(run_dir), "cpu")
    return {"status": result.status, "error": result.error or "", **result.final}


def _differences(fresh: dict, committed: pd.Series) -> list[str]:
    out = []
    for metric in METRICS:
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


def main() -> int:
    import ganzoo  # noqa: F401  (pins the CPU kernels before anything computes)
    from ganzoo.grid import build_grid
    from ganzoo.registry import build_registry
    from ganzoo.suite import load_suite, with_seed_offset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder with a runs.csv (e.g. results/default)")
    parser.add_argument("--suite", help="the suite it was trained from (default: runs.csv's suites column)")
    parser.add_argument("--seed-offset", type=int, default=0, help="as given to ganzoo bench for a replicate")
    parser.add_argument("--sample", type=int, help="retrain this many runs, spread over the rows (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    committed = pd.read_csv(args.results / "runs.csv").set_index("run_id")
    suite_name = args.suite or committed["suites"].iloc[0].split(",")[0].strip()
    grid = build_grid(with_seed_offset(load_suite(suite_name), args.seed_offset), build_registry())
    specs = {spec.run_id: spec for spec in grid.specs}
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
