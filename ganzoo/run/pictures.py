"""Pictures of samples: what a run leaves in its folder to look at, and what the HTML report shows of it.

2-D samples are drawn as a scatter over the real data (and each mode's high-quality disc when the dataset
knows its modes); images as a grid (``ganzoo.run.artifacts.save_samples``). Drawn with matplotlib's Agg
backend, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 96


def scatter_2d(fake: np.ndarray, path: Path, real: np.ndarray | None = None, means: np.ndarray | None = None,
               radius: float | None = None, title: str = "") -> Path:
    """Generated 2-D points (red) over real ones (grey), with each mode's high-quality disc when known."""
    fig, ax = plt.subplots(figsize=(2.6, 2.6), dpi=DPI)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=1, color="#bbbbbb", linewidths=0, label="real")
    finite = fake[np.isfinite(fake).all(axis=1)] if len(fake) else fake
    ax.scatter(finite[:, 0], finite[:, 1], s=1.5, color="#d62728", linewidths=0, label="generated")
    if means is not None and radius is not None:
        for mean in means:
            ax.add_patch(plt.Circle(tuple(mean), radius, fill=False, color="#1f77b4", linewidth=0.6))
    if real is not None and len(real):  # frame the data, not a runaway generator
        low, high = real.min(axis=0), real.max(axis=0)
        pad = 0.25 * (high - low).max()
        ax.set_xlim(low[0] - pad, high[0] + pad)
        ax.set_ylim(low[1] - pad, high[1] + pad)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
