"""The sweep: a suite's grid trained run by run and recorded, resumably.

``driver`` (``bench``: grid -> store -> executor -> store -> report; the SQLite store is ``ganzoo.core.store``,
written by the driver only), ``executors`` (inline and worker processes), ``ray`` (Ray tasks), ``slurm`` (SLURM
job arrays), ``estimate`` (``--dry-run``'s timed probes), ``versions`` (which versions trained what).
"""

from .driver import BenchSummary, bench
from .estimate import estimate

__all__ = ["BenchSummary", "bench", "estimate"]
