"""Layer 1, statistics: pure numpy/scipy functions over score matrices (no training, no files)."""

from __future__ import annotations

from clr_rl.stats.aggregates import (
    AGGREGATES,
    DEFINITIONS,
    _finite,  # noqa: F401  (private helpers the tests and stats.sequential reach through the package)
    _resample,  # noqa: F401
    auc,
    bootstrap_ci,
    iqm,
    mean_ci_t,
    median,
    normalize,
    optimality_gap,
    performance_profile,
    rng_for,
)
from clr_rl.stats.decisions import (
    Decision,
    _poi,  # noqa: F401
    decide,
    holm_levels,
    permutation_pvalue,
    poi_samples,
    probability_of_improvement,
    seeds_needed,
)

__all__ = ["AGGREGATES", "DEFINITIONS", "Decision", "auc", "bootstrap_ci", "decide", "holm_levels", "iqm", "mean_ci_t",
           "median", "normalize", "optimality_gap", "performance_profile", "permutation_pvalue", "poi_samples",
           "probability_of_improvement", "rng_for", "seeds_needed"]
