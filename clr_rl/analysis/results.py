"""The report's results as frozen dataclasses (what stats.json holds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clr_rl.stats.sequential import STATISTIC, STATISTIC_TEXT

__all__ = ["ALPHA", "Aggregates", "ArmEnv", "Band", "Comparison", "Cost", "EnvStats", "Interval", "MIN_SEEDS", "RULES",
           "Report", "SeedSummary"]


ALPHA = 0.05



MIN_SEEDS = 3



# ------------------------------------------------------------------------ typed results
@dataclass(frozen=True)
class Interval:
    estimate: float
    ci_low: float
    ci_high: float



@dataclass(frozen=True)
class SeedSummary:
    """Mean, std and Student-t 95% CI over seeds, and the per-seed values (seed order)."""

    mean: float
    std: float
    ci95: tuple[float, float]
    per_seed: list[float]



@dataclass(frozen=True)
class ArmEnv:
    seeds: list[int]
    seeds_done: int
    seeds_planned: int
    diverged: int
    diverged_reasons: list[str]
    final_return: SeedSummary
    auc: SeedSummary
    threshold_reached: str | None
    timesteps_to_threshold_median: float | None
    schedule: str
    lr_provenance: str | None



@dataclass(frozen=True)
class EnvStats:
    random_score: float
    random_source: str
    reference_score: float | None
    reference_source: str
    threshold: float | None
    in_aggregates: bool
    arms: dict[str, ArmEnv]



@dataclass(frozen=True)
class Aggregates:
    """An arm's cross-env aggregates: one :class:`Interval` per entry of :data:`clr_rl.stats.AGGREGATES`
    (``intervals[name]``, also ``aggregates.<name>``); ``stats.json`` lists them beside ``seeds``."""

    seeds: list[int]
    runs_per_env: int
    finished_runs_left_out: int
    intervals: dict[str, Interval]

    def __getattr__(self, name: str) -> Interval:
        intervals = self.__dict__.get("intervals", {})
        if name in intervals:
            return intervals[name]  # type: ignore[no-any-return]
        raise AttributeError(name)



@dataclass(frozen=True)
class Comparison:
    """An arm against the baseline: P(arm > baseline) with its 95% CI, the test and the verdict."""

    seeds: list[int]
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    holm_level: float | None
    decision_ci: tuple[float, float] | None
    verdict: str
    reason: str
    seeds_needed: int | None
    text: str



@dataclass(frozen=True)
class Band:
    point: list[float]
    ci_low: list[float]
    ci_high: list[float]



@dataclass(frozen=True)
class Cost:
    env: str
    arm: str
    setup_method: str
    setup_timesteps: int
    setup_wall_seconds: float
    setup_detail: str
    run_timesteps: int
    run_wall_seconds: float
    setup_ratio_vs_baseline: float | None



@dataclass(frozen=True)
class Report:
    """Every number of the report; ``stats.json`` is this record as JSON."""

    name: str | None
    baseline: str
    margin: float
    alpha: float
    correction: str
    bootstrap: dict[str, Any]
    definitions: dict[str, str]
    rules: dict[str, str]
    envs: list[str]
    aggregate_envs: list[str]
    arms: list[str]
    per_env: dict[str, EnvStats]
    aggregates: dict[str, Aggregates | None]
    comparisons: dict[str, Comparison]
    verdicts: dict[str, str]
    profile_taus: list[float]
    performance_profiles: dict[str, Band]
    efficiency_fractions: list[float]
    sample_efficiency: dict[str, Band]
    costs: list[Cost]
    answer: str
    missing: list[dict[str, str]] = field(default_factory=list)
    tradeoff: dict[str, dict[str, Any]] = field(default_factory=dict)  # env -> its [tradeoff] curve, as written
    sequential: dict[str, Any] | None = None  # a [sequential] batch's looks and decisions (sequential_report)



RULES = {
    "diverged": "a diverged run (status diverged, or a non-finite final return) counts as its env's random-policy "
                "score (normalised 0) in every statistic: final return, AUC and every sample-efficiency point",
    "normalisation": "(return - random) / (reference - random); envs without a reference score are left out of the "
                     "cross-env aggregates, profiles and sample-efficiency curves",
    "balance": "an arm's aggregates use the seed ids complete in every aggregate env; a comparison with the baseline "
               "uses the seed ids complete in every env for both arms",
    "verdict": "BEATS / WORSE: a stratified permutation test of P(improvement) = 0.5 rejects at the Holm-adjusted "
               "level and the bootstrap CI at that level excludes 0.5; EQUIVALENT: that CI lies inside "
               "[0.5 - margin, 0.5 + margin] at the arm's level in a Holm step-down of the equivalence tests of their "
               "own (so false EQUIVALENT verdicts are family-wise <= alpha too); INCONCLUSIVE otherwise; NO VERDICT "
               "below 3 seeds per env or when every run of both arms scored the same",
    "sequential": f"at each look, BEATS / WORSE when the look's statistic ({STATISTIC_TEXT[STATISTIC]}, or "
                  f"{STATISTIC_TEXT['plain-p']} in batches decided before it: the Sequential decisions table names "
                  "it) crosses a boundary calibrated by permuting arm labels within each env and look block, "
                  "jointly over the looks so far (the level spent by a look follows the design's spending "
                  "function); arms share the family-wise level by a graphical Holm procedure (a decided arm passes "
                  "its level on); EQUIVALENT when a DeLong CI of P lies inside the margin at the look's "
                  "equivalence level (a family of its own, also at alpha); an arm still undecided at max_seeds is "
                  "INCONCLUSIVE. The permutation test is exact when the two arms' runs are exchangeable under the "
                  "null; when their spreads differ the null P = 0.5 is not exchangeability and the level holds "
                  "only approximately (simulated at a spread ratio of 4: 5.6-6.0% false verdicts at alpha 0.05 "
                  f"with the studentized statistic, 8.3% with {STATISTIC_TEXT['plain-p']}; "
                  "benchmarks/bench_sequential.py)",
    "sample_efficiency": "normalised return interpolated at fractions of the planned budget; 100% = the final "
                         "evaluation",
}
