"""Planning a spec's arm runs: relative LRs, tuned and range values, run configs."""

from __future__ import annotations

from typing import Any

from clr_rl.compare.spec import Arm, Spec, _fail, resolve_schedule
from clr_rl.errors import config_errors
from clr_rl.execute.planned import PlannedRun, run_folder
from clr_rl.phases.tune import TunedLR
from clr_rl.schedules.text import parse_schedule

__all__ = ["Results", "Tuned", "env_budget", "plan", "run_config", "tradeoff_request"]








def env_budget(spec: Spec, env_id: str) -> int:
    """The env's timesteps: the env's override, else the spec's, else the suite's default."""
    from clr_rl.run.envs import env_info

    over = spec.overrides.get(env_id, {})
    info = env_info(env_id)
    timesteps = over.get("timesteps") or spec.timesteps or (info.timesteps if info else None)
    if timesteps is None:
        raise _fail(spec.path, "timesteps", f"env {env_id!r} has no default budget in envs/; set timesteps")
    return int(timesteps)



def run_config(spec: Spec, env_id: str, settings: dict[str, Any], **fields: Any) -> Any:
    """A RunConfig for ``env_id``: the spec's run settings < the env's overrides < ``settings`` (an
    arm's); hyperparameters merge key by key in that order; ``fields`` (schedule, seed, ...) as given."""
    from clr_rl.run.config import RunConfig

    over = spec.overrides.get(env_id, {})
    if "vec_env" in over and "vec_env" not in settings:  # spec < env < arm, as for hyperparameters
        settings = {**settings, "vec_env": over["vec_env"]}
    kwargs = {**settings, "overrides": _hyperparams(spec, env_id, settings), "env_id": env_id,
              "timesteps": env_budget(spec, env_id),
              "eval_every": over.get("eval_every") or spec.eval_every,
              "eval_episodes": over.get("eval_episodes") or spec.eval_episodes, "threads": 1, **fields}
    return RunConfig(**kwargs)



def _hyperparams(spec: Spec, env_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Top-level ``[hyperparams]`` < ``[overrides.<env>.hyperparams]`` < the arm's ``hyperparams``."""
    return {**spec.raw.get("hyperparams", {}), **spec.overrides.get(env_id, {}).get("hyperparams", {}),
            **settings.get("overrides", {})}



Tuned = dict[tuple[str, str], TunedLR]  # (algo, env) -> its tuned fixed LR
Results = dict[tuple[str, str], dict[str, Any]]  # (algo, env) -> a range-test result (lr_range.json)



def _tuned_value(spec: Spec, arm: Arm, env_id: str, family: str,
                 tuned: Tuned | None) -> tuple[float, str, dict[str, Any]]:
    """The fixed LR that ``"tuned"`` means for this arm on this env, its provenance, and the
    provenance hyperparameters (``tuned_lr*``) the run records."""

    key = (arm.algo, env_id)
    if spec.tune is not None:
        if tuned is None or key not in tuned:
            return 1e-3, "tuned in this batch (pending)", {}
        result = tuned[key]
        note = f"tuned in this batch: {result.method}, criterion {result.criterion}, seeds {list(result.seeds)}"
        return result.value, note, {"tuned_lr": result.value, "tuned_lr_source": note,
                                    "tuned_lr_cost_timesteps": result.cost_timesteps}
    record = spec.tuned.get(key)
    if record is not None:
        note = f"clr-rl tune record {record.source} ({record.method}, criterion {record.criterion})"
        return record.value, note, {"tuned_lr": record.value, "tuned_lr_source": note,
                                    "tuned_lr_cost_timesteps": record.cost_timesteps}
    zoo_lr, note = _zoo_value(spec, arm, env_id, family)
    return zoo_lr, note, {}



def tradeoff_request(spec: Spec, env_id: str, tuned: Tuned | None = None) -> tuple[dict[str, Any], str]:
    """The keyword arguments of :func:`clr_rl.phases.tradeoff.tradeoff` (less ``out`` and ``workers``) for
    ``env_id`` under the spec's ``[tradeoff]``, and where its max LR comes from.

    ``max_lr = "tuned"`` means what ``"tuned"`` means for the arms: the batch's ``[tune]`` value
    (``tuned``; before tuning, the value in ``agents/`` stands in), else a ``tuned = [...]`` record,
    else ``agents/``. Hyperparameters: ``[hyperparams]`` < ``[overrides.<env>.hyperparams]``.
    """
    t = spec.tradeoff
    if t is None:
        raise ValueError("the spec has no [tradeoff] table")
    over = spec.overrides.get(env_id, {})
    hyperparams = _hyperparams(spec, env_id, {})
    max_lr: float | str = t.max_lr
    if t.max_lr != "tuned":
        note = f"max_lr {t.max_lr:g} given in the spec's [tradeoff]"
    elif spec.tune is not None and tuned is not None:
        r = tuned[(t.algo, env_id)]
        max_lr = r.value
        note = (f"max_lr {max_lr:g} = the env's tuned fixed LR, tuned in this batch: {r.method}, "
                f"criterion {r.criterion}, seeds {list(r.seeds)}")
    elif spec.tune is not None:
        note = "max_lr = the env's tuned fixed LR, tuned in this batch (pending)"
    elif (t.algo, env_id) in spec.tuned:
        record = spec.tuned[(t.algo, env_id)]
        max_lr = record.value
        note = f"max_lr {max_lr:g} = the env's tuned fixed LR, clr-rl tune record {record.source}"
    else:
        note = "max_lr = the env's tuned fixed LR in agents/"
    kwargs = {"algo": t.algo, "env_id": env_id, "timesteps": t.timesteps or env_budget(spec, env_id),
              "cycles": t.cycles, "t_mult": t.t_mult, "min_lr_fraction": t.min_lr_fraction, "max_lr": max_lr,
              "seeds": t.seeds, "validate": t.validate, "overrides": hyperparams,
              "eval_episodes": over.get("eval_episodes") or spec.eval_episodes, "device": t.device}
    return kwargs, note



def _zoo_value(spec: Spec, arm: Arm, env_id: str, family: str) -> tuple[float, str]:
    """The LR shipped in agents/ for this arm's algo on this env (``"zoo"``), and its provenance."""
    from clr_rl.run.agents import agent_config

    agent = agent_config(arm.algo, env_id, family, _hyperparams(spec, env_id, arm.settings))
    return agent.tuned_lr, f"agents/{arm.algo}.toml: {agent.tuned_lr_source}"



def _range_bounds(spec: Spec, arm: Arm, env_id: str, ranges: Results | None) -> tuple[dict[str, float] | None, str]:
    if not arm.refers_to("range"):
        return None, ""
    if ranges is None or (arm.algo, env_id) not in ranges:
        return {"base_lr": 1e-4, "max_lr": 1e-3}, "LR range test in this batch (pending)"
    r = ranges[(arm.algo, env_id)]
    return ({"base_lr": float(r["base_lr"]), "max_lr": float(r["max_lr"])},
            f"LR range test in this batch ({r['method']}): base_lr {r['base_lr']:g}, max_lr {r['max_lr']:g}")



def _tuned_candidates(spec: Spec) -> list[float]:
    """The values ``"tuned"`` can take once ``[tune]`` has run: every grid point, or the trials' range
    ends (an LR relation such as ``tuned/3 < 1e-3`` is monotone in the tuned value: its ends decide it)."""
    from clr_rl.phases.tune import lr_grid

    assert spec.tune is not None
    return lr_grid(*spec.tune.grid) if spec.tune.grid is not None else list(spec.tune.lr_range)


def _check_tuned_candidates(spec: Spec, arm: Arm, bounds: dict[str, float] | None, zoo_lr: float) -> None:
    """Before any tuning run trains: the arm's schedule must be valid for every value ``[tune]`` could
    give (``base_lr = "tuned/3"`` with a fixed ``max_lr = 1e-3`` fails once the tuned LR reaches 3e-3)."""
    for value in _tuned_candidates(spec):
        try:
            parse_schedule(resolve_schedule(arm.schedule, value, bounds, zoo_lr))
        except ValueError as exc:
            raise ValueError(f"with tuned = {value:g}, a value [tune] can pick ({_tune_source(spec)}): {exc}; make "
                             "the fixed LR fields relative to tuned too, or narrow [tune]") from None


def _tune_source(spec: Spec) -> str:
    assert spec.tune is not None
    if spec.tune.grid is not None:
        lo, hi, n = spec.tune.grid
        return f"grid = \"{lo:g}:{hi:g}:{n}\""
    return f"range = \"{spec.tune.lr_range[0]:g}:{spec.tune.lr_range[1]:g}\""


def plan(spec: Spec, *, tuned: Tuned | None = None, ranges: Results | None = None) -> list[PlannedRun]:
    """Resolve and validate every arm run of the spec (env ids, LRs, hyperparameters, aliasing).

    ``tuned`` / ``ranges`` hold the batch's own tuning and range-test results; without them (or
    for an (algo, env) they lack) a ``[tune]`` / ``[lr_range]`` spec is planned with stand-in values:
    a check of everything but the values themselves, before any tuning runs.
    """
    from clr_rl.run.envs import env_family
    from clr_rl.run.prepare import prepare

    runs = []
    for env_id in spec.envs:
        with config_errors(f"{spec.path}: envs"):
            family = env_family(env_id)
        for arm in spec.arms:
            with config_errors(f"{spec.path}: arms.{arm.name} on {env_id}"):
                tuned_lr, provenance, hp_extra = _tuned_value(spec, arm, env_id, family, tuned)
                bounds, range_note = _range_bounds(spec, arm, env_id, ranges)
                zoo_lr, zoo_note = _zoo_value(spec, arm, env_id, family)
                table = resolve_schedule(arm.schedule, tuned_lr, bounds, zoo_lr)
                if arm.refers_to("tuned") and provenance.endswith("(pending)"):
                    _check_tuned_candidates(spec, arm, bounds, zoo_lr)
                note = "; ".join(n for n in (provenance if arm.refers_to("tuned") else "", range_note,
                                             zoo_note if arm.refers_to("zoo") else "") if n)
                settings = {**arm.settings, "overrides": {**arm.settings.get("overrides", {}), **hp_extra}}
                for seed in spec.seeds:
                    config = run_config(spec, env_id, settings, schedule=parse_schedule(table), seed=seed,
                                        arm=arm.name, lr_provenance=note or "given in the spec")
                    runs.append(PlannedRun(env_id, arm.name, seed, run_folder(env_id, arm.name, seed),
                                           prepare(config)))
    return runs
