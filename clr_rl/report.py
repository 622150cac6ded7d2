"""``clr-rl report``: statistics, plots, ``report.md`` and ``stats.json`` for a batch folder.

Computation and presentation are separate: :func:`analyse` reads the batch once, scores
every run (:func:`score_runs`), and returns a typed :class:`Report`; ``stats.json`` is that
record as JSON, and ``report.md`` and the figures only read it. The same ``seed`` gives a
byte-identical ``stats.json``. Works on a batch that is still running or has failed runs:
complete runs (finished or diverged) are used, the rest are listed as missing.

Rules, stated in the report too:

- **Diverged runs** (status ``diverged``, or finished with a non-finite final return) are
  scored as their env's random-policy score (normalised 0) in every statistic: final return,
  AUC, every point of the sample-efficiency curve. Dropping them would flatter the arm.
- **Normalisation**: ``(return - random) / (reference - random)``; the random score comes from
  the spec's ``[overrides."Env"] random_score``, else ``envs/``, else it is measured here
  (uniformly random actions, cached in ``<batch>/random_scores.json`` with its provenance);
  the reference from the spec's ``reference_score``, else ``envs/``. An env with no reference
  is left out of the cross-env aggregates (its own table is still shown).
- **Balanced comparisons**: an arm's aggregates use the seed ids complete in every env of the
  aggregates; a comparison with the baseline uses the seed ids complete in every env for both.
- **Tradeoff curves** (a spec's ``[tradeoff]``): read as written by :func:`clr_rl.tradeoff.tradeoff`
  in ``<batch>/tradeoff/<env>/tradeoff.json``, never recomputed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl import stats as st
from clr_rl.envs import env_info
from clr_rl.errors import ConfigError
from clr_rl.store import read_evaluations, read_json, write_text_atomic

__all__ = ["EnvRefs", "Report", "RunData", "analyse", "collect", "compute_stats", "measure_random_score", "report",
           "resolve_refs", "score_runs", "tradeoff_curves"]

_GRID = np.linspace(0.0, 1.0, 21)  # fractions of the budget for sample-efficiency curves
ALPHA = 0.05
MIN_SEEDS = 3
RANDOM_EPISODES = 100
COMPLETE = ("finished", "diverged")


@dataclass(frozen=True)
class RunData:
    """A planned run and whatever it has written so far (``status`` as in run.json, or ``not_started``)."""

    env: str
    arm: str
    seed: int
    folder: str
    status: str
    timesteps: int
    schedule: str
    evals: list[dict[str, float]]
    record: dict[str, Any]
    lr_provenance: str | None = None

    @property
    def final(self) -> float:
        return float(self.evals[-1]["mean_return"]) if self.evals else math.nan

    @property
    def complete(self) -> bool:
        """Finished with evaluations, or diverged: the run enters the statistics."""
        return self.diverged or (self.status == "finished" and bool(self.evals))

    @property
    def diverged(self) -> bool:
        return self.status == "diverged" or (self.status == "finished" and bool(self.evals)
                                             and not math.isfinite(self.final))


def collect(out: Path) -> tuple[dict[str, Any], list[RunData]]:
    """The batch's resolved spec and every planned run with whatever it has written so far."""
    path = out / "spec.resolved.json"
    if not path.is_file():
        raise ConfigError(f"out={str(out)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json(path)
    runs = []
    for r in resolved["runs"]:
        folder = out / r["folder"]
        record = read_json(folder / "run.json") if (folder / "run.json").is_file() else {}
        status = str(record.get("status", "not_started"))
        evals = read_evaluations(folder / "evaluations.csv")
        runs.append(RunData(r["env_id"], r["arm"], int(r["seed"]), r["folder"], status, int(r["timesteps"]),
                            r["schedule"], evals, record, r.get("lr_provenance")))
    return resolved, runs


# ------------------------------------------------------------------------ score references


@dataclass(frozen=True)
class EnvRefs:
    """An env's normalisation scores and where they came from."""

    random_score: float
    random_source: str
    reference_score: float | None
    reference_source: str
    threshold: float | None = None

    @property
    def normalisable(self) -> bool:
        return self.reference_score is not None and self.reference_score != self.random_score


def measure_random_score(env_id: str, *, episodes: int = RANDOM_EPISODES, seed: int = 0) -> dict[str, Any]:
    """Mean return of a uniformly random policy: ``action_space.seed(seed)``, episode k reset with ``seed + k``.

    The protocol of ``envs/*.toml``'s random scores; returns the score with its provenance.
    """
    import datetime

    import gymnasium as gym

    from clr_rl.envs import env_family

    env_family(env_id)  # validates the id and registers ALE's envs
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    try:
        for k in range(episodes):
            env.reset(seed=seed + k)
            total, done, steps = 0.0, False, 0
            while not done and steps < 100_000:  # a guard for envs without a time limit
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total, done, steps = total + float(reward), terminated or truncated, steps + 1
            returns.append(total)
    finally:
        env.close()
    return {"random_score": float(np.mean(returns)), "episodes": episodes, "seed": seed,
            "date": datetime.date.today().isoformat(), "gymnasium": gym.__version__,
            "protocol": "uniformly random actions (action_space.seed(seed)); episode k reset with seed + k"}


def _random_cache(out: Path, env: str, episodes: int) -> dict[str, Any]:
    path = out / "random_scores.json"
    cache = read_json(path) if path.is_file() else {}
    entry = cache.get(env)
    if not entry or entry.get("episodes") != episodes or entry.get("seed") != 0:
        entry = measure_random_score(env, episodes=episodes, seed=0)
        cache[env] = entry
        write_text_atomic(path, json.dumps(cache, indent=2, sort_keys=True) + "\n")
    return dict(entry)


def resolve_refs(out: Path, resolved: dict[str, Any], envs: list[str], *,
                 episodes: int = RANDOM_EPISODES) -> dict[str, EnvRefs]:
    """Random and reference scores per env: the spec's overrides, else ``envs/``, else measured / none."""
    overrides = (resolved.get("spec") or {}).get("overrides", {})
    refs = {}
    for env in envs:
        over, info = overrides.get(env, {}), env_info(env)
        if "random_score" in over:
            rnd, rsrc = float(over["random_score"]), "spec [overrides] random_score"
        elif info is not None:
            rnd, rsrc = info.random_score, f"envs/{info.suite}.toml"
        else:
            m = _random_cache(out, env, episodes)
            rnd = float(m["random_score"])
            rsrc = (f"measured: {m['episodes']} episodes of a uniformly random policy, seed {m['seed']}, "
                    f"{m['date']}, gymnasium {m['gymnasium']} (random_scores.json)")
        if "reference_score" in over:
            ref, src = float(over["reference_score"]), "spec [overrides] reference_score"
        elif info is not None:
            ref, src = info.reference_score, info.reference_source or f"envs/{info.suite}.toml"
        else:
            ref, src = None, ("no reference score (not in envs/, none in the spec's [overrides]): "
                              "left out of the cross-env aggregates")
        refs[env] = EnvRefs(rnd, rsrc, ref, src, info.threshold if info else None)
    return refs


# ------------------------------------------------------------------------ scoring each run


@dataclass(frozen=True)
class Score:
    """One complete run as it enters every statistic (diverged runs already scored by the rule)."""

    seed: int
    final: float
    auc: float
    curve: tuple[float, ...]  # returns at the fractions of _GRID; the last point is the final evaluation
    diverged: bool
    reason: str = ""


def _curve(run: RunData) -> tuple[float, ...]:
    t = np.array([e["timesteps"] for e in run.evals], dtype=float) / run.timesteps
    y = np.array([e["mean_return"] for e in run.evals], dtype=float)
    values = np.interp(_GRID, t, y)
    values[-1] = y[-1]  # 100% of the budget = the final evaluation (the last one may overshoot the budget)
    return tuple(float(v) for v in values)


def score_runs(runs: list[RunData], refs: dict[str, EnvRefs]) -> dict[tuple[str, str], list[Score]]:
    """``{(env, arm): [Score by seed]}`` for every complete run; diverged = the env's random score."""
    table: dict[tuple[str, str], list[Score]] = {(r.env, r.arm): [] for r in runs}
    for r in sorted(runs, key=lambda r: r.seed):
        if not r.complete:
            continue
        if r.diverged:
            rnd = refs[r.env].random_score
            reason = str(r.record.get("error") or "non-finite final return")
            table[r.env, r.arm].append(Score(r.seed, rnd, rnd, (rnd,) * len(_GRID), True, reason))
        else:
            table[r.env, r.arm].append(Score(r.seed, r.final, st.auc(r.evals), _curve(r), False))
    return table


def _seeds_in_all(table: dict[tuple[str, str], list[Score]], arms: list[str], envs: list[str]) -> list[int]:
    """Seed ids complete in every env for every arm named (a balanced comparison)."""
    sets = [{s.seed for s in table.get((e, a), [])} for e in envs for a in arms]
    return sorted(set.intersection(*sets)) if sets else []


def _matrix(table: dict[tuple[str, str], list[Score]], arm: str, envs: list[str], seeds: list[int],
            value: Any) -> np.ndarray:
    """``(seeds, envs)`` of ``value(score, env)`` for the given seed ids."""
    by_seed = {e: {s.seed: s for s in table[e, arm]} for e in envs}
    return np.array([[value(by_seed[e][k], e) for e in envs] for k in seeds], dtype=float).reshape(len(seeds),
                                                                                                    len(envs))


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
    seeds: list[int]
    runs_per_env: int
    finished_runs_left_out: int
    iqm: Interval
    median: Interval
    mean: Interval
    optimality_gap: Interval


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


RULES = {
    "diverged": "a diverged run (status diverged, or a non-finite final return) counts as its env's random-policy "
                "score (normalised 0) in every statistic: final return, AUC and every sample-efficiency point",
    "normalisation": "(return - random) / (reference - random); envs without a reference score are left out of the "
                     "cross-env aggregates, profiles and sample-efficiency curves",
    "balance": "an arm's aggregates use the seed ids complete in every aggregate env; a comparison with the baseline "
               "uses the seed ids complete in every env for both arms",
    "verdict": "BEATS / WORSE: a stratified permutation test of P(improvement) = 0.5 rejects at the Holm-adjusted "
               "level and the bootstrap CI at that level excludes 0.5; EQUIVALENT: that CI lies inside "
               "[0.5 - margin, 0.5 + margin]; INCONCLUSIVE otherwise; NO VERDICT below 3 seeds per env or when "
               "every run of both arms scored the same",
    "sample_efficiency": "normalised return interpolated at fractions of the planned budget; 100% = the final "
                         "evaluation",
}


# ------------------------------------------------------------------------ tradeoff curves (read back)


def _tradeoff_folder(out: Path, env: str) -> Path:
    return out / "tradeoff" / env


def tradeoff_curves(out: Path, envs: list[str]) -> dict[str, dict[str, Any]]:
    """env -> the numbers of its ``[tradeoff]`` curve, read from ``tradeoff/<env>/tradeoff.json`` (and
    ``max_lr.json``, where the max LR came from) as :func:`clr_rl.tradeoff.tradeoff` wrote them.
    Wall-clock seconds are left out, so ``stats.json`` depends on results only."""
    curves = {}
    for env in envs:
        folder = _tradeoff_folder(out, env)
        if not (folder / "tradeoff.json").is_file():
            continue
        data = read_json(folder / "tradeoff.json")
        plan, compute, gap = data["plan"], data["compute"], data.get("gap")
        given = read_json(folder / "max_lr.json") if (folder / "max_lr.json").is_file() else {}
        # a number given by the batch: its source is max_lr.json's (tradeoff.json only says "given by the user")
        source = given["source"] if isinstance(given.get("max_lr"), (int, float)) else None
        curves[env] = {
            "folder": f"tradeoff/{env}", "schedule": plan["schedule"], "cycles": plan["cycles"],
            "t_mult": plan["t_mult"], "timesteps": plan["timesteps"], "budgets": plan["budgets"],
            "lr_provenance": plan["lr_provenance"], "max_lr_source": source, "validate": data["params"]["validate"],
            "normalisation": data["normalisation"], "curve": data["curve"],
            "gap": None if gap is None else {k: gap[k] for k in ("gap", "ci_low", "ci_high", "mean_abs_gap",
                                                                  "mean_abs_gap_after_first", "noise_floor",
                                                                  "noise_floor_after_first", "seeds") if k in gap},
            "compute": {k: v for k, v in compute.items() if "timesteps" in k or k == "separate_over_single"},
            "left_out": data.get("left_out", []),
        }
    return curves


# ------------------------------------------------------------------------ computation


def _threshold_time(run_evals: list[dict[str, float]], threshold: float | None) -> float | None:
    for e in run_evals if threshold is not None else []:
        if e["mean_return"] >= threshold:  # type: ignore[operator]
            return e["timesteps"]
    return None


def _summary(values: list[float]) -> SeedSummary:
    m, s, lo, hi = st.mean_ci_t(values)
    return SeedSummary(m, s, (lo, hi), values)


def _per_env(runs: list[RunData], table: dict[tuple[str, str], list[Score]], refs: dict[str, EnvRefs],
             envs: list[str], arms: list[str]) -> dict[str, EnvStats]:
    out = {}
    for env in envs:
        ref, arm_stats = refs[env], {}
        for arm in arms:
            planned = [r for r in runs if r.env == env and r.arm == arm]
            scores = table[env, arm]
            done = {r.seed: r for r in planned if r.complete}
            times = [None if s.diverged else _threshold_time(done[s.seed].evals, ref.threshold) for s in scores]
            reached = [t for t in times if t is not None]
            arm_stats[arm] = ArmEnv(
                [s.seed for s in scores], len(scores), len(planned), sum(s.diverged for s in scores),
                [f"seed {s.seed}: {s.reason}" for s in scores if s.diverged],
                _summary([s.final for s in scores]), _summary([s.auc for s in scores]),
                f"{len(reached)}/{len(scores)}" if ref.threshold is not None else None,
                float(np.median(reached)) if reached else None,
                planned[0].schedule if planned else "",
                next((r.lr_provenance for r in planned if r.lr_provenance), None))
        out[env] = EnvStats(ref.random_score, ref.random_source, ref.reference_score, ref.reference_source,
                            ref.threshold, ref.normalisable, arm_stats)
    return out


def _norm(refs: dict[str, EnvRefs]) -> Any:
    def final(s: Score, env: str) -> float:
        r = refs[env]
        return float(st.normalize(s.final, r.random_score, r.reference_score))  # type: ignore[arg-type]
    return final


def _aggregates(table: dict[tuple[str, str], list[Score]], refs: dict[str, EnvRefs], envs: list[str],
                arm: str, reps: int, seed: int) -> Aggregates | None:
    seeds = _seeds_in_all(table, [arm], envs)
    if not envs or not seeds:
        return None
    mat = _matrix(table, arm, envs, seeds, _norm(refs))
    rng = st.rng_for(seed, "aggregates", arm)
    cis = {name: Interval(*st.bootstrap_ci(mat, fn, reps=reps, rng=rng)) for name, fn in st.AGGREGATES.items()}
    left = sum(len(table[e, arm]) for e in envs) - mat.size
    return Aggregates(seeds, len(seeds), int(left), **cis)


def _test(table: dict[tuple[str, str], list[Score]], envs: list[str], arm: str, baseline: str, reps: int,
          seed: int) -> tuple[list[int], dict[str, Any]]:
    """The inputs of :func:`stats.decide` for one arm (raw returns: P(improvement) is rank-based per env)."""
    seeds = _seeds_in_all(table, [arm, baseline], envs)
    if len(seeds) < MIN_SEEDS:
        return seeds, {"skip": f"only {len(seeds)} seed(s) complete in every env for both arms; "
                               f"a verdict needs at least {MIN_SEEDS}"}
    x = _matrix(table, arm, envs, seeds, lambda s, e: s.final)
    y = _matrix(table, baseline, envs, seeds, lambda s, e: s.final)
    if all(np.unique(np.concatenate([x[:, j], y[:, j]])).size == 1 for j in range(len(envs))):
        return seeds, {"skip": "every run of both arms scored the same in each env: the runs cannot tell them apart"}
    estimate, samples = st.poi_samples(x, y, reps=reps, rng=st.rng_for(seed, "improvement", arm, baseline))
    p = st.permutation_pvalue(x, y, reps=reps, rng=st.rng_for(seed, "permutation", arm, baseline))
    return seeds, {"estimate": estimate, "samples": samples, "p_value": p, "x": x, "y": y}


def _comparisons(table: dict[tuple[str, str], list[Score]], envs: list[str], arms: list[str], baseline: str,
                 reps: int, seed: int, margin: float) -> dict[str, Comparison]:
    tests = {a: _test(table, envs, a, baseline, reps, seed) for a in arms if a != baseline}
    decisions = st.decide({a: t for a, (_, t) in tests.items()}, alpha=ALPHA, margin=margin)
    out = {}
    for arm, (seeds, t) in tests.items():
        d = decisions[arm]
        if d.verdict == "NO VERDICT":
            out[arm] = Comparison(seeds, None, None, None, None, None, None, d.verdict, d.reason, None,
                                  f"{arm}: NO VERDICT against {baseline}: {d.reason}")
            continue
        lo, hi = (float(v) for v in np.quantile(t["samples"], [0.025, 0.975]))
        assert d.ci is not None and d.level is not None
        reason, need = d.reason, None
        if d.verdict == "INCONCLUSIVE":
            need = st.seeds_needed(t["x"], t["y"], level=d.level, margin=margin,
                                   rng=st.rng_for(seed, "seeds-needed", arm, baseline))
            reason += (f"; about {need} seeds per env would decide if the arms stay as observed" if need else
                       "; no number of seeds up to 320 per env is predicted to decide (a difference near the margin)")
        text = (f"{arm} {d.verdict} against {baseline}: P(improvement) {t['estimate']:.2f}, "
                f"{100 * (1 - d.level):.4g}% CI [{d.ci[0]:.2f}, {d.ci[1]:.2f}] at the Holm-adjusted level "
                f"{d.level:.3g}; {reason} (seeds {seeds})")
        out[arm] = Comparison(seeds, t["estimate"], lo, hi, t["p_value"], d.level, d.ci, d.verdict, reason, need,
                              text)
    return out


def _profiles(table: dict[tuple[str, str], list[Score]], refs: dict[str, EnvRefs], envs: list[str],
              aggregates: dict[str, Aggregates | None], reps: int, seed: int) -> tuple[list[float], dict[str, Band]]:
    mats = {a: _matrix(table, a, envs, agg.seeds, _norm(refs)) for a, agg in aggregates.items() if agg}
    if not mats:
        return [], {}
    scores = np.concatenate([m.reshape(-1) for m in mats.values()])
    taus = np.linspace(min(0.0, float(scores.min())), max(1.0, float(scores.max())), 41)
    out = {}
    for arm, mat in mats.items():
        pt, lo, hi = st.performance_profile(mat, taus, reps=max(reps // 4, 50), rng=st.rng_for(seed, "profiles", arm))
        out[arm] = Band(pt.tolist(), lo.tolist(), hi.tolist())
    return taus.tolist(), out


def _efficiency(table: dict[tuple[str, str], list[Score]], refs: dict[str, EnvRefs], envs: list[str],
                aggregates: dict[str, Aggregates | None], reps: int, seed: int) -> dict[str, Band]:
    out = {}
    for arm, agg in aggregates.items():
        if agg is None:
            continue
        rng = st.rng_for(seed, "efficiency", arm)
        band = []
        for g in range(len(_GRID)):
            mat = _matrix(table, arm, envs, agg.seeds, lambda s, e, g=g: float(st.normalize(
                s.curve[g], refs[e].random_score, refs[e].reference_score)))  # type: ignore[arg-type]
            band.append(st.bootstrap_ci(mat, st.iqm, reps=max(reps // 4, 50), rng=rng))
        out[arm] = Band([b[0] for b in band], [b[1] for b in band], [b[2] for b in band])
    return out


def _costs(resolved: dict[str, Any], runs: list[RunData], envs: list[str], arms: list[str],
           baseline: str) -> list[Cost]:
    setup: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in resolved.get("setup") or []:
        setup.setdefault((s["env"], s["arm"]), []).append(s)

    def spent(env: str, arm: str) -> tuple[str, int, float, str]:
        rows = setup.get((env, arm), [])
        methods = sorted({str(r.get("method", "none")) for r in rows}) or ["none"]
        return ("+".join(methods), int(sum(int(r.get("timesteps", 0)) for r in rows)),
                float(sum(float(r.get("wall_seconds", 0.0)) for r in rows)),
                "; ".join(str(r.get("detail", "")) for r in rows if r.get("detail")))

    out = []
    for env in envs:
        base_ts = spent(env, baseline)[1]
        for arm in arms:
            method, ts, wall, detail = spent(env, arm)
            recs = [r.record for r in runs if r.env == env and r.arm == arm and r.record]
            run_ts = int(sum(int(r.get("timesteps_done") or 0) for r in recs))
            run_wall = float(sum(float(r.get("wall_seconds") or 0.0) for r in recs))
            out.append(Cost(env, arm, method, ts, wall, detail, run_ts, run_wall, ts / base_ts if base_ts else None))
    return out


def _answer(comparisons: dict[str, Comparison], costs: list[Cost], baseline: str, envs: list[str],
            runs: list[RunData], margin: float) -> str:
    """The plain-language answer to the product's question, from the verdicts and the cost table."""
    by = {v: [a for a, c in comparisons.items() if c.verdict == v] for v in
          ("BEATS", "EQUIVALENT", "WORSE", "INCONCLUSIVE", "NO VERDICT")}
    budgets = sorted({r.timesteps for r in runs})
    seeds = sorted({r.seed for r in runs})
    if by["BEATS"]:
        head = f"Yes, on these envs: {_names(by['BEATS'])} beat the fixed-LR baseline `{baseline}`"
    elif by["EQUIVALENT"]:
        head = (f"It matches, no more: {_names(by['EQUIVALENT'])} performed equivalently to `{baseline}` "
                f"(P(improvement) within 0.5 ± {margin:g})")
    elif comparisons and len(by["WORSE"]) == len(comparisons):
        head = f"No: every other arm did worse than `{baseline}`"
    else:
        head = f"This batch does not decide it: no arm was shown to beat or match `{baseline}`"
    parts = [head + "."]
    for verdict, phrase in (("WORSE", "did worse"), ("INCONCLUSIVE", "were inconclusive"),
                            ("NO VERDICT", "got no verdict")):
        if by[verdict] and not (verdict == "WORSE" and head.startswith("No:")):
            parts.append(f"{_names(by[verdict])} {phrase}.")
    parts.append(_tuning_sentence(by["BEATS"] + by["EQUIVALENT"], costs, baseline))
    parts.append(f"Caveats: {len(seeds)} seeds per arm and env, a budget of "
                 f"{', '.join(f'{b:,}' for b in budgets)} timesteps per run, and only {', '.join(envs)}; "
                 f"verdicts are Holm-corrected over {len(comparisons)} comparison(s) at level {ALPHA}.")
    return " ".join(p for p in parts if p)


def _names(arms: list[str]) -> str:
    return ", ".join(f"`{a}`" for a in arms)


def _tuning_sentence(winners: list[str], costs: list[Cost], baseline: str) -> str:
    if not winners:
        return ""
    base = sum(c.setup_timesteps for c in costs if c.arm == baseline)
    if base == 0:
        return (f"No setup cost of `{baseline}` was recorded in this batch (its LR came from outside it), "
                "so 'for less tuning?' cannot be answered from this batch.")
    said = []
    for arm in winners:
        ts = sum(c.setup_timesteps for c in costs if c.arm == arm)
        said.append(f"`{arm}` spent {ts:,} setup timesteps ({_ratio(ts / base)} of the baseline's {base:,})")
    return "For less tuning: " + "; ".join(said) + "."


def _ratio(r: float | None) -> str:
    if r is None:
        return "n/a"
    if r == 0:
        return "0 (no setup)"
    return f"1/{1 / r:.3g}" if r < 1 else f"{r:.3g}x"


def analyse(out: Path, resolved: dict[str, Any], runs: list[RunData], *, baseline: str, reps: int, seed: int,
            margin: float = 0.1) -> Report:
    """Every statistic of the report, from the complete runs; ``seed`` fixes every random stream."""
    envs = list(dict.fromkeys(r.env for r in runs))
    arms = list(dict.fromkeys(r.arm for r in runs))
    refs = resolve_refs(out, resolved, envs)
    table = score_runs(runs, refs)
    agg_envs = [e for e in envs if refs[e].normalisable]
    aggregates = {a: _aggregates(table, refs, agg_envs, a, reps, seed) for a in arms}
    comparisons = _comparisons(table, envs, arms, baseline, reps, seed, margin)
    taus, profiles = _profiles(table, refs, agg_envs, aggregates, reps, seed)
    costs = _costs(resolved, runs, envs, arms, baseline)
    return Report(
        resolved.get("name"), baseline, margin, ALPHA, "Holm (step-down) over every arm compared with the baseline",
        {"reps": reps, "seed": seed, "method": "stratified, percentile; one stream per (seed, purpose, arm)"},
        dict(st.DEFINITIONS), dict(RULES), envs, agg_envs, arms, _per_env(runs, table, refs, envs, arms), aggregates,
        comparisons, {a: c.text for a, c in comparisons.items()}, taus, profiles, _GRID.tolist(),
        _efficiency(table, refs, agg_envs, aggregates, reps, seed), costs,
        _answer(comparisons, costs, baseline, envs, runs, margin),
        [{"folder": r.folder, "status": r.status} for r in runs if not r.complete], tradeoff_curves(out, envs))


def _clean(x: Any) -> Any:
    """JSON-safe, rounded to 12 significant digits (stable bytes across platforms)."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return None if not math.isfinite(x) else float(f"{x:.12g}")
    if isinstance(x, np.integer):
        return int(x)
    return x


def to_json(result: Report) -> dict[str, Any]:
    """``stats.json``: the Report as JSON; curves keep their established layout (read by ``tensorboard``):
    ``sample_efficiency = {"fractions": [...], arm: {"iqm", "ci_low", "ci_high"}}`` and
    ``performance_profiles = {"taus": [...], arm: {"fraction", "ci_low", "ci_high"}}``."""
    data = dict(_clean(asdict(result)))
    for key, xs, xname, yname in (("sample_efficiency", "efficiency_fractions", "fractions", "iqm"),
                                  ("performance_profiles", "profile_taus", "taus", "fraction")):
        bands = data.pop(key)
        data[key] = {xname: data.pop(xs), **{arm: {yname: b["point"], "ci_low": b["ci_low"], "ci_high": b["ci_high"]}
                                             for arm, b in bands.items()}}
    return data


def compute_stats(resolved: dict[str, Any], runs: list[RunData], *, baseline: str, reps: int, seed: int,
                  out: Path | None = None, margin: float = 0.1) -> dict[str, Any]:
    """``stats.json``'s content (see :func:`analyse`)."""
    return to_json(analyse(out or Path("."), resolved, runs, baseline=baseline, reps=reps, seed=seed, margin=margin))


# ------------------------------------------------------------------------ presentation (reads a Report)


def _num(x: Any, sig: int = 4) -> str:
    """``sig`` significant digits, thousands separators for large values, ``n/a`` for None/NaN.

    >>> [_num(v) for v in (475.31, -0.0012345, 12345.6, None, 0.0)]
    ['475.3', '-0.001234', '12,346', 'n/a', '0']
    """
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    if abs(x) >= 10 ** sig:
        return f"{x:,.0f}"
    return f"{x:.{sig}g}"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def _md_verdicts(res: Report) -> list[str]:
    out = ["## Verdict against the baseline", ""]
    out += [f"- {c.text}" for c in res.comparisons.values()] or ["- (no arm to compare)"]
    levels = ", ".join(f"`{a}` {c.holm_level:.3g}" for a, c in res.comparisons.items() if c.holm_level)
    out += ["", f"Verdict rule ({len(res.comparisons)} arm(s) compared with `{res.baseline}`, family-wise level "
            f"{res.alpha}, correction: {res.correction}; adjusted level per arm: {levels or 'none'}): "
            f"{res.rules['verdict']}. Equivalence margin {res.margin:g}. The permutation test guards the "
            "decision because the percentile bootstrap alone is anti-conservative with few seeds.", ""]
    if res.comparisons:
        rows = [[a, c.verdict, _num(c.estimate, 3), f"[{_num(c.ci_low, 3)}, {_num(c.ci_high, 3)}]",
                 _num(c.p_value, 3), _num(c.holm_level, 3),
                 f"[{_num(c.decision_ci[0], 3)}, {_num(c.decision_ci[1], 3)}]" if c.decision_ci else "n/a",
                 ", ".join(map(str, c.seeds)) or "none"] for a, c in res.comparisons.items()]
        out += [f"### Probability of improvement over `{res.baseline}`", ""]
        out += _md_table(["arm", "verdict", "P(arm > baseline)", "95% CI", "permutation p", "Holm level",
                          "CI at Holm level", "seeds entered"], rows)
    return out


def _md_costs(res: Report) -> list[str]:
    out = ["## Cost of each arm", "",
           "Setup = what it took to set the arm up in this batch (tuning grid, LR range test; 0 for a general "
           "setting); run = the arm's training runs. 'For less tuning?' = setup timesteps / the baseline's.", ""]
    rows = [[c.env, c.arm, c.setup_method, f"{c.setup_timesteps:,}", _num(c.setup_wall_seconds, 3),
             f"{c.run_timesteps:,}", _num(c.run_wall_seconds, 3), _ratio(c.setup_ratio_vs_baseline),
             res.per_env[c.env].arms[c.arm].lr_provenance or "n/a"] for c in res.costs]
    out += _md_table(["env", "arm", "setup", "setup timesteps", "setup s", "run timesteps", "run s",
                      "for less tuning? (vs baseline)", "LR provenance"], rows)
    if not any(c.setup_timesteps for c in res.costs):
        out += ["No setup cost is recorded in this batch: LRs taken from `agents/` or a tune record were set up "
                "outside it (see the baseline provenance below).", ""]
    return out


def _md_provenance(res: Report, runs: list[RunData]) -> list[str]:
    out = ["### Baseline provenance and tuning cost", ""]
    rows = []
    for env in res.envs:
        run = next((r for r in runs if r.env == env and r.arm == res.baseline and r.record.get("config")), None)
        agent = run.record.get("config", {}).get("agent", {}) if run else {}
        cost = agent.get("tuned_lr_cost_timesteps")
        rows.append([env, str(agent.get("tuned_lr", "?")), str(agent.get("tuned_lr_source", "?")),
                     f"{cost:,} timesteps" if cost else "not measured here (value shipped in agents/)"])
    return out + _md_table(["env", "tuned fixed LR", "provenance", "tuning cost"], rows)


def _md_setup(res: Report, runs: list[RunData]) -> list[str]:
    first = next((r.record for r in runs if r.record.get("versions")), {})
    versions, cfg = first.get("versions", {}), first.get("config", {})
    budgets = {r.env: r.timesteps for r in runs}
    evals = {(r.env, r.record.get("config", {}).get("eval_every"), r.record.get("config", {}).get("eval_episodes"))
             for r in runs if r.record.get("config")}
    out = ["## Setup", "",
           f"- algo: {cfg.get('algo', '?')}; envs: " + ", ".join(f"{e} ({budgets[e]:,} timesteps)" for e in res.envs),
           f"- arms: {len(res.arms)}; seeds: {sorted({r.seed for r in runs})}; baseline: `{res.baseline}`",
           "- evaluation: deterministic policy on a separate env (seed + 10000), "
           + "; ".join(f"{e}: {n} episodes every {k:,} steps" for e, k, n in sorted(evals, key=str) if k),
           f"- bootstrap: {res.bootstrap['method']}, {res.bootstrap['reps']} resamples, seed {res.bootstrap['seed']}; "
           "per-env CIs are Student-t over seeds",
           "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform"),
           f"- device: {cfg.get('device', '?')}; platform: {versions.get('platform', '?')}", "",
           "### Definitions and rules", ""]
    out += [f"- {k}: {v}" for k, v in res.definitions.items()]
    out += [f"- {k}: {v}" for k, v in res.rules.items()]
    return [*out, ""]


def _md_env(res: Report, env: str, images: dict[str, str]) -> list[str]:
    e = res.per_env[env]
    where = ("in the cross-env aggregates" if e.in_aggregates else
             "**left out of the cross-env aggregates**: no reference score (set `[overrides.\"" + env
             + "\"] reference_score` in the spec)")
    out = [f"### {env}", "", f"Normalisation: random {_num(e.random_score)} ({e.random_source}), reference "
           f"{_num(e.reference_score)} ({e.reference_source}); {where}. Threshold: {_num(e.threshold)}.", ""]
    rows = []
    for arm, a in e.arms.items():
        fr, au = a.final_return, a.auc
        div = f", diverged {a.diverged}/{a.seeds_done}" if a.diverged else ""
        rows.append([arm, f"`{a.schedule}`", f"{a.seeds_done}/{a.seeds_planned}{div}",
                     f"{_num(fr.mean)} ± {_num(fr.std)}", f"[{_num(fr.ci95[0])}, {_num(fr.ci95[1])}]",
                     f"{_num(au.mean)} [{_num(au.ci95[0])}, {_num(au.ci95[1])}]",
                     f"{a.threshold_reached or 'n/a'}, median {_num(a.timesteps_to_threshold_median)}"])
    out += _md_table(["arm", "schedule", "seeds", "final return mean ± std", "95% CI", "AUC [95% CI]",
                      "reached threshold, timesteps"], rows)
    out += [f"- `{arm}` diverged: " + "; ".join(a.diverged_reasons) for arm, a in e.arms.items() if a.diverged]
    if env in images:
        out += [f"![learning curves {env}]({images[env]})", ""]
    return out


def _md_aggregates(res: Report) -> list[str]:
    out = ["## Aggregates over envs (normalised final return)", ""]
    if not res.aggregate_envs:
        return [*out, "No env of this batch has a reference score: no cross-env aggregate is computed.", ""]
    left = [e for e in res.envs if e not in res.aggregate_envs]
    out += [f"Envs: {', '.join(res.aggregate_envs)}" + (f"; left out (no reference score): {', '.join(left)}"
                                                          if left else "") + ".", ""]
    rows = []
    for arm, a in res.aggregates.items():
        if a is None:
            rows.append([arm, "n/a", "n/a", "n/a", "n/a", "0", "none"])
            continue
        rows.append([arm] + [f"{_num(i.estimate, 3)} [{_num(i.ci_low, 3)}, {_num(i.ci_high, 3)}]"
                             for i in (a.iqm, a.median, a.mean, a.optimality_gap)]
                    + [str(a.runs_per_env), ", ".join(map(str, a.seeds))])
    out += _md_table(["arm", "IQM", "median", "mean", "optimality gap", "runs/env", "seeds entered"], rows)
    left_runs = {arm: a.finished_runs_left_out for arm, a in res.aggregates.items() if a and a.finished_runs_left_out}
    if left_runs:
        out += ["Aggregates use the seed ids complete in every env; complete runs left out: "
                + ", ".join(f"{arm} {n}" for arm, n in left_runs.items()) + ".", ""]
    return out


def _md_tradeoff(res: Report, images: dict[str, str]) -> list[str]:
    """Each env's ``[tradeoff]`` curve: budget, mean return and its CI per approach, and the gap."""
    if not res.tradeoff:
        return []
    out = ["## Tradeoff curves (Portes et al. 2022)", "",
           "One run of cosine annealing with warm restarts whose cycles grow by `t_mult`, evaluated at the end of "
           "every cycle, stands in for one run per budget (Portes, Blalock, Stephenson, Frankle, arXiv 2206.00832). "
           "Return: mean over seeds with its Student-t 95% CI; gap: single - separate runs in normalised return, "
           "paired bootstrap 95% CI. Numbers as written in `tradeoff/<env>/tradeoff.json`.", ""]
    for env, t in res.tradeoff.items():
        by = {(r["approach"], int(r["budget"])): r for r in t["curve"]}
        gap = t["gap"]
        c = t["compute"]
        cost = f"{c['single_timesteps_per_seed']:,} timesteps per seed"
        if "separate_timesteps_per_seed" in c:
            cost += (f" (the separate runs: {c['separate_timesteps_per_seed']:,}, "
                     f"{c['separate_over_single']:.2f}x)")
        out += [f"### {env}", "", f"`{t['schedule']}` over {t['timesteps']:,} timesteps, {t['cycles']} cycles, "
                f"t_mult {t['t_mult']:g}; {t['max_lr_source'] or t['lr_provenance']}; compute: {cost}. "
                f"Files: `{t['folder']}/`.", ""]
        header = ["budget", "cycle", "seeds", "mean return", "95% CI"]
        if t["validate"]:
            header += ["separate runs: mean return", "95% CI", "gap (normalised)", "gap 95% CI"]
        rows = []
        for k, budget in enumerate(t["budgets"]):
            single = by.get(("single", int(budget)))
            row = [f"{budget:,}", str(k + 1)]
            row += ([str(single["seeds"]), _num(single["mean_return"]),
                     f"[{_num(single['ci_low'])}, {_num(single['ci_high'])}]"] if single else ["0", "n/a", "n/a"])
            if t["validate"]:
                sep = by.get(("separate", int(budget)))
                row += [_num(sep["mean_return"]), f"[{_num(sep['ci_low'])}, {_num(sep['ci_high'])}]"] if sep else [
                    "n/a", "n/a"]
                row += ([_num(gap["gap"][k], 3), f"[{_num(gap['ci_low'][k], 3)}, {_num(gap['ci_high'][k], 3)}]"]
                        if gap else ["n/a", "n/a"])
            rows.append(row)
        out += _md_table(header, rows)
        if gap:
            m = gap["mean_abs_gap"]
            line = (f"Mean |gap| (normalised): {_num(m['estimate'], 3)} "
                    f"[{_num(m['ci_low'], 3)}, {_num(m['ci_high'], 3)}]")
            if "mean_abs_gap_after_first" in gap:
                a = gap["mean_abs_gap_after_first"]
                line += (f"; without the first budget (identical by construction): {_num(a['estimate'], 3)} "
                         f"[{_num(a['ci_low'], 3)}, {_num(a['ci_high'], 3)}]")
            floor = gap.get("noise_floor_after_first", gap["noise_floor"])
            out += [line + f"; noise floor (no true gap): {_num(floor, 3)}.", ""]
        out += [f"- left out: {r['folder']} ({r['status']})" for r in t["left_out"]]
        if f"tradeoff:{env}" in images:
            out += [f"![tradeoff {env}]({images[f'tradeoff:{env}']})", ""]
    return out


def _copy_tradeoff_figures(out: Path, res: Report, dest: Path) -> dict[str, str]:
    """``tradeoff/<env>/tradeoff.png`` -> ``report/tradeoff_<env>.png``; ``{"tradeoff:<env>": name}``."""
    import shutil

    images = {}
    for env in res.tradeoff:
        png = _tradeoff_folder(out, env) / "tradeoff.png"
        if png.is_file():
            name = f"tradeoff_{env.replace('/', '_')}.png"
            shutil.copyfile(png, dest / name)
            images[f"tradeoff:{env}"] = name
    return images


def markdown(res: Report, runs: list[RunData], images: dict[str, str]) -> str:
    """``report.md``: the answer first, then verdicts, costs, setup, per-env tables, aggregates, figures,
    the ``[tradeoff]`` curves."""
    out = [f"# clr-rl report: {res.name}", "", "## The answer", "", res.answer, ""]
    out += _md_verdicts(res) + _md_costs(res) + _md_provenance(res, runs) + _md_setup(res, runs)
    out += ["## Per environment", ""]
    for env in res.envs:
        out += _md_env(res, env, images)
    out += _md_aggregates(res)
    for key, title in (("aggregates", "Aggregate intervals"), ("improvement", "Probability of improvement"),
                       ("profiles", "Performance profiles"), ("efficiency", "Sample efficiency (IQM vs budget)")):
        if key in images:
            out += [f"### {title}", "", f"![{title}]({images[key]})", ""]
    out += _md_tradeoff(res, images)
    if res.missing:
        out += ["## Missing runs", "", f"{len(res.missing)} planned run(s) are not complete and are left out:", ""]
        out += [f"- {m['folder']}: {m['status']}" for m in res.missing] + [""]
    out += ["Produced by `clr-rl report`; numbers in `stats.json`."]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------ the command


def _baseline(resolved: dict[str, Any], arms: list[str], baseline: str | None) -> str:
    chosen = baseline or resolved.get("baseline") or ("fixed-tuned" if "fixed-tuned" in arms else None)
    if chosen is None:
        raise ConfigError(f"baseline: this batch's spec names no baseline and has no arm named 'fixed-tuned'; "
                         f"pass baseline= (one of {', '.join(arms)})")
    if chosen not in arms:
        raise ConfigError(f"baseline={chosen!r} is not an arm of this batch; expected one of {', '.join(arms)}")
    return str(chosen)


def _margin(resolved: dict[str, Any], margin: float | None) -> float:
    if margin is None:
        margin = ((resolved.get("spec") or {}).get("report") or {}).get("margin", 0.1)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 0.5:
        raise ConfigError(f"margin={margin!r} must be a number in (0, 0.5)")
    return float(margin)


def report(out: Path | str, *, baseline: str | None = None, reps: int = 2000, seed: int = 0,
           margin: float | None = None) -> int:
    """Write ``<out>/report/`` (``report.md``, ``stats.json``, PNGs); print the verdicts.

    ``margin``: the equivalence margin on P(improvement) (default: the spec's ``[report] margin``, else 0.1).
    """
    from clr_rl import plots

    out = Path(out)
    if reps < 10:
        raise ConfigError(f"reps={reps} must be >= 10")
    resolved, runs = collect(out)
    arms = list(dict.fromkeys(r.arm for r in runs))
    chosen, m = _baseline(resolved, arms, baseline), _margin(resolved, margin)
    result = analyse(out, resolved, runs, baseline=chosen, reps=reps, seed=seed, margin=m)
    dest = out / "report"
    dest.mkdir(parents=True, exist_ok=True)
    images = {**plots.report_figures(result, runs, dest), **_copy_tradeoff_figures(out, result, dest)}
    stats = to_json(result)
    write_text_atomic(dest / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")
    write_text_atomic(dest / "report.md", markdown(result, runs, images))
    from clr_rl.tensorboard import write_aggregates

    write_aggregates(out, stats)  # one TensorBoard run per (env, arm): mean and CI bands, rewritten each time
    done = sum(1 for r in runs if r.complete)
    print(f"report: {done}/{len(runs)} runs complete; baseline {chosen}")
    for v in result.verdicts.values():
        print(f"  {v}")
    print(f"wrote {dest / 'report.md'}, {dest / 'stats.json'} and {len(images)} figures")
    return 0
