"""Comparing an arm with the baseline: probability of improvement, permutation test, Holm, verdicts, seeds needed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from clr_rl.stats.aggregates import _finite, _resample

__all__ = ["Decision", "decide", "holm_levels", "permutation_pvalue", "poi_samples", "probability_of_improvement",
           "seeds_needed"]


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
                 draws: int = 200, cap: int = 320, power: float = 0.8) -> int | None:
    """Seeds per env at which a fixed batch would decide with probability ``power`` (80%), if the arms stay as observed.

    For N = n+1, then 25% more each step up to ``cap``: ``draws`` synthetic batches of N runs per
    env and arm are resampled from the observed per-env scores, and each batch's own CI of
    P(X > Y) is the normal one, ``P +- z_{1 - level/2} sd_N`` (``sd_N`` the spread of P over
    the synthetic batches at N). A batch decides when its CI excludes 0.5 (BEATS / WORSE) or
    lies inside ``[0.5 - margin, 0.5 + margin]`` (EQUIVALENT). The first N at which at least
    ``power`` of the batches decide is returned ("for 80% power"); None when no N up to
    ``cap`` does. (Until Dec 2026 this returned the N at which the *quantiles* of P decided,
    i.e. a typical batch just deciding: about 50% power.)

    >>> seeds_needed(np.array([[3.0], [4.0]]), np.array([[1.0], [2.0]]), level=0.05, margin=0.1,
    ...              rng=np.random.default_rng(0))  # always separated: one more seed
    3
    """
    x, y = _finite("x", x), _finite("y", y)
    if not 0 < power < 1:
        raise ValueError(f"power={power} must be in (0, 1)")
    n, sizes = x.shape[0], []
    size = n + 1
    while size <= cap:
        sizes.append(size)
        size = max(size + 1, math.ceil(size * 1.25))
    from scipy.stats import norm

    z = float(norm.ppf(1 - level / 2))
    for size in sizes:
        cols = np.arange(x.shape[1])  # resample runs within each env
        xs = x[rng.integers(0, n, size=(draws, size, x.shape[1])), cols]
        ys = y[rng.integers(0, y.shape[0], size=(draws, size, y.shape[1])), cols]
        p = _poi(xs, ys)
        half = z * float(p.std(ddof=1))
        lo, hi = p - half, p + half
        decided = (lo > 0.5) | (hi < 0.5) | ((0.5 - margin <= lo) & (hi <= 0.5 + margin))
        if decided.mean() >= power:
            return size
    return None



@dataclass(frozen=True)
class Decision:
    """A verdict on one arm against the baseline (see :func:`decide`)."""

    verdict: str  # BEATS, WORSE, EQUIVALENT, INCONCLUSIVE or NO VERDICT
    level: float | None  # Holm-adjusted significance level of this arm's test
    ci: tuple[float, float] | None  # bootstrap CI of P(improvement) at that level
    reason: str



def _equivalence_holm(live: dict[str, dict[str, Any]], alpha: float, margin: float) -> dict[str, tuple[float, bool]]:
    """Holm over the arms' equivalence tests on their own: ``{arm: (level, CI at that level inside the margin)}``.

    An arm's equivalence p-value is the smallest level whose ``(level/2, 1 - level/2)`` bootstrap CI
    lies inside ``[0.5 - margin, 0.5 + margin]``: ``2 max(share of P* < 0.5 - margin, share > 0.5 + margin)``.
    """
    p_eq = {a: min(1.0, 2 * max(float(np.mean(np.asarray(t["samples"]) < 0.5 - margin)),
                                float(np.mean(np.asarray(t["samples"]) > 0.5 + margin)))) for a, t in live.items()}
    out = {}
    for arm, (level, rejected) in holm_levels(p_eq, alpha).items():
        lo, hi = (float(v) for v in np.quantile(live[arm]["samples"], [level / 2, 1 - level / 2]))
        out[arm] = (level, rejected and 0.5 - margin <= lo and hi <= 0.5 + margin)
    return out


def decide(tests: dict[str, dict[str, Any]], *, alpha: float = 0.05, margin: float = 0.1) -> dict[str, Decision]:
    """Verdicts for every arm compared with the baseline, Holm-corrected over those arms.

    ``tests[arm]`` holds ``estimate``, ``samples`` (bootstrap distribution of P) and ``p_value``
    (permutation), or ``skip`` (why there is no verdict). BEATS /
    WORSE: the permutation test rejects at the Holm level *and* the bootstrap CI at that level
    excludes 0.5 on the same side; EQUIVALENT: the CI at the arm's level in a Holm step-down of
    its own, over the arms' equivalence tests (:func:`_equivalence_holm`), lies inside
    ``[0.5 - margin, 0.5 + margin]``, so false EQUIVALENT verdicts are family-wise <= alpha too
    (judged at the superiority order's level, as before Dec 2026, their bound was k alpha / 2);
    INCONCLUSIVE otherwise. An EQUIVALENT decision carries its equivalence level and CI.
    """
    if not 0 < margin < 0.5:
        raise ValueError(f"margin={margin} must be in (0, 0.5)")
    live = {a: t for a, t in tests.items() if not t.get("skip")}
    holm = holm_levels({a: t["p_value"] for a, t in live.items()}, alpha)
    equivalent = _equivalence_holm(live, alpha, margin)
    out: dict[str, Decision] = {a: Decision("NO VERDICT", None, None, t["skip"]) for a, t in tests.items()
                                if t.get("skip")}
    going = True  # Holm's step-down: once one arm is not rejected, none after it is
    for arm in sorted(live, key=lambda a: (live[a]["p_value"], a)):
        t, (level, rejected) = live[arm], holm[arm]
        lo, hi = (float(v) for v in np.quantile(t["samples"], [level / 2, 1 - level / 2]))
        going = going and rejected and (lo > 0.5 or hi < 0.5)
        eq_level, eq = equivalent[arm]
        if going:
            verdict, reason = ("BEATS" if lo > 0.5 else "WORSE"), f"CI excludes 0.5, permutation p {t['p_value']:.3g}"
        elif eq:
            level = eq_level
            lo, hi = (float(v) for v in np.quantile(t["samples"], [level / 2, 1 - level / 2]))
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
