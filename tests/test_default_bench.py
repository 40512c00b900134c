"""The README's quickstart for real: the whole embedded default suite, then the same command again (slow, ~8 min)."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from ganzoo.registry import build_registry

pytestmark = pytest.mark.slow


def test_default_bench_trains_every_component_and_reruns_nothing(tmp_path):
    command = [sys.executable, "-m", "ganzoo", "bench", "--all", "--results-dir", str(tmp_path), "--no-progress"]
    env = {**os.environ, "GANZOO_PLUGINS": "ganzoo"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "default" / "runs.csv")
    assert len(runs) == 129 and runs["status"].isin(["done", "diverged"]).all()
    board = pd.read_csv(tmp_path / "default" / "leaderboard.csv")
    registry = build_registry()
    for kind, column in (("generator", "generator"), ("discriminator", "discriminator"), ("loss", "loss")):
        assert {c.name for c in registry.list(kind)} <= set(board[column])
    stacks = {name for stack in board["stack"] for name in stack.split("+")}
    assert {c.name for c in registry.list("stabilizer")} <= stacks

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and "129 already finished" in second.stdout and "0 to train" in second.stdout
