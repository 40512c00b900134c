"""How training computes (bf16 autocast, channels_last, torch.compile): part of the spec, the id and the protocol."""

from dataclasses import replace

import pytest
import testzoo
import torch

from ganzoo.core.records import DONE
from ganzoo.core.spec import Compute, RunSpec
from ganzoo.core.store import Store
from ganzoo.run.suite import SuiteError, parse_suite
from ganzoo.run.train import build_run, run
from ganzoo.sweep import bench
from ganzoo.testing import plugin_registry


@pytest.fixture(scope="module")
def registry():
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as reg:
        yield reg


def test_the_default_leaves_run_ids_as_they_were_and_other_settings_are_new_runs():
    spec = testzoo.tiny_spec()
    assert "compute" not in spec.canonical()  # ids of runs made before compute settings existed stay
    bf16 = replace(spec, compute=Compute(precision="bf16"))
    assert bf16.run_id != spec.run_id and bf16.canonical()["compute"]["precision"] == "bf16"
    assert RunSpec.from_dict(bf16.canonical()) == bf16 and RunSpec.from_dict(spec.canonical()) == spec


@pytest.mark.parametrize("table, message", [
    ({"precision": "fp16"}, r"compute.precision must be one of \('fp32', 'bf16'\), got \"fp16\""),
    ({"compile": "yes"}, "compute.compile must be true or false, got 'yes'"),
    ({"amp": True}, r"compute keys: \['precision', 'channels_last', 'compile'\]"),
])
def test_bad_compute_settings_in_a_suite_are_named(table, message):
    with pytest.raises(SuiteError, match=message):
        parse_suite(testzoo.suite_dict(compute=table), source="test")


def test_a_bf16_run_trains_and_ranks_in_a_table_of_its_own_with_its_real_data_row(registry, tmp_path):
    components = {"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small"], "stack": ["none"]}
    quiet = {"registry": registry, "progress": False, "echo": lambda line: None}
    fp32 = parse_suite(testzoo.suite_dict(seeds=1, components=components), source="test")
    bf16 = parse_suite(testzoo.suite_dict(seeds=1, components=components, compute={"precision": "bf16"}),
                       source="test")
    assert list(bench(fp32, tmp_path, **quiet).results.values()) == [DONE]
    assert list(bench(bf16, tmp_path, **quiet).results.values()) == [DONE]
    store = Store(tmp_path)
    rows = {row["spec"].get("compute", {}).get("precision", "fp32"): row for row in store.runs("tiny")}
    assert set(rows) == {"fp32", "bf16"}
    assert rows["bf16"]["protocol"]["training_compute"] == {"precision": "bf16", "channels_last": False,
                                                            "compile": False}
    assert "training_compute" not in rows["fp32"]["protocol"]
    assert rows["bf16"]["fingerprint"] != rows["fp32"]["fingerprint"]
    # Each table has its real-data row, filed under its own fingerprint.
    assert {("blobs", rows[p]["fingerprint"]) for p in rows} <= set(store.references("tiny"))
    # bf16 changed the arithmetic: the numbers differ from fp32's, as the separate tables say.
    fp32_evals, bf16_evals = store.evals(rows["fp32"]["run_id"]), store.evals(rows["bf16"]["run_id"])
    assert [e["d_loss"] for e in fp32_evals] != [e["d_loss"] for e in bf16_evals]


def test_channels_last_puts_image_data_and_networks_in_nhwc(tmp_path):
    from ganzoo.core.registry import build_registry
    from ganzoo.run.grid import Filters, build_grid
    from ganzoo.run.suite import load_suite

    zoo = build_registry()
    spec = build_grid(load_suite("default"), zoo, Filters(dataset=("digits",), stabilizer=("none",)), seeds=[0],
                      g_steps=4).specs[0]
    spec = replace(spec, protocol=replace(spec.protocol, n_fake=200, metrics=("fid",)))
    nhwc = replace(spec, compute=Compute(channels_last=True))
    r = build_run(nhwc, tmp_path, torch.device("cpu"), zoo)
    convs = [p for p in (*r.models.generator.parameters(), *r.models.discriminator.parameters()) if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert r.models.dataset.data.is_contiguous(memory_format=torch.channels_last)
    result, plain = run(nhwc, tmp_path / "nhwc", "cpu", zoo), run(spec, tmp_path / "plain", "cpu", zoo)
    assert result.status == plain.status == DONE
    # Only the memory layout differs: the losses agree to float32 rounding.
    for a, b in zip(result.evals, plain.evals, strict=True):
        assert a["d_loss"] == pytest.approx(b["d_loss"], rel=1e-3)


def test_a_compiled_run_keeps_plain_weight_names(registry, tmp_path):
    """nn.Module.compile keeps the weight names, so checkpoints load into uncompiled modules (ganzoo eval)."""
    from ganzoo.run import artifacts
    from ganzoo.run.build import load_generator

    spec = replace(testzoo.tiny_spec(g_steps=4, eval_every_g_steps=2), compute=Compute(compile=True))
    result = run(spec, tmp_path, "cpu", registry)
    assert result.status == DONE, result.error
    generator, _ = load_generator(tmp_path / artifacts.CHECKPOINT, "cpu", registry)
    assert not any(name.startswith("_orig_mod") for name in generator.state_dict())


def test_cli_compute_options_change_every_run_of_the_grid():
    from click.testing import CliRunner

    from ganzoo.cli import main

    def run_ids(*options):
        with plugin_registry():  # the installed zoo
            result = CliRunner().invoke(main, ["bench", "--dataset", "ring8", "--loss", "ns", "--stabilizer", "none",
                                               "--seeds", "1", "--dry-run", "--no-estimate", *options])
        assert result.exit_code == 0, result.output
        return {line.split()[0] for line in result.output.splitlines() if line[:16].isalnum() and len(line) > 16}

    plain, bf16 = run_ids(), run_ids("--precision", "bf16", "--channels-last")
    assert plain and bf16 and not plain & bf16
    assert run_ids("--precision", "fp32", "--no-compile") == plain  # the defaults, said out loud: the same runs
