"""Seeds as a batch dimension (ganzoo.run.vectorized): a group member is its single run.

Every component registered with ``vectorized=True`` is checked, timm-style, by ``ganzoo.testing.check_vectorized``:
after one and after ten G steps, member k of a group equals the single run of seed k within ``VECTORIZED_RTOL``
relative (2**-13, derived where ganzoo/testing.py sets it; weights, losses, metrics). The single runs are the
independent computation: they never touch the group code.
"""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo.core.records import DIVERGED, DONE, FAILED
from ganzoo.core.registry import get_registry
from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec
from ganzoo.run import artifacts
from ganzoo.run.train import RunOptions, train
from ganzoo.run.vectorized.group import train_group
from ganzoo.run.vectorized.plan import plan_units, why_not_vectorized
from ganzoo.testing import VECTORIZED_RTOL, _relative_difference, check_vectorized

SMALL = {"mlp": {"width": 16, "depth": 2}, "dcgan": {"ch": 8}, "resnet_sngan": {"ch": 8},
         "biggan_lite": {"ch": 8}, "r3gan": {"ch": 8, "blocks": 1}, "stylegan2": {"ch": 8, "max_ch": 16}}
# A conditional component trains with its conditional partner (labels need both sides), on digits' 10 classes.
CONDITIONAL_PAIRS = {"cond_dcgan": "projection_dcgan", "cond_resnet_sngan": "projection_resnet_sngan"}
# ada: p moves by 0.1 every 2 D steps (of 8 images), so that it changes within the 10 G steps compared.
IMAGE_ONLY = {"diffaugment": {"policy": "color,translation,cutout", "cutout_ratio": 0.25},
              "consistency": {"flip": False}, "ada": {"speed_kimg": 0.16, "interval": 2, "p": 0.5}}


def base_spec(image: bool, **changes) -> RunSpec:
    """A small spec: ring8 with MLPs, or digits with DCGANs; a protocol that evaluates in a blink."""
    arch = "dcgan" if image else "mlp"
    spec = RunSpec(
        dataset=ComponentRef("digits" if image else "ring8", {}),
        generator=ComponentRef(arch, {**SMALL[arch], **({"latent_dim": 16} if image else {})}),
        discriminator=ComponentRef(arch, dict(SMALL[arch]) if image else {"width": 16, "depth": 2, "pieces": 2}),
        loss=ComponentRef("ns", {}),
        stack_name="none",
        stack=(),
        seed=0,
        budget=Budget(batch_size=8 if image else 16, unit="g_steps", g_steps=10),
        optim=Optim(),
        protocol=ganzoo.EvalProtocol(n_fake=64, n_real=64, metrics=("fid", "pr"), batch_size=64),
    )
    return replace(spec, **changes)


def vectorized_components() -> list[tuple[str, str]]:
    registry = get_registry()
    return [(kind, c.name) for kind in ("generator", "discriminator", "loss", "stabilizer")
            for c in registry.list(kind) if c.vectorized]


def spec_for(kind: str, name: str) -> RunSpec:
    registry = get_registry()
    if kind == "stabilizer":
        stack = (ComponentRef(name, IMAGE_ONLY.get(name, {})),)
        return base_spec(name in IMAGE_ONLY, stack=stack, stack_name=name)
    if kind == "loss":
        return base_spec(False, loss=ComponentRef(name, {}))
    component = registry.get(kind, name)
    if "conditional" in component.tags:
        g = name if kind == "generator" else next(g for g, d in CONDITIONAL_PAIRS.items() if d == name)
        return base_spec(True, generator=ComponentRef(g, {"ch": 8, "latent_dim": 16}),
                         discriminator=ComponentRef(CONDITIONAL_PAIRS[g], {"ch": 8}))
    image = "image" in component.modalities
    hparams = dict(SMALL.get(name, {}))
    if kind == "generator" and image:
        hparams["latent_dim"] = 16
    return base_spec(image, **{kind: ComponentRef(name, hparams)})


def test_the_built_in_zoo_declares_what_the_issue_asks():
    declared = set(vectorized_components())
    for kind in ("generator", "discriminator"):
        for name in ("mlp", "dcgan", "resnet_sngan", "biggan_lite"):
            assert (kind, name) in declared
    for loss in get_registry().list("loss"):
        assert ("loss", loss.name) in declared
    for kind, name in [("generator", "cond_dcgan"), ("generator", "cond_resnet_sngan"),
                       ("discriminator", "projection_dcgan"), ("discriminator", "projection_resnet_sngan")]:
        assert (kind, name) in declared
    assert {("stabilizer", s) for s in ("spectral_norm", "gradient_penalty", "r1", "ema", "diffaugment", "pac",
                                        "lecam", "instance_noise")} <= declared


@pytest.mark.parametrize("kind,name", vectorized_components(), ids=lambda v: v)
def test_a_group_member_equals_its_single_run(kind, name, tmp_path):
    check_vectorized(spec_for(kind, name), get_registry(), seeds=(0, 1), steps=(1, 10), rtol=VECTORIZED_RTOL,
                     workdir=tmp_path)


# The stabilizers that call D again (with the labels of what it judges), normalise or average its weights, or
# change its inputs: with a conditional pair, labels ride along with the stacked batches.
LABEL_TOUCHING = ["gradient_penalty", "r1", "r2", "consistency", "spectral_norm", "ema", "diffaugment", "lecam",
                  "ada"]


@pytest.mark.filterwarnings("ignore:intra_fid")  # 6 samples a class in 64-d features: a tiny protocol
@pytest.mark.parametrize("stabilizer", LABEL_TOUCHING)
def test_a_conditional_member_equals_its_single_run_with_a_stabilizer(stabilizer, tmp_path):
    stack = (ComponentRef(stabilizer, IMAGE_ONLY.get(stabilizer, {})),)
    spec = replace(spec_for("generator", "cond_dcgan"), stack=stack, stack_name=stabilizer)
    check_vectorized(spec, get_registry(), seeds=(0, 1), steps=(3,), rtol=VECTORIZED_RTOL, workdir=tmp_path)


@pytest.mark.parametrize("image", [False, True], ids=["ring8-mlp", "digits-dcgan"])
def test_a_member_does_not_depend_on_who_shares_its_group(image, tmp_path):
    spec = base_spec(image)
    keep = RunOptions(keep_checkpoints=True)
    pair = train_group([replace(spec, seed=s) for s in (3, 4)], [tmp_path / f"pair{s}" for s in (3, 4)],
                       torch.device("cpu"), get_registry(), keep)
    five = train_group([replace(spec, seed=s) for s in range(5)], [tmp_path / f"five{s}" for s in range(5)],
                       torch.device("cpu"), get_registry(), keep)
    for seed, in_pair, in_five in [(3, pair[0], five[3]), (4, pair[1], five[4])]:
        assert in_pair.status == in_five.status == DONE
        a, b = (artifacts.load_checkpoint(tmp_path / f"{g}{seed}" / artifacts.CHECKPOINT) for g in ("pair", "five"))
        assert _relative_difference(a["generator"], b["generator"]) <= VECTORIZED_RTOL
        assert in_pair.evals[-1]["metrics"]["fid"] == pytest.approx(in_five.evals[-1]["metrics"]["fid"],
                                                                    rel=VECTORIZED_RTOL)


def test_each_member_is_its_own_run_with_an_honest_device_record(tmp_path):
    specs = [base_spec(False, seed=s, budget=Budget(batch_size=16, unit="g_steps", g_steps=6, eval_every_g_steps=3))
             for s in (0, 1, 2)]
    results = train_group(specs, [tmp_path / s.run_id for s in specs], torch.device("cpu"), get_registry())
    assert [r.run_id for r in results] == [s.run_id for s in specs]
    for spec, result in zip(specs, results, strict=True):
        assert result.status == DONE and [e["g_steps"] for e in result.evals] == [3, 6]
        assert "vectorised, 3 seeds in one group" in result.device
        assert (tmp_path / spec.run_id / artifacts.CHECKPOINT).is_file()
        assert Path(result.artifacts["samples"]).is_file()
    # Different seeds, different runs: the members did not collapse into copies of one another.
    assert len({r.evals[-1]["metrics"]["fid"] for r in results}) == 3


def test_a_killed_group_resumes_from_its_members_checkpoints(tmp_path, monkeypatch):
    budget = Budget(batch_size=16, unit="g_steps", g_steps=6, eval_every_g_steps=3)
    specs = [base_spec(False, seed=s, budget=budget) for s in (0, 1)]
    straight = train_group(specs, [tmp_path / f"straight{s.seed}" for s in specs], torch.device("cpu"),
                           get_registry())
    real_save = artifacts.save_checkpoint
    saved = []

    def save_then_die(state, run_dir):
        real_save(state, run_dir)
        saved.append(run_dir)
        if len(saved) == len(specs):  # every member checkpointed at the first mark: the group is killed
            raise KeyboardInterrupt

    monkeypatch.setattr(artifacts, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_group(specs, [tmp_path / f"resumed{s.seed}" for s in specs], torch.device("cpu"), get_registry())
    monkeypatch.setattr(artifacts, "save_checkpoint", real_save)
    resumed = train_group(specs, [tmp_path / f"resumed{s.seed}" for s in specs], torch.device("cpu"), get_registry())
    for a, b in zip(straight, resumed, strict=True):
        assert [e["metrics"] for e in a.evals] == [e["metrics"] for e in b.evals]
        assert [(e["d_loss"], e["g_loss"]) for e in a.evals] == [(e["d_loss"], e["g_loss"]) for e in b.evals]
    # A member's checkpoint is a single run's: the single-run code resumes it too, to the same end.
    alone = train(specs[1], tmp_path / "resumed1", torch.device("cpu"), get_registry())
    assert alone.evals[-1]["metrics"] == straight[1].evals[-1]["metrics"]


class _ExplodeSeed(ganzoo.Stabilizer):
    """Makes D's loss infinite from the third step on, for the run of one seed only."""

    def __init__(self, seed: int = 1):
        self.seed, self.step = seed, 0

    def d_penalty(self, ctx):
        self.step += 1
        if ctx.members is None:  # a single run: the run of the seed that diverges
            return torch.tensor(float("inf") if self.step >= 3 else 0.0)
        bad = torch.zeros(ctx.members)  # in a group of seeds 0, 1, 2 member k is seed k
        if self.step >= 3:
            bad[self.seed] = float("inf")
        return bad


def test_a_diverging_member_is_frozen_and_the_others_go_on(tmp_path):
    from ganzoo.testing import plugin_registry

    class Plugin:
        @ganzoo.hookimpl
        def register_stabilizers(self, register):
            register("explode_seed", _ExplodeSeed, description="inf D loss for one member", vectorized=True,
                     defaults={"seed": 1})

    with plugin_registry({"explode": Plugin()}) as registry:
        budget = Budget(batch_size=16, unit="g_steps", g_steps=60, eval_every_g_steps=30)
        specs = [base_spec(False, seed=s, budget=budget, stack=(ComponentRef("explode_seed", {"seed": 1}),),
                           stack_name="explode_seed") for s in (0, 1, 2)]
        results = train_group(specs, [tmp_path / str(s.seed) for s in specs], torch.device("cpu"), registry)
        alone = train(specs[1], tmp_path / "alone", torch.device("cpu"), registry)
    assert [r.status for r in results] == [DONE, DIVERGED, DONE]
    assert "non-finite loss" in results[1].error
    assert results[0].g_steps == results[2].g_steps == 60 and results[1].g_steps < 60
    # One rule for both: the diverging seed's single run ends where and as its group member ends.
    assert (alone.status, alone.error, alone.g_steps, alone.d_steps, alone.evals) == (
        DIVERGED, results[1].error, results[1].g_steps, results[1].d_steps, results[1].evals)


def test_runs_that_cannot_be_grouped_train_alone_and_say_why():
    registry = get_registry()
    image = base_spec(True)
    timm_d = replace(image, discriminator=ComponentRef("timm", {}))
    assert "timm" in why_not_vectorized(timm_d, registry) and "vectorized=True" in why_not_vectorized(timm_d, registry)
    bf16 = replace(image, compute=replace(image.compute, precision="bf16"))
    assert "bf16" in why_not_vectorized(bf16, registry)
    specs = [replace(image, seed=s) for s in range(5)] + [replace(timm_d, seed=s) for s in range(2)]
    specs += [base_spec(False, seed=0)]
    units = plan_units(specs, registry, max_group=3)
    grouped = [[s.seed for s in u.specs] for u in units if u.vectorized]
    assert grouped == [[0, 1, 2], [3, 4]]  # near-equal groups under the cap
    alone = [u for u in units if not u.vectorized]
    assert len(alone) == 3 and all(u.reason for u in alone)
    assert "one seed" in alone[-1].reason
    # 3 seeds under a cap of 2: a group of 2 and a seed left alone, which says so.
    split = plan_units([replace(image, seed=s) for s in range(3)], registry, max_group=2)
    assert [len(u.specs) for u in split] == [2, 1] and split[0].vectorized and not split[1].vectorized
    assert "left over" in split[1].reason


def test_bench_with_the_vectorized_executor_records_every_seed(tmp_path):
    from ganzoo.core.store import Store
    from ganzoo.run.suite import parse_suite
    from ganzoo.sweep import bench

    suite = parse_suite({
        "name": "vec", "design": "one-factor", "seeds": 3,
        "budget": {"unit": "g_steps", "g_steps": 4, "eval_every_g_steps": 2, "batch_size": 16},
        "eval": {"n_fake": 64, "n_real": 64, "metrics": ["fid"]},
        "datasets": [{"name": "ring8", "baseline": {"generator": "mlp", "discriminator": "mlp", "loss": "ns",
                                                      "stack": "none"},
                      "components": {"loss": ["ns", "hinge"], "stack": ["none"]},
                      "component_hparams": {"generator": {"mlp": {"width": 16, "depth": 2}},
                                            "discriminator": {"mlp": {"width": 16, "pieces": 2}}}}],
    })
    summary = bench(suite, tmp_path, executor="vectorized", jobs=1, progress=False, echo=lambda *_: None)
    assert sorted(summary.results.values()) == [DONE] * 6
    store = Store(tmp_path, readonly=True)
    try:
        rows = list(store.runs("vec"))
    finally:
        store.close()
    assert len(rows) == 6 and all("vectorised, 3 seeds" in row["device"] for row in rows)
    assert FAILED not in {row["status"] for row in rows}
