"""``clr-rl compare``: plan and check everything, run the setup phase, then the arms, then tradeoff curves."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from clr_rl.compare.guard import default_out, guarded
from clr_rl.compare.plan import plan
from clr_rl.compare.sequential import run_sequential, sequential_estimate
from clr_rl.compare.setup import SetupPlan, _setup_on_disk, plan_setup, plan_tradeoffs, run_tradeoffs, setup_costs
from clr_rl.compare.spec import Spec, load_spec
from clr_rl.compare.tuning import run_tuning
from clr_rl.execute.batch import _TUNE_FILES, execute
from clr_rl.execute.estimates import _speed_source, cached_speeds, calibrate, default_speed_cache, planned_minutes
from clr_rl.execute.options import ExecOptions
from clr_rl.execute.planned import PlannedRun
from clr_rl.phases.lr_range import range_estimate, run_range_tests
from clr_rl.phases.lr_single import DQN_SINGLE_WARNING
from clr_rl.phases.tradeoff_plan import TradeoffJob
from clr_rl.phases.tune import TunedLR
from clr_rl.store import (
    check_writable,
)

__all__ = ["compare"]


@guarded  # the spec and Ray address checked, then the whole batch under one lock of its folder
def compare(spec_path: Path | str, *, out: Path | None = None, workers: int | None = None, dry_run: bool = False,
            retry_failed: bool = False, backend: str = "local", address: str | None = None,
            device: str | None = None, calibrate_speeds: bool = False, speed_cache: Path | None = None,
            trust_checkpoints: bool = False) -> int:
    """Run a spec: its setup phase (``[tune]``, ``[lr_range]``), then its arms, then ``[tradeoff]`` curves.
    Everything is validated before the first run starts (ConfigError). Returns 0 when every run is
    complete, 1 when some failed. One :class:`ExecOptions` (workers, backend, address, retries, GPU
    share, speeds) reaches every phase.

    Time estimates use this machine's speeds from ``speed_cache`` (default :func:`default_speed_cache`)
    where it holds the run's configuration, else a fixed table of speeds; ``calibrate_speeds`` first
    measures the configurations missing there (a short timed run each). ``trust_checkpoints``: resume
    from checkpoints this user did not sign (they hold pickles: see :mod:`clr_rl.run.trust`)."""
    spec = load_spec(spec_path, device=device)
    out = Path(out) if out is not None else default_out(spec)
    options = ExecOptions(workers=workers, backend=backend, address=address, retry_failed=retry_failed,
                          gpus_per_run=spec.gpus_per_run, trust_checkpoints=trust_checkpoints)
    check_writable(out)
    setup = plan_setup(spec)
    runs = plan(spec)  # with stand-ins for the values the setup phase will give
    done_tuned, done_ranges = _setup_on_disk(setup, out)
    if done_tuned is not None or done_ranges is not None:  # a resumed batch: what its setup phase gave so far
        runs = plan(spec, tuned=done_tuned, ranges=done_ranges)
    tradeoffs = plan_tradeoffs(spec, out)
    cache = speed_cache or default_speed_cache()
    speeds = calibrate(setup.tune_runs + runs, cache) if calibrate_speeds else cached_speeds(cache)
    options = options.with_(speeds=speeds)
    meta: dict[str, Any] = {"name": spec.name, "spec": spec.raw, "baseline": spec.baseline,
                            "shape": f"{len(spec.envs)} envs x {len(spec.arms)} arms x {len(spec.seeds)} seeds"}
    whole, range_s = _estimate(spec, setup, runs, out, options)
    if dry_run:
        return _dry_run(spec, setup, runs, tradeoffs, out, options, meta, whole, range_s)
    if setup.tune_runs or setup.range_jobs:
        print(f"{whole} (estimate; {_speed_source(setup.tune_runs + runs, speeds)})", flush=True)
    status = 0
    tuned: dict[tuple[str, str], TunedLR] = {}
    if setup.tune_runs or setup.trials:
        status, tuned = run_tuning(spec, setup, out, options)
    ranges = run_range_tests(setup.range_jobs, out, options)
    if tuned or ranges:
        runs = plan(spec, tuned=tuned, ranges=ranges)
    meta["setup"] = setup_costs(spec, out, setup, tuned, ranges)
    if spec.sequential is not None:
        status |= run_sequential(spec, out, options, meta=meta, spec_text=Path(spec_path).read_text(), tuned=tuned,
                                 ranges=ranges)
    else:
        status |= execute(runs, out, meta=meta, options=options, spec_text=Path(spec_path).read_text())
    return status | run_tradeoffs(spec, out, tuned, options)


def _estimate(spec: Spec, setup: SetupPlan, runs: list[PlannedRun], out: Path,
              options: ExecOptions) -> tuple[str, dict[str, float]]:
    """The whole batch's estimate in words, and each range test's seconds (0 when done); warns of a DQN
    single-run range test."""
    n = options.workers or os.cpu_count() or 1
    range_s = {job.folder: 0.0 if (out / job.folder / "lr_range.json").is_file()
               else range_estimate(job, options.speeds, n) for job in setup.range_jobs}
    minutes = (sum(planned_minutes(phase, out, n, options.speeds, options.retry_failed)
                   for phase in (setup.tune_runs, runs)) + sum(range_s.values()) / 60)
    for job in setup.range_jobs:
        if job.method == "single" and job.algo == "dqn":
            print(f"{spec.name}: lr_range on {job.env_id}: {DQN_SINGLE_WARNING}", file=sys.stderr, flush=True)
    whole = (f"{spec.name}: whole batch (setup phase, then arms) about {minutes:.1f} min with {n} workers"
             + (" plus the [tune] trials (not estimated)" if setup.trials else ""))
    return whole, range_s


def _dry_run(spec: Spec, setup: SetupPlan, runs: list[PlannedRun], tradeoffs: list[TradeoffJob], out: Path,
             options: ExecOptions, meta: dict[str, Any], whole: str, range_s: dict[str, float]) -> int:
    """``--dry-run``: every phase's plan and estimate; trains nothing."""
    n = options.workers or os.cpu_count() or 1
    if setup.tune_runs:
        execute(setup.tune_runs, out, meta={"name": f"{spec.name} setup: tuning"}, options=options, dry_run=True,
                files=_TUNE_FILES)
    for job in setup.range_jobs:
        runs_note = f" x {job.seeds} seeds x the grid" if job.method == "sweep" else ""
        seconds = range_s[job.folder]
        print(f"{spec.name} setup: LR range test ({job.method}) for {job.algo} on {job.env_id}: "
              f"{job.timesteps:,} timesteps{runs_note}, est {seconds:,.0f} s "
              f"{f'on {n} workers' if job.method == 'sweep' else 'in the driver'}, one test at a time"
              f"{' (done)' if not seconds else ''} -> {out / job.folder}")
    execute(runs, out, meta=meta, options=options, dry_run=True)
    if spec.sequential is not None:
        print(sequential_estimate(spec, out, options))
    for tjob in tradeoffs:
        print(f"{spec.name} tradeoff: {tjob.describe()} (not in the estimate)")
    if setup.tune_runs or setup.range_jobs:
        print(whole)
    return 0
