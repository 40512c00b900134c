"""Run specs: one fully resolved training run, identified by a hash of its canonical form.

Two specs with the same content have the same id, so a sweep is idempotent (a finished run is never
trained again) and any change (a hyperparameter, a default inside a plugin, the budget) is a new run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .contracts import EvalProtocol


@dataclass(frozen=True)
class ComponentRef:
    """A component by name with its fully resolved hyperparameters (defaults included)."""

    name: str
    hparams: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    """What every combination of a sweep gets: real images shown to D, an optional wall-clock cap."""

    kimg: float
    batch_size: int = 64
    eval_every_kimg: float | None = None  # None: evaluate only at the end
    max_seconds: float | None = None

    def __post_init__(self):
        if self.kimg <= 0:
            raise ValueError(f"budget.kimg must be positive, got {self.kimg}")
        if self.batch_size < 1:
            raise ValueError(f"budget.batch_size must be at least 1, got {self.batch_size}")
        if self.eval_every_kimg is not None and self.eval_every_kimg <= 0:
            raise ValueError(f"budget.eval_every_kimg must be positive, got {self.eval_every_kimg}")


@dataclass(frozen=True)
class Optim:
    """Adam settings shared by every run of a suite unless a stabilizer overrides them (TTUR, D steps)."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1

    KEYS = ("lr_g", "lr_d", "betas", "d_steps")


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

    def canonical(self) -> dict[str, Any]:
        """JSON-ready, key-sorted form: the input of ``run_id`` and what the store keeps."""
        data = asdict(self)
        data["protocol"]["metrics"] = list(data["protocol"]["metrics"])
        return json.loads(json.dumps(data, sort_keys=True, default=_jsonable))

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

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
        )


def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"Hyperparameter value {value!r} of type {type(value).__name__} is not JSON-serialisable; "
                    "use numbers, strings, booleans, lists or tables in suites and defaults")
