"""Statistics for comparing arms, reproducible for a given seed (an explicit ``numpy`` Generator).

Conventions follow Agarwal et al. 2021 (rliable): scores are normalised per env,
``(score - random) / (reference - random)``; a score matrix has shape
``(runs, envs)``; confidence intervals come from the *stratified* bootstrap
(runs resampled with replacement independently within each env), percentile
method, 95%. Unlike rliable, every random draw comes from the ``rng`` passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "AGGREGATES",
    "bootstrap_ci",
    "iqm",
    "mean_ci_t",
    "normalize",
    "optimality_gap",
    "performance_profile",
    "probability_of_improvement",
]


def normalize(score: Any, random_score: float, reference_score: float) -> np.ndarray:
    """``(score - random) / (reference - random)``: 0 = random policy, 1 = reference.

    >>> float(normalize(60.0, 10.0, 110.0))
    0.5
    """
    return (np.asarray(score, dtype=float) - random_score) / (reference_score - random_score)


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


def optimality_gap(x: np.ndarray, axis: tuple[int, ...] | None = None, gamma: float = 1.0) -> np.ndarray:
    """Mean shortfall below ``gamma``: ``mean(max(gamma - x, 0))`` (lower is better).

    >>> float(optimality_gap(np.array([0.5, 1.5, 0.0])))
    0.5
    """
    return np.asarray(np.mean(np.maximum(gamma - np.asarray(x, dtype=float), 0.0), axis=axis))


def _median(x: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    return np.asarray(np.median(x, axis=axis))


def _mean(x: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis))


AGGREGATES: dict[str, Callable[..., np.ndarray]] = {
    "iqm": iqm, "median": _median, "mean": _mean, "optimality_gap": optimality_gap,
}


def _resample(matrix: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified bootstrap: shape ``(reps, runs, envs)``, runs drawn within each env."""
    n, m = matrix.shape
    idx = rng.integers(0, n, size=(reps, n, m))
    return np.take_along_axis(np.broadcast_to(matrix, (reps, n, m)), idx, axis=1)


def bootstrap_ci(
    matrix: np.ndarray, statistic: Callable[..., np.ndarray], *, reps: int, rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Point estimate and percentile CI of ``statistic`` over a ``(runs, envs)`` matrix."""
    matrix = np.asarray(matrix, dtype=float)
    point = float(statistic(matrix))
    samples = statistic(_resample(matrix, reps, rng), axis=(1, 2))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def _poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) per env, averaged over envs; x, y: ``(..., runs, envs)``."""
    gt = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    eq = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return np.asarray((gt + 0.5 * eq).mean(axis=-1))


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, *, reps: int, rng: np.random.Generator, confidence: float = 0.95
) -> tuple[float, float, float]:
    """P(arm X beats arm Y on a random env): the Mann-Whitney U statistic / (n*m), averaged over envs.

    ``x`` and ``y`` are ``(runs, envs)`` matrices (run counts may differ); the CI resamples
    both arms' runs independently within each env.

    >>> rng = np.random.default_rng(0)
    >>> probability_of_improvement(np.array([[2.0], [3.0]]), np.array([[1.0], [2.0]]), reps=10, rng=rng)[0]
    0.875
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    point = float(_poi(x, y))
    samples = _poi(_resample(x, reps, rng), _resample(y, reps, rng))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def performance_profile(
    matrix: np.ndarray, taus: np.ndarray, *, reps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of runs with normalised score > tau, for each tau, with a bootstrap CI band."""
    matrix = np.asarray(matrix, dtype=float)
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
