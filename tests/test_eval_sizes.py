"""Evaluation sizes a dataset declares: a suite without ``[eval]`` evaluates ring8 on 2,500 points, not 100,000."""

import importlib
import json
import sqlite3

import pytest
from click.testing import CliRunner

from ganzoo.api.judgement import Judgement
from ganzoo.cli import main
from ganzoo.core.registry import get_registry
from ganzoo.core.store import STORE_FILE
from ganzoo.run.grid import build_grid
from ganzoo.run.suite import SuiteError, available_suites, load_suite, parse_suite

RING8_BASELINE = {"generator": "mlp", "discriminator": "mlp", "loss": "ns", "stack": "none"}


def ring8_suite(**dataset):
    return {"name": "ring8-minimal", "seeds": 1, "auto_stacks": False,
            "budget": {"unit": "g_steps", "g_steps": 40, "batch_size": 64},
            "datasets": [{"name": "ring8", "baseline": RING8_BASELINE,
                          "components": {axis: [name] for axis, name in RING8_BASELINE.items()}, **dataset}]}


def protocol_of(raw):
    [spec] = build_grid(parse_suite(raw), get_registry()).specs
    return spec.protocol


def test_ring8_declares_the_sizes_of_its_headline():
    judgement = get_registry().get("dataset", "ring8").judgement
    assert (judgement.n_fake, judgement.n_real) == (2500, 2500)  # VEEGAN's and PacGAN's 2,500 samples


def test_a_suite_without_eval_takes_the_dataset_sizes():
    protocol = protocol_of(ring8_suite())
    assert (protocol.n_fake, protocol.n_real) == (2500, 2500)


def test_the_suite_eval_table_wins_key_by_key():
    both = protocol_of({**ring8_suite(), "eval": {"n_fake": 500, "n_real": 700}})
    assert (both.n_fake, both.n_real) == (500, 700)
    one = protocol_of(ring8_suite(eval={"n_fake": 300}))  # n_real still the dataset's
    assert (one.n_fake, one.n_real) == (300, 2500)


def test_a_dataset_without_declared_sizes_keeps_the_protocol_defaults():
    raw = {"name": "d", "seeds": 1, "auto_stacks": False, "budget": {"unit": "g_steps", "g_steps": 10},
           "datasets": [{"name": "digits",
                         "baseline": {"generator": "dcgan", "discriminator": "dcgan", "loss": "ns", "stack": "none"},
                         "components": {"generator": ["dcgan"], "discriminator": ["dcgan"], "loss": ["ns"],
                                        "stack": ["none"]}}]}
    protocol = protocol_of(raw)
    assert (protocol.n_fake, protocol.n_real) == (2000, None)


def test_a_suite_judgement_cannot_set_the_sizes():
    with pytest.raises(SuiteError, match=r"judgement sets \['n_fake'\].*\[eval\]"):
        parse_suite(ring8_suite(judgement={"n_fake": 100}))


@pytest.mark.parametrize("value", [1, 2.5, True, "2500"])
def test_judgement_refuses_a_size_that_is_not_a_count(value):
    with pytest.raises(ValueError, match="Judgement.n_real must be a whole number"):
        Judgement(n_real=value)


@pytest.mark.parametrize("name", sorted(available_suites()))
def test_every_shipped_suite_sets_its_sizes_itself(name):
    """The committed suites keep their protocols (fingerprints decide which committed runs are the same):
    each sets n_fake and n_real for every dataset, so no declared size changes what they plan."""
    for plan in load_suite(name).datasets:
        assert {"n_fake", "n_real"} <= set(plan.eval_keys), (name, plan.dataset.name)


def test_ring8_without_eval_trains_40_g_steps_on_2500_points(tmp_path):
    """The issue's minimal suite: 40 G steps used to spend minutes in one precision/recall against 100,000
    reference points. It now finishes (no timed assertion: the sizes it evaluated at are what is checked)."""
    suite = tmp_path / "ring8-minimal.toml"
    suite.write_text('name = "ring8-minimal"\n[budget]\nunit = "g_steps"\ng_steps = 40\nbatch_size = 64\n'
                     '[[datasets]]\nname = "ring8"\n'
                     'baseline = { generator = "mlp", discriminator = "mlp", loss = "ns", stack = "none" }\n')
    result = CliRunner().invoke(main, ["train", "--suite", str(suite), "--dataset", "ring8", "--generator", "mlp",
                                       "--discriminator", "mlp", "--loss", "ns", "--results-dir", str(tmp_path / "r")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "r" / STORE_FILE) as conn:
        [(status, protocol)] = conn.execute("SELECT status, protocol FROM runs").fetchall()
    protocol = json.loads(protocol)
    assert status == "done" and (protocol["n_fake"], protocol["n_real"]) == (2500, 2500)


def pairwise_cost(n_fake, n_real):
    """A made-up evaluation cost: fixed, per sample, and per pair of points (the k-NN metrics' part)."""
    return 0.2 + 1e-4 * (n_fake + n_real) + 2e-8 * (n_real ** 2 + n_fake ** 2 + 3 * n_fake * n_real)


def test_a_large_evaluation_is_extrapolated_from_smaller_ones(monkeypatch, tmp_path):
    estimate = importlib.import_module("ganzoo.sweep.estimate")  # the module (ganzoo.sweep.estimate is its function)

    timed = []

    def fake_timing(spec, n_fake, n_real, run_dir, registry, device):
        timed.append((n_fake, n_real))
        return pairwise_cost(n_fake, n_real)

    monkeypatch.setattr(estimate, "_time_evaluation", fake_timing)
    [spec] = build_grid(parse_suite(ring8_suite(eval={"n_fake": 2000, "n_real": 100_000})), get_registry()).specs
    seconds = estimate._probe_evaluation(spec, tmp_path, get_registry(), "cpu")
    assert seconds == pytest.approx(pairwise_cost(2000, 100_000), rel=1e-3)  # 209 s, from probes of 4 s at most
    assert max(n for sizes in timed for n in sizes) <= estimate.PROBE_EVAL_SAMPLES
    assert all(abs(f / r - 2000 / 100_000) < 0.01 for f, r in timed)  # the protocol's ratio, scaled down


def test_dry_run_says_when_evaluation_outweighs_training(monkeypatch, tmp_path):
    estimate = importlib.import_module("ganzoo.sweep.estimate")  # the module (ganzoo.sweep.estimate is its function)

    monkeypatch.setattr(estimate, "_time_evaluation", lambda spec, n_fake, n_real, *_: pairwise_cost(n_fake, n_real))
    suite = tmp_path / "ring8-heavy.toml"
    suite.write_text('name = "ring8-heavy"\n[budget]\nunit = "g_steps"\ng_steps = 40\neval_every_g_steps = 20\n'
                     'batch_size = 64\n[eval]\nn_fake = 2000\nn_real = 100000\n[[datasets]]\nname = "ring8"\n'
                     'baseline = { generator = "mlp", discriminator = "mlp", loss = "ns", stack = "none" }\n'
                     'components = { generator = ["mlp"], discriminator = ["mlp"], loss = ["ns"], stack = ["none"] }\n')
    result = CliRunner().invoke(main, ["bench", "--all", "--suite", str(suite), "--dry-run", "--executor", "inline",
                                       "--results-dir", str(tmp_path / "r")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    heavy = "evaluation longer than training: ring8 (2000 generated vs 100000 real samples per evaluation)"
    assert heavy in result.output
    row = next(line for line in result.output.splitlines() if line.split()[1:3] == ["ring8", "mlp/mlp/ns/none"]
               and not line.startswith("timing"))
    assert float(row.split()[-1]) == pytest.approx(2 * pairwise_cost(2000, 100_000), rel=1e-3)  # 2 evaluations

    monkeypatch.setattr(estimate, "_time_evaluation", lambda *_: 1e-3)
    light = CliRunner().invoke(main, ["bench", "--all", "--suite", str(suite), "--dry-run", "--executor", "inline",
                                      "--results-dir", str(tmp_path / "r")], catch_exceptions=False)
    assert light.exit_code == 0 and "evaluation longer than training" not in light.output
