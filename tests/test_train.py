"""The training loop itself (ganzoo.run.train): stabilizer hook points, budget units and the checkpoint round trip."""

import pytest
import testzoo
import torch

import ganzoo
import ganzoo_plugins.stabilizers as stabilizers_plugin
from ganzoo import hookimpl
from ganzoo.core.records import DONE, FAILED
from ganzoo.core.spec import Budget, ComponentRef, RunSpec
from ganzoo.run import artifacts
from ganzoo.run.build import resolve_d_loss_kwargs
from ganzoo.run.train import run
from ganzoo.testing import plugin_registry


class PullToZero(ganzoo.Stabilizer):
    """A G penalty that pulls G's weights towards zero: only G's update can show it."""

    def __init__(self, weight=10.0):
        self.weight = weight

    def g_penalty(self, ctx):
        return self.weight * sum(p.square().sum() for p in ctx.generator.parameters())


class Target(ganzoo.Stabilizer):
    """Sets the real target of the D loss, as label smoothing does."""

    def __init__(self, real_target=0.9):
        self.real_target = real_target

    def d_loss_kwargs(self):
        return {"real_target": self.real_target}


class Recording(ganzoo.Loss):
    """The test zoo's logistic loss, remembering the keywords D's loss was called with."""

    seen: list = []

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        Recording.seen.append(real_target)
        return (torch.nn.functional.softplus(-real_logits).mean() * real_target
                + torch.nn.functional.softplus(fake_logits).mean())

    def g_loss(self, fake_logits, real_logits=None):
        return torch.nn.functional.softplus(-fake_logits).mean()


class _Plugin:
    @hookimpl
    def register_stabilizers(self, register):
        register("pull_to_zero", PullToZero, description="G penalty on G's weights", defaults={"weight": 10.0})
        register("target", Target, description="Sets real_target", defaults={"real_target": 0.9})

    @hookimpl
    def register_losses(self, register):
        register("recording", Recording, description="Logistic loss that records its keywords")


@pytest.fixture(scope="module")
def registry():
    plugins = {"testzoo": testzoo, "stabilizers": stabilizers_plugin, "train-test": _Plugin()}
    with plugin_registry(plugins, load_entry_points=False) as reg:
        yield reg


def generator_weights(run_dir):
    """G's final weights: without EMA in the stack the evaluated G is the trained G (all a finished run keeps)."""
    return artifacts.load_checkpoint(run_dir / artifacts.CHECKPOINT)[artifacts.EVAL_GENERATOR_KEY]


def test_g_penalty_changes_the_generator_update(registry, tmp_path):
    plain = run(testzoo.tiny_spec(), tmp_path / "plain", "cpu", registry)
    pulled = run(testzoo.tiny_spec(stack=(ComponentRef("pull_to_zero", {"weight": 10.0}),)), tmp_path / "pulled",
                 "cpu", registry)
    assert plain.status == pulled.status == DONE
    before, after = generator_weights(tmp_path / "plain"), generator_weights(tmp_path / "pulled")
    # Same seed, same data: only the penalty differs, and it shrinks every weight of G (and leaves D's first step).
    assert all(after[k].norm() < before[k].norm() for k in before)


def test_d_loss_kwargs_reach_every_d_step(registry, tmp_path):
    Recording.seen.clear()
    result = run(testzoo.tiny_spec(loss="recording", stack=(ComponentRef("target", {"real_target": 0.7}),)),
                 tmp_path, "cpu", registry)
    assert result.status == DONE and result.d_steps == 2 and Recording.seen == [0.7, 0.7]


def test_two_stabilizers_setting_one_d_loss_keyword_is_an_error(registry, tmp_path):
    with pytest.raises(ValueError, match='"target" and "label_smoothing" both set the D loss keyword real_target'):
        resolve_d_loss_kwargs([Target(), registry.get("stabilizer", "label_smoothing").build()],
                              ["target", "label_smoothing"])
    both = (ComponentRef("target", {"real_target": 0.9}), ComponentRef("target", {"real_target": 0.8}))
    result = run(testzoo.tiny_spec(loss="recording", stack=both), tmp_path, "cpu", registry)
    assert result.status == FAILED and "both set the D loss keyword real_target" in result.error


D5 = (ComponentRef("d_steps", {"n": 5}),)


def test_g_step_budget_gives_every_stack_the_same_g_steps(registry, tmp_path):
    budget = {"unit": "g_steps", "g_steps": 10, "eval_every_g_steps": 5}
    baseline = run(testzoo.tiny_spec(**budget), tmp_path / "base", "cpu", registry)
    five = run(testzoo.tiny_spec(stack=D5, **budget), tmp_path / "d5", "cpu", registry)
    assert baseline.g_steps == five.g_steps == 10
    assert (baseline.d_steps, five.d_steps) == (10, 50) and five.kimg == 5 * baseline.kimg
    assert [e["g_steps"] for e in five.evals] == [5, 10]  # evaluations at G-step marks
    assert [e["kimg"] for e in five.evals] == [0.2, 0.4]  # with the images shown recorded as well


def test_kimg_budget_gives_a_five_d_step_stack_a_fifth_of_the_g_steps(registry, tmp_path):
    budget = {"unit": "kimg", "kimg": 0.4, "g_steps": None}
    baseline = run(testzoo.tiny_spec(**budget), tmp_path / "base", "cpu", registry)
    five = run(testzoo.tiny_spec(stack=D5, **budget), tmp_path / "d5", "cpu", registry)
    assert baseline.kimg == five.kimg == 0.4
    assert (baseline.g_steps, five.g_steps) == (50, 10)


def test_budget_units_are_validated_and_old_run_ids_keep_their_canonical_form():
    kimg = Budget(kimg=24, eval_every_kimg=8)
    assert (kimg.total, kimg.eval_every, kimg.spent(images=100, g_steps=3)) == (24_000, 8_000, 100)
    steps = Budget(unit="g_steps", g_steps=2000, eval_every_g_steps=500)
    assert (steps.total, steps.eval_every, steps.spent(images=100, g_steps=3)) == (2000, 500, 3)
    # The fields added with the unit stay out of a kimg budget's canonical form, so existing run ids hold.
    assert set(kimg.canonical()) == {"kimg", "batch_size", "eval_every_kimg", "max_seconds"}
    assert steps.canonical()["unit"] == "g_steps"
    spec = testzoo.tiny_spec(unit="kimg", kimg=1.0, g_steps=None)
    assert RunSpec.from_dict(spec.canonical()) == spec
    for bad, message in [({"kimg": 0}, "kimg must be > 0"), ({"unit": "epochs", "kimg": 1}, "unit must be"),
                         ({"unit": "g_steps"}, "g_steps must be positive"),
                         ({"unit": "g_steps", "g_steps": 10, "kimg": 1}, "not used with unit"),
                         ({"kimg": 1, "eval_every_g_steps": 5}, "not used with unit"),
                         ({"unit": "g_steps", "g_steps": 2.5}, "whole numbers")]:
        with pytest.raises(ValueError, match=message):
            Budget(**bad)


def test_kimg_override_refuses_a_g_step_budget(registry):
    from ganzoo.run.grid import build_grid
    from ganzoo.run.suite import SuiteError, parse_suite

    raw = testzoo.suite_dict(budget={"unit": "g_steps", "g_steps": 20, "eval_every_g_steps": 10, "batch_size": 8})
    suite = parse_suite(raw, source="test")
    assert {s.budget.g_steps for s in build_grid(suite, registry).specs} == {20}
    with pytest.raises(SuiteError, match="--kimg overrides budgets counted in kimg, but dataset blobs counts g_steps"):
        build_grid(suite, registry, kimg=1.0)


def test_estimates_count_g_steps_for_a_g_step_budget(registry):
    from ganzoo.sweep.estimate import _tiny

    steps = _tiny(testzoo.tiny_spec(g_steps=1000), batches=3, n_fake=16)
    assert (steps.budget.g_steps, steps.budget.eval_every_g_steps, steps.budget.kimg) == (3, None, None)
    images = _tiny(testzoo.tiny_spec(unit="kimg", kimg=24, g_steps=None, eval_every_kimg=8), batches=3, n_fake=16)
    assert (images.budget.kimg, images.budget.eval_every_kimg) == (3 * 8 / 1000, None)


# -- damaged run folders ---------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_checkpoint"])
def test_an_unreadable_checkpoint_is_moved_aside_and_the_run_restarts_from_zero(registry, tmp_path, damage):
    spec = testzoo.tiny_spec(g_steps=4, eval_every_g_steps=2)
    straight = run(spec, tmp_path / "straight", "cpu", registry)
    run_dir = tmp_path / "damaged"
    assert run(spec, run_dir, "cpu", registry).status == DONE
    checkpoint = run_dir / artifacts.CHECKPOINT
    good = checkpoint.read_bytes()
    damaged = {"truncated": good[: len(good) // 2], "empty": b""}.get(damage)
    if damaged is None:
        torch.save({"just": torch.zeros(1)}, checkpoint)
    else:
        checkpoint.write_bytes(damaged)
    (run_dir / f"{artifacts.CHECKPOINT}.tmp-999999").write_bytes(b"partial")  # a killed writer's leftover
    with pytest.warns(RuntimeWarning, match=r"checkpoint.pt could not be read .* moved it to "
                                            r"checkpoint.pt.unreadable-\d+-\d+ and restarting the run from zero"):
        again = run(spec, run_dir, "cpu", registry)
    assert again.status == DONE, again.error
    assert [e["metrics"] for e in again.evals] == [e["metrics"] for e in straight.evals]  # from zero, identically
    assert len(list(run_dir.glob("checkpoint.pt.unreadable-*"))) == 1  # kept for inspection
    assert not list(run_dir.glob("checkpoint.pt.tmp*"))


# Every entry a checkpoint held before it carried a schema (version 1): what users' interrupted sweeps have on disk.
VERSION_1_ENTRIES = {"spec", "generator", "discriminator", "generator_eval", "opt_g", "opt_d", "stabilizers", "rng",
                     "images", "seconds", "g_steps", "d_steps", "evals", "eval_seconds"}


def test_a_checkpoint_written_before_the_schema_resumes_exactly(registry, tmp_path, monkeypatch):
    """A sweep interrupted under an older ganzoo: its checkpoint is a dict of the same entries without "schema",
    read as version 1, and the run resumes from it to the numbers and weights of an uninterrupted run."""
    spec = testzoo.tiny_spec(g_steps=4, eval_every_g_steps=2, stack=(ComponentRef("ema", {}),))
    straight = run(spec, tmp_path / "straight", "cpu", registry)
    run_dir = tmp_path / "resumed"
    real_save = artifacts.save_checkpoint

    def save_then_die(checkpoint, folder):
        real_save(checkpoint, folder)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(artifacts, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(spec, run_dir, "cpu", registry)
    monkeypatch.setattr(artifacts, "save_checkpoint", real_save)
    state = artifacts.load_checkpoint(run_dir / artifacts.CHECKPOINT)
    assert state.pop("schema") == artifacts.CHECKPOINT_SCHEMA == 2
    assert set(state) == VERSION_1_ENTRIES and state["g_steps"] == 2
    torch.save(state, run_dir / artifacts.CHECKPOINT)  # as the code before the schema wrote it
    resumed = run(spec, run_dir, "cpu", registry)
    assert straight.status == resumed.status == DONE, resumed.error
    assert [(e["g_steps"], e["d_loss"], e["metrics"]) for e in resumed.evals] == [
        (e["g_steps"], e["d_loss"], e["metrics"]) for e in straight.evals]
    for name, weight in generator_weights(tmp_path / "straight").items():
        assert torch.equal(weight, generator_weights(run_dir)[name]), name


def test_a_checkpoint_of_a_newer_schema_or_another_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="schema 3, but this ganzoo reads checkpoints up to schema 2: upgrade"):
        artifacts.Checkpoint.from_dict({"schema": 3, "g_steps": 1})
    with pytest.raises(ValueError, match="no training state"):
        artifacts.Checkpoint.from_dict({"just": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"entries \['optimiser'\] that a schema-1 checkpoint does not have"):
        artifacts.Checkpoint.from_dict({"g_steps": 1, "optimiser": {}})


def test_a_failed_checkpoint_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def disk_full(state, path):
        path.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        artifacts.save_checkpoint(artifacts.Checkpoint(g_steps=1), tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- what a finished run leaves on disk ---------------------------------------------------------------


def test_a_finished_run_keeps_what_reporting_needs_and_drops_the_training_state(registry, tmp_path):
    from ganzoo.run.build import load_generator
    from ganzoo.run.train import RunOptions

    spec = testzoo.tiny_spec(g_steps=4, eval_every_g_steps=2)
    lean = run(spec, tmp_path / "lean", "cpu", registry)
    kept = run(spec, tmp_path / "kept", "cpu", registry, RunOptions(keep_checkpoints=True))
    assert lean.status == kept.status == DONE
    assert [e["metrics"] for e in lean.evals] == [e["metrics"] for e in kept.evals]  # what is kept changes no number
    lean_state = artifacts.load_checkpoint(tmp_path / "lean" / artifacts.CHECKPOINT)
    kept_state = artifacts.load_checkpoint(tmp_path / "kept" / artifacts.CHECKPOINT)
    assert {"discriminator", "opt_g", "opt_d", "generator"} <= set(kept_state)
    assert not {"discriminator", "opt_g", "opt_d", "generator", "rng", "evals"} & set(lean_state)  # evals: in result
    size = {name: (tmp_path / name / artifacts.CHECKPOINT).stat().st_size for name in ("lean", "kept")}
    assert size["lean"] < size["kept"]
    # ganzoo eval and the report read the evaluated G and the spec: both are there, and they are the final G.
    generator, loaded_spec = load_generator(tmp_path / "lean" / artifacts.CHECKPOINT, "cpu", registry)
    assert loaded_spec == spec
    for name, weight in generator.state_dict().items():
        assert torch.equal(weight, kept_state[artifacts.EVAL_GENERATOR_KEY][name])


def test_a_finished_run_whose_record_was_lost_is_recovered_not_trained_again(registry, tmp_path, monkeypatch):
    """A driver killed between a run's end and recording it: the rerun reads the result from the checkpoint."""
    import ganzoo.run.train

    spec = testzoo.tiny_spec(g_steps=4, eval_every_g_steps=2)
    first = run(spec, tmp_path, "cpu", registry)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(ganzoo.run.train, "build_run", no_training)
    again = run(spec, tmp_path, "cpu", registry)
    assert again.status == DONE, again.error
    assert again == first


def test_one_device_description_for_the_run_record_and_the_reference_cache(monkeypatch):
    """A GPU: its name and both TF32 switches in both places, the runs packed on it in the run record only (packing
    changes no feature). A CPU: exactly ``describe_cpu``'s string in both, so committed cache keys still match."""
    from ganzoo.metrics.reference import computed_on
    from ganzoo.system.cpu import describe_cpu
    from ganzoo.system.device import describe_device

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    switches = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, False
    try:
        gpu = torch.device("cuda")
        packed = describe_device(gpu, 3)
        alone, reference = describe_device(gpu), computed_on(gpu)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches
    assert packed == "cuda (NVIDIA H100 80GB HBM3; tf32 matmul True, cudnn False, 3 runs per GPU)"
    assert alone == reference == "cuda (NVIDIA H100 80GB HBM3; tf32 matmul True, cudnn False)"
    cpu = torch.device("cpu")
    threads = torch.get_num_threads()
    assert describe_device(cpu, 3) == computed_on(cpu) == describe_cpu(threads)  # CPU workers have their own cores
    assert describe_cpu(threads).startswith(f"cpu ({threads} thread{'s' if threads != 1 else ''}; ")
