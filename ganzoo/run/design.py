"""Fractional designs: a seeded, balanced sample of the cells of a crossed grid.

A full design trains every cell of the cross product of each axis's levels; a fraction trains ``n`` of them,
chosen so that each run informs one level of every axis at once:

- every level of an axis appears in the same number of cells, give or take one (main effects are balanced);
- the pairs of levels of any two axes appear as evenly as ``n`` allows, so that with enough cells every pair
  appears (the sum over axis pairs of the squared pair counts is minimised: the E(s²) criterion of
  supersaturated designs, Booth & Cox 1962; an orthogonal array, where every pair appears equally often, is
  its minimum when one exists);
- no cell twice, and only cells whose components can run together.

The search starts from balanced columns (each axis's levels repeated ``n / levels`` times, shuffled) and only
ever swaps two cells' levels on one axis, which keeps every column's counts: balance holds by construction and
the search spends its moves on pairs, duplicates and incompatible cells. Where the compatible cells cannot
carry a balanced sample (an axis whose level pairs with only a few others), the cells that remain incompatible
are replaced by the compatible cells that unbalance the counts least, and ``balance`` says by how much.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Collection, Sequence

Cell = tuple[str, ...]

# An incompatible or repeated cell costs more than any arrangement of pairs can.
_INVALID = 10**9


def pairwise_size(levels: Sequence[Sequence[str]]) -> int:
    """The fewest cells in which every pair of levels of the two largest axes can appear: the default size."""
    sizes = sorted((len(axis) for axis in levels), reverse=True)
    return sizes[0] * sizes[1] if len(sizes) > 1 else sizes[0]


def fractional_cells(levels: Sequence[Sequence[str]], compatible: Collection[Cell], n: int,
                     seed: int | str) -> list[Cell]:
    """``n`` distinct cells of ``compatible`` (tuples over the axes of ``levels``), balanced as the module says.

    The same ``seed`` gives the same cells. ``n`` at least the number of compatible cells gives them all.
    """
    allowed = set(compatible)
    order = {cell: i for i, cell in enumerate(itertools.product(*levels))}
    if n >= len(allowed):
        return sorted(allowed, key=order.__getitem__)
    rng = random.Random(f"ganzoo-fraction/{seed}")
    columns = [_balanced_column(list(axis), n, rng) for axis in levels]
    search = _SwapSearch([tuple(column[i] for column in columns) for i in range(n)], allowed)
    search.run(rng, patience=20 * n * len(levels), steps=400 * n * len(levels))
    cells = _repair(search.rows, allowed, levels, rng)
    return sorted(cells, key=order.__getitem__)


def balance(cells: Sequence[Cell], levels: Sequence[Sequence[str]]) -> list[tuple[int, int]]:
    """Per axis, the fewest and the most cells any one of its levels appears in."""
    out = []
    for axis, names in enumerate(levels):
        counts = Counter(cell[axis] for cell in cells)
        out.append((min(counts[name] for name in names), max(counts[name] for name in names)))
    return out


def pairs_covered(cells: Sequence[Cell], compatible: Collection[Cell], n_axes: int) -> tuple[int, int]:
    """How many (axis, level, axis, level) pairs appear in ``cells``, of those the compatible cells hold."""
    def pairs(of):
        return {(a, cell[a], b, cell[b]) for cell in of for a, b in itertools.combinations(range(n_axes), 2)}

    return len(pairs(cells)), len(pairs(compatible))


def _balanced_column(names: list[str], n: int, rng: random.Random) -> list[str]:
    """``n`` entries, each name ``n // len(names)`` or one more times (which ones get one more: drawn)."""
    rng.shuffle(names)
    column = [names[i % len(names)] for i in range(n)]
    rng.shuffle(column)
    return column


class _SwapSearch:
    """Rows whose cost (invalid rows, then the squared pair counts) falls by swapping levels within a column."""

    def __init__(self, rows: list[Cell], allowed: set[Cell]):
        self.rows = [list(row) for row in rows]
        self.allowed = allowed
        self.n_axes = len(rows[0])
        self.pair_counts: Counter = Counter()
        self.row_counts: Counter = Counter()
        self.cost = 0
        for row in self.rows:
            self.cost += self._add(row, +1)

    def _add(self, row: list[str], sign: int) -> int:
        """Add (+1) or remove (-1) one row; returns the change in cost."""
        delta = 0
        for a, b in itertools.combinations(range(self.n_axes), 2):
            key = (a, row[a], b, row[b])
            count = self.pair_counts[key]
            delta += 2 * count + 1 if sign > 0 else -(2 * count - 1)
            self.pair_counts[key] = count + sign
        cell = tuple(row)
        copies = self.row_counts[cell]
        if sign > 0:
            delta += _INVALID * ((cell not in self.allowed) + (copies >= 1))
        else:
            delta -= _INVALID * ((cell not in self.allowed) + (copies >= 2))
        self.row_counts[cell] = copies + sign
        return delta

    def _swap(self, i: int, j: int, axis: int) -> int:
        delta = self._add(self.rows[i], -1) + self._add(self.rows[j], -1)
        self.rows[i][axis], self.rows[j][axis] = self.rows[j][axis], self.rows[i][axis]
        return delta + self._add(self.rows[i], +1) + self._add(self.rows[j], +1)

    def run(self, rng: random.Random, patience: int, steps: int) -> None:
        """Random swaps, kept when they do not raise the cost (sideways moves let it leave plateaus), until
        ``patience`` steps in a row lowered nothing or ``steps`` ran (on grids of 50-100 cells the cost stops
        falling within about 3 x cells x axes steps)."""
        n, since_better = len(self.rows), 0
        for _ in range(steps):
            since_better += 1
            if since_better > patience:
                return
            axis, i, j = rng.randrange(self.n_axes), rng.randrange(n), rng.randrange(n)
            if self.rows[i][axis] == self.rows[j][axis]:
                continue
            delta = self._swap(i, j, axis)
            if delta > 0:
                self._swap(i, j, axis)  # undo
            else:
                self.cost += delta
                since_better = 0 if delta < 0 else since_better


def _repair(rows: list[list[str]], allowed: set[Cell], levels: Sequence[Sequence[str]],
            rng: random.Random) -> list[Cell]:
    """Drop incompatible and repeated rows; refill with the compatible cells that keep the counts most even."""
    cells: list[Cell] = []
    for row in map(tuple, rows):
        if row in allowed and row not in cells:
            cells.append(row)
    missing = len(rows) - len(cells)
    if not missing:
        return cells
    counts = [Counter(cell[a] for cell in cells) for a in range(len(levels))]
    spare = sorted(allowed - set(cells))
    rng.shuffle(spare)
    for _ in range(missing):
        best = min(spare, key=lambda cell: sum(counts[a][name] for a, name in enumerate(cell)))
        spare.remove(best)
        cells.append(best)
        for a, name in enumerate(best):
            counts[a][name] += 1
    return cells
