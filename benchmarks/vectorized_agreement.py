"""Do vectorised seeds give the numbers single runs give? The default's baselines at their full budgets.

The default suite's two baselines (ring8 MLP/NS and digits DCGAN/NS, 16 seeds each) are trained with
``--executor vectorized`` (one group of 16 per dataset) and their final headlines compared with single runs
of the same seeds on the same machine (by default the committed ``results/default``): the mean of each side,
Welch's t test (on the log scale for the log-scale headlines) and the paired Wilcoxon signed-rank test over
seeds. Agreement means no test rejects; the table it prints is the README's ("Vectorised seeds").

    python benchmarks/vectorized_agreement.py                                  # trains the groups (~6 min, 2 cores)
    python benchmarks/vectorized_agreement.py --vectorized DIR/default/runs.csv   # compare runs already trained

``--suite conditional-digits`` does the same for the conditional suite's projection pairs (4 seeds each, one
group of 4 per pair) against ``results/conditional-digits``: FID, ``cond_accuracy`` and ``intra_fid``. With 4
seeds the paired Wilcoxon test cannot reach p < 0.125, so there Welch's test is the one that could reject.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ganzoo.run.grid import Filters
from ganzoo.run.suite import load_suite
from ganzoo.sweep import bench

ROOT = Path(__file__).resolve().parents[1]
# Per suite: the rows compared, as (dataset, G, D, loss, stack, headline, log scale), and the committed single runs.
SUITES = {
    "default": {
        "single": ROOT / "results" / "default" / "runs.csv",
        "rows": [("ring8", "mlp", "mlp", "ns", "none", "mode_kl", True),
                 ("ring8", "mlp", "mlp", "ns", "none", "modes", False),
                 ("digits", "dcgan", "dcgan", "ns", "none", "fid", True),
                 ("digits", "dcgan", "dcgan", "ns", "none", "classes", False)],
    },
    "conditional-digits": {
        "single": ROOT / "results" / "conditional-digits" / "runs.csv",
        "rows": [(pair[0], *pair[1:], metric, log)
                 for pair in [("digits", "cond_dcgan", "projection_dcgan", "ns", "none"),
                              ("digits", "cond_resnet_sngan", "projection_resnet_sngan", "ns", "none")]
                 for metric, log in [("fid", True), ("cond_accuracy", False), ("intra_fid", True)]],
    },
}


def train_vectorized(suite: str, folder: Path) -> Path:
    rows = SUITES[suite]["rows"]
    filters = Filters(generator=tuple({r[1] for r in rows}), discriminator=tuple({r[2] for r in rows}),
                      loss=tuple({r[3] for r in rows}), stabilizer=tuple({r[4] for r in rows}),
                      dataset=tuple({r[0] for r in rows}))
    bench(load_suite(suite), folder, filters=filters, device="cpu", executor="vectorized", progress=False,
          echo=lambda *_: None)
    return folder / suite / "runs.csv"


def row_values(runs: pd.DataFrame, dataset: str, generator: str, discriminator: str, loss: str, stack: str,
               metric: str) -> pd.Series:
    rows = runs[(runs["dataset"] == dataset) & (runs["generator"] == generator)
                & (runs["discriminator"] == discriminator) & (runs["loss"] == loss) & (runs["stack"] == stack)]
    return pd.Series(pd.to_numeric(rows[metric]).values, index=rows["seed"].astype(int).values).sort_index()


def compare(single_csv: Path, vectorized_csv: Path, rows: list[tuple]) -> list[str]:
    single = pd.read_csv(single_csv, keep_default_na=False)
    vectorized = pd.read_csv(vectorized_csv, keep_default_na=False)
    lines = ["| dataset | row | headline | seeds | single runs (mean) | vectorised (mean) | Welch p | "
             "paired Wilcoxon p |", "|---|---|---|---|---|---|---|---|"]
    for dataset, generator, discriminator, loss, stack, metric, log in rows:
        x = row_values(single, dataset, generator, discriminator, loss, stack, metric)
        y = row_values(vectorized, dataset, generator, discriminator, loss, stack, metric)
        x = x[x.index.isin(y.index)]
        y = y[y.index.isin(x.index)]
        a, b = (np.log(x), np.log(y)) if log else (x, y)
        if np.ptp(np.concatenate([a, b])) == 0:
            welch = wilcoxon = "equal"
        else:
            welch = f"{stats.ttest_ind(a, b, equal_var=False).pvalue:.2f}"
            diff = a.values - b.values
            wilcoxon = f"{stats.wilcoxon(diff).pvalue:.2f}" if np.any(diff != 0) else "equal"
        mean = "geometric mean" if log else "mean"
        lines.append(f"| {dataset} | {generator}/{discriminator} | {metric} ({mean}{', log scale' if log else ''}) | "
                     f"{len(x)} | {_mean(x, log):.3f} | {_mean(y, log):.3f} | {welch} | {wilcoxon} |")
    return lines


def _mean(values: pd.Series, log: bool) -> float:
    return float(np.exp(np.log(values).mean())) if log else float(values.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="default")
    parser.add_argument("--single", type=Path, default=None, help="runs.csv of single runs (default: committed)")
    parser.add_argument("--vectorized", type=Path, default=None, help="runs.csv of vectorised runs already trained")
    args = parser.parse_args()
    suite = SUITES[args.suite]
    single = args.single or suite["single"]
    if args.vectorized is not None:
        print("\n".join(compare(single, args.vectorized, suite["rows"])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print("\n".join(compare(single, train_vectorized(args.suite, Path(tmp)), suite["rows"])))


if __name__ == "__main__":
    main()
