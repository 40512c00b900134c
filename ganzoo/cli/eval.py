"""``ganzoo eval REAL FAKE``: metrics between two sets of samples, each a folder, a dataset or a checkpoint; REAL
may also be a statistics file. ``ganzoo stats REAL --out FILE.npz`` writes one (pytorch-fid's layout), measuring
REAL as ``eval`` does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch

from ..api.contracts import Dataset
from ..core.records import Evaluation, ProtocolRecord
from ..core.registry import get_registry
from ..core.spec import DEFAULT_METRICS, EvalProtocol
from ..metrics.evaluate import (
    Evaluator,
    RealSamples,
    build_extractor,
    default_extractor,
    reference_set,
    resolve_extractor_name,
)
from ..metrics.images import iter_image_batches, list_images
from ..metrics.stats_file import SUFFIX as STATS_SUFFIX
from ..metrics.stats_file import ReferenceStats, read_stats, write_stats
from .common import check_device, user_errors

CHECKPOINT_SAMPLES = 10_000  # generated samples drawn from a checkpoint unless -n says otherwise


@dataclass
class Side:
    """One side of the comparison: where its samples come from and how many there are."""

    label: str
    kind: str  # "folder", "dataset", "checkpoint" or "statistics" (REAL only: a ReferenceStats as source)
    source: Any  # tensor, batch iterator or sample function, as ganzoo.metrics.extract_features takes
    n: int
    dataset: Dataset | None = None


def _checkpoint_side(label: str, path: Path, n: int | None, device: torch.device, seed: int) -> Side:
    """The checkpoint's evaluated generator (the EMA copy when there is one), sampled as training evaluates it."""
    from ..run.build import latent_sampler, load_generator

    try:
        generator, _ = load_generator(path, device)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=label) from exc
    return Side(label, "checkpoint", latent_sampler(generator.eval(), seed, device), n or CHECKPOINT_SAMPLES)


def resolve_side(label: str, text: str, n: int | None, device: torch.device, batch_size: int, seed: int) -> Side:
    """Interpret ``text`` as a folder of images, a statistics file, a checkpoint file or a registered dataset name."""
    path = Path(text)
    if path.suffix == STATS_SUFFIX:
        if label != "REAL":
            raise click.BadParameter(f"{text} is a statistics file: only REAL can be one (FAKE's features are "
                                     "extracted from samples)", param_hint=label)
        stats = read_stats(path)
        return Side(label, "statistics", stats, stats.n)
    if path.is_dir():
        count = len(list_images(path)[:n])
        return Side(label, "folder", iter_image_batches(path, batch_size, n), count)
    if path.is_file():
        return _checkpoint_side(label, path, n, device, seed)
    registry = get_registry()
    if ("dataset", text) in registry:
        dataset = registry.get("dataset", text).build().to(device)
        data = dataset.reference(n)
        return Side(label, "dataset", data, int(data.shape[0]), dataset)
    raise click.BadParameter(f'"{text}" is neither a folder of images, a checkpoint file nor a registered dataset. '
                             "See: ganzoo list datasets", param_hint=label)


def _default_extractor(sides: list[Side]) -> str:
    """A statistics file's own extractor; a registered dataset's; else (folders, checkpoints, files without ganzoo's
    metadata, which pytorch-fid's Inception made) the registered default for images."""
    registry = get_registry()
    for side in sides:
        if side.kind == "statistics" and side.source.annotated:
            return side.source.extractor
    for side in sides:
        if side.dataset is not None:
            return resolve_extractor_name("auto", side.dataset, registry)
    return default_extractor("image", registry)


def _real_side(side: Side) -> Dataset | RealSamples | ReferenceStats:
    """What the evaluator compares with: a registered dataset (its reference set), a statistics file, or the
    samples themselves."""
    if side.kind == "statistics":
        return side.source
    return side.dataset if side.dataset is not None else RealSamples(side.source, side.n, f"({side.kind})")


def evaluate_sides(real: Side, fake: Side, protocol: EvalProtocol,
                   device: torch.device) -> tuple[dict[str, float], ProtocolRecord]:
    """``fake`` against ``real`` through the ``Evaluator`` that runs use, so equal protocols give equal records.

    Returns:
        The metrics and the protocol record.
    """
    evaluator = Evaluator(_real_side(real), protocol, device)
    results = evaluator(fake.source)
    return results, evaluator.record()


def protocol_json(record: ProtocolRecord) -> dict[str, Any]:
    """The record as ``--format json`` prints it: as stored, with its fingerprint."""
    return {**record.to_dict(), "fingerprint": record.fingerprint}


def _protocol_line(record: ProtocolRecord) -> str:
    return ", ".join(f"{k}={v}" for k, v in record.content().items())


def _print_table(results: dict[str, float], protocol: ProtocolRecord) -> None:
    from tabulate import tabulate

    rows = [(key, f"{value:.6g}") for key, value in results.items()]
    click.echo(tabulate(rows, headers=("metric", "value")))
    click.echo(f"\nprotocol: {_protocol_line(protocol)}")


def evaluate_run_checkpoint(path: Path, device: torch.device
                            ) -> tuple[dict[str, float], ProtocolRecord, Evaluation | None]:
    """A run checkpoint re-evaluated exactly as its run evaluated it: its dataset, protocol and latents.

    Returns the metrics, the protocol record and the run's last recorded evaluation (``None``: it recorded none).
    """
    from ..metrics.evaluate import Evaluator
    from ..run.artifacts import load_checkpoint, recorded_evals
    from ..run.build import load_generator
    from ..run.evaluate import evaluate_generator
    from ..run.train import protocol_of

    registry = get_registry()
    state = load_checkpoint(path, device)
    generator, spec = load_generator(path, device, registry, state=state)
    dataset = registry.get("dataset", spec.dataset.name).build(**spec.dataset.hparams).to(device)
    evaluator = Evaluator(dataset, spec.protocol, device, registry=registry)
    metrics = evaluate_generator(generator, evaluator, dataset, spec, device)
    evals = recorded_evals(state)
    return metrics, protocol_of(evaluator, spec), Evaluation.from_dict(evals[-1]) if evals else None


def _run_checkpoint(text: str) -> Path | None:
    """``text`` as a run checkpoint: the file itself or a run folder holding one."""
    from ..run.artifacts import CHECKPOINT

    path = Path(text)
    if path.is_dir() and (path / CHECKPOINT).is_file():
        return path / CHECKPOINT
    return path if path.is_file() else None


def _print_run_table(results: dict[str, float], recorded: Evaluation | None, protocol: ProtocolRecord) -> None:
    from tabulate import tabulate

    logged = recorded.metrics if recorded else {}
    rows = [(key, f"{value:.6g}", f"{logged[key]:.6g}" if key in logged else "–") for key, value in results.items()]
    where = f"recorded at {recorded.g_steps:,} G steps" if recorded else "recorded"
    click.echo(tabulate(rows, headers=("metric", "value", where)))
    click.echo(f"\nprotocol {protocol.fingerprint}: {_protocol_line(protocol)}")


@click.command("eval")
@click.argument("real")
@click.argument("fake", required=False)
@click.option("--extractor", default="auto", show_default=True,
              help="Feature extractor; auto: a dataset's own, else the one tagged default:image (the TF Inception).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Local weight file of the extractor (default: cache or download, checked by SHA-256).")
@click.option("--metrics", default=",".join(DEFAULT_METRICS), show_default=True,
              help="Comma-separated names of registered metrics (the built-in ones and any plugin's: "
                   "ganzoo list metrics). Against a statistics file, those that need no real features (fid, is).")
@click.option("-n", "n", type=click.IntRange(min=2), default=None,
              help=f"Samples per side (default: every image; {CHECKPOINT_SAMPLES} from a checkpoint).")
@click.option("--n-real", type=click.IntRange(min=2), default=None,
              help="Samples of REAL, when they differ from FAKE's (a run's eval.n_real); default: -n.")
@click.option("--kid-subsets", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--kid-subset-size", type=click.IntRange(min=2), default=1000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--device", default=None, callback=lambda ctx, param, value: value and check_device(ctx, param, value),
              help="auto (default: cuda when available, else cpu), cpu or cuda[:N].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latents drawn from a checkpoint.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def eval_command(real, fake, extractor, weights, metrics, n, n_real, kid_subsets, kid_subset_size, batch_size, device,
                 seed, fmt):
    """Metrics between REAL and FAKE: each a folder of images, a registered dataset or a run's checkpoint.

    REAL may be a statistics file (.npz: ganzoo stats's, or pytorch-fid's mu and sigma): FID and IS only, and a
    file whose extractor or protocol differs from this evaluation's is refused.

    IS is computed on FAKE. Every number is printed with its protocol (extractor, weight hash, resize, sample
    counts, reference) and its fingerprint, built as a run builds its own: a run's dataset and checkpoint
    evaluated under the run's protocol give the run's fingerprint.

    With one argument, a run's checkpoint (or run folder): the run's own dataset, protocol and evaluation
    latents, printed beside the values the run recorded (equal on the device it trained on).
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if fake is None:
        checkpoint = _run_checkpoint(real)
        if checkpoint is None:
            raise click.BadParameter(f"{real} is neither a run checkpoint nor a run folder; give REAL and FAKE to "
                                     "compare two sets of samples", param_hint="REAL")
        with user_errors():
            results, protocol, recorded = evaluate_run_checkpoint(checkpoint, device)
        if fmt == "json":
            click.echo(json.dumps({**results, "protocol": protocol_json(protocol),
                                   "recorded": recorded.metrics if recorded else {}}, indent=2))
        else:
            _print_run_table(results, recorded, protocol)
        return
    with user_errors():
        statistics = Path(real).suffix == STATS_SUFFIX
        if statistics and click.get_current_context().get_parameter_source("metrics").name == "DEFAULT":
            metrics = ",".join(m.name for m in get_registry().metrics()
                               if m.name in DEFAULT_METRICS and not m.needs_real_features)
        wanted = get_registry().check_metrics((m.strip() for m in metrics.split(",") if m.strip()), "--metrics")
        n_real = n_real if statistics else n_real or n  # a file holds its own sample count; -n counts FAKE's
        sides = [resolve_side("REAL", real, n_real, device, batch_size, seed),
                 resolve_side("FAKE", fake, n, device, batch_size, seed)]
        protocol = EvalProtocol(extractor=_default_extractor(sides) if extractor == "auto" else extractor,
                                extractor_hparams={"weights": weights} if weights else {}, n_fake=sides[1].n,
                                n_real=n_real, metrics=wanted, kid_subsets=kid_subsets,
                                kid_subset_size=kid_subset_size, batch_size=batch_size)
        results, record = evaluate_sides(sides[0], sides[1], protocol, device)
    if fmt == "json":
        click.echo(json.dumps({**results, "protocol": protocol_json(record)}, indent=2))
    else:
        _print_table(results, record)


@click.command("stats")
@click.argument("real")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=f"The statistics file to write (its name ends in {STATS_SUFFIX}).")
@click.option("--extractor", default="auto", show_default=True,
              help="Feature extractor; auto: a dataset's own, else the one tagged default:image (the TF Inception).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Local weight file of the extractor (default: cache or download, checked by SHA-256).")
@click.option("-n", "n", type=click.IntRange(min=2), default=None,
              help="Samples to measure (default: a dataset's whole reference set, every image of a folder; "
                   f"{CHECKPOINT_SAMPLES} from a checkpoint).")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--device", default=None, callback=lambda ctx, param, value: value and check_device(ctx, param, value),
              help="auto (default: cuda when available, else cpu), cpu or cuda[:N].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latents drawn from a checkpoint.")
def stats_command(real, out, extractor, weights, n, batch_size, device, seed):
    """Write the mean and covariance of REAL's features to --out, as TTUR and pytorch-fid do (keys mu, sigma).

    REAL is a folder of images, a registered dataset or a checkpoint, measured as ganzoo eval measures it. The
    file also records the extractor, its weights' hash, the resize and the samples measured, so that
    `ganzoo eval FILE FAKE` and a suite's eval.reference can refuse it under another protocol. Only FID (and IS,
    which reads the generated side) can be computed against it: KID, precision/recall and density/coverage need
    the real features themselves.
    """
    if out.suffix != STATS_SUFFIX:
        raise click.BadParameter(f"{out}: the file's name must end in {STATS_SUFFIX}", param_hint="--out")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with user_errors():
        side = resolve_side("REAL", real, n, device, batch_size, seed)
        if side.kind == "statistics":
            raise ValueError(f"{real} is already a statistics file; give the images, dataset or checkpoint it measured")
        name = _default_extractor([side]) if extractor == "auto" else extractor
        model, hparams = build_extractor(name, {"weights": weights} if weights else {}, device)
        reference = reference_set(_real_side(side), model, n, batch_size, device)
        hparams = {k: v for k, v in hparams.items() if k != "weights"}  # a path: its hash is in the key
        write_stats(out, reference.mu, reference.sigma, name, hparams, reference.key)
    key = reference.key
    click.echo(f"wrote {out}: mu {reference.mu.shape}, sigma {reference.sigma.shape} of {key['n']} samples "
               f"({key['dataset']}, content {key['content']}), extractor {name}, "
               + ", ".join(f"{k}={v}" for k, v in key.items() if k not in ("dataset", "split", "n", "content",
                                                                          "extractor", "computed_on")))
