"""The leaderboard's real-data row: real samples through each (dataset, protocol) of a grid, once.

Each dataset chooses what its real row is (``Dataset.real_samples``: fresh draws where it can, else the
data resampled). A failure here is a warning: it never costs the runs' results.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch

from ..build import resolve_device
from ..grid import Grid
from ..registry import Registry
from ..spec import RunSpec
from ..train import evaluate_samples, protocol_of
from .store import Store

REAL_DATA_SEED = 2_000_003  # the real-data row draws its samples from its own stream


def record_real_data(grid: Grid, store: Store, suite: str, registry: Registry, device: str = "auto",
                     echo: Callable[[str], None] = print) -> None:
    """Evaluate real data through each (dataset, protocol) of the grid once: the leaderboard's ceiling row.

    Each dataset chooses what its real row is (``Dataset.real_samples``: fresh draws where it can,
    else the data resampled). A failure here is a warning: it never costs the runs' results.
    """
    known = {r.get("key") for r in store.references(suite).values()}
    seen = set()
    for spec in grid.specs:
        canonical = spec.canonical()
        key = json.dumps([spec.dataset.name, spec.dataset.hparams, canonical["protocol"]]
                         + ([] if spec.compute.is_default else [canonical["compute"]]), sort_keys=True)
        if key in known or key in seen:
            continue
        seen.add(key)
        try:
            metrics, note, fingerprint = real_data_metrics(spec, registry, resolve_device(device))
        except Exception as exc:  # the reference row is a courtesy; the sweep's results stand without it
            echo(f"warning: no real-data row for {spec.dataset.name}: {type(exc).__name__}: {exc}")
            continue
        store.set_reference(suite, spec.dataset.name, fingerprint,
                            {"key": key, "metrics": metrics, "note": note, "n": spec.protocol.n_fake})


def real_data_metrics(spec: RunSpec, registry: Registry, device: torch.device) -> tuple[dict, str, str]:
    """(metrics, what the real samples are, protocol fingerprint) of real data under ``spec``'s protocol."""
    from ..metrics import Evaluator

    dataset = registry.get("dataset", spec.dataset.name).build(**spec.dataset.hparams).to(device)
    evaluator = Evaluator(dataset, spec.protocol, device, registry=registry)
    rng = torch.Generator(device=device).manual_seed(REAL_DATA_SEED)
    metrics = evaluate_samples(lambda n: dataset.real_samples(n, rng), evaluator, dataset)
    # Filed under the fingerprint of the runs it stands beside (theirs includes how they were trained).
    return metrics, dataset.real_samples_note, protocol_of(evaluator, spec).fingerprint


