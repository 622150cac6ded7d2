"""Time and memory estimates of planned runs: fixed speeds or this machine's calibrations."""

from __future__ import annotations

import heapq
import math
import os
import time
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.execute.planned import PlannedRun, _rerun, run_state
from clr_rl.store import (
    read_json,
    write_json_atomic,
)

__all__ = ["cached_speeds", "calibrate", "default_speed_cache", "estimate", "planned_minutes"]


# Single-thread training speeds on a 2-core machine (steps/s): FACTS.md for bare SB3, and PPO
# classic measured here with the Zoo hyperparameters (8-16 envs: CartPole 50k in 20 s, Acrobot 100k in 22 s).
_SPEED = {("ppo", "classic"): 2500, ("ppo", "box2d"): 1500, ("ppo", "mujoco"): 1310, ("ppo", "atari"): 235,
          ("dqn", "classic"): 1840, ("dqn", "box2d"): 1400, ("dqn", "atari"): 100}



_PROCESS_GB = 0.45  # a worker with torch + SB3 + an env, measured RSS ~0.4 GB



_RUN_OVERHEAD_S = 2.0  # building the envs and the model, saving: measured ~1-2 s per run here



def estimate(run: PlannedRun, speeds: dict[str, dict[str, float]] | None = None, *,
             evaluations: bool = True) -> tuple[float, float]:
    """(seconds, GB) a run is expected to take, and its memory (replay/rollout buffers).

    With a calibration of its configuration in ``speeds`` (see :func:`calibrate`): collection
    until learning starts, training, and ``evaluations x episodes x episode length`` at the
    measured evaluation speed (episode length: the env's ``max_episode_steps``, an upper bound).
    Without one: a fixed table of speeds per (algo, family) measured on a 2-core machine.
    ``evaluations=False``: the training alone.
    """
    from clr_rl.run.prepare import buffer_gb
    from clr_rl.run.speed import speed_key

    p = run.prepared
    steps = p.config.timesteps
    evals = (steps // p.eval_every + 2) * p.eval_episodes if evaluations else 0
    measured = (speeds or {}).get(speed_key(p))
    if measured is None:
        speed = _SPEED.get((p.config.algo, p.family), 1000)
        eval_steps = evals * (1000 if p.family in ("mujoco", "atari") else 300)
        seconds = steps / speed + eval_steps / (speed * 4)
    else:
        starts = min(measured["learning_starts"], steps)
        seconds = (_RUN_OVERHEAD_S + starts / measured["collect_steps_per_s"]
                   + (steps - starts) / measured["train_steps_per_s"]
                   + evals * measured["eval_episode_steps"] / measured["eval_steps_per_s"])
    return seconds, _PROCESS_GB + buffer_gb(p)



def default_speed_cache() -> Path:
    """Where calibrations are kept on this machine: ``$XDG_CACHE_HOME/clr-rl/speeds.json``
    (``~/.cache/clr-rl/speeds.json`` when ``XDG_CACHE_HOME`` is unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "clr-rl" / "speeds.json"



def cached_speeds(cache: Path) -> dict[str, dict[str, float]]:
    """The calibrations already in ``cache`` (none when it does not exist); measures nothing."""
    return read_json(cache) if cache.is_file() else {}



def calibrate(runs: list[PlannedRun], cache: Path) -> dict[str, dict[str, float]]:
    """Speeds of every distinct configuration among ``runs``: read from ``cache``, and measured here
    (a short timed run each, see :func:`clr_rl.run.speed.measure_speed`) for those it lacks."""
    from clr_rl.run.speed import measure_speed, speed_key

    speeds = cached_speeds(cache)
    for run in runs:
        key = speed_key(run.prepared)
        if key not in speeds:
            c = run.prepared.config
            print(f"calibrating {c.algo} on {c.env_id} ({run.arm}): a short timed run ...", flush=True)
            speeds[key] = {**measure_speed(run.prepared), "date": time.strftime("%Y-%m-%d")}  # type: ignore[dict-item]
            write_json_atomic(cache, speeds)
    return speeds



def _available_gb() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1e6
    except OSError:  # pragma: no cover
        pass
    return math.inf



def _minutes(seconds: list[float], workers: int) -> float:
    """Wall minutes of runs of these CPU-seconds on ``workers``, each run, in plan order, going to the
    first worker free (as the pool does)."""
    free = [0.0] * max(1, min(workers, len(seconds)))
    for s in seconds:
        heapq.heapreplace(free, free[0] + s)
    return max(free) / 60



def planned_minutes(runs: list[PlannedRun], out: Path, workers: int, speeds: dict[str, dict[str, float]] | None,
                    retry_failed: bool = False) -> float:
    """Estimated wall minutes of the runs among ``runs`` that a batch into ``out`` would (re)start."""
    todo = [r for r in runs if run_state(out, r) in _rerun(retry_failed)]
    return _minutes([estimate(r, speeds)[0] for r in todo], workers)



def _speed_source(runs: list[PlannedRun], speeds: dict[str, dict[str, float]] | None) -> str:
    from clr_rl.run.speed import speed_key

    calibrated = sum(1 for r in runs if speed_key(r.prepared) in (speeds or {}))
    if calibrated == len(runs):
        return "speeds calibrated on this machine"
    return (f"{calibrated}/{len(runs)} runs with speeds calibrated on this machine, the rest from a fixed table "
            "measured on a 2-core machine")



def _check_memory(todo: list[PlannedRun], est: dict[str, Any], workers: int) -> None:
    if not todo:
        return
    need = min(workers, len(todo)) * max(est[r.folder][1] for r in todo)
    have = _available_gb()
    if need > 0.9 * have:
        largest = max(todo, key=lambda r: est[r.folder][1])
        raise ConfigError(f"memory: {min(workers, len(todo))} workers need about {need:.1f} GB (largest run "
                          f"{largest.folder}: {est[largest.folder][1]:.1f} GB) but {have:.1f} GB is available; "
                          "use fewer workers or a smaller buffer_size")
