"""``clr-rl report``: statistics, plots, ``report.md`` and ``stats.json`` for a batch folder.

Works on a batch that is still running or has failed runs: finished runs are used,
the rest are listed as missing. The same ``seed`` gives byte-identical ``stats.json``.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl.envs import env_info
from clr_rl.store import read_evaluations, read_json, write_text_atomic

__all__ = ["RunData", "collect", "compute_stats", "report"]

_GRID = np.linspace(0.0, 1.0, 21)  # fractions of the budget for sample-efficiency curves


@dataclass(frozen=True)
class RunData:
    env: str
    arm: str
    seed: int
    folder: str
    status: str
    timesteps: int
    schedule: str
    evals: list[dict[str, float]]
    record: dict[str, Any]


def collect(out: Path) -> tuple[dict[str, Any], list[RunData]]:
    """The batch's resolved spec and every planned run with whatever it has written so far."""
    path = out / "spec.resolved.json"
    if not path.is_file():
        raise ValueError(f"{str(out)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json(path)
    runs = []
    for r in resolved["runs"]:
        folder = out / r["folder"]
        record = read_json(folder / "run.json") if (folder / "run.json").is_file() else {}
        status = record.get("status", "not started")
        runs.append(RunData(r["env_id"], r["arm"], int(r["seed"]), r["folder"],
                            "done" if status == "finished" else status, int(r["timesteps"]), r["schedule"],
                            read_evaluations(folder / "evaluations.csv"), record))
    return resolved, runs


def _refs(env: str, finals: list[float]) -> tuple[float, float, str]:
    info = env_info(env)
    if info is not None:
        return info.random_score, info.reference_score, info.reference_source
    lo, hi = (min(finals), max(finals)) if finals else (0.0, 1.0)
    return lo, (hi if hi > lo else lo + 1.0), "no reference in envs/: normalised by this batch's min and max"


def _curve(run: RunData, grid: np.ndarray) -> np.ndarray:
    t = np.array([e["timesteps"] for e in run.evals], dtype=float) / run.timesteps
    y = np.array([e["mean_return"] for e in run.evals], dtype=float)
    return np.interp(grid, t, y)


def _threshold_time(run: RunData, threshold: float | None) -> float | None:
    if threshold is None:
        return None
    for e in run.evals:
        if e["mean_return"] >= threshold:
            return e["timesteps"]
    return None


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


def compute_stats(resolved: dict[str, Any], runs: list[RunData], *, baseline: str, reps: int,
                  seed: int) -> dict[str, Any]:
    """Every number of the report, from finished runs; ``seed`` fixes the bootstrap."""
    from clr_rl.runner import auc
    from clr_rl.stats import AGGREGATES, bootstrap_ci, iqm, mean_ci_t, normalize, performance_profile
    from clr_rl.stats import probability_of_improvement as poi

    rng = np.random.default_rng(seed)
    envs = list(dict.fromkeys(r.env for r in runs))
    arms = list(dict.fromkeys(r.arm for r in runs))
    done = [r for r in runs if r.status == "done" and r.evals]
    per_env: dict[str, Any] = {}
    norm: dict[str, dict[str, list[float]]] = {a: {e: [] for e in envs} for a in arms}
    curves: dict[str, dict[str, list[np.ndarray]]] = {a: {e: [] for e in envs} for a in arms}
    for env in envs:
        finals_all = [r.evals[-1]["mean_return"] for r in done if r.env == env]
        rnd, ref, source = _refs(env, finals_all)
        info = env_info(env)
        threshold = info.threshold if info else None
        per_env[env] = {"random_score": rnd, "reference_score": ref, "reference_source": source,
                        "threshold": threshold, "arms": {}}
        for arm in arms:
            rs = [r for r in done if r.env == env and r.arm == arm]
            finals = [r.evals[-1]["mean_return"] for r in rs]
            aucs = [auc(r.evals) for r in rs]
            m, s, lo, hi = mean_ci_t(finals)
            am, asd, alo, ahi = mean_ci_t(aucs)
            times = [_threshold_time(r, threshold) for r in rs]
            reached = [t for t in times if t is not None]
            planned = sum(1 for r in runs if r.env == env and r.arm == arm)
            per_env[env]["arms"][arm] = {
                "seeds_done": len(rs), "seeds_planned": planned,
                "final_return": {"mean": m, "std": s, "ci95": [lo, hi], "per_seed": finals},
                "auc": {"mean": am, "std": asd, "ci95": [alo, ahi], "per_seed": aucs},
                "threshold_reached": f"{len(reached)}/{len(rs)}" if threshold is not None else None,
                "timesteps_to_threshold_median": float(np.median(reached)) if reached else None,
                "schedule": rs[0].schedule if rs else next((r.schedule for r in runs
                                                             if r.env == env and r.arm == arm), ""),
            }
            norm[arm][env] = [float(v) for v in normalize(finals, rnd, ref)] if finals else []
            curves[arm][env] = [normalize(_curve(r, _GRID), rnd, ref) for r in rs]

    def matrix(arm: str) -> np.ndarray | None:
        n = min(len(norm[arm][e]) for e in envs)
        if n == 0:
            return None
        return np.array([[norm[arm][e][i] for e in envs] for i in range(n)])

    aggregates: dict[str, Any] = {}
    for arm in arms:
        mat = matrix(arm)
        aggregates[arm] = None if mat is None else {
            name: dict(zip(("estimate", "ci_low", "ci_high"), bootstrap_ci(mat, fn, reps=reps, rng=rng)))
            for name, fn in AGGREGATES.items()
        }
        if mat is not None:
            aggregates[arm]["runs_per_env"] = int(mat.shape[0])
            finished = sum(len(norm[arm][e]) for e in envs)
            aggregates[arm]["finished_runs_left_out"] = finished - int(mat.size)
    improvement: dict[str, Any] = {}
    base = matrix(baseline) if baseline in arms else None
    for arm in arms:
        mat = matrix(arm)
        if arm == baseline or mat is None or base is None:
            continue
        p, lo, hi = poi(mat, base, reps=reps, rng=rng)
        improvement[arm] = {"estimate": p, "ci_low": lo, "ci_high": hi}
    mats = [mat.reshape(-1) for mat in map(matrix, arms) if mat is not None]
    all_scores = np.concatenate(mats or [np.zeros(1)])
    taus = np.linspace(min(0.0, float(all_scores.min())), max(1.0, float(all_scores.max())), 41)
    profiles: dict[str, Any] = {"taus": taus.tolist()}
    efficiency: dict[str, Any] = {"fractions": _GRID.tolist()}
    for arm in arms:
        mat = matrix(arm)
        if mat is None:
            continue
        pt, band_lo, band_hi = performance_profile(mat, taus, reps=max(reps // 4, 50), rng=rng)
        profiles[arm] = {"fraction": pt.tolist(), "ci_low": band_lo.tolist(), "ci_high": band_hi.tolist()}
        n = min(len(curves[arm][e]) for e in envs)
        band = [bootstrap_ci(np.array([[curves[arm][e][i][g] for e in envs] for i in range(n)]), iqm,
                             reps=max(reps // 4, 50), rng=rng) for g in range(len(_GRID))]
        efficiency[arm] = {"iqm": [b[0] for b in band], "ci_low": [b[1] for b in band],
                           "ci_high": [b[2] for b in band]}
    verdicts = {arm: _verdict(arm, baseline, improvement.get(arm), aggregates) for arm in arms if arm != baseline}
    missing = [{"folder": r.folder, "status": r.status} for r in runs if r.status != "done"]
    return _clean({
        "name": resolved.get("name"), "baseline": baseline, "bootstrap": {"reps": reps, "seed": seed,
                                                                          "method": "stratified, percentile 95%"},
        "envs": envs, "arms": arms, "per_env": per_env, "aggregates": aggregates,
        "probability_of_improvement": improvement, "performance_profiles": profiles,
        "sample_efficiency": efficiency, "verdicts": verdicts, "missing": missing,
    })


def _verdict(arm: str, baseline: str, poi: dict[str, float] | None, aggregates: dict[str, Any]) -> str:
    if poi is None:
        return f"{arm}: not enough finished runs to compare with {baseline}"
    a, b = aggregates.get(arm), aggregates.get(baseline)
    iqm_part = ""
    if a and b:
        iqm_part = (f"; IQM {a['iqm']['estimate']:.3f} [{a['iqm']['ci_low']:.3f}, {a['iqm']['ci_high']:.3f}] vs "
                    f"{b['iqm']['estimate']:.3f} [{b['iqm']['ci_low']:.3f}, {b['iqm']['ci_high']:.3f}]")
    p = f"P(improvement) {poi['estimate']:.2f} [{poi['ci_low']:.2f}, {poi['ci_high']:.2f}]"
    if poi["ci_low"] > 0.5:
        word = "BEATS"
    elif poi["ci_high"] < 0.5:
        word = "is WORSE than"
    else:
        word = "MATCHES (no significant difference from)"
    runs = min(a["runs_per_env"] if a else 0, b["runs_per_env"] if b else 0)
    caveat = (f" (only {runs} runs per env: bootstrap CIs are coarse below 5; treat as tentative)"
              if runs < 5 else "")
    return f"{arm} {word} {baseline}: {p}{iqm_part}{caveat}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _f(x: Any, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _markdown(stats: dict[str, Any], resolved: dict[str, Any], runs: list[RunData], images: dict[str, str]) -> str:
    first = next((r.record for r in runs if r.record.get("versions")), {})
    versions = first.get("versions", {})
    cfg = first.get("config", {})
    walls = [float(r.record["wall_seconds"]) for r in runs if isinstance(r.record.get("wall_seconds"), (int, float))]
    seeds = sorted({r.seed for r in runs})
    out = [f"# clr-rl report: {stats['name']}", ""]
    out += ["## Verdict against the baseline", ""]
    out += [f"- {v}" for v in stats["verdicts"].values()] or ["- (no arm to compare)"]
    out += ["", "Verdict rule: BEATS when the 95% CI of the probability of improvement lies above 0.5, "
            "WORSE when it lies below 0.5, otherwise MATCHES (no significant difference).", ""]
    out += ["## Setup", ""]
    budgets = {r.env: r.timesteps for r in runs}
    out += [f"- algo: {cfg.get('algo', '?')}; envs: " + ", ".join(f"{e} ({budgets[e]:,} timesteps)"
                                                                     for e in stats["envs"])]
    out += [f"- arms: {len(stats['arms'])}; seeds: {seeds}; baseline: `{stats['baseline']}`"]
    evals = {(r.env, r.record.get("config", {}).get("eval_every"), r.record.get("config", {}).get("eval_episodes"))
             for r in runs if r.record.get("config")}  # a failed run's record may hold no config
    out += ["- evaluation: deterministic policy on a separate env (seed + 10000), "
            + "; ".join(f"{e}: {n} episodes every {k:,} steps" for e, k, n in sorted(evals) if k)]
    out += ["- statistics: final return = last evaluation; AUC = trapezoid area under the evaluation curve / "
            "timesteps covered; aggregates over envs on normalised scores (random=0, reference=1) with "
            f"{stats['bootstrap']['method']} bootstrap CIs, {stats['bootstrap']['reps']} resamples, "
            f"seed {stats['bootstrap']['seed']}; per-env CIs are Student-t over seeds."]
    out += ["", "### Baseline provenance and tuning cost", ""]
    rows = []
    for env in stats["envs"]:
        run = next((r for r in runs if r.env == env and r.arm == stats["baseline"] and r.record.get("config")),
                   None)
        agent = run.record.get("config", {}).get("agent", {}) if run else {}
        cost = agent.get("tuned_lr_cost_timesteps")
        rows.append([env, str(agent.get("tuned_lr", "?")), agent.get("tuned_lr_source", "?"),
                     f"{cost:,} timesteps (clr-rl tune)" if cost else "not measured here (value shipped in agents/)"])
    out += [_md_table(["env", "tuned fixed LR", "provenance", "tuning cost"], rows)]
    out += ["", "The cyclical arms used no per-env tuning in this batch beyond what their spec states.", ""]
    out += ["- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform")]
    out += [f"- hardware: {versions.get('platform', platform.platform())}, {os.cpu_count()} CPUs seen by the "
            f"report; device {cfg.get('device', '?')}"]
    if walls:
        out += [f"- wall time: {sum(walls):,.0f} run-seconds in all ({len(walls)} runs, "
                f"median {float(np.median(walls)):.1f} s per run)"]
    out += ["", "## Per environment", ""]
    for env in stats["envs"]:
        e = stats["per_env"][env]
        out += [f"### {env}", "", f"Normalisation: random {e['random_score']}, reference {e['reference_score']} "
                f"({e['reference_source']}). Threshold: {e['threshold']}.", ""]
        rows = []
        for arm, a in e["arms"].items():
            fr, au = a["final_return"], a["auc"]
            rows.append([arm, f"`{a['schedule']}`", f"{a['seeds_done']}/{a['seeds_planned']}",
                         f"{_f(fr['mean'])} ± {_f(fr['std'])}", f"[{_f(fr['ci95'][0])}, {_f(fr['ci95'][1])}]",
                         f"{_f(au['mean'])} [{_f(au['ci95'][0])}, {_f(au['ci95'][1])}]",
                         f"{a['threshold_reached'] or 'n/a'}, median {_f(a['timesteps_to_threshold_median'], 0)}"])
        out += [_md_table(["arm", "schedule", "seeds", "final return mean ± std", "95% CI", "AUC [95% CI]",
                           "reached threshold, timesteps"], rows), ""]
        if env in images:
            out += [f"![learning curves {env}]({images[env]})", ""]
    out += ["## Aggregates over envs (normalised final return)", ""]
    rows = []
    for arm, a in stats["aggregates"].items():
        if a is None:
            rows.append([arm, "n/a", "n/a", "n/a", "n/a", "0"])
            continue
        rows.append([arm] + [f"{_f(a[k]['estimate'], 3)} [{_f(a[k]['ci_low'], 3)}, {_f(a[k]['ci_high'], 3)}]"
                             for k in ("iqm", "median", "mean", "optimality_gap")] + [str(a["runs_per_env"])])
    out += [_md_table(["arm", "IQM", "median", "mean", "optimality gap", "runs/env"], rows), ""]
    left = {arm: a["finished_runs_left_out"] for arm, a in stats["aggregates"].items()
            if a and a.get("finished_runs_left_out")}
    if left:
        out += ["Aggregates use the same number of runs in every env (the first seeds finished everywhere); "
                "finished runs left out: " + ", ".join(f"{arm} {n}" for arm, n in left.items()) + ".", ""]
    if stats["probability_of_improvement"]:
        out += [f"### Probability of improvement over `{stats['baseline']}`", ""]
        out += [_md_table(["arm", "P(arm > baseline)", "95% CI"],
                          [[a, _f(p["estimate"], 3), f"[{_f(p['ci_low'], 3)}, {_f(p['ci_high'], 3)}]"]
                           for a, p in stats["probability_of_improvement"].items()]), ""]
    for key, title in (("aggregates", "Aggregate intervals"), ("improvement", "Probability of improvement"),
                       ("profiles", "Performance profiles"), ("efficiency", "Sample efficiency (IQM vs budget)")):
        if key in images:
            out += [f"### {title}", "", f"![{title}]({images[key]})", ""]
    if stats["missing"]:
        out += ["## Missing runs", "", f"{len(stats['missing'])} planned run(s) are not finished and are left out:", ""]
        out += [f"- {m['folder']}: {m['status']}" for m in stats["missing"]]
        out += [""]
    out += ["Produced by `clr-rl report`; numbers in `stats.json`."]
    return "\n".join(out) + "\n"


def report(out: Path | str, *, baseline: str | None = None, reps: int = 2000, seed: int = 0) -> int:
    """Write ``<out>/report/`` (``report.md``, ``stats.json``, PNGs); print the verdicts."""
    out = Path(out)
    if reps < 10:
        raise ValueError(f"--reps={reps} must be >= 10")
    resolved, runs = collect(out)
    arms = list(dict.fromkeys(r.arm for r in runs))
    baseline = baseline or resolved.get("baseline") or next((a for a in arms if "fixed" in a or "tuned" in a), arms[0])
    if baseline not in arms:
        raise ValueError(f"--baseline={baseline!r} is not an arm of this batch; expected one of {', '.join(arms)}")
    stats = compute_stats(resolved, runs, baseline=baseline, reps=reps, seed=seed)
    dest = out / "report"
    dest.mkdir(parents=True, exist_ok=True)
    from clr_rl import plots

    images = plots.report_figures(stats, runs, dest)
    write_text_atomic(dest / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")
    write_text_atomic(dest / "report.md", _markdown(stats, resolved, runs, images))
    done = sum(1 for r in runs if r.status == "done")
    print(f"report: {done}/{len(runs)} runs finished; baseline {baseline}")
    for v in stats["verdicts"].values():
        print(f"  {v}")
    print(f"wrote {dest / 'report.md'}, {dest / 'stats.json'} and {len(images)} figures")
    return 0

