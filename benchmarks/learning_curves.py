"""Learning curves of a suite's baselines: the measurements a budget is chosen from.

Trains one combination of a suite (its baseline by default) for a long budget with frequent
evaluations and prints one JSON line per evaluation (and writes them to ``--out``). The curves that
chose the default suite's budgets, and what they showed, are in benchmarks/README.md.

    python benchmarks/learning_curves.py --suite default --dataset ring8 --kimg 256 --every 16 --seeds 0 1 2
    python benchmarks/learning_curves.py --dataset digits --set optim.lr_d=1e-3 --set stack=ttur

``--set`` overrides a suite field for the dataset (``budget.batch_size=128``, ``optim.lr_g=1e-3``,
``hparams.generator.mlp.width=128``, ``stack=NAME``, ``loss=NAME``, ``generator=NAME``,
``discriminator=NAME``): the curve of a variant is measured the same way as the baseline's.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganzoo.core.registry import get_registry
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import find_suite, parse_suite, tomllib
from ganzoo.run.train import run

AXES = ("generator", "discriminator", "loss", "stack")


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def variant_suite(raw: dict, dataset: str, sets: list[str], kimg: float, every: float) -> tuple[dict, dict]:
    """The suite reduced to one dataset, with the overrides applied; returns (raw suite, chosen axes)."""
    raw = copy.deepcopy(raw)
    entry = next(d for d in raw["datasets"] if d["name"] == dataset)
    raw["datasets"] = [entry]
    chosen = dict(entry.get("baseline", {}))
    for item in sets:
        key, _, value = item.partition("=")
        if key in AXES:
            chosen[key] = value
            continue
        *path, leaf = key.split(".")
        table = entry.setdefault("component_hparams", {}) if path[0] == "hparams" else entry.setdefault(path[0], {})
        for part in path[1:]:
            table = table.setdefault(part, {})
        table[leaf] = _value(value)
    entry.setdefault("budget", {}).update(kimg=kimg, eval_every_kimg=every)
    return raw, chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="default")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--kimg", type=float, required=True)
    parser.add_argument("--every", type=float, required=True, help="kimg between evaluations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    raw = tomllib.loads(find_suite(args.suite).read_text())
    raw, chosen = variant_suite(raw, args.dataset, args.sets, args.kimg, args.every)
    suite = parse_suite(raw, source=args.suite)
    filters = Filters(**{("stabilizer" if a == "stack" else a): (v,) for a, v in chosen.items()})
    specs = [s for s in build_grid(suite, get_registry(), filters).specs if s.seed in args.seeds]
    specs = [s for s in specs if all(getattr(s, a).name == chosen[a] for a in ("generator", "discriminator", "loss"))
             and s.stack_name == chosen.get("stack", "none")]
    if not specs:
        print(f"no run matches {chosen}", file=sys.stderr)
        return 2
    out = args.out.open("a") if args.out else None
    label = args.label or " ".join(args.sets) or "baseline"
    with tempfile.TemporaryDirectory(prefix="ganzoo-curve-") as tmp:
        for spec in specs:
            started = time.perf_counter()
            result = run(spec, Path(tmp) / spec.run_id, "cpu")
            for e in result.evals:
                line = {"label": label, "dataset": args.dataset, "seed": spec.seed, "kimg": e["kimg"],
                        "g_steps": e["g_steps"], "status": result.status, **e["metrics"]}
                print(json.dumps(line), flush=True)
                if out:
                    out.write(json.dumps(line) + "\n")
                    out.flush()
            print(f"# {label} seed {spec.seed}: {result.status} in {time.perf_counter() - started:.0f} s "
                  f"({result.imgs_per_s:.0f} img/s) {result.error or ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
