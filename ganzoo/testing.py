"""Helpers and contract checks for testing plugins; ganzoo's own tests use the same ones.

Registries:
    ``plugin_registry`` installs a registry with extra in-process plugins for the duration of a ``with`` block;
    ``fake_distribution`` makes an entry point visible to ``importlib.metadata`` without pip; ``check_plugin``
    registers a plugin beside the installed zoo and fails with every problem ganzoo would report loading it.

Contracts (each raises ``AssertionError`` naming the component, what was expected and what came instead):
    ``check_generator``, ``check_discriminator`` and ``check_pair`` for networks (shapes, range, each sample's
    logit independent of the others, double backward, a gradient reaching every parameter); ``check_loss``
    for losses; ``check_stabilizer`` trains a stabilizer through ``ganzoo.run.train`` on a tiny built-in zoo and
    checks that it resumes exactly; ``check_resume`` does that for any run spec; ``check_dataset``,
    ``check_feature_extractor`` and ``check_metric`` for the kinds that feed evaluation.

Every check works on a copy of the module it is given, moved off its initial weights by ``perturb``, so
zero-initialised gates cannot hide a broken path and the caller's module is left untouched.
"""

from __future__ import annotations

import contextlib
import copy
import numbers
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .api.conditional import discriminate, generate, is_conditional, num_classes_of
from .api.contracts import Dataset, DataSpec, FeatureExtractor, Features, Generator, Loss, Stabilizer
from .api.hookspecs import hookimpl
from .core import registry as registry_module
from .core.registry import Registry, build_registry, reset_registry
from .core.spec import EvalProtocol

__all__ = [
    "check_dataset",
    "check_discriminator",
    "check_feature_extractor",
    "check_generator",
    "check_loss",
    "check_metric",
    "check_pair",
    "check_plugin",
    "check_resume",
    "check_stabilizer",
    "check_vectorized",
    "fake_distribution",
    "perturb",
    "plugin_registry",
]


# -- registries -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def plugin_registry(plugins: dict[str, object] | None = None, load_entry_points: bool = True) -> Iterator[Registry]:
    """Make ``get_registry()`` return a registry with ``plugins`` added; restore the previous one afterwards.

    Args:
        plugins: plugin name -> module or object with ``@hookimpl`` functions, registered in process.
        load_entry_points: also load the installed plugins (``False``: only ``plugins``).
    """
    previous = registry_module._registry
    registry = build_registry(plugins, load_entry_points=load_entry_points)
    reset_registry(registry)
    try:
        yield registry
    finally:
        reset_registry(previous)


@contextlib.contextmanager
def fake_distribution(root: Path, name: str, module_source: str, entry_points: dict[str, str],
                      version: str = "0.1") -> Iterator[Path]:
    """Write ``<name>-<version>.dist-info`` with ganzoo entry points and a module under ``root``; put it on sys.path.

    Args:
        root: an empty folder (e.g. pytest's ``tmp_path``).
        name: distribution name; the module is ``<name with - replaced by _>.py``.
        module_source: the plugin module's code.
        entry_points: entry-point name -> ``module[:attr]`` in the ``ganzoo`` group.
        version: the distribution's version.
    """
    module = name.replace("-", "_")
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{lines}\n")
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(module, None)


def check_plugin(plugin: object, name: str = "plugin-under-test") -> Registry:
    """Register ``plugin`` (a module or object with ganzoo hooks) as ganzoo would, beside the installed zoo.

    Args:
        plugin: the module or object whose ``@hookimpl`` functions register components.
        name: the plugin's name in error messages.

    Returns:
        The registry, in which the plugin's components can be looked up and built.

    Raises:
        AssertionError: listing every problem with it: a name that clashes with a built-in or another
            installed component, ``defaults`` its factory does not take, a misspelled hook, bad metadata, a
            hook that raises.
    """
    from .api.plugins import PluginInfo, check_unknown_hooks, create_plugin_manager

    manager, infos, errors = create_plugin_manager(core_plugins=registry_module.core_plugins())
    if manager.is_registered(plugin):  # installed: its entry point loaded it already; test it under ``name``
        installed = manager.get_name(plugin)
        manager.unregister(plugin)
        infos = {key: info for key, info in infos.items() if key != installed}
    manager.register(plugin, name=name)
    errors = errors + check_unknown_hooks(manager, {name: PluginInfo(name, "(under test)", "", "")})
    registry = Registry(manager, infos, errors)
    problems = [f"{error.error}" for error in registry.errors if error.plugin == name]
    if problems:
        raise AssertionError(f"plugin {name!r} has {len(problems)} problem(s):\n- " + "\n- ".join(problems))
    return registry


# -- generators and discriminators ------------------------------------------------------------------------


def perturb(module: nn.Module, scale: float = 0.05, seed: int = 1) -> nn.Module:
    """Add ``scale`` times Gaussian noise to every parameter, in place; returns ``module``.

    Zero-initialised gates (attention, residual scales) otherwise hide a path that no gradient reaches.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen).to(p.device, p.dtype))
    return module


def _name(module: object) -> str:
    return type(module).__name__


def _assert_every_parameter_has_gradient(module: nn.Module, what: str) -> None:
    missing = [name for name, p in module.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, (f"{what}: no gradient reaches parameters {missing}; every parameter must take part in "
                         "the output (remove unused layers, or check for a detach() or a zero gate)")


def _real_like(spec: DataSpec, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples spread uniformly over the data's value range."""
    low, high = spec.value_range
    return torch.rand(n, *spec.shape, generator=torch.Generator().manual_seed(seed)) * (high - low) + low


def _labels_for(module: nn.Module, spec: DataSpec, batch: int, what: str, shift: int = 0) -> torch.Tensor | None:
    """Labels ``(i + shift) mod K`` for a conditional module (checking its ``num_classes``), else ``None``."""
    if not is_conditional(module) and not callable(getattr(module, "classify", None)):
        return None
    try:
        k = num_classes_of(module) if is_conditional(module) else module.num_classes
    except TypeError as exc:
        raise AssertionError(f"{what}: {exc}") from None
    assert k == spec.num_classes, (f"{what}: num_classes = {k}, but the data has {spec.num_classes} classes "
                                   "(build it from DataSpec.num_classes)")
    return (torch.arange(batch) + shift) % k


def check_generator(generator: nn.Module, spec: DataSpec, batch: int = 4) -> None:
    """Assert the ``ganzoo.api.contracts.Generator`` contract on ``spec``.

    Checks an int ``latent_dim``; output of shape ``(batch, *spec.shape)``, finite and, for images, inside
    ``spec.value_range``; a gradient from the output reaching every parameter. A class-conditional G
    (``conditional = True``) is called ``G(z, y)``: its ``num_classes`` must be the data's and its output must
    depend on the labels.

    Args:
        generator: the module a generator factory returned for ``spec`` (not modified).
        spec: the data it was built for.
        batch: samples per check.
    """
    what = f"generator {_name(generator)}"
    assert isinstance(generator, Generator) and isinstance(generator.latent_dim, int) and not isinstance(
        generator.latent_dim, bool), f"{what}: needs an int attribute latent_dim (the harness draws z of that size)"
    g = perturb(copy.deepcopy(generator))
    z = torch.randn(batch, g.latent_dim, generator=torch.Generator().manual_seed(0))
    labels = _labels_for(g, spec, batch, what)
    x = generate(g, z, labels)
    if labels is not None:
        with torch.no_grad():
            other = generate(g, z, _labels_for(g, spec, batch, what, shift=1))
        assert not torch.allclose(x.detach(), other), f"{what}: the output does not depend on the labels y"
    expected = (batch, *spec.shape)
    assert x.shape == expected, f"{what}: generator output {tuple(x.shape)}, expected {expected}"
    assert torch.isfinite(x).all(), f"{what}: generator output has NaN or Inf"
    low, high = spec.value_range
    if spec.modality == "image":
        lowest, highest = float(x.detach().min()), float(x.detach().max())
        assert lowest >= low - 1e-5 and highest <= high + 1e-5, (
            f"{what}: generator output in [{lowest:.3g}, {highest:.3g}], outside the data range "
            f"[{low}, {high}] (end images with tanh)")
    assert x.requires_grad, f"{what}: the output does not depend on any parameter"
    (x * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    _assert_every_parameter_has_gradient(g, what)


def check_discriminator(discriminator: nn.Module, spec: DataSpec, batch: int = 4) -> None:
    """Assert the ``ganzoo.api.contracts.Discriminator`` contract on ``spec``, in training mode.

    Checks logits of shape ``(batch,)`` or ``(batch, 1)``, finite; each logit depends on its own sample only
    (what R1, R2 and gradient penalties assume); double backward through the input gradient reaches the
    parameters with finite values; a gradient from the logits reaching every parameter. A class-conditional
    D (``conditional = True``) is called ``D(x, y)`` and its logits must depend on the labels; an AC-GAN D
    (``classify``) must give ``(batch, num_classes)`` class logits, and the gradient check includes them.

    Args:
        discriminator: the module a discriminator factory returned for ``spec`` (not modified).
        spec: the data it was built for.
        batch: samples per check (at least 2, to see the samples' independence).
    """
    what = f"discriminator {_name(discriminator)}"
    assert batch >= 2, "check_discriminator needs batch >= 2 to check that samples do not mix"
    d = perturb(copy.deepcopy(discriminator)).train()
    x = _real_like(spec, batch).requires_grad_(True)
    labels = _labels_for(d, spec, batch, what)
    logits = discriminate(d, x, labels)
    assert logits.shape in ((batch,), (batch, 1)), (
        f"{what}: discriminator output {tuple(logits.shape)}, expected ({batch},) or ({batch}, 1): one logit per "
        "sample")
    assert torch.isfinite(logits).all(), f"{what}: logits have NaN or Inf"
    (grad_x,) = torch.autograd.grad(logits.flatten()[0], x, retain_graph=True)
    assert grad_x[0].abs().sum() > 0, f"{what}: the first logit does not depend on its own sample"
    assert grad_x[1:].abs().sum() == 0, (
        f"{what}: the first sample's logit depends on the other samples of the batch (batch statistics such as "
        "BatchNorm in training mode, or minibatch features); use a per-sample norm (LayerNorm, GroupNorm) so that "
        "R1 and gradient penalties measure what they claim")
    (grad_x,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    grad_x.pow(2).flatten(1).sum(1).mean().backward()  # R1's penalty
    grads = [p.grad for p in d.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads), (
        f"{what}: double backward (a penalty on the input gradient, as R1 computes) reaches no parameter; avoid "
        "operations without a second derivative and no_grad/detach inside forward")
    assert all(torch.isfinite(g).all() for g in grads), f"{what}: double backward gives NaN or Inf gradients"
    d.zero_grad()
    output = discriminate(d, x.detach(), labels).sum()
    if is_conditional(d):
        with torch.no_grad():
            other = discriminate(d, x.detach(), _labels_for(d, spec, batch, what, shift=1))
        assert not torch.allclose(logits.detach().flatten(), other.flatten()), (
            f"{what}: the logits do not depend on the labels y")
    if callable(getattr(d, "classify", None)):
        class_logits = d.classify(x.detach())
        assert class_logits.shape == (batch, spec.num_classes), (
            f"{what}: classify gives {tuple(class_logits.shape)}, expected ({batch}, {spec.num_classes})")
        output = output + class_logits.sum()
    output.backward()
    _assert_every_parameter_has_gradient(d, what)


def check_pair(generator: nn.Module, discriminator: nn.Module, spec: DataSpec, batch: int = 4) -> None:
    """Assert both contracts and that they fit together: D takes G's samples, and G learns through D.

    Args:
        generator: from the generator factory for ``spec`` (not modified).
        discriminator: from the discriminator factory for ``spec`` (not modified).
        spec: the data both were built for.
        batch: samples per check.
    """
    check_generator(generator, spec, batch)
    check_discriminator(discriminator, spec, batch)
    g, d = perturb(copy.deepcopy(generator)), perturb(copy.deepcopy(discriminator))
    assert not is_conditional(d) or is_conditional(g), (
        f"discriminator {_name(d)} is class-conditional but generator {_name(g)} is not: pair it with a conditional G")
    labels = _labels_for(g, spec, batch, f"generator {_name(g)}")
    z = torch.randn(batch, g.latent_dim, generator=torch.Generator().manual_seed(2))
    logits = discriminate(d, generate(g, z, labels), labels)
    assert logits.shape in ((batch,), (batch, 1)), (
        f"discriminator {_name(d)} gives {tuple(logits.shape)} on generator {_name(g)}'s samples, expected "
        f"({batch},)")
    logits.sum().backward()
    _assert_every_parameter_has_gradient(g, f"generator {_name(g)} trained through discriminator {_name(d)}")


# -- losses -----------------------------------------------------------------------------------------------


def _scalar(value: Any, what: str) -> torch.Tensor:
    assert isinstance(value, torch.Tensor) and value.dim() == 0, (
        f"{what} must return a 0-dim tensor (reduce over the batch), got "
        f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
    assert torch.isfinite(value), f"{what} is not finite: {value.item()}"
    return value


def _g_loss(loss: Loss, fake: torch.Tensor, real: torch.Tensor | None, what: str) -> Any:
    """``loss.g_loss`` called as the harness calls it; a loss that needs real logits it was not given is named."""
    try:
        return loss.g_loss(fake, real)
    except (AttributeError, TypeError) as exc:
        if real is not None:
            raise
        raise AssertionError(
            f"{what}.g_loss(fake_logits, real_logits=None) raised {type(exc).__name__}: {exc}. The harness passes "
            "real_logits=None to g_loss unless the loss sets uses_real_logits_in_g = True: a loss whose G side "
            "compares fake with real logits (relativistic losses) must set the class attribute "
            f"uses_real_logits_in_g = True on {what}") from exc


def check_loss(loss: Loss, targets: bool = False, batch: int = 6) -> None:
    """Assert the ``ganzoo.Loss`` contract on logits of shape ``(batch,)``, as the harness passes them.

    Checks that ``d_loss`` and ``g_loss`` return finite scalars, that D's loss depends on both the real and
    the fake logits and G's on the fake ones, that values and gradients stay finite at logits of +-200, that
    ``g_loss`` takes ``real_logits=None`` unless ``uses_real_logits_in_g``, and, with ``targets``, that
    ``real_target`` changes ``d_loss`` (what one-sided label smoothing relies on).

    Args:
        loss: what the loss factory returned.
        targets: the loss carries the tag ``"targets"`` (it honours ``real_target``).
        batch: logits per side.
    """
    what = type(loss).__name__
    assert isinstance(loss, Loss), f"loss {what} must subclass ganzoo.Loss"
    real = torch.linspace(-3.0, 2.0, batch).requires_grad_(True)
    fake = torch.linspace(-2.0, 3.0, batch).flip(0).requires_grad_(True)
    d = _scalar(loss.d_loss(real, fake), f"{what}.d_loss")
    d_real, d_fake = torch.autograd.grad(d, (real, fake))
    assert d_real.abs().sum() > 0 and d_fake.abs().sum() > 0, (
        f"{what}.d_loss must depend on both the real and the fake logits (gradients: real "
        f"{d_real.abs().sum().item():.3g}, fake {d_fake.abs().sum().item():.3g})")
    real_in_g = real if loss.uses_real_logits_in_g else None
    g = _scalar(_g_loss(loss, fake, real_in_g, what), f"{what}.g_loss")
    (g_fake,) = torch.autograd.grad(g, fake)
    assert g_fake.abs().sum() > 0, f"{what}.g_loss must depend on the fake logits"
    extreme = torch.tensor([-200.0, 200.0], requires_grad=True)
    value = loss.d_loss(extreme, extreme.flip(0)) + _g_loss(
        loss, extreme, extreme.flip(0) if loss.uses_real_logits_in_g else None, what)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(extreme.grad).all(), (
        f"{what}: loss or gradient not finite at logits of +-200 (use softplus / logsigmoid, not log(sigmoid))")
    if targets:
        with torch.no_grad():
            smoothed = _scalar(loss.d_loss(real, fake, real_target=0.9), f"{what}.d_loss(real_target=0.9)")
            assert smoothed != loss.d_loss(real, fake), (
                f'{what} carries the tag "targets" but d_loss ignores real_target')


# -- stabilizers and exact resume ---------------------------------------------------------------------------


@contextlib.contextmanager
def _interrupt_after_first_checkpoint() -> Iterator[None]:
    """``artifacts.save_checkpoint`` writes, then raises ``KeyboardInterrupt``: a run killed right after it."""
    from .run import artifacts

    real_save = artifacts.save_checkpoint

    def save_then_die(state, run_dir):
        real_save(state, run_dir)
        raise KeyboardInterrupt("ganzoo.testing: interrupted after the first checkpoint")

    artifacts.save_checkpoint = save_then_die
    try:
        yield
    finally:
        artifacts.save_checkpoint = real_save


def _trajectory(result) -> list[tuple]:
    return [(e["g_steps"], e["d_steps"], e["d_loss"], e["g_loss"], e["metrics"], e.get("stabilizers"))
            for e in result.evals]


def check_resume(spec, registry: Registry, workdir: Path | str | None = None, device: str = "cpu"):
    """Train ``spec`` once straight through, and once interrupted after its first checkpoint then resumed;
    assert both give the same evaluations and the same evaluated generator, bit for bit.

    Args:
        spec: a ``ganzoo.core.spec.RunSpec`` whose budget has at least two evaluations (``eval_every < total``).
        registry: where its components are registered (e.g. from ``plugin_registry``).
        workdir: folder for the two runs (default: a temporary folder, removed afterwards).
        device: where both runs train.

    Returns:
        The uninterrupted run's ``RunResult``.
    """
    from .core.records import DONE
    from .run import artifacts
    from .run.train import run

    assert spec.budget.eval_every < spec.budget.total, (
        f"check_resume needs a checkpoint before the end: budget eval_every ({spec.budget.eval_every}) must be "
        f"below its total ({spec.budget.total} {spec.budget.unit})")
    with contextlib.ExitStack() as stack:
        root = Path(workdir) if workdir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        straight = run(spec, root / "straight", device, registry)
        assert straight.status == DONE, f"{spec.combination}: the uninterrupted run {straight.status}: {straight.error}"
        with _interrupt_after_first_checkpoint():
            try:
                run(spec, root / "resumed", device, registry)
            except KeyboardInterrupt:
                pass
            else:
                raise AssertionError(f"{spec.combination}: the run never checkpointed before its end")
        resumed = run(spec, root / "resumed", device, registry)
        assert resumed.status == DONE, f"{spec.combination}: the resumed run {resumed.status}: {resumed.error}"
        assert _trajectory(resumed) == _trajectory(straight), (
            f"{spec.combination}: resuming from a checkpoint changed the evaluations (state that decides the next "
            "step is missing from the checkpoint: a stabilizer's state_dict, an RNG of its own):\n"
            f"straight: {_trajectory(straight)}\nresumed:  {_trajectory(resumed)}")
        weights = [artifacts.load_checkpoint(root / name / artifacts.CHECKPOINT)[artifacts.EVAL_GENERATOR_KEY]
                   for name in ("straight", "resumed")]
        differ = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
        assert weights[0].keys() == weights[1].keys() and not differ, (
            f"{spec.combination}: the resumed run's evaluated generator differs from the uninterrupted one's in "
            f"{differ}")
    return straight


# -- vectorised groups ----------------------------------------------------------------------------------------

# How far a group member may be from its single run, relative. A group computes its members' products and sums
# batched, a single run one at a time, so each float32 reduction adds its terms in another order, and the CPU's
# kernels choose that order by vendor and instruction set. A sum of n float32 terms in another order differs by at
# most about n * eps relative to the sum of their magnitudes (eps = 2**-23; Higham, Accuracy and Stability of
# Numerical Algorithms, 2002, sec. 4.2); the longest reductions of check_vectorized's small specs are under 2**10
# terms (a conv weight's gradient over 8 samples of 8x8 positions is 512; an MLP layer 32), so 2**10 * 2**-23 =
# 2**-13 (1.2e-4). Measured after 10 G steps of tests/test_vectorized.py's specs: on an AMD EPYC at most 4.1e-8
# over every built-in generator and loss (rasgan 1.1e-8); on an Intel Xeon rasgan's D differed by 3.8e-5, where
# 1e-5 failed. The bound is 3x over the largest, while a real fault (a member drawing another's batch, a hook
# skipped, a wrong seed) moves the weights by 1e-2 or more.
VECTORIZED_RTOL = 2.0 ** -13


def _relative_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """``||a - b|| / ||a||`` over every floating tensor of two state dicts together (one network's weights).

    Over the whole network, not per tensor: a bias that is still near 0 after a few Adam steps has elements whose
    update is ``lr * sign(g)`` of a gradient at rounding level, so its own relative difference says nothing."""
    keys = [k for k, v in a.items() if v.is_floating_point()]
    assert keys == [k for k, v in b.items() if v.is_floating_point()], "the two state dicts hold different tensors"
    diff = sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in keys) ** 0.5
    norm = sum(float(a[k].double().pow(2).sum()) for k in keys) ** 0.5
    return diff / max(norm, 1e-30)


def check_vectorized(spec, registry: Registry | None = None, seeds: tuple[int, ...] = (0, 1),
                     steps: tuple[int, ...] = (1, 10), rtol: float = VECTORIZED_RTOL, workdir: Path | str | None = None,
                     device: str = "cpu") -> None:
    """Train the seeds of ``spec`` as single runs and as one vectorised group; assert each member equals its run.

    For each budget of ``steps`` G steps (one evaluation at the end), member k of the group must match the single
    run of seed k within ``rtol``, relative: its D, its training G and its evaluated G (weights and buffers, over
    each network), its mean D and G losses, every metric and every value its stabilizers report. This is the probe
    behind ``vectorized=True``: run it on a combination using your component before registering it so
    (docs/scaling.md, "Vectorised seeds").

    Args:
        spec: a ``ganzoo.core.spec.RunSpec`` on your component, with a small protocol (it is evaluated once per budget).
        registry: where its components are registered (default: the process registry).
        seeds: the group's seeds (two or more).
        steps: G-step budgets to compare after.
        rtol: the largest relative difference allowed.
        workdir: folder for the runs (default: a temporary folder, removed afterwards).
        device: where both train.
    """
    from dataclasses import replace

    from .core.registry import get_registry
    from .run import artifacts
    from .run.train import RunOptions, train
    from .run.vectorized.group import train_group

    registry = registry or get_registry()
    assert len(seeds) >= 2, "check_vectorized needs two seeds or more to stack"
    device_ = torch.device(device)
    keep = RunOptions(keep_checkpoints=True)
    with contextlib.ExitStack() as stack:
        root = Path(workdir) if workdir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for n in steps:
            budget = replace(spec.budget, unit="g_steps", kimg=None, eval_every_kimg=None, g_steps=n,
                             eval_every_g_steps=None)
            specs = [replace(spec, seed=seed, budget=budget) for seed in seeds]
            singles = [train(s, root / f"{n}-single-{s.seed}", device_, registry, keep) for s in specs]
            members = train_group(specs, [root / f"{n}-group-{s.seed}" for s in specs], device_, registry, keep)
            for s, alone, member in zip(specs, singles, members, strict=True):
                where = f"{spec.combination}, seed {s.seed}, after {n} G steps"
                assert alone.status == member.status, (
                    f"{where}: the single run ended {alone.status}, the group member {member.status}: "
                    f"{member.error or alone.error}")
                states = [artifacts.load_checkpoint(root / f"{n}-{kind}-{s.seed}" / artifacts.CHECKPOINT)
                          for kind in ("single", "group")]
                for key in ("generator", "discriminator", artifacts.EVAL_GENERATOR_KEY):
                    rel = _relative_difference(states[0][key], states[1][key])
                    assert rel <= rtol, f"{where}: the member's {key} differs from its single run's by {rel:.2e}"
                a, b = alone.evals[-1], member.evals[-1]
                values = {"d_loss": (a["d_loss"], b["d_loss"]), "g_loss": (a["g_loss"], b["g_loss"])}
                values.update({k: (v, b["metrics"].get(k)) for k, v in a["metrics"].items()})
                values.update({k: (v, (b.get("stabilizers") or {}).get(k))
                               for k, v in (a.get("stabilizers") or {}).items()})
                for name, (x, y) in values.items():
                    assert y is not None, f"{where}: the group member did not record {name}"
                    if x != x and y != y:  # both NaN (a metric undefined for these samples)
                        continue
                    assert abs(x - y) <= rtol * max(abs(x), abs(y), 1e-12), (
                        f"{where}: {name} is {x!r} in the single run, {y!r} in the group")


class _KitData(Dataset):
    """128 fixed samples of the kit's spec, in [-1, 1]."""

    default_extractor = "kit_flat"

    def __init__(self, shape: tuple = (2,), classes: int = 0):
        shape = tuple(shape)
        self.spec = DataSpec("vector" if len(shape) == 1 else "image", shape, num_classes=classes or None)
        self.data = _real_like(self.spec, 128)
        self.labels = torch.arange(128) % classes if classes else None
        self.name = f"kit_{self.spec.modality}"


class _KitFlat(FeatureExtractor):
    name, feature_dim, weights_hash = "kit_flat", 0, "none"

    def forward(self, x):
        return Features(x.flatten(1)[:, :16].float())  # fewer dimensions than reference samples


class _KitG(nn.Module):
    def __init__(self, spec, latent_dim=4):
        super().__init__()
        self.latent_dim, self.shape = latent_dim, spec.shape
        self.net = nn.Linear(latent_dim, int(torch.tensor(spec.shape).prod()))

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, *self.shape)


class _KitD(nn.Module):
    def __init__(self, spec, width=8):
        super().__init__()
        size = int(torch.tensor(spec.shape).prod())
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x)


class _KitCondG(_KitG):
    """The linear G with a per-class offset of z: ``G(z, y)``."""

    conditional = True

    def __init__(self, spec, latent_dim=4):
        super().__init__(spec, latent_dim)
        self.num_classes = spec.num_classes
        self.embed = nn.Embedding(spec.num_classes, latent_dim)

    def forward(self, z, y):
        return super().forward(z + self.embed(y))


class _KitCondD(_KitD):
    """A projection D ``D(x, y)`` that also has AC-GAN's ``classify(x)``, so one kit runs every label-aware hook."""

    conditional = True

    def __init__(self, spec, width=8):
        super().__init__(spec, width)
        self.num_classes = spec.num_classes
        self.embed = nn.Embedding(spec.num_classes, width)
        self.classifier = nn.Linear(width, spec.num_classes)

    def forward(self, x, y):
        h = self.net[:3](x)
        return self.net[3](h).squeeze(1) + (self.embed(y) * h).sum(1)

    def classify(self, x):
        return self.classifier(self.net[:3](x))


class _KitLogistic(Loss):
    """The non-saturating loss, with a real target (so stabilizers that require ``targets`` can run)."""

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        softplus = nn.functional.softplus
        return (real_target * softplus(-real_logits) + (1 - real_target) * softplus(real_logits)).mean() + \
            softplus(fake_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return nn.functional.softplus(-fake_logits).mean()


class _Kit:
    """A tiny zoo around the stabilizer under test, registered in process only."""

    def __init__(self, factory: Callable[..., Stabilizer], hparams: Mapping[str, Any], loss_tags: tuple[str, ...]):
        self.factory, self.hparams, self.loss_tags = factory, dict(hparams), loss_tags

    @hookimpl
    def register_datasets(self, register):
        register("kit_data", _KitData, description="tiny data of any shape", defaults={"shape": (2,), "classes": 0})

    @hookimpl
    def register_feature_extractors(self, register):
        register("kit_flat", _KitFlat, description="samples as features")

    @hookimpl
    def register_generators(self, register):
        register("kit_g", _KitG, description="linear G", defaults={"latent_dim": 4})
        register("kit_cond_g", _KitCondG, description="linear G(z, y)", defaults={"latent_dim": 4})

    @hookimpl
    def register_discriminators(self, register):
        register("kit_d", _KitD, description="MLP D", defaults={"width": 8})
        register("kit_cond_d", _KitCondD, description="MLP D(x, y) with a class head", defaults={"width": 8})

    @hookimpl
    def register_losses(self, register):
        register("kit_logistic", _KitLogistic, description="NS loss with a real target", tags=self.loss_tags)

    @hookimpl
    def register_stabilizers(self, register):
        register("under_test", self.factory, description="the stabilizer under test", defaults=self.hparams)


def check_stabilizer(factory: Callable[..., Stabilizer], hparams: Mapping[str, Any] | None = None,
                     modality: str = "vector", workdir: Path | str | None = None,
                     loss_tags: tuple[str, ...] = ("targets",), conditional: bool = False):
    """Train a stabilizer through the harness (``ganzoo.run.train``) on a tiny zoo and check that it resumes exactly.

    The run calls every hook point the harness has, in its order, with a linear G, an MLP D and the
    non-saturating loss on 128 samples (``(2,)`` vectors or ``(3, 8, 8)`` images): 4 G steps of batch 8,
    evaluated and checkpointed every 2. Then ``check_resume``: the stabilizer's ``state_dict`` must carry
    everything that decides the next step.

    Args:
        factory: the stabilizer's factory, as registered.
        hparams: its hyperparameters (its registered ``defaults``, updated as you like).
        modality: ``"vector"`` or ``"image"``: the data it is trained on.
        workdir: folder for the runs (default: a temporary folder).
        loss_tags: tags of the kit's loss, for a stabilizer that ``requires`` one (it honours ``real_target``).
        conditional: train a class-conditional pair on data of 3 classes instead: ``G(z, y)`` and a projection
            ``D(x, y)`` that also has an AC-GAN class head, so the stabilizer meets labels at every hook.

    Returns:
        The uninterrupted run's ``RunResult`` (its ``evals`` hold each evaluation).
    """
    from .core.spec import Budget, ComponentRef, Optim, RunSpec

    hparams = dict(hparams or {})
    shape = {"vector": (2,), "image": (3, 8, 8)}[modality]
    registry = build_registry({"ganzoo-testing-kit": _Kit(factory, hparams, loss_tags)}, load_entry_points=False)
    problems = [str(e.error) for e in registry.errors]
    assert not problems, "the stabilizer under test cannot be registered:\n- " + "\n- ".join(problems)
    spec = RunSpec(
        dataset=ComponentRef("kit_data", {"shape": list(shape), **({"classes": 3} if conditional else {})}),
        generator=ComponentRef("kit_cond_g" if conditional else "kit_g", {"latent_dim": 4}),
        discriminator=ComponentRef("kit_cond_d" if conditional else "kit_d", {"width": 8}),
        loss=ComponentRef("kit_logistic", {}),
        stack_name="under_test",
        stack=(ComponentRef("under_test", hparams),),
        seed=0,
        budget=Budget(batch_size=8, unit="g_steps", g_steps=4, eval_every_g_steps=2),
        optim=Optim(),
        protocol=EvalProtocol(n_fake=32, n_real=64, metrics=("pr",), batch_size=32),
    )
    return check_resume(spec, registry, workdir)


# -- datasets, feature extractors and metrics ----------------------------------------------------------------


def _built(target: Any, hparams: Mapping[str, Any] | None, base: type, kind: str) -> tuple[Any, Callable | None, Any]:
    """``(object, factory, component)`` from a registered ``Component``, a factory, or an object already built."""
    from .api.components import Component

    if isinstance(target, base):
        return target, None, None
    component = target if isinstance(target, Component) else None
    factory = component.factory if component else target
    built = factory(**(component.hparams(hparams) if component else dict(hparams or {})))
    what = f"{kind} {component.name if component else getattr(factory, '__name__', factory)}"
    assert isinstance(built, base), (f"{what}: the factory returned {type(built).__name__}; it must return an "
                                     f"instance of a ganzoo.{base.__name__} subclass")
    return built, factory, component


def _global_stream_perturbed(seed: int) -> None:
    """Move torch's global stream, so that a draw from it instead of the given generator shows as a difference."""
    torch.manual_seed(seed)
    torch.rand(seed + 1)


def _draw_twice(draw: Callable[[torch.Generator], Any], seed: int = 0) -> tuple[Any, Any]:
    """``draw`` from two generators seeded alike, with the global stream moved in between."""
    with torch.random.fork_rng(devices=[]):  # the caller's global stream is left as it was
        _global_stream_perturbed(1)
        first = draw(torch.Generator().manual_seed(seed))
        _global_stream_perturbed(2)
        return first, draw(torch.Generator().manual_seed(seed))


def _check_batch(x: Any, spec: DataSpec, n: int, what: str) -> None:
    expected = (n, *spec.shape)
    assert isinstance(x, torch.Tensor) and tuple(x.shape) == expected, (
        f"{what} gives {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}, expected a tensor of "
        f"shape {expected} (n, *spec.shape)")
    assert x.dtype == torch.float32, f"{what} gives {x.dtype}, expected float32"
    assert torch.isfinite(x).all(), f"{what} has NaN or Inf"


def check_dataset(dataset: Any, hparams: Mapping[str, Any] | None = None, n: int = 16,
                  registry: Registry | None = None) -> Dataset:
    """Assert the ``ganzoo.Dataset`` contract; returns the dataset built.

    Checks ``spec`` (a ``DataSpec``, images in ``(-1, 1)``) against ``data`` (float32 ``(N, *spec.shape)``, finite,
    inside ``spec.value_range``) and ``labels`` (int64 ``(N,)`` in ``[0, num_classes)`` exactly when
    ``num_classes`` is set); the factory's ``spec_for(**hparams)`` (what dry runs plan with) against the built
    spec; the declared ``modalities``, ``channels`` and ``resolutions`` against the data; that ``sample`` and
    ``real_samples`` give ``(n, *spec.shape)`` float32 drawn from the generator they are given and nothing else
    (the same twice from one seed, whatever the global torch stream did); that ``sample_labelled`` draws the
    very samples ``sample`` draws from the same generator state, with their labels; ``real_samples_note``
    rewritten when ``real_samples`` is; ``reference``, ``extra_metrics``, ``mode_regions`` and, with
    ``registry``, that ``default_extractor`` is registered.

    Args:
        dataset: ``registry.get("dataset", name)`` (its ``defaults`` updated by ``hparams``), a factory
            (called with ``hparams``), or a ``Dataset`` already built.
        hparams: hyperparameters for the factory.
        n: samples per draw.
        registry: where ``default_extractor`` must be registered (``None``: not checked).
    """
    ds, factory, component = _built(dataset, hparams, Dataset, "dataset")
    what = f"dataset {component.name if component else type(ds).__name__}"
    spec = getattr(ds, "spec", None)
    assert isinstance(spec, DataSpec), f"{what}: set self.spec = ganzoo.DataSpec(...) in __init__, got {spec!r}"
    if spec.modality == "image":
        assert tuple(spec.value_range) == (-1.0, 1.0), (
            f"{what}: images use value_range (-1, 1) (generators end in tanh), got {spec.value_range}")
    data = getattr(ds, "data", None)
    fits = isinstance(data, torch.Tensor) and tuple(data.shape[1:]) == spec.shape and data.ndim > 1 and len(data) > 0
    assert fits, (f"{what}: data must be a tensor of shape (N, *spec.shape) = (N, {', '.join(map(str, spec.shape))}), "
                  f"got {tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__}")
    assert data.dtype == torch.float32, f"{what}: data must be float32, got {data.dtype}"
    assert torch.isfinite(data).all(), f"{what}: data has NaN or Inf"
    low, high = spec.value_range
    lowest, highest = float(data.min()), float(data.max())
    assert lowest >= low - 1e-6 and highest <= high + 1e-6, (
        f"{what}: data lie in [{lowest:.4g}, {highest:.4g}], outside spec.value_range [{low}, {high}]: scale the data "
        "(images: pixels / 127.5 - 1) or declare the range")
    assert len(ds) == len(data), f"{what}: len() is {len(ds)} but data holds {len(data)} samples"
    if spec.num_classes is None:
        assert ds.labels is None, (f"{what}: has labels but spec.num_classes is None; set DataSpec(num_classes=K) so "
                                   "that class-conditional generators can train on it, or leave labels None")
    else:
        labels = ds.labels
        fits = isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and labels.shape == (len(data),)
        assert fits, (
            f"{what}: spec.num_classes is {spec.num_classes}, so labels must be int64 of shape ({len(data)},), got "
            f"{labels if labels is None else (labels.dtype, tuple(labels.shape))}")
        assert 0 <= int(labels.min()) and int(labels.max()) < spec.num_classes, (
            f"{what}: labels in [{int(labels.min())}, {int(labels.max())}], outside [0, {spec.num_classes})")
    if component is not None:
        reason = component.incompatibility(spec)
        assert reason is None, f"{what}: its registration excludes its own data: {reason}; fix modalities/channels"
    spec_for = getattr(factory, "spec_for", None)
    if callable(spec_for):
        planned = spec_for(**(component.hparams(hparams) if component else dict(hparams or {})))
        assert planned == spec, (f"{what}: spec_for(**hparams) gives {planned} but the built dataset's spec is {spec}; "
                                 "dry runs would plan the grid for the wrong data")

    x, again = _draw_twice(lambda g: ds.sample(n, g))
    _check_batch(x, spec, n, f"{what}: sample({n}, generator)")
    assert torch.equal(x, again), (f"{what}: sample gives other samples from the same seed: draw only from the "
                                   "torch.Generator it is given (not the global stream), so runs are reproducible")
    if len(ds) > 1:
        other = ds.sample(n, torch.Generator().manual_seed(1))
        assert not torch.equal(x, other), f"{what}: sample gives the same samples for seeds 0 and 1 (no generator?)"
    if spec.num_classes is not None:
        plain_rng, labelled_rng = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        plain = ds.sample(n, plain_rng)
        x_l, y_l = ds.sample_labelled(n, labelled_rng)
        assert torch.equal(plain, x_l) and torch.equal(plain_rng.get_state(), labelled_rng.get_state()), (
            f"{what}: sample_labelled must draw the very samples sample draws from the same generator state (one "
            "torch.randint of the stream), so a labelled run sees the data an unlabelled one would; a dataset that "
            "overrides sample overrides sample_labelled too")
        assert isinstance(y_l, torch.Tensor) and y_l.dtype == torch.int64 and tuple(y_l.shape) == (n,), (
            f"{what}: sample_labelled's labels must be int64 of shape ({n},)")
        if type(ds).sample is Dataset.sample:  # the default draws data[randint]: the labels must be those rows'
            index = torch.randint(len(ds), (n,), generator=torch.Generator().manual_seed(0))
            assert torch.equal(y_l, ds.labels[index]), f"{what}: sample_labelled's labels are not those of its samples"

    real, again = _draw_twice(lambda g: ds.real_samples(n, g))
    _check_batch(real, spec, n, f"{what}: real_samples({n}, generator)")
    assert torch.equal(real, again), (f"{what}: real_samples gives other samples from the same seed: draw only from "
                                      "the torch.Generator it is given")
    if type(ds).real_samples is not Dataset.real_samples:
        assert ds.real_samples_note != Dataset.real_samples_note, (
            f"{what}: overrides real_samples but not real_samples_note, so the leaderboard's real-data row would say "
            "it resamples the data; describe what real_samples draws")
    if spec.modality == "image":
        assert float(real.min()) >= -1 - 1e-6 and float(real.max()) <= 1 + 1e-6, f"{what}: real_samples outside [-1, 1]"

    reference = ds.reference(n)
    assert tuple(reference.shape) == (min(n, len(ds)), *spec.shape), (
        f"{what}: reference({n}) gives {tuple(reference.shape)}, expected {(min(n, len(ds)), *spec.shape)}")
    if spec.num_classes is not None:
        ref_labels = ds.reference_labels(n)
        assert ref_labels is not None and len(ref_labels) == len(reference), (
            f"{what}: reference_labels({n}) must give the labels of reference({n})")
    extra = ds.extra_metrics(x)
    assert isinstance(extra, Mapping) and all(isinstance(v, numbers.Real) for v in extra.values()), (
        f"{what}: extra_metrics must return a dict of name -> float, got {extra!r}")
    regions = ds.mode_regions()
    if regions is not None:
        centres, radius = regions
        assert isinstance(centres, torch.Tensor) and centres.ndim == 2 and float(radius) > 0, (
            f"{what}: mode_regions must return None or (centres of shape (K, D), a radius > 0)")
    extractor = ds.default_extractor
    assert extractor is None or isinstance(extractor, str), f"{what}: default_extractor must be a name or None"
    if registry is not None and extractor is not None:
        assert ("feature_extractor", extractor) in registry, (
            f'{what}: default_extractor "{extractor}" is not a registered feature extractor (ganzoo list '
            "feature_extractors); register it or set default_extractor = None (the image default is used)")
    return ds


def check_feature_extractor(extractor: Any, spec: DataSpec | None = None, hparams: Mapping[str, Any] | None = None,
                            batch: int = 4) -> FeatureExtractor:
    """Assert the ``ganzoo.FeatureExtractor`` contract on a batch of ``spec``; returns the extractor built.

    Checks ``name`` (the registered one), ``weights_hash`` and a JSON-ready ``protocol()`` (they key the cached
    reference features); that ``forward`` returns ``Features`` whose ``features`` are finite floats of shape
    ``(batch, feature_dim)`` (the dimension it declares, read after the call), whose ``logits`` are
    ``(batch, num_classes)`` exactly when ``num_classes`` is set and whose ``labels`` are left to the evaluator;
    and that, in eval mode, a sample's features do not depend on the batch it is in (the evaluator extracts in
    batches of ``eval.batch_size``) nor change from one call to the next.

    Args:
        extractor: ``registry.get("feature_extractor", name)``, a factory, or a ``FeatureExtractor`` built.
        spec: the data it reads (default for a registered one: example data of its first declared modality).
        hparams: hyperparameters for the factory.
        batch: samples per check (at least 2).
    """
    import json

    ext, _, component = _built(extractor, hparams, FeatureExtractor, "feature extractor")
    what = f"feature extractor {component.name if component else type(ext).__name__}"
    if spec is None:
        from .api.components import example_spec

        assert component is not None, f"{what}: give the DataSpec of the data it reads (spec=...)"
        example = example_spec(component, component.modalities[0])  # labelled; an extractor reads no labels
        spec = DataSpec(example.modality, example.shape)
    assert batch >= 2, "check_feature_extractor needs batch >= 2 to compare a sample alone and in a batch"
    assert isinstance(ext.name, str) and ext.name, f"{what}: set the class attribute name (its registered name)"
    if component is not None:
        assert ext.name == component.name, (f"{what}: name is {ext.name!r} but it is registered as {component.name!r}; "
                                             "the protocol records the name, so they must agree")
    assert isinstance(ext.weights_hash, str) and ext.weights_hash, (
        f"{what}: set weights_hash (a SHA-256 prefix of its weights, \"none\" without weights): it keys the cached "
        "reference features, so new weights must never reuse old ones")
    protocol = ext.protocol()
    assert isinstance(protocol, dict) and {"extractor", "weights_hash"} <= set(protocol), (
        f"{what}: protocol() must return a dict with at least extractor and weights_hash, got {protocol!r}")
    try:
        json.dumps(protocol)
    except TypeError as exc:
        raise AssertionError(f"{what}: protocol() must be JSON-ready (it is stored with every metric): {exc}") from None
    ext = ext.eval()
    x = _real_like(spec, batch)
    with torch.no_grad():
        out, alone, again = ext(x), ext(x[:1]), ext(x)
    assert isinstance(out, Features), f"{what}: forward must return ganzoo.Features, got {type(out).__name__}"
    features = out.features
    assert isinstance(features, torch.Tensor) and features.ndim == 2 and features.shape[0] == batch, (
        f"{what}: features must have shape (batch, feature_dim) = ({batch}, F), got "
        f"{tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__}")
    assert features.is_floating_point() and torch.isfinite(features).all(), f"{what}: features not finite floats"
    assert ext.feature_dim == features.shape[1], (
        f"{what}: declares feature_dim = {ext.feature_dim} but gives {features.shape[1]} features per sample")
    if ext.num_classes is None:
        assert out.logits is None, (f"{what}: gives logits but num_classes is None; set num_classes = K (the logits' "
                                    "classes) so that IS uses them, or return no logits")
    else:
        assert isinstance(out.logits, torch.Tensor) and tuple(out.logits.shape) == (batch, ext.num_classes), (
            f"{what}: num_classes = {ext.num_classes}, so logits must have shape ({batch}, {ext.num_classes}), got "
            f"{None if out.logits is None else tuple(out.logits.shape)}")
        assert torch.isfinite(out.logits).all(), f"{what}: logits have NaN or Inf"
    assert out.labels is None, f"{what}: leave Features.labels None; the evaluator sets them for conditional samples"
    assert torch.allclose(alone.features, features[:1], rtol=1e-4, atol=1e-5), (
        f"{what}: a sample's features change with the batch it is in (batch statistics, such as BatchNorm in "
        "training mode): the evaluator extracts in batches, so the metrics would depend on eval.batch_size")
    assert torch.equal(again.features, features), f"{what}: two calls on the same batch give different features"
    return ext


def _metric_inputs(n: int, dim: int, classes: int, seed: int, shift: float, logits: bool, labels: bool):
    """Features ``N(shift, I)`` of ``dim`` with confident logits of their labels ``i mod classes`` (or none)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    features = torch.randn(n, dim, generator=gen, dtype=torch.float64).float() + shift
    class_logits = 8.0 * nn.functional.one_hot(y, classes).float() if shift == 0 else torch.zeros(n, classes)
    return features, (class_logits if logits else None), (y if labels else None)


def check_metric(metric: Any, n: int = 64, dim: int = 4, classes: int = 3, direction: bool = True) -> None:
    """Assert the ``ganzoo.Metric`` contract on features of ``n`` samples of ``dim``.

    ``compute(real, fake, protocol)`` must run without logits unless ``needs_logits`` and without labels
    unless ``needs_labels`` (it is called so); return a float or a dict of floats holding every declared
    column, finite on well-posed inputs; give the same value twice (draw from a seeded generator of its own);
    leave the shared reference set unchanged; and, with ``direction``, rank samples from the reference's
    distribution (their logits confident and right) better than samples far from it (collapsed logits), in
    the direction ``lower_is_better`` declares.

    Args:
        metric: a ``ganzoo.Metric``, e.g. ``registry.metric(name)``.
        n: samples on each side.
        dim: feature dimension.
        classes: classes of the labels and logits.
        direction: check the declared direction (a metric that does not measure closeness to the data can't).
    """
    from .api.components import COLUMN_PATTERN, Metric
    from .metrics.fid import feature_statistics
    from .metrics.reference import ReferenceSet

    assert isinstance(metric, Metric), f"check_metric takes a ganzoo.Metric, got {type(metric).__name__}"
    what = f"metric {metric.name}"
    protocol = EvalProtocol(n_fake=n, n_real=n, metrics=("fid",), kid_subsets=10, kid_subset_size=n // 2)

    def reference() -> ReferenceSet:
        features, logits, labels = _metric_inputs(n, dim, classes, 0, 0.0, metric.needs_logits, metric.needs_labels)
        mu, sigma = feature_statistics(features)
        return ReferenceSet(features, logits, mu, sigma, {"dataset": "check_metric"}, labels,
                            classes if metric.needs_labels else None)

    def generated(shift: float) -> Features:
        return Features(*_metric_inputs(n, dim, classes, 1, shift, metric.needs_logits, metric.needs_labels))

    def values(fake: Features, real: ReferenceSet) -> dict[str, float]:
        try:
            result = metric.compute(real, fake, protocol)
        except Exception as exc:
            missing = [f"{side}.{attr} is None" for side, attr, flag in (
                ("fake", "logits", metric.needs_logits), ("fake", "labels", metric.needs_labels)) if not flag]
            raise AssertionError(
                f"{what}: compute raised {type(exc).__name__}: {exc}. It was called as the evaluator calls it "
                f"({', '.join(missing) or 'with logits and labels'}): a metric that reads the logits declares "
                "needs_logits=True, one that reads the labels needs_labels=True") from exc
        out = {metric.name: result} if isinstance(result, numbers.Real) else result
        assert isinstance(out, Mapping) and all(isinstance(v, numbers.Real) for v in out.values()), (
            f"{what}: compute must return a float or a dict of floats, got {result!r}")
        bad_keys = [k for k in out if not isinstance(k, str) or not COLUMN_PATTERN.match(k)]
        assert not bad_keys, f"{what}: returned keys {bad_keys} are not lowercase identifiers (they become columns)"
        missing = [c for c in metric.columns if c not in out]
        assert not missing, (f"{what}: returned {sorted(out)} without its declared columns {missing}; return them or "
                             "declare the columns it returns")
        return {k: float(v) for k, v in out.items()}

    real = reference()
    kept = real.features.clone()
    close, far = values(generated(0.0), real), values(generated(10.0), real)
    assert torch.equal(real.features, kept), (f"{what}: compute changed real.features in place; the reference set is "
                                              "cached and shared by every evaluation")
    assert values(generated(0.0), real) == close, (
        f"{what}: two calls on the same features give different values; draw any random numbers from a "
        "torch.Generator of its own with a fixed seed")
    not_finite = [k for k, v in close.items() if v != v or abs(v) == float("inf")]
    assert not not_finite, f"{what}: {not_finite} not finite on {n} well-posed samples of dimension {dim}"
    if direction:
        for column in metric.columns:
            better = close[column] < far[column] if metric.lower_is_better else close[column] > far[column]
            assert better, (
                f"{what}: {column} is {close[column]:.4g} on samples from the reference's distribution and "
                f"{far[column]:.4g} on samples far from it, yet lower_is_better={metric.lower_is_better}: fix the "
                "declared direction or the computation")
