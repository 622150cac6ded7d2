"""Statistics for comparing arms, reproducible for a given seed (explicit ``numpy`` Generators).

Conventions follow Agarwal et al. 2021 (rliable 1.2.0, ``metrics.py`` / ``library.py``):
scores are normalised per env, ``(score - random) / (reference - random)``; a score
matrix has shape ``(runs, envs)``; confidence intervals come from the *stratified*
bootstrap (runs resampled with replacement independently within each env), percentile
method. The aggregates are rliable's (:data:`DEFINITIONS` states each one). Unlike
rliable, every random draw comes from a Generator passed in, and :func:`rng_for` derives
one independent stream per (report seed, arm, purpose), so one arm's intervals do not
depend on which other arms exist.

Verdicts (:func:`decide`) test P(improvement) = 0.5 with a stratified permutation test
(valid at any number of seeds; the percentile bootstrap alone is anti-conservative with
few seeds), correct for multiplicity with Holm's step-down over every arm compared with
the baseline, and read equivalence off the bootstrap CI at the arm's adjusted level.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AGGREGATES",
    "DEFINITIONS",
    "Decision",
    "auc",
    "bootstrap_ci",
    "decide",
    "holm_levels",
    "iqm",
    "mean_ci_t",
    "median",
    "normalize",
    "optimality_gap",
    "performance_profile",
    "permutation_pvalue",
    "poi_samples",
    "probability_of_improvement",
    "rng_for",
    "seeds_needed",
]

DEFINITIONS: dict[str, str] = {
    "iqm": "interquartile mean: mean of the middle 50% of all runs x envs normalised scores "
           "(scipy.stats.trim_mean(scores.ravel(), 0.25); rliable)",
    "median": "median over envs of each env's mean normalised score (rliable's definition)",
    "mean": "mean of all runs x envs normalised scores (rliable)",
    "optimality_gap": "1 - mean(min(score, 1)) over all runs x envs: shortfall below the reference "
                      "(lower is better; rliable, gamma = 1)",
    "probability_of_improvement": "P(X > Y) + P(X = Y)/2 per env (Mann-Whitney U / (n m)), averaged "
                                  "over envs (rliable)",
    "auc": "trapezoid area under the evaluation curve / timesteps covered (a mean return over the run)",
    "final_return": "the return of the run's last evaluation",
}


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


AGGREGATES: dict[str, Callable[..., np.ndarray]] = {
    "iqm": iqm, "median": median, "mean": _mean, "optimality_gap": optimality_gap,
}


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


def _poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) per env, averaged over envs; x, y: ``(..., runs, envs)``."""
    gt = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    eq = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return np.asarray((gt + 0.5 * eq).mean(axis=-1))


def poi_samples(x: np.ndarray, y: np.ndarray, *, reps: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """P(X > Y) and its stratified-bootstrap distribution (both arms resampled within each env)."""
    x, y = _finite("x", x), _finite("y", y)
    return float(_poi(x, y)), _poi(_resample(x, reps, rng), _resample(y, reps, rng))


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
    point, samples = poi_samples(x, y, reps=reps, rng=rng)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def permutation_pvalue(x: np.ndarray, y: np.ndarray, *, reps: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of P(X > Y) = 0.5: arm labels permuted within each env (stratified).

    Valid at any number of runs under the null that both arms' runs are exchangeable in
    every env; ``p = (1 + #{|P* - 0.5| >= |P - 0.5|}) / (1 + reps)``.

    >>> float(permutation_pvalue(np.ones((3, 1)), np.ones((3, 1)), reps=99, rng=np.random.default_rng(0)))
    1.0
    """
    x, y = _finite("x", x), _finite("y", y)
    n = x.shape[0]
    observed = abs(float(_poi(x, y)) - 0.5)
    pooled = np.concatenate([x, y], axis=0)  # (n + m, envs)
    order = np.argsort(rng.random((reps, pooled.shape[0], pooled.shape[1])), axis=1)
    shuffled = np.take_along_axis(np.broadcast_to(pooled, (reps, *pooled.shape)), order, axis=1)
    stats = np.abs(_poi(shuffled[:, :n], shuffled[:, n:]) - 0.5)
    return float((1 + np.sum(stats >= observed - 1e-12)) / (1 + reps))


def holm_levels(pvalues: dict[str, float], alpha: float = 0.05) -> dict[str, tuple[float, bool]]:
    """Holm's step-down: ``{name: (adjusted level, rejected)}``.

    The k p-values are sorted ascending; the i-th (0-based) is tested at ``alpha / (k - i)``,
    and rejected only if every smaller one was (the family-wise error rate stays <= alpha).

    >>> holm_levels({"a": 0.01, "b": 0.04, "c": 0.03})
    {'a': (0.016666666666666666, True), 'c': (0.025, False), 'b': (0.05, False)}
    """
    out: dict[str, tuple[float, bool]] = {}
    k, going = len(pvalues), True
    for i, (name, p) in enumerate(sorted(pvalues.items(), key=lambda kv: (kv[1], kv[0]))):
        level = alpha / (k - i)
        going = going and p <= level
        out[name] = (level, going)
    return out


def seeds_needed(x: np.ndarray, y: np.ndarray, *, level: float, margin: float, rng: np.random.Generator,
                 draws: int = 200, cap: int = 320) -> int | None:
    """Seeds per env that would make the CI of P(X > Y) narrow enough to decide, if the arms stay as observed.

    For N = n+1, then 25% more each step up to ``cap``: ``draws`` synthetic batches of N runs per
    env and arm are resampled from the observed per-env scores, and the ``(level/2, 1 - level/2)``
    quantiles of their P(improvement) are the CI predicted at N. The first N whose predicted CI
    excludes 0.5 (BEATS / WORSE) or lies inside ``[0.5 - margin, 0.5 + margin]`` (EQUIVALENT)
    is returned; None when no N up to ``cap`` decides.

    >>> seeds_needed(np.array([[3.0], [4.0]]), np.array([[1.0], [2.0]]), level=0.05, margin=0.1,
    ...              rng=np.random.default_rng(0))  # always separated: one more seed
    3
    """
    x, y = _finite("x", x), _finite("y", y)
    n, sizes = x.shape[0], []
    size = n + 1
    while size <= cap:
        sizes.append(size)
        size = max(size + 1, math.ceil(size * 1.25))
    for size in sizes:
        cols = np.arange(x.shape[1])  # resample runs within each env
        xs = x[rng.integers(0, n, size=(draws, size, x.shape[1])), cols]
        ys = y[rng.integers(0, y.shape[0], size=(draws, size, y.shape[1])), cols]
        lo, hi = np.quantile(_poi(xs, ys), [level / 2, 1 - level / 2])
        if lo > 0.5 or hi < 0.5 or (0.5 - margin <= lo and hi <= 0.5 + margin):
            return size
    return None


@dataclass(frozen=True)
class Decision:
    """A verdict on one arm against the baseline (see :func:`decide`)."""

    verdict: str  # BEATS, WORSE, EQUIVALENT, INCONCLUSIVE or NO VERDICT
    level: float | None  # Holm-adjusted significance level of this arm's test
    ci: tuple[float, float] | None  # bootstrap CI of P(improvement) at that level
    reason: str


def decide(tests: dict[str, dict[str, Any]], *, alpha: float = 0.05, margin: float = 0.1) -> dict[str, Decision]:
    """Verdicts for every arm compared with the baseline, Holm-corrected over those arms.

    ``tests[arm]`` holds ``estimate``, ``samples`` (bootstrap distribution of P) and ``p_value``
    (permutation), or ``skip`` (why there is no verdict). BEATS /
    WORSE: the permutation test rejects at the Holm level *and* the bootstrap CI at that level
    excludes 0.5 on the same side; EQUIVALENT: that CI lies inside ``[0.5 - margin, 0.5 + margin]``;
    INCONCLUSIVE otherwise.
    """
    if not 0 < margin < 0.5:
        raise ValueError(f"margin={margin} must be in (0, 0.5)")
    live = {a: t for a, t in tests.items() if not t.get("skip")}
    holm = holm_levels({a: t["p_value"] for a, t in live.items()}, alpha)
    out: dict[str, Decision] = {a: Decision("NO VERDICT", None, None, t["skip"]) for a, t in tests.items()
                                if t.get("skip")}
    going = True  # Holm's step-down: once one arm is not rejected, none after it is
    for arm in sorted(live, key=lambda a: (live[a]["p_value"], a)):
        t, (level, rejected) = live[arm], holm[arm]
        lo, hi = (float(v) for v in np.quantile(t["samples"], [level / 2, 1 - level / 2]))
        going = going and rejected and (lo > 0.5 or hi < 0.5)
        if going:
            verdict, reason = ("BEATS" if lo > 0.5 else "WORSE"), f"CI excludes 0.5, permutation p {t['p_value']:.3g}"
        elif 0.5 - margin <= lo and hi <= 0.5 + margin:
            verdict, reason = "EQUIVALENT", f"CI inside [{0.5 - margin:.3g}, {0.5 + margin:.3g}]"
        elif not (lo > 0.5 or hi < 0.5):
            verdict, reason = "INCONCLUSIVE", "the CI neither excludes 0.5 nor lies inside the equivalence margin"
        elif not rejected:
            verdict, reason = "INCONCLUSIVE", (f"the CI excludes 0.5 but the permutation test does not reject at "
                                               f"the Holm level (p {t['p_value']:.3g} > {level:.3g})")
        else:
            verdict, reason = "INCONCLUSIVE", ("the CI excludes 0.5 and the permutation test rejects, but Holm's "
                                               "step-down stopped at an arm with a smaller p-value")
        out[arm] = Decision(verdict, level, (lo, hi), reason)
    return {a: out[a] for a in tests}


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
