"""The sweep: a suite's grid trained run by run and recorded, resumably.

``driver`` (``bench``: grid -> store -> executor -> store -> report; the SQLite store is ``ganzoo.core.store``,
written by the driver only), ``executors`` (inline and worker processes), ``ray`` (Ray tasks), ``slurm`` (SLURM
job arrays), ``estimate`` (``--dry-run``'s timed probes), ``versions`` (which versions trained what).

``bench`` and ``BenchSummary`` are imported on first use: importing this package (for ``versions`` or
``real_data``, say) must not load the training loop, which a reader of results never runs.
"""

from .estimate import estimate

__all__ = ["BenchSummary", "bench", "estimate"]


def __getattr__(name: str):
    if name in ("bench", "BenchSummary"):
        from .driver import BenchSummary, bench

        globals().update(bench=bench, BenchSummary=BenchSummary)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
