"""Size limits: the one home of the bounds on what a user may ask for, so a typo (``seeds = 100000000``,
``grid = "1e-4:1e-3:100000000"``) is refused with a message instead of eating the machine's memory.

A seed must be a numpy seed (``< 2**32``) after the offsets a run adds to it (``seed + 10000`` for the
evaluation env, ``seed + i`` for its ``i``-th env, ``+ 1000`` for a batch's range test).

>>> check_count("seeds", 3, MAX_SEEDS)
>>> check_count("seeds", 100_000_000, MAX_SEEDS)
Traceback (most recent call last):
...
ValueError: seeds=100000000 must be an integer in [1, 10000] (a size limit: more is almost surely a typo)
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_GRID_POINTS", "MAX_POINTS", "MAX_RUNS", "MAX_SEED", "MAX_SEEDS", "MAX_TRIALS", "check_count",
           "check_seed"]

MAX_SEED = 2**32 - 1 - 100_000
MAX_SEEDS = 10_000
MAX_GRID_POINTS = 1_000
MAX_TRIALS = 10_000
MAX_POINTS = 100_000
MAX_RUNS = 100_000


def check_count(name: str, value: Any, maximum: int, minimum: int = 1) -> None:
    """``value`` is an integer in [minimum, maximum]; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValueError(f"{name}={value!r} must be an integer in [{minimum}, {maximum}] (a size limit: more is "
                         "almost surely a typo)")


def check_seed(name: str, value: Any) -> None:
    """A seed: an integer in [0, MAX_SEED]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name}={value!r} must be an integer in [0, {MAX_SEED}] (numpy seeds are < 2^32, and a "
                         "run adds offsets to its seed)")
