"""README's zoo table, read once for the tests that hold the code to it (docs claims, the default bench)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ZOO_KINDS = ("generator", "discriminator", "loss", "stabilizer")
ZOO_ROWS = re.findall(r"^\| (`\w+`(?:, `\w+`)*) \| ([a-z, ]+) \| (.+?) \| ([\w, -]+) \|$",
                      (ROOT / "README.md").read_text().split("## The zoo", 1)[1].split("\n## ", 1)[0], re.M)


def zoo_table() -> dict[tuple[str, str], tuple[str, list[str]]]:
    """README's zoo table as {(kind, name): (reference cell, suites that train it)}."""
    table = {}
    for names, kinds, reference, suites in ZOO_ROWS:
        for name in re.findall(r"`(\w+)`", names):
            for kind in kinds.split(", "):
                table[(kind, name)] = (reference, [suite.strip() for suite in suites.split(",")])
    return table


def components_trained(canonicals: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """The (kind, name) of every generator, discriminator, loss and stabilizer in these specs' canonical forms
    (``RunSpec.canonical()``, as the store keeps them): what a grid or a sweep trains, in the zoo table's terms."""
    return {pair for spec in canonicals for pair in [("generator", spec["generator"]["name"]),
                                                     ("discriminator", spec["discriminator"]["name"]),
                                                     ("loss", spec["loss"]["name"]),
                                                     *(("stabilizer", ref["name"]) for ref in spec["stack"])]}
