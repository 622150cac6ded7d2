"""Rank statistics of a two-sample comparison per env: P(improvement), its DeLong standard error, studentized.

The sequential design (:mod:`clr_rl.stats.sequential`) tests the studentized statistic of every
relabelling (:func:`studentized`) and builds its EQUIVALENT CI from :func:`delong`; both read the
same placements (a run's share of the other arm's runs below it, ties 1/2).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["delong", "studentized"]


def studentized(values: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """The stratified studentized Mann-Whitney (Brunner-Munzel) statistic of every labelling.

    ``values``: ``(envs, N)`` pooled runs per env; ``arm``: ``(..., envs, N)`` masks giving ``n``
    of them to the arm and the other ``m`` to the baseline. Returns
    ``T = sum_e (P_e - 0.5) / sqrt(sum_e var_e)``: ``P_e`` the arm's mean placement among the
    baseline's runs (Mann-Whitney U / n m, ties 1/2) and ``var_e = var(arm's placements) / n +
    var(baseline's placements among the arm's) / m`` (DeLong; Brunner-Munzel's variance on the
    P scale), floored at ``1 / (4 n m)`` since a complete separation has variance 0. This is
    ``(mean_e P_e - 0.5) / se`` with the se of the equivalence CI. Placements are counted on
    the pooled runs, sorted once per env, so no labelling is sorted.

    >>> x, y = np.array([[3.0, 4.0, 5.0]]), np.array([[1.0, 2.0, 3.0]])
    >>> float(studentized(np.hstack([x, y]), np.arange(6) < 3))  # P = 8.5 / 9; var at its floor 1 / 36
    2.666666667
    """
    envs, total = values.shape
    arm = np.broadcast_to(arm, np.broadcast_shapes(arm.shape, values.shape))
    lead = arm.shape[:-2]
    f = np.ascontiguousarray(np.moveaxis(arm.reshape(-1, envs, total), 1, 0), dtype=float)  # (envs, labellings, N)
    n = int(f[0, 0].sum())
    m = total - n
    below = np.empty_like(f)  # per run: the arm's runs below it, ties 1/2 (a run tied with itself counts 1/2)
    drop = np.empty_like(f)  # ... and all runs below it, ties 1/2: its pooled midrank - 1/2
    for e in range(envs):  # sorted once per env; every labelling is read through that order (no BLAS, no sort)
        order = np.argsort(values[e], kind="stable")
        v = values[e][order]
        starts = np.r_[True, v[1:] != v[:-1]]
        lo = np.maximum.accumulate(np.where(starts, np.arange(total), 0))  # first sorted position of the tie group
        hi = np.minimum.accumulate(np.where(np.r_[starts[1:], True], np.arange(total), total)[::-1])[::-1] + 1
        count = np.zeros((f.shape[1], total + 1))
        np.cumsum(f[e][:, order], axis=1, out=count[:, 1:])  # the arm's runs among the first i sorted
        below[e][:, order] = (count[:, lo] + count[:, hi]) / 2
        drop[e][:, order] = (lo + hi) / 2
    place_y = below / n  # a run's placement among the arm's runs (read at the baseline's runs)
    place_x = (drop - below) / m  # ... among the baseline's
    p = (f * place_x).sum(axis=-1) / n
    var_x = ((f * place_x ** 2).sum(axis=-1) - n * p ** 2) / max(n - 1, 1)
    var_y = (((1 - f) * place_y ** 2).sum(axis=-1) - m * (1 - p) ** 2) / max(m - 1, 1)
    var = np.maximum(var_x / n + var_y / m, 0.25 / (n * m))
    t = (p - 0.5).sum(axis=0) / np.sqrt(var.sum(axis=0))
    return np.round(t, 9).reshape(lead)


def delong(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """P and its standard error (DeLong placements per env, averaged over envs; floor 1/(4 n m) per env)."""
    gt = (x[:, None, :] > y[None, :, :]) + 0.5 * (x[:, None, :] == y[None, :, :])  # (n, m, envs)
    n, m = gt.shape[0], gt.shape[1]
    var = gt.mean(axis=1).var(axis=0, ddof=1) / n + gt.mean(axis=0).var(axis=0, ddof=1) / m
    var = np.maximum(var, 0.25 / (n * m))
    return float(gt.mean(axis=(0, 1)).mean()), float(math.sqrt(var.sum()) / gt.shape[2])
