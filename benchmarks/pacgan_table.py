"""ganzoo's GAN and PacGAN2 on the 2-D mixtures beside PacGAN's Table 1, as a Markdown table.

    python benchmarks/pacgan_table.py [--results-dir results/mixtures-short] [--suite mixtures-short]

Reads the final evaluation of every finished run of the suite (never a best checkpoint) and prints, per
dataset and variant: seeds, modes captured (mean ± sd, Student's t 95% CI, per seed), the share of
high-quality samples, the learning-curve values at each quarter of the budget, and the published numbers
next to them. The comparison of GAN with PacGAN2 inside ganzoo is the leaderboard's (Welch's test over
seeds); the published numbers are for 400 epochs, a budget this suite does not reach.
"""

from __future__ import annotations

import argparse

import numpy as np

from ganzoo.core.records import DONE
from ganzoo.core.store import Store
from ganzoo.report import stats
from ganzoo.report.stability import curve

# Lin et al. 2018, Table 1 (400 epochs, 10 runs): modes (mean ± sd where published) and high-quality share.
PUBLISHED = {
    ("ring8", "none"): ("6.3 ± 0.5", "98.2%"),
    ("grid25", "none"): ("17.3 ± 0.8", "94.8%"),
    ("ring8", "pac"): ("7.9", "see the paper"),
    ("grid25", "pac"): ("23.8", "see the paper"),
}
VARIANT = {"none": "GAN", "pac": "PacGAN2"}


def rows(results_dir: str, suite: str) -> list[dict]:
    store = Store(results_dir)
    try:
        runs = [r for r in store.runs(suite) if r["status"] == DONE]
        evals = store.evals_by_run([r["run_id"] for r in runs])
    finally:
        store.close()
    out = []
    for dataset in ("ring8", "grid25"):
        for stack in ("none", "pac"):
            group = sorted((r for r in runs if (r["dataset"], r["stack"]) == (dataset, stack)),
                           key=lambda r: r["seed"])
            if not group:
                continue
            modes = np.array([r["metrics"]["modes"] for r in group])
            quality = np.array([r["metrics"]["high_quality"] for r in group])
            low, high = stats.t_interval(modes)
            curves = np.array([curve(evals[r["run_id"]], "modes") for r in group])
            steps = [e["g_steps"] for e in evals[group[0]["run_id"]]]
            out.append({"dataset": dataset, "stack": stack, "seeds": len(group), "modes": modes, "ci": (low, high),
                        "quality": quality, "curve": (steps, curves.mean(axis=0))})
    return out


def markdown(table: list[dict]) -> str:
    lines = ["| data | variant | seeds | modes, mean ± sd [95% CI] | modes per seed | high quality, mean ± sd "
             "| mean modes over training (G steps: modes) | PacGAN Table 1 (400 epochs): modes | high quality |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        steps, mean_curve = r["curve"]
        quarter = max(1, len(steps) // 4)
        marks = ", ".join(f"{steps[i]:,}: {mean_curve[i]:.1f}" for i in range(quarter - 1, len(steps), quarter))
        published_modes, published_quality = PUBLISHED[(r["dataset"], r["stack"])]
        sd = r["modes"].std(ddof=1) if len(r["modes"]) > 1 else float("nan")
        lines.append(
            f"| {r['dataset']} | {VARIANT[r['stack']]} | {r['seeds']} | {r['modes'].mean():.1f} ± {sd:.1f} "
            f"[{r['ci'][0]:.1f}, {r['ci'][1]:.1f}] | {', '.join(f'{m:g}' for m in r['modes'])} "
            f"| {100 * r['quality'].mean():.1f}% ± {100 * r['quality'].std(ddof=1):.1f} | {marks} "
            f"| {published_modes} | {published_quality} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results/mixtures-short")
    parser.add_argument("--suite", default="mixtures-short")
    args = parser.parse_args()
    print(markdown(rows(args.results_dir, args.suite)))


if __name__ == "__main__":
    main()
