"""A tiny, self-contained plugin for testing the core (grid, bench, store, resume) without the zoo.

Importable in process (``plugin_registry({"testzoo": testzoo})``) and, for subprocess tests, through a
fake distribution whose entry point names this module.
"""

import contextlib
import os
from pathlib import Path

import torch
from torch import nn

import ganzoo
from ganzoo import hookimpl


@contextlib.contextmanager
def visible_to_new_interpreters(root: Path):
    """New interpreters (Ray workers, SLURM jobs, a driver run as a subprocess) load this test zoo through an
    entry point: a fake distribution in ``root``, found through PYTHONPATH. The environment is restored after."""
    from ganzoo.testing import fake_distribution

    saved = {name: os.environ.get(name) for name in ("GANZOO_PLUGINS", "PYTHONPATH")}
    os.environ["GANZOO_PLUGINS"] = "ganzoo,testzoo"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), str(Path(__file__).parent),
                                                *filter(None, [saved["PYTHONPATH"]])])
    try:
        with fake_distribution(root, "testzoo-plugin", "from testzoo import *\n", {"testzoo": "testzoo_plugin"}):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Blobs(ganzoo.Dataset):
    """Two Gaussian blobs in 2-D."""

    default_extractor = "flat"

    def __init__(self, n: int = 512, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        centres = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
        self.data = centres[torch.randint(2, (n,), generator=g)] + 0.1 * torch.randn(n, 2, generator=g)
        self.spec = ganzoo.DataSpec("vector", (2,), value_range=(-2.0, 2.0))

    def extra_metrics(self, samples):
        return {"modes": float((samples[:, 0] > 0).any()) + float((samples[:, 0] < 0).any())}


class Pixels(ganzoo.Dataset):
    """Random (3, 4, 4) images in [-1, 1]: enough for image-only stabilizers to train through the harness."""

    default_extractor = "flat"

    def __init__(self, n: int = 64):
        self.data = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
        self.spec = ganzoo.DataSpec("image", (3, 4, 4))


class Flat(ganzoo.FeatureExtractor):
    name = "flat"
    feature_dim = 2
    weights_hash = "none"

    def forward(self, x):
        return ganzoo.Features(x.flatten(1).double())


class LinearG(nn.Module):
    def __init__(self, spec, latent_dim=2, width=16):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(), nn.Linear(width, spec.shape[0]))

    def forward(self, z):
        return self.net(z)


class PixelG(nn.Module):
    def __init__(self, spec, latent_dim=4):
        super().__init__()
        self.latent_dim, self.shape = latent_dim, spec.shape
        self.net = nn.Linear(latent_dim, spec.shape[0] * spec.shape[1] * spec.shape[2])

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, *self.shape)


class PixelD(nn.Module):
    def __init__(self, spec, width=8):
        super().__init__()
        size = spec.shape[0] * spec.shape[1] * spec.shape[2]
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x)


class SmallD(nn.Module):
    def __init__(self, spec, width=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(spec.shape[0], width), nn.LeakyReLU(0.2), nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x)


class Logistic(ganzoo.Loss):
    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        return nn.functional.softplus(-real_logits).mean() + nn.functional.softplus(fake_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        return nn.functional.softplus(-fake_logits).mean()


class Explode(ganzoo.Stabilizer):
    """Makes the D loss infinite after ``after`` G steps: a divergence on demand."""

    def __init__(self, after=3):
        self.after = after

    def d_penalty(self, ctx):
        return torch.tensor(float("inf")) if ctx.step >= self.after else None


class Crash(ganzoo.Stabilizer):
    def wrap_discriminator(self, discriminator):
        raise RuntimeError("crash stabilizer: deliberate failure")


class ImageOnly(ganzoo.Stabilizer):
    pass


class KillWorker(ganzoo.Stabilizer):
    """SIGKILLs the worker process training it, as the out-of-memory killer would (never the test process)."""

    def wrap_discriminator(self, discriminator):
        import multiprocessing
        import os
        import signal

        if multiprocessing.parent_process() is None:
            raise RuntimeError("kill_worker only kills worker processes")
        os.kill(os.getpid(), signal.SIGKILL)


class KillWorkerAt(ganzoo.Stabilizer):
    """SIGKILLs the process training it after G step ``step`` (never ``driver_pid``, the test's own process).

    With a ``marker`` path it kills only while the file does not exist, and creates it: the first try dies,
    the retry lives. Without one it kills every try.
    """

    def __init__(self, step=3, marker="", driver_pid=0):
        self.step, self.marker, self.driver_pid = step, marker, driver_pid

    def after_g_step(self, ctx):
        import os
        import signal
        from pathlib import Path

        if ctx.step + 1 != self.step or (self.marker and Path(self.marker).exists()):
            return
        if os.getpid() == self.driver_pid:
            raise RuntimeError("kill_worker_at only kills worker processes")
        if self.marker:
            Path(self.marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)


class SignalAt(ganzoo.Stabilizer):
    """Sends signals to the process training it after given G steps, each once (never to ``driver_pid``, the
    test's own process). ``at``: "3:SIGUSR2 5:SIGKILL"; a signal is sent while ``<marker>.<step>`` does not
    exist, and creates it.

    Every G step it trains is appended to ``trace`` (one number a line): a run resumed from its checkpoint at
    G step 2 traces 1 2 3 3 4..., one started again from zero 1 2 3 1 2...
    """

    def __init__(self, at="3:SIGKILL", marker="", trace="", driver_pid=0):
        self.at = {int(step): name for step, name in (item.split(":") for item in at.split())}
        self.marker, self.trace, self.driver_pid = marker, trace, driver_pid

    def after_g_step(self, ctx):
        import os
        import signal
        from pathlib import Path

        step = ctx.step + 1
        if self.trace:
            with open(self.trace, "a") as trace:
                trace.write(f"{step}\n")
        marker = Path(f"{self.marker}.{step}")
        if step not in self.at or marker.exists():
            return
        if os.getpid() == self.driver_pid:
            raise RuntimeError("signal_at only signals worker processes")
        marker.touch()
        os.kill(os.getpid(), getattr(signal, self.at[step]))


@hookimpl
def register_datasets(register):
    register("blobs", Blobs, description="Two 2-D blobs", defaults={"n": 512, "seed": 0}, modalities=("vector",))
    register("pixels", Pixels, description="Random 4x4 RGB images", defaults={"n": 64}, modalities=("image",))


@hookimpl
def register_feature_extractors(register):
    register("flat", Flat, description="Samples as features", modalities=("vector",))


@hookimpl
def register_generators(register):
    register("lin", LinearG, description="Small MLP G", reference="test", defaults={"latent_dim": 2, "width": 16},
             modalities=("vector",))
    register("pixel_g", PixelG, description="Linear G for images", reference="test", defaults={"latent_dim": 4},
             modalities=("image",))


class Gate(ganzoo.Stabilizer):
    """Holds its run after G step ``step`` until the file ``path`` exists, so a test can kill the run's worker, node
    or sweep while it waits (its checkpoint of the step before written). It draws no random numbers and changes no
    tensor: a run's numbers are the same whether it waited or not."""

    def __init__(self, step=3, path=""):
        self.step, self.path = step, path

    def after_g_step(self, ctx):
        import time
        from pathlib import Path

        while ctx.step + 1 == self.step and not Path(self.path).exists():
            time.sleep(0.05)


@hookimpl
def register_discriminators(register):
    register("small", SmallD, description="Small MLP D", reference="test", defaults={"width": 16},
             modalities=("vector",))
    register("small_wide", SmallD, description="Wider MLP D", reference="test", defaults={"width": 32},
             modalities=("vector",))
    register("pixel_d", PixelD, description="MLP D for images", reference="test", defaults={"width": 8},
             modalities=("image",))


@hookimpl
def register_losses(register):
    register("logistic", Logistic, description="NS loss", reference="test", tags=("targets",))


@hookimpl
def register_stabilizers(register):
    register("explode", Explode, description="Diverges on purpose", reference="test", defaults={"after": 3})
    register("crash", Crash, description="Fails on purpose", reference="test")
    register("image_only", ImageOnly, description="Images only", reference="test", modalities=("image",))
    register("kill_worker", KillWorker, description="Kills its worker process", reference="test")
    register("kill_worker_at", KillWorkerAt, description="Kills its worker after a G step", reference="test",
             defaults={"step": 3, "marker": "", "driver_pid": 0})
    register("gate", Gate, description="Waits for a file after a G step", reference="test",
             defaults={"step": 3, "path": ""})
    register("signal_at", SignalAt, description="Signals its process after a G step, once", reference="test",
             defaults={"at": "3:SIGKILL", "marker": "", "trace": "", "driver_pid": 0})
    register("needs_hinge", ImageOnly, description="Requires a hinge loss", reference="test",
             requires={"loss": "hinge-like"})


def suite_dict(**overrides):
    """A one-factor suite over the test zoo; small enough to train in about a second per run."""
    raw = {
        "name": "tiny",
        "design": "one-factor",
        "seeds": 2,
        "auto_stacks": True,
        "budget": {"kimg": 1.024, "batch_size": 64, "eval_every_kimg": 0.512},
        "eval": {"n_fake": 256, "n_real": 256, "metrics": ["fid", "pr", "dc"]},
        "datasets": [{"name": "blobs", "baseline": {"generator": "lin", "discriminator": "small",
                                                    "loss": "logistic", "stack": "none"}}],
        "components": {"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small*"],
                       "stack": ["none", "explode", "crash", "image_only", "needs_hinge"]},
    }
    raw.update(overrides)
    return raw


def tiny_spec(dataset="blobs", stack=(), loss="logistic", seed=0, **budget):
    """A hand-made RunSpec on the test zoo: ``stack`` is a tuple of ComponentRefs, ``budget`` Budget fields."""
    from ganzoo.core.spec import Budget, ComponentRef, Optim, RunSpec

    image = dataset == "pixels"
    return RunSpec(
        dataset=ComponentRef(dataset, {"n": 64} if image else {"n": 512, "seed": 0}),
        generator=ComponentRef("pixel_g", {"latent_dim": 4}) if image else ComponentRef("lin", {"latent_dim": 2,
                                                                                               "width": 16}),
        discriminator=ComponentRef("pixel_d", {"width": 8}) if image else ComponentRef("small", {"width": 16}),
        loss=ComponentRef(loss, {}),
        stack_name="+".join(ref.name for ref in stack) or "none",
        stack=tuple(stack),
        seed=seed,
        budget=Budget(**{"batch_size": 8, "unit": "g_steps", "g_steps": 2, **budget}),
        optim=Optim(),
        protocol=ganzoo.EvalProtocol(n_fake=32, n_real=64, metrics=("pr",), batch_size=32),
    )
