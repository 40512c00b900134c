"""The report's figures, drawn with matplotlib (Agg: no display needed) and saved as PNG.

Each function draws one figure from plain numbers and writes it to ``path``; none reads the store, so
the HTML report decides what to plot and these only decide how it looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..run.pictures import DPI, save_figure, scatter_2d  # noqa: E402,F401  (scatter_2d: the run's pictures, drawn here too)

SEED_COLOURS = plt.get_cmap("tab10").colors


def learning_curves(panels: Sequence[tuple[str, Mapping[int, tuple[Sequence[float], Sequence[float]]]]],
                    x_label: str, path: Path) -> Path:
    """One panel per metric, one line per seed: ``panels`` = [(metric label, {seed: (x, y)})].

    Up to ``len(SEED_COLOURS)`` seeds each get a colour and a legend entry. Beyond that colours repeat and a
    legend could not tell seeds apart (and laying out hundreds of entries took seconds per figure), so the
    lines are drawn alike and translucent, and the legend says how many there are.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 2.6), dpi=DPI, squeeze=False)
    many = max((len(by_seed) for _, by_seed in panels), default=0) > len(SEED_COLOURS)
    for ax, (label, by_seed) in zip(axes[0], panels, strict=True):
        if many:
            _seed_bundle(ax, by_seed)
        else:
            for i, (seed, (x, y)) in enumerate(sorted(by_seed.items())):
                ax.plot(x, y, marker="o", markersize=2.5, linewidth=1.2, color=SEED_COLOURS[i % 10],
                        label=f"seed {seed}")
        ax.set_xlabel(x_label)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if many:
        axes[0][-1].legend(fontsize=7, frameon=False, loc="upper right")
    elif any(by_seed for _, by_seed in panels):
        axes[0][-1].legend(fontsize=7, frameon=False)
    return save_figure(fig, path)


def _seed_bundle(ax, by_seed: Mapping[int, tuple[Sequence[float], Sequence[float]]]) -> None:
    """Every seed's line in one translucent colour, drawn as one collection; one legend entry for all."""
    from matplotlib.collections import LineCollection

    lines = [np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)]) for x, y in by_seed.values()]
    if not lines:
        return
    ax.add_collection(LineCollection(lines, colors=SEED_COLOURS[0], linewidths=0.8,
                                     alpha=max(0.05, min(0.6, 5 / len(lines))), label=f"{len(lines)} seeds"))
    ax.autoscale_view()


def seed_spread(rows: Sequence[tuple[str, Sequence[float]]], metric_label: str, path: Path,
                reference: float | None = None) -> Path:
    """A box per row over its seeds' final values, every seed drawn as a point on top (rows top to bottom).

    ``reference``: the real data's value through the same protocol, drawn as a dashed line.
    """
    height = 0.9 + 0.32 * max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(6.4, height), dpi=DPI)
    positions = np.arange(len(rows))[::-1]  # first row (rank 1) at the top
    values = [np.asarray([v for v in vals if np.isfinite(v)], dtype=float) for _, vals in rows]
    drawn = [(p, v) for p, v in zip(positions, values, strict=True) if len(v)]
    if drawn:
        ax.boxplot([v for _, v in drawn], positions=[p for p, _ in drawn], orientation="horizontal", widths=0.55,
                   showfliers=False, medianprops={"color": "black"}, boxprops={"color": "#888888"},
                   whiskerprops={"color": "#888888"}, capprops={"color": "#888888"})
    rng = np.random.default_rng(0)  # the jitter only separates points; it is fixed so reports are reproducible
    for position, v in drawn:
        ax.scatter(v, position + rng.uniform(-0.15, 0.15, len(v)), s=14, color="#d62728", zorder=3)
    if reference is not None and np.isfinite(reference):
        ax.axvline(reference, color="#1f77b4", linestyle="--", linewidth=1, label="real data")
        ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set_yticks(positions, [label for label, _ in rows], fontsize=7)
    ax.set_xlabel(f"{metric_label} (final, one point per seed)")
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def performance_profiles(panels: Sequence[tuple[str, Mapping[str, Sequence[float]]]], metric_label: str,
                         lower_is_better: bool, log: bool, path: Path) -> Path:
    """A crossed design's performance profiles: one panel per axis, one step line per component, each the share of
    its runs whose headline is at least as good as x (the per-run ECDF, rliable's score distribution).

    ``panels`` = [(axis, {component: per-run headline values})]; ``log`` puts x on a log scale (FID).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 2.6), dpi=DPI, squeeze=False)
    for ax, (axis, by_component) in zip(axes[0], panels, strict=True):
        for i, (component, values) in enumerate(by_component.items()):
            finite = np.sort(np.asarray([v for v in values if np.isfinite(v)], dtype=float))
            if not len(finite):
                continue
            share = (np.arange(1, len(finite) + 1) if lower_is_better else np.arange(len(finite), 0, -1)) / len(finite)
            ax.step(finite, share, where="post" if lower_is_better else "pre", color=SEED_COLOURS[i % 10],
                    label=f"{component} ({len(finite)})")
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labelled minor ticks overlap
        ax.set_title(axis, fontsize=9)
        ax.set_xlabel(metric_label)
        ax.set_ylabel(f"share of runs {'≤' if lower_is_better else '≥'} x")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    return save_figure(fig, path)
