"""From scored runs to the report's statistics: per-env tables, aggregates, verdicts, profiles, costs."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl import stats as st
from clr_rl.analysis.collect import _GRID, RunData, Score, _matrix, _seeds_in_all, score_runs
from clr_rl.analysis.results import (
    ALPHA,
    MIN_SEEDS,
    RULES,
    Aggregates,
    ArmEnv,
    Band,
    Comparison,
    Cost,
    EnvStats,
    Interval,
    Report,
    SeedSummary,
)
from clr_rl.analysis.sequential_report import answer_sentence, sequential_comparisons, sequential_summary
from clr_rl.run.references import EnvRefs, resolve_refs
from clr_rl.store import read_json

__all__ = ["analyse", "compute_stats", "to_json", "tradeoff_curves"]


# ------------------------------------------------------------------------ tradeoff curves (read back)
def _tradeoff_folder(out: Path, env: str) -> Path:
    return out / "tradeoff" / env



def tradeoff_curves(out: Path, envs: list[str]) -> dict[str, dict[str, Any]]:
    """env -> the numbers of its ``[tradeoff]`` curve, read from ``tradeoff/<env>/tradeoff.json`` (and
    ``max_lr.json``, where the max LR came from) as :func:`clr_rl.phases.tradeoff.tradeoff` wrote them.
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
    cis = {name: Interval(*st.bootstrap_ci(mat, agg, reps=reps, rng=rng)) for name, agg in st.AGGREGATES.items()}
    left = sum(len(table[e, arm]) for e in envs) - mat.size
    return Aggregates(seeds, len(seeds), int(left), cis)



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
            reason += (f"; about {need} seeds per env for 80% power if the arms stay as observed (adding seeds to this "
                       "batch and looking again inflates the false-verdict rate: run it as a [sequential] batch, "
                       f"see below)" if need else
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
    for verdict, phrase in (("WORSE", "did worse"), ("INCONCLUSIVE", "inconclusive"),
                            ("NO VERDICT", "got no verdict")):
        if by[verdict] and not (verdict == "WORSE" and head.startswith("No:")):
            if verdict == "INCONCLUSIVE":
                phrase = ("was " if len(by[verdict]) == 1 else "were ") + phrase
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
    seq = sequential_summary(out, runs)
    if seq is not None:
        comparisons = sequential_comparisons(seq, comparisons, baseline)
    taus, profiles = _profiles(table, refs, agg_envs, aggregates, reps, seed)
    costs = _costs(resolved, runs, envs, arms, baseline)
    answer = _answer(comparisons, costs, baseline, envs, runs, margin)
    correction = "Holm (step-down) over every arm compared with the baseline"
    if seq is not None:
        answer, correction = f"{answer} {answer_sentence(seq)}", ("group-sequential: graphical Holm over arms, "
                                                                  "boundaries spent over looks (sequential.json)")
    return Report(
        resolved.get("name"), baseline, margin, ALPHA, correction,
        {"reps": reps, "seed": seed, "method": "stratified, percentile; one stream per (seed, purpose, arm)"},
        dict(st.DEFINITIONS), dict(RULES), envs, agg_envs, arms, _per_env(runs, table, refs, envs, arms), aggregates,
        comparisons, {a: c.text for a, c in comparisons.items()}, taus, profiles, _GRID.tolist(),
        _efficiency(table, refs, agg_envs, aggregates, reps, seed), costs,
        answer, [{"folder": r.folder, "status": r.status} for r in runs if not r.complete], tradeoff_curves(out, envs),
        seq)



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
    for arm, agg in data["aggregates"].items():  # stats.json: each aggregate's interval beside the seeds
        if agg is not None:
            data["aggregates"][arm] = {k: v for k, v in agg.items() if k != "intervals"} | agg["intervals"]
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
