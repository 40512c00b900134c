"""The leaderboard's real-data row: real samples through each (dataset, protocol) of a grid, once.

Each dataset chooses what its real row is (``Dataset.real_samples``: fresh draws where it can, else the
data resampled). A failure here is a warning: it never costs the runs' results.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch

from ..api.conditional import CONDITIONAL_TAG, evaluation_labels
from ..core.records import ReferenceRow
from ..core.registry import Registry
from ..core.spec import RunSpec
from ..core.store import Store
from ..run.build import resolve_device
from ..run.evaluate import evaluate_samples
from ..run.grid import Grid
from ..run.train import protocol_of

REAL_DATA_SEED = 2_000_003  # the real-data row draws its samples from its own stream


def record_real_data(grid: Grid, store: Store, suite: str, registry: Registry, device: str = "auto",
                     echo: Callable[[str], None] = print) -> None:
    """Evaluate real data through each (dataset, protocol) of the grid once: the leaderboard's ceiling row.

    Each dataset chooses what its real row is (``Dataset.real_samples``: fresh draws where it can,
    else the data resampled). Where the grid trains a class-conditional generator on a labelled dataset, the
    row also carries the conditional metrics of real samples drawn for their labels (``_labelled_metrics``).
    A failure here is a warning: it never costs the runs' results.
    """
    known = {row.key for row in store.references(suite).values()}
    firsts: dict[str, RunSpec] = {}
    labelled: set[str] = set()
    for spec in grid.specs:
        canonical = spec.canonical()
        key = json.dumps([spec.dataset.name, spec.dataset.hparams, canonical["protocol"]]
                         + ([] if spec.compute.is_default else [canonical["compute"]]), sort_keys=True)
        firsts.setdefault(key, spec)
        if CONDITIONAL_TAG in registry.get("generator", spec.generator.name).tags:
            labelled.add(key)
    for key, spec in firsts.items():
        stored_key = key + " +labels" if key in labelled else key  # a row without them is recomputed with them
        if stored_key in known:
            continue
        try:
            metrics, note, fingerprint = real_data_metrics(spec, registry, resolve_device(device),
                                                           labelled=key in labelled)
        except Exception as exc:  # the reference row is a courtesy; the sweep's results stand without it
            echo(f"warning: no real-data row for {spec.dataset.name}: {type(exc).__name__}: {exc}")
            continue
        store.set_reference(suite, spec.dataset.name, fingerprint,
                            ReferenceRow(key=stored_key, metrics=metrics, note=note, n=spec.protocol.n_fake))


def real_data_metrics(spec: RunSpec, registry: Registry, device: torch.device,
                      labelled: bool = False) -> tuple[dict, str, str]:
    """(metrics, what the real samples are, protocol fingerprint) of real data under ``spec``'s protocol.

    ``labelled``: add the conditional metrics (``cond_accuracy``, ``intra_fid``) of real samples drawn for
    their labels, when the dataset has labels.
    """
    from ..metrics.evaluate import Evaluator

    dataset = registry.get("dataset", spec.dataset.name).build(**spec.dataset.hparams).to(device)
    evaluator = Evaluator(dataset, spec.protocol, device, registry=registry)
    rng = torch.Generator(device=device).manual_seed(REAL_DATA_SEED)
    metrics = evaluate_samples(lambda n: dataset.real_samples(n, rng), evaluator, dataset)
    if labelled and dataset.labels is not None and dataset.spec.num_classes:
        # Only what the labels add: the unlabelled row's own values stay those of its own draws.
        added = _labelled_metrics(dataset, evaluator, device)
        metrics.update({name: value for name, value in added.items() if name not in metrics})
    # Filed under the fingerprint of the runs it stands beside (theirs includes how they were trained).
    return metrics, dataset.real_samples_note, protocol_of(evaluator, spec).fingerprint


def _labelled_metrics(dataset, evaluator, device: torch.device) -> dict[str, float]:
    """The evaluator's metrics, those that need labels included, of real samples labelled as a conditional G's are.

    Sample ``i`` is a real sample of class ``i mod K``, as a conditional generator's evaluation sample ``i`` is
    generated for that class, drawn uniformly with replacement from the data of its class (whatever
    ``Dataset.real_samples`` draws for the unlabelled values), from a stream of its own. So ``cond_accuracy``
    is the extractor's accuracy on the data and ``intra_fid`` the per-class FID of the data against itself at
    the runs' sample counts: the ceiling and the floor a conditional row is read against.
    """
    n, num_classes = evaluator.protocol.n_fake, int(dataset.spec.num_classes)
    labels = evaluation_labels(n, num_classes, device=device)
    rng = torch.Generator(device=device).manual_seed(REAL_DATA_SEED + 1)
    by_class = [torch.nonzero(dataset.labels == c).flatten().to(device) for c in range(num_classes)]
    empty = [c for c, members in enumerate(by_class) if len(members) == 0]
    if empty:
        raise ValueError(f"{type(dataset).__name__} has no samples of class(es) {empty} of its {num_classes}")
    index = torch.empty(n, dtype=torch.long, device=device)
    for c, members in enumerate(by_class):
        where = labels == c
        index[where] = members[torch.randint(len(members), (int(where.sum()),), generator=rng, device=device)]
    samples = dataset.data[index.to(dataset.data.device)]  # the evaluator takes a tensor and batches it itself
    return {name: float(value) for name, value in evaluator(samples, labels=labels).items()}
