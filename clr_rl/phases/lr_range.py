"""The setup phase's LR range tests: one job per (algo, env), run by sweep or in a single run."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clr_rl.execute.estimates import _minutes, estimate
from clr_rl.execute.options import ExecOptions
from clr_rl.execute.planned import PlannedRun
from clr_rl.phases.lr_single import lr_range_single
from clr_rl.phases.lr_sweep import lr_range_sweep
from clr_rl.store import (
    read_json,
    write_json_atomic,
)

__all__ = ["RangeJob", "range_estimate", "run_range_tests"]


@dataclass(frozen=True)
class RangeJob:
    """One LR range test of the setup phase."""

    algo: str
    env_id: str
    method: str
    timesteps: int
    seeds: int
    seed: int
    folder: str
    overrides: dict[str, Any]
    device: str
    points: int
    lr_range: tuple[float, float]
    grid: tuple[float, float, int]
    budget: int | None = None  # the arms' timesteps (a DQN sweep's short runs explore as their start)



def run_range_tests(jobs: list[RangeJob], out: Path, options: ExecOptions) -> dict[tuple[str, str], dict[str, Any]]:
    """Run (or read back) each ``[lr_range]`` test, one at a time (a sweep's runs executed by ``options``:
    the batch's workers, backend and retry rule); a test interrupted before its result reruns (a sweep
    keeps its finished runs)."""
    results = {}
    for job in jobs:
        folder = out / job.folder
        result_file = folder / "lr_range.json"
        if not result_file.is_file():
            t0 = time.time()
            if job.method == "single":
                shutil.rmtree(folder, ignore_errors=True)
                lr_range_single(algo=job.algo, env_id=job.env_id, timesteps=job.timesteps, out=folder,
                                overrides=job.overrides, seed=job.seed, device=job.device, points=job.points,
                                start_lr=job.lr_range[0], end_lr=job.lr_range[1])
            else:
                grid = ":".join(f"{v:g}" for v in job.grid)
                lr_range_sweep(algo=job.algo, env_id=job.env_id, timesteps=job.timesteps, out=folder,
                               grid=grid, seeds=job.seeds, overrides=job.overrides, device=job.device,
                               options=options, first_seed=job.seed, budget=job.budget)
            result = read_json(result_file)
            result.setdefault("wall_seconds", round(time.time() - t0, 3))
            write_json_atomic(result_file, result)
        results[(job.algo, job.env_id)] = read_json(result_file)
    return results



def range_estimate(job: RangeJob, speeds: dict[str, dict[str, float]] | None, workers: int = 1) -> float:
    """Seconds an ``[lr_range]`` test is expected to take: its training timesteps at the training speed
    of its configuration (see :func:`estimate`), evaluation aside (a single test evaluates nothing; a
    sweep's runs score their training episodes); a sweep's grid x seeds runs share ``workers`` workers."""
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.schedules.base import Constant

    config = RunConfig(job.algo, job.env_id, Constant(job.lr_range[0]), job.timesteps, overrides=job.overrides,
                       device=job.device, threads=1)
    run = PlannedRun(job.env_id, "lr_range", job.seed, job.folder, prepare(config))
    seconds, _ = estimate(run, speeds, evaluations=False)
    return _minutes([seconds] * (job.seeds * job.grid[2]), workers) * 60 if job.method == "sweep" else seconds
