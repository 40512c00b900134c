"""The reporter: aggregation over seeds, stability columns, and never ranking across protocols."""

import math

import pandas as pd
import pytest

from ganzoo.report import leaderboard, to_markdown


def runs(*rows):
    base = {"dataset": "digits", "generator": "g", "discriminator": "d", "loss": "ns", "kimg": 10.0,
            "imgs_per_s": 100.0, "extractor": "x", "weights_hash": "abc", "n_fake": 1000, "n_real": 1000}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_seeds_are_aggregated_with_sample_std_and_stability():
    board = leaderboard(runs(
        {"stack": "a", "seed": 0, "status": "done", "fid": 10.0, "fingerprint": "p1"},
        {"stack": "a", "seed": 1, "status": "done", "fid": 14.0, "fingerprint": "p1"},
        {"stack": "a", "seed": 2, "status": "diverged", "fid": math.nan, "fingerprint": "p1"},
    ))
    row = board.iloc[0]
    assert row["fid"] == 12.0 and row["fid_std"] == pytest.approx(2 ** 0.5 * 2)  # std of (10, 14), ddof=1
    assert (row["seeds"], row["done"], row["diverged"]) == (3, 2, 1)
    assert row["unstable"] == pytest.approx(1 / 3)


def test_protocols_are_ranked_apart_and_all_diverged_ranks_last():
    board = leaderboard(runs(
        {"stack": "a", "seed": 0, "status": "done", "fid": 30.0, "fingerprint": "p1"},
        {"stack": "b", "seed": 0, "status": "done", "fid": 20.0, "fingerprint": "p1"},
        {"stack": "c", "seed": 0, "status": "diverged", "fid": math.nan, "fingerprint": "p1"},
        {"stack": "a", "seed": 0, "status": "done", "fid": 5.0, "fingerprint": "p2", "n_fake": 50000},
    ))
    p1 = board[board["fingerprint"] == "p1"]
    assert list(p1["stack"]) == ["b", "a", "c"] and list(p1["rank"]) == [1, 2, 3]
    p2 = board[board["fingerprint"] == "p2"]
    assert list(p2["rank"]) == [1]  # the lower FID of another protocol does not outrank p1's rows
    markdown = to_markdown(board)
    assert markdown.count("## digits") == 2 and "Protocol `p1`" in markdown and "50000 generated" in markdown


def test_pending_and_running_runs_are_not_aggregated():
    board = leaderboard(runs({"stack": "a", "seed": 0, "status": "running", "fid": math.nan, "fingerprint": "p"}))
    assert board.empty and "No finished runs" in to_markdown(board)
