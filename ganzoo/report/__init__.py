"""Reporting: the store read into pandas, seed statistics, stability, leaderboards (Markdown, CSV, HTML).

Layers, each a module: ``runs`` (store -> one row per run), ``stability`` (each run's curve judged),
``stats`` (statistics over seeds), ``leaderboard`` (rows = experiments, tested against the baseline),
``effects`` (crossed designs: each component across every run it appears in),
``tables`` (the cells a reader sees), ``markdown`` and ``html`` (the written reports), ``plots`` and
``samples`` (the HTML report's figures), ``compare`` (``ganzoo compare``), ``findings`` (each table's statistics
in words), ``power`` (``ganzoo plan``).
"""

from .effects import effects
from .findings import findings, findings_of_markdown
from .leaderboard import leaderboard, marginals
from .markdown import to_markdown, write_report
from .runs import judgements_of, load_runs, read_runs

__all__ = ["effects", "findings", "findings_of_markdown", "judgements_of", "leaderboard", "load_runs", "marginals",
           "read_runs", "to_markdown", "write_report"]
