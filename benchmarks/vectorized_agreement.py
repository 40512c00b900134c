"""Do vectorised seeds give the numbers single runs give? The default's baselines at their full budgets.

The default suite's two baselines (ring8 MLP/NS and digits DCGAN/NS, 16 seeds each) are trained with
``--executor vectorized`` (one group of 16 per dataset) and their final headlines compared with single runs
of the same seeds on the same machine (by default the committed ``results/default``): the mean of each side,
Welch's t test (on the log scale for the log-scale headlines) and the paired Wilcoxon signed-rank test over
seeds. Agreement means no test rejects; the table it prints is the README's ("Vectorised seeds").

    python benchmarks/vectorized_agreement.py                                  # trains the groups (~6 min, 2 cores)
    python benchmarks/vectorized_agreement.py --vectorized DIR/default/runs.csv   # compare runs already trained
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ganzoo.grid import Filters
from ganzoo.suite import load_suite
from ganzoo.sweep import bench

ROOT = Path(__file__).resolve().parents[1]
# dataset, G and D, headline, log scale
BASELINES = [("ring8", "mlp", "mode_kl", True), ("ring8", "mlp", "modes", False),
             ("digits", "dcgan", "fid", True), ("digits", "dcgan", "classes", False)]


def train_vectorized(folder: Path) -> Path:
    filters = Filters(generator=("mlp", "dcgan"), discriminator=("mlp", "dcgan"), loss=("ns",),
                      stabilizer=("none",), dataset=("ring8", "digits"))
    bench(load_suite("default"), folder, filters=filters, device="cpu", executor="vectorized", progress=False,
          echo=lambda *_: None)
    return folder / "default" / "runs.csv"


def baseline(runs: pd.DataFrame, dataset: str, arch: str, metric: str) -> pd.Series:
    rows = runs[(runs["dataset"] == dataset) & (runs["generator"] == arch) & (runs["discriminator"] == arch)
                & (runs["loss"] == "ns") & (runs["stack"] == "none")]
    return pd.Series(pd.to_numeric(rows[metric]).values, index=rows["seed"].astype(int).values).sort_index()


def compare(single_csv: Path, vectorized_csv: Path) -> list[str]:
    single = pd.read_csv(single_csv, keep_default_na=False)
    vectorized = pd.read_csv(vectorized_csv, keep_default_na=False)
    lines = ["| dataset | headline | seeds | single runs (mean) | vectorised (mean) | Welch p | paired Wilcoxon p |",
             "|---|---|---|---|---|---|---|"]
    for dataset, arch, metric, log in BASELINES:
        x, y = baseline(single, dataset, arch, metric), baseline(vectorized, dataset, arch, metric)
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
        lines.append(f"| {dataset} | {metric} ({mean}{', log scale' if log else ''}) | {len(x)} | "
                     f"{_mean(x, log):.3f} | {_mean(y, log):.3f} | {welch} | {wilcoxon} |")
    return lines


def _mean(values: pd.Series, log: bool) -> float:
    return float(np.exp(np.log(values).mean())) if log else float(values.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=Path, default=ROOT / "results" / "default" / "runs.csv")
    parser.add_argument("--vectorized", type=Path, default=None, help="runs.csv of vectorised runs already trained")
    args = parser.parse_args()
    if args.vectorized is not None:
        print("\n".join(compare(args.single, args.vectorized)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print("\n".join(compare(args.single, train_vectorized(Path(tmp)))))


if __name__ == "__main__":
    main()
