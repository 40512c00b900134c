"""Checks of user-given values (suites, CLI options), each failing with the field's name and what it takes.

Used by the spec dataclasses (``Budget``, ``Optim``, ``EvalProtocol``) so that a bad value stops a sweep
before the first run instead of failing inside every run.
"""

from __future__ import annotations

import math
from typing import Any


def number(value: Any, field: str, *, positive: bool = True, allow_zero: bool = False) -> float:
    """A finite real number (not a bool or a string); positive unless told otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{field} must be finite, got {value!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise ValueError(f"{field} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def whole(value: Any, field: str, minimum: int = 1) -> int:
    """An integer (``2.0`` is not accepted: a count written as a float is usually a typo) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be a whole number, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{field} must be at least {minimum}, got {value}")
    return value
