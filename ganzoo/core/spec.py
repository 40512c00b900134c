"""Run specs: one fully resolved training run, identified by a hash of its canonical form.

Two specs with the same content have the same id, so a sweep is idempotent (a finished run is never
trained again) and any change (a hyperparameter, a default inside a plugin, the budget) is a new run.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..system import checks
from .records import short_hash


@dataclass(frozen=True)
class ComponentRef:
    """A component by name with its fully resolved hyperparameters (defaults included)."""

    name: str
    hparams: dict[str, Any] = field(default_factory=dict)

DEFAULT_METRICS = ("fid", "is", "kid", "pr", "dc")  # what a protocol computes unless told; all: Registry.metric_names()


@dataclass
class EvalProtocol:
    """How a run is evaluated: which extractor, how many samples, which metrics.

    Metric names are checked where a registry is in hand (``Registry.check_metrics``: the grid, the
    ``Evaluator``), because a plugin may register more; here only their form is.
    """

    extractor: str = "auto"
    extractor_hparams: dict[str, Any] = field(default_factory=dict)
    n_fake: int = 2000
    n_real: int | None = None
    metrics: tuple[str, ...] = DEFAULT_METRICS
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 500
    # A statistics file (``ganzoo stats``) to evaluate against instead of the dataset's reference samples.
    reference: str | None = None

    def __post_init__(self):
        if isinstance(self.metrics, str) or not self.metrics or not all(isinstance(m, str) for m in self.metrics):
            raise ValueError(f'eval.metrics must be a non-empty list such as ["fid", "kid"], got {self.metrics!r}')
        # Nearest-neighbour metrics need more samples than neighbours (k = 5 for density/coverage).
        checks.whole(self.n_fake, "eval.n_fake", minimum=6 if {"pr", "dc"} & set(self.metrics) else 2)
        if self.n_real is not None:
            checks.whole(self.n_real, "eval.n_real", minimum=2)
        checks.whole(self.kid_subsets, "eval.kid_subsets")
        checks.whole(self.kid_subset_size, "eval.kid_subset_size", minimum=2)
        checks.whole(self.batch_size, "eval.batch_size")
        if self.reference is not None and (not isinstance(self.reference, str) or not self.reference.endswith(".npz")):
            raise ValueError(f'eval.reference must be the path of a statistics file written by ganzoo stats, such as '
                             f'"cifar10-train.npz", got {self.reference!r}')
        if not isinstance(self.extractor, str) or not self.extractor:
            raise ValueError(f'eval.extractor must be a registered extractor\'s name or "auto", got {self.extractor!r}')


BUDGET_UNITS = ("kimg", "g_steps")


@dataclass(frozen=True)
class Budget:
    """What every combination of a sweep gets, counted in one unit, and an optional wall-clock cap.

    In a suite's ``[budget]`` table (or a dataset's): ``kimg = 24`` and ``eval_every_kimg = 8`` (the default
    unit), or ``unit = "g_steps"``, ``g_steps = 2000`` and ``eval_every_g_steps = 500``.

    Args:
        kimg: unit ``"kimg"``: thousands of real images shown to D. Every combination sees the same data, so a
            stack with 5 D steps per G step makes a fifth of the G steps.
        batch_size: real (and generated) samples per D step.
        eval_every_kimg: unit ``"kimg"``: evaluate (and checkpoint) every this many kimg; ``None``: at the end.
        max_seconds: stop a run after this many seconds (it is recorded as capped).
        unit: ``"kimg"`` or ``"g_steps"``; both images and G steps are recorded with every evaluation.
        g_steps: unit ``"g_steps"``: G steps to train, however many D steps (and images) each one takes.
            ``kimg`` is not used and must be left out.
        eval_every_g_steps: unit ``"g_steps"``: evaluate every this many G steps; ``None``: at the end.
    """

    kimg: float | None = None
    batch_size: int = 64
    eval_every_kimg: float | None = None  # None: evaluate only at the end
    max_seconds: float | None = None
    unit: str = "kimg"
    g_steps: int | None = None
    eval_every_g_steps: int | None = None

    # Added after run ids existed: left out of the canonical form at their defaults, so old ids stay.
    LATER_FIELDS = {"unit": "kimg", "g_steps": None, "eval_every_g_steps": None}

    def __post_init__(self):
        if self.unit not in BUDGET_UNITS:
            raise ValueError(f'budget.unit must be one of {BUDGET_UNITS}, got "{self.unit}"')
        checks.whole(self.batch_size, "budget.batch_size")
        for key in ("kimg", "eval_every_kimg", "g_steps", "eval_every_g_steps", "max_seconds"):
            if getattr(self, key) is not None:
                checks.number(getattr(self, key), f"budget.{key}")
        amount, every = ("kimg", "eval_every_kimg") if self.unit == "kimg" else ("g_steps", "eval_every_g_steps")
        unused = [k for k in ("kimg", "eval_every_kimg", "g_steps", "eval_every_g_steps")
                  if k not in (amount, every) and getattr(self, k) is not None]
        if unused:
            raise ValueError(f'budget {unused} not used with unit = "{self.unit}": remove them, or set '
                             f"{amount} and {every} instead")
        if getattr(self, amount) is None:  # the values given were checked above (finite, > 0)
            raise ValueError(f"budget.{amount} must be positive, got None")
        if self.unit == "g_steps" and not all(isinstance(getattr(self, k), (int, type(None))) for k in (amount, every)):
            raise ValueError(f"budget.g_steps and eval_every_g_steps count steps: give whole numbers, "
                             f"got {self.g_steps} and {self.eval_every_g_steps}")

    @property
    def total(self) -> int:
        """The budget in its unit: real images shown to D, or G steps."""
        return int(self.kimg * 1000) if self.unit == "kimg" else self.g_steps

    @property
    def eval_every(self) -> int:
        """Evaluation interval in the budget's unit (the whole budget when none is set)."""
        if self.unit == "kimg":
            return int((self.eval_every_kimg or self.kimg) * 1000)
        return self.eval_every_g_steps or self.g_steps

    def spent(self, images: int, g_steps: int) -> int:
        """How much of the budget a run that showed ``images`` to D in ``g_steps`` G steps has used."""
        return images if self.unit == "kimg" else g_steps

    def canonical(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in self.LATER_FIELDS or v != self.LATER_FIELDS[k]}


@dataclass(frozen=True)
class Optim:
    """Adam settings shared by every run of a suite unless a stabilizer overrides them (TTUR, D steps)."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1

    KEYS = ("lr_g", "lr_d", "betas", "d_steps")

    def __post_init__(self):
        checks.number(self.lr_g, "optim.lr_g")
        checks.number(self.lr_d, "optim.lr_d")
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"optim.betas must be two numbers such as [0.5, 0.999], got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            if not 0 <= checks.number(beta, f"optim.betas[{i}]", positive=False) < 1:
                raise ValueError(f"optim.betas[{i}] must be in [0, 1), got {beta!r}")
        checks.whole(self.d_steps, "optim.d_steps")


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Compute:
    """How training computes. It changes the numbers, so it is part of a run's spec, id and protocol record.

    In a suite's ``[compute]`` table (or a dataset's), or ``ganzoo bench --precision bf16 --channels-last --compile``.
    Leaderboards stay fp32 by default; runs under other settings rank in tables of their own.

    Args:
        precision: ``"fp32"``, or ``"bf16"``: G's and D's forward passes and the losses under ``torch.autocast``
            in bfloat16 (weights, optimiser states and evaluation stay float32).
        channels_last: image data, G and D in the NHWC memory format (faster convolutions on GPUs).
        compile: ``torch.compile`` G and D (``nn.Module.compile``: the checkpoint's weight names do not change).
    """

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f'compute.precision must be one of {PRECISIONS}, got "{self.precision}"')
        for key in ("channels_last", "compile"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"compute.{key} must be true or false, got {getattr(self, key)!r}")

    @property
    def is_default(self) -> bool:
        return self == Compute()


@dataclass(frozen=True)
class RunSpec:
    """One training run: dataset, G, D, loss, stabilizer stack, seed, budget, optimiser and protocol."""

    dataset: ComponentRef
    generator: ComponentRef
    discriminator: ComponentRef
    loss: ComponentRef
    stack_name: str
    stack: tuple[ComponentRef, ...]
    seed: int
    budget: Budget
    optim: Optim
    protocol: EvalProtocol
    compute: Compute = Compute()

    def canonical(self) -> dict[str, Any]:
        """JSON-ready, key-sorted form: the input of ``run_id`` and what the store keeps."""
        data = asdict(self)
        if self.compute.is_default:  # added after run ids existed: left out at its default, so old ids stay
            del data["compute"]
        data["budget"] = self.budget.canonical()
        data["protocol"]["metrics"] = list(data["protocol"]["metrics"])
        if data["protocol"]["reference"] is None:  # added after run ids existed: left out at its default
            del data["protocol"]["reference"]
        return json.loads(json.dumps(data, sort_keys=True, default=_jsonable))

    @functools.cached_property
    def run_id(self) -> str:
        """Computed once per spec (a sweep asks for it many times; 10,000 specs' canonical forms take seconds)."""
        return run_id_of(self.canonical())

    @functools.cached_property
    def experiment_key(self) -> str:
        """What the run computes, less its seed: runs with equal keys are seeds of one experiment (a leaderboard
        row, a vectorised group). The ``experiment`` column of ``runs.csv``."""
        return experiment_key_of(self.canonical())

    @property
    def combination(self) -> str:
        return f"{self.generator.name}/{self.discriminator.name}/{self.loss.name}/{self.stack_name}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        def ref(d):
            return ComponentRef(d["name"], dict(d.get("hparams", {})))

        protocol = dict(data["protocol"])
        protocol["metrics"] = tuple(protocol["metrics"])
        optim = dict(data["optim"])
        optim["betas"] = tuple(optim["betas"])
        return cls(
            dataset=ref(data["dataset"]),
            generator=ref(data["generator"]),
            discriminator=ref(data["discriminator"]),
            loss=ref(data["loss"]),
            stack_name=data["stack_name"],
            stack=tuple(ref(s) for s in data["stack"]),
            seed=int(data["seed"]),
            budget=Budget(**data["budget"]),
            optim=Optim(**optim),
            protocol=EvalProtocol(**protocol),
            compute=Compute(**data.get("compute", {})),
        )


def run_id_of(canonical: dict[str, Any]) -> str:
    """The id of the spec whose canonical form is ``canonical``: its hash, so equal content, equal id."""
    return short_hash(canonical, 16, separators=(",", ":"))


SEED_FIELDS = ("seed",)  # what differs between the seeds of one experiment


def experiment_key_of(canonical: dict[str, Any]) -> str:
    """``RunSpec.experiment_key`` of the spec whose canonical form is ``canonical``."""
    return short_hash({k: v for k, v in canonical.items() if k not in SEED_FIELDS}, 12)


def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"Hyperparameter value {value!r} of type {type(value).__name__} is not JSON-serialisable; "
                    "use numbers, strings, booleans, lists or tables in suites and defaults")
