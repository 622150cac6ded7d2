"""The setup phase of a spec, planned: tuning runs, range jobs, tradeoff jobs, and their costs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clr_rl.compare.plan import Results, Tuned, run_config
from clr_rl.compare.spec import Spec
from clr_rl.execute.options import ExecOptions
from clr_rl.execute.planned import PlannedRun
from clr_rl.phases.lr_range import RangeJob
from clr_rl.phases.tradeoff_plan import TradeoffJob
from clr_rl.phases.tune import TunedLR
from clr_rl.store import read_json, write_json_atomic

__all__ = ["SetupPlan", "plan_setup", "plan_tradeoffs", "run_tradeoffs", "setup_costs"]


@dataclass(frozen=True)
class SetupPlan:
    """The setup phase of a spec: grid tuning runs, Optuna-tuned (algo, env) pairs, range tests."""

    tune_runs: list[PlannedRun]
    trials: list[tuple[str, str]]
    range_jobs: list[RangeJob]



def _needs(spec: Spec, ref: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(algo, env) -> the settings of the first arm whose LR fields refer to ``ref`` (for ``"tuned"``,
    also the ``[tradeoff]`` runs' settings when its ``max_lr = "tuned"``)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    t = spec.tradeoff
    for env_id in spec.envs:
        for arm in spec.arms:
            if arm.refers_to(ref):
                out.setdefault((arm.algo, env_id), arm.settings)
        if ref == "tuned" and t is not None and t.max_lr == "tuned":
            out.setdefault((t.algo, env_id), {"algo": t.algo, "device": t.device})
    return out



def _tune_runs(spec: Spec, algo: str, env_id: str, settings: dict[str, Any], lrs: list[float]) -> list[PlannedRun]:
    from clr_rl.run.prepare import prepare
    from clr_rl.schedules.base import Constant

    assert spec.tune is not None
    runs = []
    for lr in lrs:
        name = f"lr{lr:.3g}"
        for seed in spec.tune.seeds:
            config = run_config(spec, env_id, settings, schedule=Constant(lr), seed=seed, arm=name,
                                lr_provenance=f"[tune] candidate {lr:.3g}")
            runs.append(PlannedRun(env_id, name, seed, f"tune/{env_id}/{name}/seed{seed}", prepare(config)))
    return runs



def plan_setup(spec: Spec) -> SetupPlan:
    """Validate and list the setup phase: ``[tune]`` runs per (algo, env) that an arm's ``"tuned"``
    needs, and ``[lr_range]`` tests per (algo, env) that an arm's ``"range"`` needs."""
    from clr_rl.errors import config_errors
    from clr_rl.phases.lr_single import single_resolution
    from clr_rl.phases.tune import lr_grid
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.schedules.base import Exponential

    tune_runs: list[PlannedRun] = []
    trials: list[tuple[str, str]] = []
    if spec.tune is not None:
        for (algo, env_id), settings in _needs(spec, "tuned").items():
            with config_errors(f"{spec.path}: tune on {env_id}"):
                if spec.tune.grid is not None:
                    tune_runs += _tune_runs(spec, algo, env_id, settings, lr_grid(*spec.tune.grid))
                else:
                    _tune_runs(spec, algo, env_id, settings, [spec.tune.lr_range[0]])  # validates one
                    trials.append((algo, env_id))
    jobs = []
    if spec.lr_range is not None:
        r = spec.lr_range
        seed = max(spec.seeds) + 1000  # disjoint from the evaluation seeds
        for (algo, env_id), settings in _needs(spec, "range").items():
            with config_errors(f"{spec.path}: lr_range on {env_id}"):
                base = run_config(spec, env_id, settings, schedule=Exponential(*r.lr_range), seed=seed)
                timesteps = r.timesteps or base.timesteps
                prepare(RunConfig.from_dict({**base.to_dict(), "timesteps": timesteps}))
                if r.method == "single":  # refuses a budget that cannot give r.points LR points
                    single_resolution(algo, env_id, timesteps, overrides=dict(base.overrides), points=r.points,
                                      start_lr=r.lr_range[0], end_lr=r.lr_range[1])
            jobs.append(RangeJob(algo, env_id, r.method, timesteps, r.seeds, seed, f"lr_range/{env_id}",
                                 dict(base.overrides), base.device, r.points, r.lr_range, r.grid, base.timesteps))
    return SetupPlan(tune_runs, trials, jobs)



def _setup_on_disk(setup: SetupPlan, out: Path) -> tuple[Tuned | None, Results | None]:
    """(tuned, ranges) as an earlier run of this batch left them in ``out``: (algo, env) -> result for
    each tuning and range test finished there, or None where none is (the arms whose values are
    missing are planned with stand-ins). Read, not checked: the batch itself reruns its setup phase."""
    keys = dict.fromkeys([(r.prepared.config.algo, r.env_id) for r in setup.tune_runs] + setup.trials)
    tuned = {key: TunedLR.read(path) for key in keys if (path := out / "tune" / key[1] / "tuned_lr.json").is_file()}
    ranges = _on_disk({(job.algo, job.env_id): out / job.folder / "lr_range.json" for job in setup.range_jobs})
    return tuned or None, ranges



def _on_disk(paths: dict[tuple[str, str], Path]) -> Results | None:
    """key -> the JSON at its path, for the paths that hold one; None when none does."""
    return {key: read_json(path) for key, path in paths.items() if path.is_file()} or None



def setup_costs(spec: Spec, out: Path, setup: SetupPlan, tuned: dict[tuple[str, str], Any],
                ranges: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    """What it cost to set up each arm on each env: tuning, a range test, or nothing (a general setting)."""
    rows = []
    for env_id in spec.envs:
        for arm in spec.arms:
            key = (arm.algo, env_id)
            parts = []
            if arm.refers_to("tuned"):
                if key in tuned:
                    t = tuned[key]
                    parts.append(("tune", t.cost_timesteps, t.wall_seconds,
                                  f"{t.method}, {len(t.tried)} LRs x {len(t.seeds)} seeds, "
                                  f"best {t.value:g} by {t.criterion}, {t.where_in_grid()}"))
                elif key in spec.tuned:
                    rec = spec.tuned[key]
                    parts.append(("tune", rec.cost_timesteps, rec.wall_seconds,
                                  f"clr-rl tune record ({rec.method}), {rec.where_in_grid()}"))
                else:
                    parts.append(("none", 0, 0.0, "tuned LR shipped in agents/ (its tuning cost is not measured here)"))
            if arm.refers_to("range") and key in ranges:
                r = ranges[key]
                parts.append(("lr_range", int(r.get("cost_timesteps", 0)), float(r.get("wall_seconds", 0.0)),
                              f"LR range test ({r['method']}): base_lr {r['base_lr']:g}, max_lr {r['max_lr']:g}"))
            if not parts:
                parts.append(("none", 0, 0.0, "a general setting: no per-env setup"))
            rows.append({"env": env_id, "arm": arm.name, "method": "+".join(p[0] for p in parts),
                         "timesteps": sum(p[1] for p in parts), "wall_seconds": round(sum(p[2] for p in parts), 3),
                         "detail": "; ".join(p[3] for p in parts)})
    return rows



def plan_tradeoffs(spec: Spec, out: Path, tuned: dict[tuple[str, str], Any] | None = None) -> list[TradeoffJob]:
    """Validate and place the ``[tradeoff]`` curve of every env (no training): cycles, budgets and LR
    bounds by :func:`clr_rl.phases.tradeoff.plan_tradeoff`, the run itself by :func:`clr_rl.run.prepare.prepare`.
    Bad input is a ConfigError naming ``tradeoff on <env>``."""
    from clr_rl.compare.plan import tradeoff_request
    from clr_rl.errors import config_errors
    from clr_rl.phases.tradeoff import plan_tradeoff
    from clr_rl.run.prepare import prepare

    if spec.tradeoff is None:
        return []
    jobs = []
    for env_id in spec.envs:
        with config_errors(f"{spec.path}: tradeoff on {env_id}"):
            kwargs, note = tradeoff_request(spec, env_id, tuned)
            p = plan_tradeoff(kwargs["algo"], env_id, kwargs["timesteps"], kwargs["cycles"], t_mult=kwargs["t_mult"],
                              min_lr_fraction=kwargs["min_lr_fraction"], max_lr=kwargs["max_lr"],
                              overrides=kwargs["overrides"])
            prepare(run_config(spec, env_id, {"algo": p.algo, "device": kwargs["device"]}, schedule=p.schedule,
                               seed=0, timesteps=p.timesteps, eval_every=p.eval_every,
                               eval_episodes=kwargs["eval_episodes"], arm="restarts"))
        jobs.append(TradeoffJob(env_id, kwargs, note, p, out / "tradeoff" / env_id))
    return jobs



def run_tradeoffs(spec: Spec, out: Path, tuned: dict[tuple[str, str], TunedLR], options: ExecOptions) -> int:
    """Train (or resume) each env's ``[tradeoff]`` curve into ``<out>/tradeoff/<env>/``; 0 when every
    run finished, 1 otherwise. ``max_lr.json`` beside it records where the max LR came from."""
    from clr_rl.phases.tradeoff import tradeoff

    status = 0
    for job in plan_tradeoffs(spec, out, tuned):
        print(f"{spec.name} tradeoff: {job.describe()}", flush=True)
        write_json_atomic(job.folder / "max_lr.json", {"max_lr": job.kwargs["max_lr"], "source": job.max_lr_note})
        try:
            result = tradeoff(out=job.folder, options=options, **job.kwargs)
        except ValueError as exc:  # no single run finished: the runs' own records say why
            print(f"tradeoff on {job.env_id}: {exc}", file=sys.stderr)
            status = 1
            continue
        status |= 1 if result["exit_status"] else 0
    return status




