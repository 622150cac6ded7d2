"""Aggregate statistics over a (runs, envs) matrix of normalised scores, and their stratified-bootstrap intervals."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AGGREGATES", "Aggregate", "DEFINITIONS", "auc", "bootstrap_ci", "iqm", "mean_ci_t", "median", "normalize",
           "optimality_gap", "performance_profile", "rng_for"]


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """An independent, reproducible stream for ``(seed, *keys)`` (e.g. the report seed and an arm).

    The stream depends only on its own keys (``zlib.crc32`` of each), never on the order in
    which streams are made or on which other arms exist.

    >>> float(rng_for(0, "arm").random()) == float(rng_for(0, "arm").random())
    True
    >>> float(rng_for(0, "arm").random()) == float(rng_for(0, "other").random())
    False
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(zlib.crc32(k.encode()) for k in keys)]))


def normalize(score: Any, random_score: float, reference_score: float) -> np.ndarray:
    """``(score - random) / (reference - random)``: 0 = random policy, 1 = reference.

    >>> float(normalize(60.0, 10.0, 110.0))
    0.5
    """
    return (np.asarray(score, dtype=float) - random_score) / (reference_score - random_score)


def auc(rows: Sequence[dict[str, float]]) -> float:
    """Normalised area under the evaluation curve: trapezoid integral / timesteps covered.

    One evaluation: its return; no evaluation: NaN.

    >>> auc([{"timesteps": 0, "mean_return": 0.0}, {"timesteps": 10, "mean_return": 10.0}])
    5.0
    """
    if not rows:
        return math.nan
    if len(rows) == 1:
        return float(rows[0]["mean_return"])
    area = 0.0
    for a, b in zip(rows, rows[1:]):
        area += (b["timesteps"] - a["timesteps"]) * (a["mean_return"] + b["mean_return"]) / 2
    span = rows[-1]["timesteps"] - rows[0]["timesteps"]
    return float(area / span) if span > 0 else float(rows[-1]["mean_return"])


def iqm(x: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of all values (scipy's ``trim_mean(x, 0.25)``).

    ``axis`` names the axes pooled together (default: all).

    >>> float(iqm(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 100.0]])))
    4.5
    """
    from scipy.stats import trim_mean

    x = np.asarray(x, dtype=float)
    if axis is None:
        return np.asarray(trim_mean(x.reshape(-1), 0.25))
    keep = [i for i in range(x.ndim) if i not in axis]
    moved = np.moveaxis(x, keep, list(range(len(keep))))
    flat = moved.reshape(*moved.shape[: len(keep)], -1)
    return np.asarray(trim_mean(flat, 0.25, axis=-1))


def median(x: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    """rliable's median: the median over envs of each env's mean score.

    ``x`` is ``(..., runs, envs)``; ``axis`` (if given) must be the last two axes.

    >>> round(float(median(np.array([[0.2, 1.5], [0.0, 0.9], [0.6, 3.0]]))), 4)  # env means 0.2667, 1.8
    1.0333
    """
    x = np.asarray(x, dtype=float)
    if axis is not None and tuple(a % x.ndim for a in axis) != (x.ndim - 2, x.ndim - 1):
        raise ValueError(f"axis={axis} must name the (runs, envs) axes, the last two")
    return np.asarray(np.median(x.mean(axis=-2), axis=-1))


def _mean(x: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis))


def optimality_gap(x: np.ndarray, axis: tuple[int, ...] | None = None, gamma: float = 1.0) -> np.ndarray:
    """Mean shortfall below ``gamma``: ``gamma - mean(min(x, gamma))`` (lower is better).

    >>> float(optimality_gap(np.array([0.5, 1.5, 0.0])))
    0.5
    """
    return np.asarray(np.mean(np.maximum(gamma - np.asarray(x, dtype=float), 0.0), axis=axis))


@dataclass(frozen=True)
class Aggregate:
    """One cross-env aggregate statistic of a ``(runs, envs)`` matrix of normalised scores.

    Calling it calls ``func`` (``axis=(1, 2)`` for a stack of bootstrap samples). Everything that shows
    aggregates (the report's table, ``stats.json``, the markdown, the interval figure) iterates over
    :data:`AGGREGATES`: adding a statistic is one entry there.

    >>> AGGREGATES["mean"](np.array([[1.0, 2.0], [3.0, 4.0]]))
    array(2.5)
    """

    name: str
    func: Callable[..., np.ndarray]
    title: str
    definition: str
    higher_is_better: bool = True

    def __call__(self, x: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
        return self.func(x, axis=axis)


# The aggregates, in the order they are shown: a static table (rliable's get_interval_estimates takes
# such a dict of functions), not a registry filled at import time.
AGGREGATES: dict[str, Aggregate] = {a.name: a for a in (
    Aggregate("iqm", iqm, "IQM", "interquartile mean: mean of the middle 50% of all runs x envs normalised scores "
              "(scipy.stats.trim_mean(scores.ravel(), 0.25); rliable)"),
    Aggregate("median", median, "median", "median over envs of each env's mean normalised score (rliable's "
              "definition)"),
    Aggregate("mean", _mean, "mean", "mean of all runs x envs normalised scores (rliable)"),
    Aggregate("optimality_gap", optimality_gap, "optimality gap", "1 - mean(min(score, 1)) over all runs x envs: "
              "shortfall below the reference (lower is better; rliable, gamma = 1)", higher_is_better=False),
)}


def _resample(matrix: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified bootstrap: shape ``(reps, runs, envs)``, runs drawn within each env."""
    n, m = matrix.shape
    idx = rng.integers(0, n, size=(reps, n, m))
    return np.take_along_axis(np.broadcast_to(matrix, (reps, n, m)), idx, axis=1)


def _finite(name: str, matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} holds non-finite scores: score diverged runs by the report's rule first")
    return matrix


def bootstrap_ci(
    matrix: np.ndarray, statistic: Callable[..., np.ndarray], *, reps: int, rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Point estimate and percentile CI of ``statistic`` over a ``(runs, envs)`` matrix."""
    matrix = _finite("matrix", matrix)
    point = float(statistic(matrix))
    samples = statistic(_resample(matrix, reps, rng), axis=(1, 2))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def performance_profile(
    matrix: np.ndarray, taus: np.ndarray, *, reps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of runs with normalised score > tau, for each tau, with a bootstrap CI band."""
    matrix = _finite("matrix", matrix)
    point = (matrix[..., None] > taus).mean(axis=(0, 1))
    samples = (_resample(matrix, reps, rng)[..., None] > taus).mean(axis=(1, 2))
    lo, hi = np.quantile(samples, [0.025, 0.975], axis=0)
    return point, lo, hi


def mean_ci_t(values: Any, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, std (ddof=1), and Student-t CI of the mean over seeds.

    >>> [round(v, 4) for v in mean_ci_t([1.0, 2.0, 3.0])]
    [2.0, 1.0, -0.4841, 4.4841]
    """
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    mean = float(x.mean()) if x.size else float("nan")
    if x.size < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, x.size - 1) * std / np.sqrt(x.size))
    return mean, std, mean - half, mean + half


def _definitions() -> dict[str, str]:
    """Every statistic's definition, as the report and ``stats.json`` state them."""
    return {**{a.name: a.definition for a in AGGREGATES.values()},
            "probability_of_improvement": "P(X > Y) + P(X = Y)/2 per env (Mann-Whitney U / (n m)), averaged "
                                          "over envs (rliable)",
            "auc": "trapezoid area under the evaluation curve / timesteps covered (a mean return over the run)",
            "final_return": "the return of the run's last evaluation"}


DEFINITIONS: dict[str, str] = _definitions()
