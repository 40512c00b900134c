"""Crossed designs from the command line: full, fractional, and a reason for every component asked for that
trains in no run."""

import itertools
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import testzoo
from click.testing import CliRunner

from ganzoo.cli import main
from ganzoo.core.registry import build_registry
from ganzoo.run.design import balance, fractional_cells
from ganzoo.run.grid import Filters, build_grid
from ganzoo.run.suite import Fraction, SuiteError, load_suite, parse_suite, with_design
from ganzoo.testing import plugin_registry

REGISTRY = build_registry()
ROOT = Path(__file__).parent.parent

# The command of the issue that asked for crossed designs: two levels on every axis of digits.
CROSSED = ["--dataset", "digits", "--loss", "hinge", "--loss", "ns", "--generator", "dcgan", "--generator",
           "resnet_sngan", "--discriminator", "dcgan", "--discriminator", "resnet_sngan", "--stabilizer", "none",
           "--stabilizer", "spectral_norm"]


def dry_run(*args, results_dir):
    result = CliRunner().invoke(main, ["bench", *args, "--dry-run", "--no-estimate", "--results-dir",
                                       str(results_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def planned_cells(output: str, dataset: str) -> Counter:
    """combination -> runs, read from the dry run's table of runs."""
    rows = re.findall(rf"^[0-9a-f]{{16}}\s+{dataset}\s+(\S+)\s+\d+\s", output, flags=re.M)
    return Counter(rows)


def runs_together(cell: tuple[str, str, str, str]) -> bool:
    """Whether a generator/discriminator/loss/stabilizer cell can train on digits (8x8 grey images, labelled),
    read from the registry's metadata: every component supports images, and every tag a component requires of
    another kind is carried by the component of that kind."""
    names = dict(zip(("generator", "discriminator", "loss", "stabilizer"), cell, strict=True))
    chosen = {kind: [REGISTRY.get(kind, name)] for kind, name in names.items() if name != "none"}
    chosen.setdefault("stabilizer", [])
    for group in chosen.values():
        for component in group:
            if "image" not in component.modalities:
                return False
            for kind, tag in component.requires.items():
                if kind != "dataset" and not any(tag in other.tags for other in chosen.get(kind, [])):
                    return False
    return True


INCOMPATIBLE_LEVELS = ["--generator", "mlp", "--loss", "wasserstein", "--stabilizer", "label_smoothing"]


@pytest.mark.parametrize("extra", [[], INCOMPATIBLE_LEVELS], ids=["the issue's command", "with incompatible levels"])
def test_full_design_plans_every_compatible_cell_of_the_filtered_components(tmp_path, extra):
    output = dry_run(*CROSSED, *extra, "--design", "full", results_dir=tmp_path)
    args = CROSSED + extra
    levels = {axis: [args[i + 1] for i, a in enumerate(args) if a == f"--{axis}"]
              for axis in ("generator", "discriminator", "loss", "stabilizer")}
    expected = {"/".join(cell) for cell in itertools.product(*levels.values()) if runs_together(cell)}
    planned = planned_cells(output, "digits")
    assert set(planned) == expected
    assert set(planned.values()) == {1}  # every cell trains the suite's seeds (1), none the one-factor's 16
    assert f"{len(expected)} runs: {len(expected)} combinations x seeds" in output
    assert "suite default-full: full design" in output
    if extra:
        assert len(expected) < 3 * 2 * 3 * 3  # the incompatible cells are there to be left out
        assert "digits: generator mlp: generator mlp supports vector data, not image" in output
        assert ('digits: dcgan/dcgan/hinge/label_smoothing: stabilizer label_smoothing requires a loss tagged '
                '"targets" (hinge is not)') in output


def test_the_default_design_still_plans_the_committed_runs_and_names_what_the_filters_ask_outside_it(tmp_path):
    committed = set(pd.read_csv(ROOT / "results" / "default" / "runs.csv")["run_id"])
    assert {spec.run_id for spec in build_grid(load_suite("default"), REGISTRY).specs} == committed
    output = dry_run(*CROSSED, results_dir=tmp_path)
    # the one-factor rows the filters keep: the baseline (10 seeds), ResNet G (8) and ResNet D (4), as before
    assert planned_cells(output, "digits") == {"dcgan/dcgan/ns/none": 10, "resnet_sngan/dcgan/ns/none": 8,
                                               "dcgan/resnet_sngan/ns/none": 4}
    assert ('loss hinge: digits: not in the one-factor design: the suite\'s digits components select '
            'loss = ["ns"]; --design full crosses the components the filters name') in output
    assert "stabilizer spectral_norm: digits: not in the one-factor design" in output


def test_left_out_components_are_named_with_what_they_cannot_run_with(tmp_path):
    output = dry_run("--dataset", "digits", "--design", "full", "--generator", "dcgan", "--generator", "cond_dcgan",
                     "--discriminator", "dcgan", "--discriminator", "projection_dcgan", "--stabilizer", "none",
                     "--stabilizer", "acgan", "--loss", "ns", results_dir=tmp_path)
    assert set(planned_cells(output, "digits")) == {"dcgan/dcgan/ns/none", "cond_dcgan/projection_dcgan/ns/none"}
    assert ('stabilizer acgan: digits: incompatible in every cell of the design with it (4): stabilizer acgan '
            'requires a discriminator tagged "auxiliary_classifier"') in output
    assert ('digits: dcgan/projection_dcgan/ns/none: discriminator projection_dcgan requires a generator tagged '
            '"conditional" (dcgan is not)') in output
    # One-factor: a component in the design whose rows the other filters drop.
    output = dry_run("--dataset", "digits", "--generator", "dcgan", "--generator", "resnet_sngan", "--discriminator",
                     "resnet_sngan", results_dir=tmp_path)
    assert ("generator resnet_sngan: digits: no cell with it passes the filters: resnet_sngan/dcgan/ns/none does not "
            "pass --discriminator resnet_sngan") in output


def test_a_fraction_is_balanced_covers_pairs_and_is_reproducible_from_its_seed():
    levels = [["a", "b", "c"], ["p", "q", "r", "s"], ["u", "v", "w", "x", "y", "z"], ["0", "1"]]
    every = set(itertools.product(*levels))
    for n, seed in [(12, 0), (24, 1), (36, 2)]:
        cells = fractional_cells(levels, every, n, seed)
        assert len(cells) == len(set(cells)) == n and set(cells) <= every
        for axis, names in enumerate(levels):  # n divides evenly: every level equally often
            assert Counter(cell[axis] for cell in cells) == dict.fromkeys(names, n // len(names))
        assert balance(cells, levels) == [(n // len(names),) * 2 for names in levels]
        assert fractional_cells(levels, every, n, seed) == cells
        assert fractional_cells(levels, every, n, seed + 100) != cells
    # 36 cells hold every pair of levels of any two axes (at most 6 x 4 = 24 pairs per two axes): all appear.
    cells = fractional_cells(levels, every, 36, 2)
    for a, b in itertools.combinations(range(4), 2):
        assert {(c[a], c[b]) for c in cells} == set(itertools.product(levels[a], levels[b]))
    # Cells that cannot run never appear, and the levels stay within one of each other when they allow it.
    compatible = {cell for cell in every if not (cell[2] == "z" and cell[3] == "1")}
    for seed in range(5):
        cells = fractional_cells(levels, compatible, 24, seed)
        assert set(cells) <= compatible and len(set(cells)) == 24
        assert all(hi - lo <= 1 for lo, hi in balance(cells, levels))


def test_fractional_design_from_the_command_line(tmp_path):
    # The architectures and losses are named, so that a new built-in one leaves the counts below as they are.
    architectures = ["--generator", "biggan_lite", "--generator", "dcgan", "--generator", "resnet_sngan"]
    architectures += ["--discriminator", "biggan_lite", "--discriminator", "dcgan", "--discriminator", "resnet_sngan",
                      "--discriminator", "timm"]
    losses = [option for loss in ("hinge", "lsgan", "minimax", "ns", "rasgan", "wasserstein")
              for option in ("--loss", loss)]
    axes = [*architectures, "--dataset", "digits", *losses, "--stabilizer", "none", "--stabilizer",
            "spectral_norm", "--stabilizer", "label_smoothing", "--design", "fractional"]
    output = dry_run(*axes, "--cells", "24", "--design-seed", "3", results_dir=tmp_path)
    planned = planned_cells(output, "digits")
    assert len(planned) == 24 and set(planned.values()) == {1}
    cells = [cell.split("/") for cell in planned]
    levels = {"generator": ["biggan_lite", "dcgan", "resnet_sngan"], "discriminator":
              ["biggan_lite", "dcgan", "resnet_sngan", "timm"], "loss": ["hinge", "lsgan", "minimax", "ns", "rasgan",
                                                                         "wasserstein"],
              "stack": ["none", "label_smoothing", "spectral_norm"]}
    for axis, names in enumerate(levels.values()):
        assert Counter(cell[axis] for cell in cells) == dict.fromkeys(names, 24 // len(names))
    assert all(runs_together(tuple(cell)) for cell in cells)
    # 3 G x 4 D x 6 losses x 3 stacks, less label smoothing with the 3 losses without targets (36 cells)
    assert "fraction: seed 3, 24 of 180 compatible cells" in output
    assert "balance (fewest-most cells per level): generator 8-8, discriminator 6-6, loss 4-4, stack 8-8" in output
    def cells_of(seed):
        return planned_cells(dry_run(*axes, "--cells", "24", "--design-seed", seed, results_dir=tmp_path), "digits")

    assert cells_of("3") == planned and cells_of("4") != planned
    # Too few cells for every level: the ones left out say so.
    output = dry_run(*axes, "--cells", "2", results_dir=tmp_path)
    assert re.search(r"loss \w+: digits: none of its \d+ compatible cells is in the fraction: the fractional design "
                     r"trains 2 of the 180 compatible cells", output)


def test_the_suite_key_and_its_errors():
    raw = {"name": "x", "design": {"name": "fractional", "cells": 6, "seed": 2}, "budget": {"kimg": 1},
           "datasets": [{"name": "ring8"}]}
    suite = parse_suite(raw)
    assert (suite.design, suite.fraction) == ("fractional", Fraction(cells=6, seed=2))
    grid = build_grid(suite, REGISTRY, Filters(loss=("ns", "hinge", "lsgan")))
    assert len({spec.combination for spec in grid.specs}) == 6
    for design, message in [({"name": "full", "cells": 6}, "design 'full' takes no cells"),
                            ({"name": "fractional", "cells": 6, "fraction": 0.5}, "not both"),
                            ({"name": "fractional", "fraction": 1.5}, r"fraction must be a number in \(0, 1\]"),
                            ({"name": "fractional", "size": 3}, "takes no size"), ("crossed", "design must be one of")]:
        with pytest.raises(SuiteError, match=message):
            parse_suite({**raw, "design": design})
    with pytest.raises(SuiteError, match="baseline_seeds and row_seeds weigh the rows of a one-factor design"):
        parse_suite({**raw, "design": "full", "datasets": [{"name": "ring8", "baseline_seeds": 4}]})
    crossed = with_design(load_suite("default"), "full")
    assert crossed.name == "default-full" and all(not p.row_seeds and p.baseline_seeds is None
                                                  for p in crossed.datasets)
    with pytest.raises(SuiteError, match="add --design fractional"):
        with_design(load_suite("default"), "full", Fraction(cells=4))
    with pytest.raises(SuiteError, match="--design one-factor needs a baseline for every axis"):
        with_design(parse_suite({**raw, "design": "full"}), "one-factor")


def test_bench_names_what_trains_in_no_run(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text('name = "tiny"\nseeds = 1\n[budget]\nkimg = 0.512\nbatch_size = 64\n'
                     '[eval]\nn_fake = 128\nn_real = 128\nmetrics = ["fid"]\n'
                     '[[datasets]]\nname = "blobs"\n'
                     'baseline = { generator = "lin", discriminator = "small", loss = "logistic", stack = "none" }\n')
    with plugin_registry({"testzoo": testzoo}):
        result = CliRunner().invoke(main, ["bench", "--suite", str(suite), "--results-dir", str(tmp_path / "r"),
                                           "--stabilizer", "none", "--stabilizer", "image_only", "--design", "full",
                                           "--generator", "lin", "--discriminator", "small", "--loss", "logistic",
                                           "--executor", "inline", "--no-progress"],
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Trained 1 runs" in result.output
    assert "stabilizer image_only: blobs: stabilizer image_only supports image data, not vector" in result.output


def test_a_stabilizer_filter_that_names_no_stack_selects_the_stacks_that_hold_it():
    raw = {"name": "x", "design": "full", "auto_stacks": False, "budget": {"kimg": 1}, "datasets": [{"name": "ring8"}],
           "stacks": {"sn_ema": ["spectral_norm", "ema"], "ttur": ["ttur"]}}
    grid = build_grid(parse_suite(raw), REGISTRY, Filters(loss=("ns",), stabilizer=("ema", "none")))
    assert sorted(spec.stack_name for spec in grid.specs) == ["none", "sn_ema"]
    assert not [what for what, _ in grid.untrained if what.startswith(("stabilizer", "stack"))]
