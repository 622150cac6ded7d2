"""The return-vs-budget tradeoff curve from one SGDR run (Portes et al. 2022)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clr_rl.execute.options import ExecOptions
from clr_rl.phases.tradeoff_plan import SINGLE_ARM, TradeoffPlan, _anneal_arm, _int, _planned_runs, plan_tradeoff
from clr_rl.phases.tradeoff_plot import _plot
from clr_rl.run.limits import MAX_SEEDS, check_count
from clr_rl.run.record import Status, read_record
from clr_rl.run.references import resolve_refs

__all__ = ["CSV_COLUMNS", "GAP_COLUMNS", "gap_stats", "tradeoff"]





CSV_COLUMNS = ("approach", "cycle", "budget", "eval_timesteps", "seeds", "mean_return", "std_return", "ci_low",
               "ci_high", "mean_normalised", "ci_low_normalised", "ci_high_normalised", "per_seed")



GAP_COLUMNS = ("cycle", "budget", "seeds", "gap_return", "gap_normalised", "ci_low_normalised",
               "ci_high_normalised", "identical_by_construction")





















def _finished(out: Path, run: Any) -> dict[str, Any] | None:
    """The run's record as plain data when it finished (read through :func:`clr_rl.run.record.read_record`)."""
    status, record = read_record(out / run.folder)
    return record if status == Status.FINISHED else None


def _status(out: Path, run: Any) -> str:
    status = read_record(out / run.folder)[0]
    return "not started" if status == Status.NOT_STARTED else status.value



def _at(rows: list[dict[str, float]], budget: int) -> dict[str, float] | None:
    """The evaluation made when the step counter reached ``budget`` (the first at or after it)."""
    for row in rows:
        if row["timesteps"] >= budget:
            return row
    return None



def gap_stats(single: Any, separate: Any, *, reps: int, seed: int, confidence: float = 0.95) -> dict[str, Any]:
    """Gap single - separate per budget, paired by seed, with percentile bootstrap CIs.

    ``single`` and ``separate`` are ``(seeds, budgets)`` arrays (seed ``s`` of both approaches
    share the SB3 seed). One bootstrap replicate resamples seeds with replacement (the same
    seeds for both approaches) and recomputes every budget's mean gap, their mean absolute
    value and their mean; ``rng = numpy.random.default_rng(seed)``. The mean absolute gap is
    positive even without any real gap (noise has an absolute value): ``noise_floor`` is what it
    would be if every budget's true gap were zero and its mean gap normal,
    ``mean_k sqrt(2/pi) sd_k / sqrt(n)`` (``sd_k``: the per-seed gaps' std, ddof=1).

    >>> r = gap_stats([[1.0, 2.0], [3.0, 6.0]], [[1.0, 1.0], [3.0, 3.0]], reps=200, seed=0)
    >>> r["gap"], r["mean_abs_gap"]["estimate"], r["mean_gap"]["estimate"], round(r["noise_floor"], 4)
    ([0.0, 2.0], 1.0, 1.0, 0.3989)
    """
    import numpy as np

    a, b = np.asarray(single, dtype=float), np.asarray(separate, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] < 1:
        raise ValueError(f"single {a.shape} and separate {b.shape} must be (seeds, budgets) arrays of one shape")
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.shape[0], size=(reps, d.shape[0]))
    boot = d[idx].mean(axis=1)  # (reps, budgets)
    alpha = (1 - confidence) / 2

    def summary(point: float, samples: Any) -> dict[str, float]:
        lo, hi = np.quantile(samples, [alpha, 1 - alpha])
        return {"estimate": float(point), "ci_low": float(lo), "ci_high": float(hi)}

    gap = d.mean(axis=0)
    lows, highs = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    out: dict[str, Any] = {
        "gap": [float(g) for g in gap], "ci_low": [float(v) for v in lows], "ci_high": [float(v) for v in highs],
        "mean_abs_gap": summary(float(np.abs(gap).mean()), np.abs(boot).mean(axis=1)),
        "mean_gap": summary(float(gap.mean()), boot.mean(axis=1)),
    }
    sd = d.std(axis=0, ddof=1) if d.shape[0] > 1 else np.full(d.shape[1], np.nan)
    floor = math.sqrt(2 / math.pi) * sd / math.sqrt(d.shape[0])
    out["noise_floor"] = float(floor.mean())
    if d.shape[1] > 1:
        out["mean_abs_gap_after_first"] = summary(float(np.abs(gap[1:]).mean()), np.abs(boot[:, 1:]).mean(axis=1))
        out["noise_floor_after_first"] = float(floor[1:].mean())
    return out



def _curve_row(approach: str, cycle: int, budget: int, evals: list[dict[str, float]], norm: Any) -> dict[str, Any]:
    from clr_rl.stats.aggregates import mean_ci_t

    values = [e["mean_return"] for e in evals]
    mean, std, lo, hi = mean_ci_t(values)
    n_mean, _, n_lo, n_hi = mean_ci_t([norm(v) for v in values])
    stamps = sorted({int(e["timesteps"]) for e in evals})
    return {"approach": approach, "cycle": cycle, "budget": budget,
            "eval_timesteps": "/".join(str(t) for t in stamps), "seeds": len(values), "mean_return": mean,
            "std_return": std, "ci_low": lo, "ci_high": hi, "mean_normalised": n_mean, "ci_low_normalised": n_lo,
            "ci_high_normalised": n_hi, "per_seed": ";".join(f"{v:g}" for v in values)}



def _normaliser(env_id: str, out: Path) -> tuple[Callable[[float], float], str]:
    """(return -> normalised score, the normalisation in words): the env's random and reference
    scores by :func:`clr_rl.run.references.resolve_refs` (the report's resolver; nothing is measured
    here), or the raw return when it has none."""
    refs = resolve_refs(out, {}, [env_id], measure=False)[env_id]
    if refs.normalisable:
        lo_ref, hi_ref = refs.random_score, float(refs.reference_score)  # type: ignore[arg-type]

        def norm(x: float) -> float:
            return (x - lo_ref) / (hi_ref - lo_ref)

        return norm, (f"(return - {lo_ref:g}) / ({hi_ref:g} - {lo_ref:g}): random score from {refs.random_source}, "
                      f"reference score from {refs.reference_source}")

    def raw(x: float) -> float:
        return x

    return raw, "no reference scores for this env: 'normalised' values are raw returns"



_ByArm = dict[str, dict[int, tuple[dict[str, Any], list[dict[str, float]]]]]



_PerSeed = dict[str, dict[int, list[float | None]]]



def _collect(out: Path, runs: list[Any]) -> tuple[_ByArm, list[dict[str, str]]]:
    """arm -> seed -> (run.json, evaluations) of the finished runs, and the folders left out with their status."""
    from clr_rl.store import read_evaluations

    by_arm: _ByArm = {}
    left_out: list[dict[str, str]] = []  # failed or diverged runs are not points of either curve
    for run in runs:
        record = _finished(out, run)
        if record is not None:
            by_arm.setdefault(run.arm, {})[run.seed] = (record, read_evaluations(out / run.folder / "evaluations.csv"))
        else:
            left_out.append({"folder": run.folder, "status": _status(out, run)})
    return by_arm, left_out



def _curves(plan: TradeoffPlan, by_arm: _ByArm, validate: bool,
            norm: Callable[[float], float]) -> tuple[list[dict[str, Any]], _PerSeed]:
    """The rows of ``tradeoff.csv`` (single, then separate: one per budget with an evaluation) and
    each approach's per-seed return at every budget (None where a seed has none)."""
    single = by_arm.get(SINGLE_ARM, {})
    rows: list[dict[str, Any]] = []
    per_seed: _PerSeed = {"single": {}, "separate": {}}
    for s, (_, evals) in sorted(single.items()):
        per_seed["single"][s] = [(_at(evals, b) or {}).get("mean_return") for b in plan.budgets]
    for k, budget in enumerate(plan.budgets):
        found = [e for e in (_at(ev, budget) for _, ev in single.values()) if e is not None]
        if found:
            rows.append(_curve_row("single", k + 1, budget, found, norm))
    if validate:
        for k, budget in enumerate(plan.budgets):
            sep = by_arm.get(_anneal_arm(budget), {})
            found = []
            for s, (_, evals) in sorted(sep.items()):
                e = _at(evals, budget)
                if e is not None:
                    found.append(e)
                    per_seed["separate"].setdefault(s, [None] * len(plan.budgets))[k] = e["mean_return"]
            if found:
                rows.append(_curve_row("separate", k + 1, budget, found, norm))
    return rows, per_seed



def _compute(plan: TradeoffPlan, by_arm: _ByArm, validate: bool, elapsed: float) -> dict[str, Any]:
    """Timesteps and wall seconds per seed of each approach, and the whole call's elapsed seconds."""
    wall_single = [rec.get("wall_seconds", 0.0) for rec, _ in by_arm[SINGLE_ARM].values()]
    compute: dict[str, Any] = {**plan.compute(), "single_wall_seconds_per_seed": sum(wall_single) / len(wall_single),
                               "elapsed_seconds": round(elapsed, 1)}
    if validate:
        walls: dict[int, float] = {}
        for budget in plan.budgets:
            for s, (rec, _) in by_arm.get(_anneal_arm(budget), {}).items():
                walls[s] = walls.get(s, 0.0) + float(rec.get("wall_seconds", 0.0))
        if walls:
            compute["separate_wall_seconds_per_seed"] = sum(walls.values()) / len(walls)
    return compute



def _gaps(plan: TradeoffPlan, per_seed: _PerSeed, norm: Callable[[float], float], reps: int,
          stats_seed: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """:func:`gap_stats` over the seeds with both approaches at every budget, and the rows of
    ``gap.csv``; (None, []) when no seed has both."""
    paired = [s for s in sorted(per_seed["single"]) if s in per_seed["separate"]
              and None not in per_seed["single"][s] and None not in per_seed["separate"][s]]
    if not paired:
        return None, []
    a = [[norm(v) for v in per_seed["single"][s] if v is not None] for s in paired]
    b = [[norm(v) for v in per_seed["separate"][s] if v is not None] for s in paired]
    gaps = gap_stats(a, b, reps=reps, seed=stats_seed)
    gaps["seeds"] = paired
    gap_rows = []
    for k, budget in enumerate(plan.budgets):
        raw = [(per_seed["single"][s][k] or 0.0) - (per_seed["separate"][s][k] or 0.0) for s in paired]
        gap_rows.append({"cycle": k + 1, "budget": budget, "seeds": len(paired),
                         "gap_return": sum(raw) / len(raw), "gap_normalised": gaps["gap"][k],
                         "ci_low_normalised": gaps["ci_low"][k], "ci_high_normalised": gaps["ci_high"][k],
                         "identical_by_construction": k == 0})
    return gaps, gap_rows



def _plan_record(plan: TradeoffPlan) -> dict[str, Any]:
    """``tradeoff.json``'s ``plan``: where the cycles and budgets fell, and the schedules."""
    return {"timesteps": plan.timesteps, "requested_timesteps": plan.requested_timesteps,
            "cycles": plan.cycles, "t_mult": plan.t_mult, "update_every": plan.update_every,
            "update_how": plan.update_how, "first_cycle_timesteps": plan.first_cycle_timesteps,
            "cycle_ends": list(plan.cycle_ends), "budgets": list(plan.budgets), "eval_every": plan.eval_every,
            "schedule": str(plan.schedule), "anneal_schedule": str(plan.anneal_schedule()),
            "lr_provenance": plan.lr_provenance}



def tradeoff(*, algo: str, env_id: str, timesteps: int, cycles: int, out: Path, t_mult: float = 2.0,
             min_lr_fraction: float = 0.0, max_lr: float | str = "tuned", seeds: int = 3, workers: int | None = None,
             options: ExecOptions | None = None,
             validate: bool = False, eval_episodes: int | None = None, overrides: dict[str, Any] | None = None,
             device: str = "auto", reps: int = 10_000, stats_seed: int = 0) -> dict[str, Any]:
    """Train ``seeds`` runs of one multiplicative cosine-restarts schedule and read the curve off them.

    Writes ``out/tradeoff.csv`` (one row per approach and budget: mean return over seeds, its
    Student-t 95% CI, the same normalised), ``out/tradeoff.png``, ``out/tradeoff.json`` (plan,
    compute, per-seed values, summary) and, with ``validate``, ``out/gap.csv``. Runs go through
    the batch runner (``out/runs/<env>/<arm>/seed<k>``): parallel, and resumable by running the
    same call again. Returns the ``tradeoff.json`` record.
    """
    from clr_rl.execute.batch import execute
    from clr_rl.store import check_writable, write_csv_atomic, write_text_atomic

    out = Path(out)
    _int("seeds", seeds, 1)
    check_count("seeds", seeds, MAX_SEEDS)
    if workers is not None:
        _int("workers", workers, 1)
    if eval_episodes is not None:
        _int("eval_episodes", eval_episodes, 1)
    _int("reps", reps, 100)
    check_writable(out)
    plan = plan_tradeoff(algo, env_id, timesteps, cycles, t_mult=t_mult, min_lr_fraction=min_lr_fraction,
                         max_lr=max_lr, overrides=overrides)
    runs = _planned_runs(plan, seeds, validate, eval_episodes, device)
    params = {"algo": algo, "env_id": env_id, "timesteps": timesteps, "cycles": cycles, "t_mult": t_mult,
              "min_lr_fraction": min_lr_fraction, "max_lr": max_lr, "seeds": seeds, "validate": validate,
              "eval_episodes": eval_episodes, "overrides": dict(overrides or {})}
    arms = 1 + (len(plan.budgets) if validate else 0)
    meta = {"name": f"tradeoff-{algo}-{env_id}".replace("/", "_"), "baseline": None,
            "spec": {"tradeoff": params}, "shape": f"1 env x {arms} arms x {seeds} seeds"}
    print(f"tradeoff: {plan.schedule} over {plan.timesteps:,} timesteps (asked {timesteps:,}); budgets "
          f"{', '.join(f'{b:,}' for b in plan.budgets)}; LR updated every {plan.update_every} ({plan.update_how})",
          flush=True)
    t0 = time.time()
    status = execute(runs, out, meta=meta, options=options or ExecOptions(workers=workers), quiet=True)
    elapsed = time.time() - t0

    norm, norm_note = _normaliser(env_id, out)
    by_arm, left_out = _collect(out, runs)
    single = by_arm.get(SINGLE_ARM, {})
    if not single:
        raise ValueError(f"no single run finished in {out}; see run.json in {out / 'runs'} for the errors")
    rows, per_seed = _curves(plan, by_arm, validate, norm)
    write_csv_atomic(out / "tradeoff.csv", CSV_COLUMNS, rows)
    compute = _compute(plan, by_arm, validate, elapsed)
    gaps, gap_rows = _gaps(plan, per_seed, norm, reps, stats_seed) if validate else (None, [])
    if gaps is not None:
        write_csv_atomic(out / "gap.csv", GAP_COLUMNS, gap_rows)
    result: dict[str, Any] = {
        "params": params, "plan": _plan_record(plan), "normalisation": norm_note, "curve": rows,
        "per_seed": {k: {str(s): v for s, v in d.items()} for k, d in per_seed.items()},
        "compute": compute, "gap": gaps, "left_out": left_out, "exit_status": status,
    }
    write_text_atomic(out / "tradeoff.json", json.dumps(result, indent=2, default=str) + "\n")
    _plot(out / "tradeoff.png", plan, rows, single, gaps, compute)
    _print(result)
    return result



def _print(result: dict[str, Any]) -> None:
    print(f"{'approach':<9} {'cycle':>5} {'budget':>9} {'seeds':>5} {'mean return':>12} {'95% CI':>20}")
    for r in result["curve"]:
        print(f"{r['approach']:<9} {r['cycle']:>5} {r['budget']:>9,} {r['seeds']:>5} {r['mean_return']:>12.2f} "
              f"{'[' + format(r['ci_low'], '.1f') + ', ' + format(r['ci_high'], '.1f') + ']':>20}")
    c = result["compute"]
    line = f"compute per seed: single run {c['single_timesteps_per_seed']:,} timesteps"
    if result["params"]["validate"]:
        line += (f", separate runs {c['separate_timesteps_per_seed']:,} "
                 f"({c['separate_over_single']:.2f}x the single run)")
    print(line)
    g = result.get("gap")
    if g:
        m = g["mean_abs_gap"]
        print(f"mean |gap| in normalised return (single - separate): {m['estimate']:.3f} "
              f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]" + (
                  f"; without the first budget (identical by construction): "
                  f"{g['mean_abs_gap_after_first']['estimate']:.3f} [{g['mean_abs_gap_after_first']['ci_low']:.3f}, "
                  f"{g['mean_abs_gap_after_first']['ci_high']:.3f}]" if "mean_abs_gap_after_first" in g else "")
              + f"; noise floor (no true gap) {g.get('noise_floor_after_first', g['noise_floor']):.3f}")
    for run in result["left_out"]:
        print(f"left out: {run['folder']} ({run['status']})")
    if result["left_out"]:
        print("the curves use the finished runs only; see run.json in the folders above")



