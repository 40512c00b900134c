"""The README's quickstart for real: the whole embedded default suite, then the same command again (slow, ~15 min).

It also checks the protocol the suite promises: each dataset's baseline meets its success criterion
(benchmarks/README.md, "How the default budgets were chosen") on most seeds at the end of its budget.
"""

import os
import subprocess
import sys

import pandas as pd
import pytest

from ganzoo.registry import build_registry
from ganzoo.sweep.store import Store

pytestmark = pytest.mark.slow
N_RUNS = 72  # 16 ring8 + 8 digits combinations x 3 seeds (ganzoo bench --all --dry-run)


def test_default_bench_trains_every_component_and_reruns_nothing(tmp_path):
    command = [sys.executable, "-m", "ganzoo", "bench", "--all", "--results-dir", str(tmp_path), "--no-progress"]
    env = {**os.environ, "GANZOO_PLUGINS": "ganzoo"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "default" / "runs.csv")
    assert len(runs) == N_RUNS and runs["status"].isin(["done", "diverged"]).all()
    board = pd.read_csv(tmp_path / "default" / "leaderboard.csv")
    registry = build_registry()
    for kind, column in (("generator", "generator"), ("discriminator", "discriminator"), ("loss", "loss")):
        assert {c.name for c in registry.list(kind)} <= set(board[column])
    store = Store(tmp_path)
    try:
        trained_stabilizers = {ref["name"] for row in store.runs("default") for ref in row["spec"]["stack"]}
    finally:
        store.close()
    assert {c.name for c in registry.list("stabilizer")} <= trained_stabilizers

    # The budget is a benchmark only if the baselines converge within it: most seeds meet the criterion.
    baselines = board[board["is_baseline"]]
    assert set(baselines["dataset"]) == {"ring8", "digits"}
    for _, row in baselines.iterrows():
        assert row["success"] > 0.5, f"the {row['dataset']} baseline met its criterion on {row['success']:.0%} of seeds"
    markdown = (tmp_path / "default" / "leaderboard.md").read_text()
    assert "Ranked by **modes**" in markdown and "Ranked by **FID**" in markdown

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and f"{N_RUNS} already finished" in second.stdout and "0 to train" in second.stdout
