"""The README's quickstart for real: the whole embedded default suite, then the same command again (slow, ~15 min).

It also checks the protocol the suite promises: each dataset's baseline meets its success criterion
(benchmarks/README.md, "How the default budgets were chosen") on most seeds at the end of its budget; and the
README's reproducibility promise: on an x86-64 CPU with AVX2, at one thread per run, every run ends with the
numbers committed in results/default/runs.csv, bit for bit as the CSV prints them.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ganzoo import cpu
from ganzoo.registry import build_registry
from ganzoo.sweep.store import Store

pytestmark = pytest.mark.slow
# ring8: 4 tested rows x 8 seeds + a 16-seed baseline + 11 rows x 1 seed; digits: 4 x 8 + 16 + 3 x 1
N_RUNS = 110  # (ganzoo bench --all --dry-run)
COMMITTED = Path(__file__).parents[1] / "results" / "default" / "runs.csv"
METRICS = ["fid", "mode_kl", "modes", "high_quality", "precision", "recall", "classes", "is_mean", "kid_mean"]


def test_default_bench_trains_every_component_and_reruns_nothing(tmp_path):
    command = [sys.executable, "-m", "ganzoo", "bench", "--all", "--results-dir", str(tmp_path), "--no-progress"]
    env = {**os.environ, "GANZOO_PLUGINS": "ganzoo"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "default" / "runs.csv")
    assert len(runs) == N_RUNS and runs["status"].isin(["done", "diverged"]).all()
    board = pd.read_csv(tmp_path / "default" / "leaderboard.csv")
    registry = build_registry()
    # Class-conditional components train in the conditional-digits suite (test_conditional checks that its grid
    # covers every one of them); the default excludes them so that its runs stay the committed ones.
    conditional = {"conditional", "auxiliary_classifier"}
    for kind, column in (("generator", "generator"), ("discriminator", "discriminator"), ("loss", "loss")):
        assert {c.name for c in registry.list(kind) if not conditional & set(c.tags)} <= set(board[column])
    store = Store(tmp_path)
    try:
        trained_stabilizers = {ref["name"] for row in store.runs("default") for ref in row["spec"]["stack"]}
    finally:
        store.close()
    assert {c.name for c in registry.list("stabilizer") if not conditional & set(c.tags)} <= trained_stabilizers

    # The budget is a benchmark only if the baselines converge within it: most seeds meet the criterion.
    baselines = board[board["is_baseline"]]
    assert set(baselines["dataset"]) == {"ring8", "digits"}
    for _, row in baselines.iterrows():
        assert row["success"] > 0.5, f"the {row['dataset']} baseline met its criterion on {row['success']:.0%} of seeds"
    markdown = (tmp_path / "default" / "leaderboard.md").read_text()
    assert "Ranked by **mode_kl**" in markdown and "Ranked by **FID**" in markdown
    assert markdown.count("### Findings") == 2

    # Compare wherever the pinned kernels are in force (importing ganzoo sets them unless the user set others or
    # opted out) and the CPU can run them: the README promises these numbers on any x86-64 CPU with AVX2.
    if cpu.can_pin() and all(os.environ.get(key) == value for key, value in cpu.PINNED.items()):
        committed = pd.read_csv(COMMITTED).set_index("run_id").sort_index()
        fresh = runs.set_index("run_id").sort_index()
        assert list(fresh.index) == list(committed.index), "the default's run ids changed: retrain results/default"
        metrics = [m for m in METRICS if m in committed]
        differ = (fresh[metrics].fillna(-1) != committed[metrics].fillna(-1)).any(axis=1)
        assert not differ.any(), (f"{int(differ.sum())} of {len(fresh)} runs end with other numbers than committed "
                                  f"(this CPU: {cpu.describe_cpu(1)}; committed: {committed['device'].iloc[0]}), "
                                  f"e.g. {fresh.index[differ][:3].tolist()}")

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and f"{N_RUNS} already finished" in second.stdout and "0 to train" in second.stdout
