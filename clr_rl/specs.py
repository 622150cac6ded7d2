"""Comparison specs: TOML read into frozen dataclasses at one boundary (:func:`load_spec`).

A spec names environments x arms x seeds::

    name = "classic-demo"
    algo = "ppo"                    # or per arm
    timesteps = 50_000              # default: each env's budget from envs/
    seeds = 3                       # or [0, 1, 2]
    envs = ["CartPole-v1"]          # or suite = "classic"
    [eval]
    every = 5_000
    episodes = 10
    [hyperparams]                   # overrides for every run
    [overrides."CartPole-v1"]       # per env: timesteps, eval_every, eval_episodes, hyperparams
    [arms.fixed-tuned]
    kind = "constant"
    lr = "tuned"                    # the env's tuned fixed LR from agents/
    [arms.around-tuned]             # relative to the tuned LR: "tuned", "tuned*3", "tuned/3"
    kind = "triangular2"
    base_lr = "tuned/3"
    max_lr = "tuned*3"
    cycles = 4

An arm may also set ``algo``, ``optimizer`` and a ``hyperparams`` table. Every run
is resolved and validated by :func:`plan` before anything is trained or written.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clr_rl.schedules import SCHEDULE_KINDS, parse_schedule

__all__ = ["Arm", "PlannedRun", "Spec", "load_spec", "plan", "resolve_relative"]

_TOP = {"name", "algo", "timesteps", "seeds", "envs", "suite", "eval", "hyperparams", "overrides", "arms",
        "device", "optimizer", "description", "baseline", "gpus_per_run", "tuned"}
_ARM_EXTRA = {"algo", "optimizer", "hyperparams", "lr_per_step", "cycle_momentum"}
_OVERRIDE_KEYS = {"timesteps", "eval_every", "eval_episodes", "hyperparams"}
_LR_FIELDS = {"lr", "start_lr", "end_lr", "base_lr", "max_lr", "min_lr"}
_RELATIVE = re.compile(r"^\s*(?:(?P<pre>[0-9.eE+-]+)\s*\*\s*)?tuned\s*(?:(?P<op>[*/])\s*(?P<num>[0-9.eE+-]+))?\s*$")


@dataclass(frozen=True)
class Arm:
    name: str
    schedule: dict[str, Any]  # the table, with LR fields possibly relative ("tuned*3")
    algo: str
    optimizer: str
    hyperparams: dict[str, Any] = field(default_factory=dict)
    lr_per_step: bool = False
    cycle_momentum: tuple[float, float] | None = None


@dataclass(frozen=True)
class Spec:
    path: Path
    name: str
    envs: tuple[str, ...]
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...]
    timesteps: int | None
    eval_every: int | None
    eval_episodes: int | None
    hyperparams: dict[str, Any]
    overrides: dict[str, dict[str, Any]]
    device: str
    baseline: str | None
    raw: dict[str, Any]
    gpus_per_run: float = 1.0
    tuned: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (algo, env) -> tune record


@dataclass(frozen=True)
class PlannedRun:
    """One resolved run of a batch and its folder (relative to the batch folder)."""

    env_id: str
    arm: str
    seed: int
    folder: str
    prepared: Any  # clr_rl.runner.PreparedRun


class _Err(ValueError):
    pass


def _fail(path: Path, where: str, message: str) -> _Err:
    return _Err(f"{path}: {where}: {message}")


def _check_keys(path: Path, where: str, table: dict[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(path, where, f"unknown key {key!r}; expected one of {', '.join(sorted(allowed))}")


def _pos_int(path: Path, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, where, f"{value!r} must be a positive integer")
    return value


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, where, f"{value!r} must be a table")
    return value


def resolve_relative(value: Any, tuned_lr: float) -> Any:
    """``"tuned"``, ``"tuned*3"``, ``"tuned/3"``, ``"0.5*tuned"`` -> numbers; others unchanged.

    >>> resolve_relative("tuned/4", 1e-3), resolve_relative("2*tuned", 1e-3), resolve_relative(1e-4, 1e-3)
    (0.00025, 0.002, 0.0001)
    """
    if not isinstance(value, str):
        return value
    m = _RELATIVE.match(value)
    rule = f"{value!r} must be a number or tuned, tuned*X, tuned/X, X*tuned"
    if not m:
        raise ValueError(rule)
    try:
        pre = float(m.group("pre")) if m.group("pre") else 1.0
        num = float(m.group("num")) if m.group("op") else 1.0
    except ValueError:  # the pattern admits "e", "+-" ...
        raise ValueError(f"{rule} with X a number") from None
    if m.group("op") == "/" and num == 0:
        raise ValueError(f"{value!r} divides by zero; X in tuned/X must be non-zero")
    out = tuned_lr * pre
    out = out * num if m.group("op") == "*" else out / num if m.group("op") == "/" else out
    return float(f"{out:.12g}")  # tuned/3 of 3e-4 is 1e-4, not 9.999999999999999e-05


def _load_tuned(path: Path, raw: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """``tuned = ["tune-out/tuned_lr.json", ...]`` (relative to the spec): records of ``clr-rl tune``."""
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise _fail(path, "tuned", f"{raw!r} must be a list of paths to tuned_lr.json records")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for item in raw:
        file = (path.parent / item) if not Path(item).is_absolute() else Path(item)
        if not file.is_file():
            raise _fail(path, "tuned", f"{item!r}: no such tune record")
        try:
            import json

            record = json.loads(file.read_text())
            key = (str(record["algo"]), str(record["env_id"]))
            float(record["value"])
        except (ValueError, KeyError, TypeError):
            raise _fail(path, "tuned", f"{item!r} is not a clr-rl tune record (needs algo, env_id, value)") from None
        record["path"] = str(file)
        out[key] = record
    return out


def load_spec(path: Path | str, *, device: str | None = None) -> Spec:
    """Read and check a spec's shape (types, keys, names); :func:`plan` checks the runs."""
    path = Path(path)
    if not path.is_file():
        raise _Err(f"{path}: spec file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _Err(f"{path}: not valid TOML: {exc}") from None
    _check_keys(path, "top level", raw, _TOP)
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise _fail(path, "name", f"{name!r} must be letters, digits, '.', '_' or '-'")
    algo = raw.get("algo", "ppo")
    if algo not in ("ppo", "dqn"):
        raise _fail(path, "algo", f"{algo!r} must be ppo or dqn")
    if ("envs" in raw) == ("suite" in raw):
        raise _fail(path, "envs", "give exactly one of envs = [...] or suite = \"...\"")
    if "envs" in raw:
        envs = raw["envs"]
        if not isinstance(envs, list) or not envs or not all(isinstance(e, str) for e in envs):
            raise _fail(path, "envs", f"{envs!r} must be a non-empty list of Gymnasium ids")
        if len(set(envs)) != len(envs):
            raise _fail(path, "envs", f"{envs!r} lists an env twice")
    else:
        from clr_rl.envs import load_suite

        suite = raw["suite"]
        try:
            envs = [info.env_id for info in load_suite(str(suite))]
        except ValueError as exc:
            raise _fail(path, "suite", str(exc)) from None
    seeds_raw = raw.get("seeds", 3)
    if isinstance(seeds_raw, list):
        if not seeds_raw or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds_raw):
            raise _fail(path, "seeds", f"{seeds_raw!r} must be a non-empty list of integers >= 0")
        if len(set(seeds_raw)) != len(seeds_raw):
            raise _fail(path, "seeds", f"{seeds_raw!r} lists a seed twice")
        seeds = tuple(seeds_raw)
    else:
        seeds = tuple(range(_pos_int(path, "seeds", seeds_raw)))
    timesteps = _pos_int(path, "timesteps", raw["timesteps"]) if "timesteps" in raw else None
    ev = _table(path, "eval", raw.get("eval", {}))
    _check_keys(path, "eval", ev, {"every", "episodes"})
    every = _pos_int(path, "eval.every", ev["every"]) if "every" in ev else None
    episodes = _pos_int(path, "eval.episodes", ev["episodes"]) if "episodes" in ev else None
    hyperparams = _table(path, "hyperparams", raw.get("hyperparams", {}))
    overrides = _table(path, "overrides", raw.get("overrides", {}))
    for env_id, table in overrides.items():
        _table(path, f"overrides.{env_id}", table)
        if env_id not in envs:
            raise _fail(path, f"overrides.{env_id}", f"env {env_id!r} is not in the spec's envs")
        _check_keys(path, f"overrides.{env_id}", table, _OVERRIDE_KEYS)
        for key in ("timesteps", "eval_every", "eval_episodes"):
            if key in table:
                _pos_int(path, f"overrides.{env_id}.{key}", table[key])
        _table(path, f"overrides.{env_id}.hyperparams", table.get("hyperparams", {}))
    device = device if device is not None else raw.get("device", "auto")
    if not isinstance(device, str):
        raise _fail(path, "device", f"{device!r} must be a string")
    gpus_per_run = raw.get("gpus_per_run", 1.0)
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, (int, float)) or not gpus_per_run > 0 or (
            gpus_per_run > 1 and gpus_per_run != int(gpus_per_run)):
        raise _fail(path, "gpus_per_run", f"{gpus_per_run!r} must be a fraction in (0, 1] or a whole number")
    tuned = _load_tuned(path, raw["tuned"]) if "tuned" in raw else {}
    optimizer = raw.get("optimizer", "adam")
    arms_raw = _table(path, "arms", raw.get("arms", {}))
    if not arms_raw:
        raise _fail(path, "arms", "no arms: add at least one [arms.<name>] table")
    arms = []
    for arm_name, table in arms_raw.items():
        where = f"arms.{arm_name}"
        _table(path, where, table)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", arm_name):
            raise _fail(path, where, f"arm name {arm_name!r} must be letters, digits, '.', '_' or '-'")
        kind = table.get("kind")
        if kind not in SCHEDULE_KINDS:
            raise _fail(path, f"{where}.kind", f"{kind!r} must be one of {', '.join(SCHEDULE_KINDS)}")
        schedule = {k: v for k, v in table.items() if k not in _ARM_EXTRA}
        for key, value in schedule.items():
            if isinstance(value, str) and key in _LR_FIELDS:
                try:
                    resolve_relative(value, 1.0)
                except ValueError as exc:
                    raise _fail(path, f"{where}.{key}", str(exc)) from None
        try:  # shape check with a stand-in tuned LR; plan() checks with the real one
            parse_schedule({k: resolve_relative(v, 1e-3) if k in _LR_FIELDS else v for k, v in schedule.items()})
        except ValueError as exc:
            raise _fail(path, where, str(exc)) from None
        arm_algo = table.get("algo", algo)
        if arm_algo not in ("ppo", "dqn"):
            raise _fail(path, f"{where}.algo", f"{arm_algo!r} must be ppo or dqn")
        per_step = table.get("lr_per_step", False)
        if not isinstance(per_step, bool):
            raise _fail(path, f"{where}.lr_per_step", f"{per_step!r} must be true or false")
        momentum = table.get("cycle_momentum")
        if momentum is not None and (not isinstance(momentum, list) or len(momentum) != 2):
            raise _fail(path, f"{where}.cycle_momentum", f"{momentum!r} must be [low, high], e.g. [0.85, 0.95]")
        arms.append(Arm(arm_name, schedule, arm_algo, table.get("optimizer", optimizer),
                        dict(_table(path, f"{where}.hyperparams", table.get("hyperparams", {}))),
                        per_step, tuple(momentum) if momentum is not None else None))
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in arms_raw:
        raise _fail(path, "baseline", f"{baseline!r} is not an arm; expected one of {', '.join(arms_raw)}")
    return Spec(path, name, tuple(envs), tuple(arms), seeds, timesteps, every, episodes, dict(hyperparams),
                {k: dict(v) for k, v in overrides.items()}, device, baseline, raw, float(gpus_per_run), tuned)


def plan(spec: Spec) -> list[PlannedRun]:
    """Resolve and validate every run of the spec (env ids, tuned LRs, hyperparameters, aliasing)."""
    from clr_rl.agents import agent_config
    from clr_rl.envs import env_family, env_info
    from clr_rl.runner import RunConfig, prepare

    runs = []
    for env_id in spec.envs:
        try:
            family = env_family(env_id)
        except ValueError as exc:
            raise _fail(spec.path, "envs", str(exc)) from None
        over = spec.overrides.get(env_id, {})
        info = env_info(env_id)
        timesteps = over.get("timesteps") or spec.timesteps or (info.timesteps if info else None)
        if timesteps is None:
            raise _fail(spec.path, "timesteps", f"env {env_id!r} has no default budget in envs/; set timesteps")
        for arm in spec.arms:
            hp = {**spec.hyperparams, **over.get("hyperparams", {}), **arm.hyperparams}
            where = f"arms.{arm.name} on {env_id}"
            record = spec.tuned.get((arm.algo, env_id))
            if record is not None:
                hp = {**hp, "tuned_lr": float(record["value"]), "tuned_lr_cost_timesteps": record.get("cost_timesteps"),
                      "tuned_lr_source": f"clr-rl tune record {record['path']} ({record.get('method', '?')}, "
                                         f"criterion {record.get('criterion', '?')})"}
            try:
                tuned = agent_config(arm.algo, env_id, family, hp).tuned_lr
                table = {k: resolve_relative(v, tuned) if k in _LR_FIELDS else v for k, v in arm.schedule.items()}
                for seed in spec.seeds:
                    config = RunConfig(
                        algo=arm.algo, env_id=env_id, schedule=parse_schedule(table), timesteps=int(timesteps),
                        seed=seed, device=spec.device, overrides=hp, optimizer=arm.optimizer,
                        eval_every=over.get("eval_every") or spec.eval_every,
                        eval_episodes=over.get("eval_episodes") or spec.eval_episodes, arm=arm.name, threads=1,
                        lr_per_step=arm.lr_per_step, cycle_momentum=arm.cycle_momentum,
                    )
                    runs.append(PlannedRun(env_id, arm.name, seed, f"runs/{env_id}/{arm.name}/seed{seed}",
                                           prepare(config)))
            except ValueError as exc:
                raise _fail(spec.path, where, str(exc)) from None
    return runs
