"""Run a comparison batch: plan, check, set up, execute, summarise.

Layout of a batch folder::

    <out>/spec.toml            the spec as given
    <out>/spec.resolved.json   every arm run's resolved config and id, and the setup costs
    <out>/runs/<env>/<arm>/seed<k>/   one run folder each (the source of truth)
    <out>/tune/<env>/lr<value>/seed<k>/   the [tune] runs; <out>/tune/<env>/tuned_lr.json their result
    <out>/lr_range/<env>/      the [lr_range] test of that env (lr_range.json, lr_range.png)
    <out>/summary.csv          one row per arm run, rebuilt from the run folders
    <out>/tradeoff/<env>/      the [tradeoff] curve of that env (clr_rl.tradeoff: tradeoff.csv/json/png, runs/)

The phases are separate functions: :func:`plan_setup` and :func:`~clr_rl.specs.plan` (validate
everything, train nothing), :func:`run_tuning` and :func:`run_range_tests` (the setup phase),
:func:`execute` (check memory, skip complete runs, train the rest in parallel: local pool or
Ray tasks), :func:`summary_rows` (read the folders back), :func:`run_tradeoffs` (the
``[tradeoff]`` curves, after the arms; :func:`plan_tradeoffs` validates them with the rest). A
run that raises is recorded as failed (or diverged) with its traceback and the batch goes on.
"""

from __future__ import annotations

import fcntl
import heapq
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.record import RECORD_FILE, RunRecord, Status, read_record, read_status
from clr_rl.specs import PlannedRun, Results, Spec, load_spec, plan, run_config
from clr_rl.store import (
    check_writable,
    read_evaluations,
    read_json,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)

__all__ = ["SUMMARY_COLUMNS", "BatchFiles", "RangeJob", "SetupPlan", "TradeoffJob", "compare", "estimate", "execute",
           "plan_setup", "plan_tradeoffs", "print_status", "run_range_tests", "run_tradeoffs", "run_tuning",
           "setup_costs", "summary_rows"]

SUMMARY_COLUMNS = ("env", "algo", "arm", "seed", "status", "final_return", "auc", "timesteps", "wall_seconds",
                   "schedule", "lr_provenance", "run_id", "folder")

# Single-thread training speeds on a 2-core machine (steps/s): FACTS.md for bare SB3, and PPO
# classic measured here with the Zoo hyperparameters (8-16 envs: CartPole 50k in 20 s, Acrobot 100k in 22 s).
_SPEED = {("ppo", "classic"): 2500, ("ppo", "box2d"): 1500, ("ppo", "mujoco"): 1310, ("ppo", "atari"): 235,
          ("dqn", "classic"): 1840, ("dqn", "box2d"): 1400, ("dqn", "atari"): 100}
_PROCESS_GB = 0.45  # a worker with torch + SB3 + an env, measured RSS ~0.4 GB


@dataclass(frozen=True)
class BatchFiles:
    """Where one :func:`execute` call records its plan and summary (arm runs and tuning runs differ)."""

    plan: str = "spec.resolved.json"
    summary: str = "summary.csv"
    layout: bool = True  # the TensorBoard custom-scalars layout of the arm runs


_ARM_FILES = BatchFiles()
_TUNE_FILES = BatchFiles("tune/plan.json", "tune/summary.csv", False)


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
    from clr_rl.runner import buffer_gb, speed_key

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
    (a short timed run each, see :func:`clr_rl.runner.measure_speed`) for those it lacks."""
    from clr_rl.runner import measure_speed, speed_key

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


def run_state(out: Path, run: PlannedRun) -> Status | None:
    """The run's :class:`~clr_rl.record.Status` in ``out``; None when its folder holds another config (stale)."""
    status, record = read_record(out / run.folder)
    if status == Status.NOT_STARTED or not record:  # no record, or a torn one (resumable)
        return status
    return status if record.get("run_id") == run.prepared.run_id() else None


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"out={str(out)!r} is in use by another clr-rl compare") from None
        yield


_STOP: Any = None  # set in pool workers: no new run starts once the batch is stopping
_BUSY: Any = None  # set in pool workers while a run is in flight


def _worker_init() -> None:
    """Pool workers: a SIGINT between runs (Ctrl-C of the batch) means "start no more runs"; during a
    run, the run's own handler stops it at a rollout boundary with a checkpoint. If the batch process
    dies (kill -9), the worker stops the same way instead of running on, orphaned, into folders that a
    rerun now owns."""
    import signal
    import threading

    global _STOP, _BUSY
    _STOP, _BUSY = threading.Event(), threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: _STOP.set())
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        if not _STOP.is_set():
            _STOP.set()
            os.kill(os.getpid(), signal.SIGINT)
        while _BUSY.is_set():  # let the run in flight write its checkpoint, then leave
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Train one planned run in this process (a pool worker or a Ray task); never raises."""
    import torch

    torch.set_num_threads(1)
    folder = Path(task["folder"])
    if _STOP is not None and _STOP.is_set():
        return {"folder": str(folder), "status": "skipped"}
    if _BUSY is not None:
        _BUSY.set()
    try:
        result = _run_one(task, folder)
        if result["status"] == Status.INTERRUPTED.value and _STOP is not None:
            _STOP.set()  # the signal that stopped this run means the batch is stopping: start no queued run
        return result
    finally:
        if _BUSY is not None:
            _BUSY.clear()


def _run_one(task: dict[str, Any], folder: Path) -> dict[str, Any]:
    from clr_rl.runner import RunConfig, prepare, train

    try:
        record = train(prepare(RunConfig.from_dict(task["config"])), folder, resume=True)
        return {"folder": str(folder), "status": record.status.value}
    except (KeyboardInterrupt, SystemExit):  # stopped from outside: recorded interrupted (resumable)
        return {"folder": str(folder), "status": Status.INTERRUPTED.value}
    except BaseException as exc:  # recorded failed/diverged by the run's lifecycle; the batch goes on
        if read_status(folder) not in (Status.FAILED, Status.DIVERGED):  # raised before the run started
            _mark_dead(task, f"{type(exc).__name__}: {exc}")
        return {"folder": str(folder), "status": read_status(folder).value, "error": repr(exc)}


def _task(out: Path, run: PlannedRun) -> dict[str, Any]:
    config = run.prepared.config.to_dict()
    config.update(schedule=str(run.prepared.schedule), eval_every=run.prepared.eval_every,
                  eval_episodes=run.prepared.eval_episodes, threads=1)
    return {"folder": str(out / run.folder), "run_id": run.prepared.run_id(), "config": config}


def summary_rows(out: Path, runs: list[PlannedRun]) -> list[dict[str, Any]]:
    """One row per planned run, read from its folder."""
    rows = []
    for run in runs:
        folder = out / run.folder
        status, record = read_record(folder)
        evals = read_evaluations(folder / "evaluations.csv")
        final = record.get("final_eval", {})
        c = run.prepared.config
        rows.append({
            "env": run.env_id, "algo": c.algo, "arm": run.arm, "seed": run.seed,
            "status": status.value, "final_return": final.get("mean_return", ""),
            "auc": record.get("auc", ""), "timesteps": int(evals[-1]["timesteps"]) if evals else 0,
            "wall_seconds": record.get("wall_seconds", ""), "schedule": str(run.prepared.schedule),
            "lr_provenance": c.lr_provenance, "run_id": record.get("run_id", ""), "folder": run.folder,
        })
    return rows


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    write_csv_atomic(path, SUMMARY_COLUMNS, rows)


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = ("env", "algo", "arm", "seed", "status", "final_return", "auc", "timesteps", "wall_seconds")
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _progress_line(out: Path, runs: list[PlannedRun], t0: float, start: dict[str, Any] | None,
                   est: dict[str, float]) -> dict[str, Any]:
    """Counts, timesteps done and their rate since ``t0``, and the ETA: the work left in estimated seconds
    (each run's ``est`` times the share of its timesteps not done) at the pace kept since ``t0``
    (estimated seconds of work done per second since ``start``, the line at ``t0``). Envs that train
    at different speeds so weigh by their estimates, not by their timesteps."""
    counts = {"complete": 0, "failed": 0, "left": 0}
    steps, work = 0, 0.0
    for r in runs:
        state = run_state(out, r)
        counts["complete" if state and state.complete else "failed" if state == Status.FAILED else "left"] += 1
        evals = read_evaluations(out / r.folder / "evaluations.csv")
        done = int(evals[-1]["timesteps"]) if evals else 0
        steps += done
        work += est[r.folder] * min(done / r.prepared.config.timesteps, 1.0)
    elapsed = max(time.time() - t0, 1e-9)
    start = start or {"steps": steps, "work": work}
    pace = max(work - start["work"], 0.0) / elapsed
    eta = max(sum(est[r.folder] for r in runs) - work, 0.0) / pace if pace > 0 else math.inf
    return {**counts, "steps": steps, "total": sum(r.prepared.config.timesteps for r in runs),
            "rate": max(steps - start["steps"], 0) / elapsed, "eta": eta, "work": work}


def _describe(p: dict[str, Any]) -> str:
    eta = "?" if not math.isfinite(p["eta"]) else time.strftime("%H:%M:%S", time.gmtime(p["eta"]))
    return (f"runs complete {p['complete']}, failed {p['failed']}, left {p['left']} | "
            f"{p['steps']:,}/{p['total']:,} steps, {p['rate']:,.0f} steps/s | ETA {eta}")


def _check_backend(backend: str, address: str | None, workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers={workers} must be >= 1")
    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend={backend!r} must be local or ray")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'clr-rl[ray]' "
                             "(or pip install 'ray[default]')") from None
    elif address is not None:
        raise ConfigError("--address is only for --backend ray")


def compare(spec_path: Path | str, *, out: Path | None = None, workers: int | None = None, dry_run: bool = False,
            retry_failed: bool = False, backend: str = "local", address: str | None = None,
            device: str | None = None, calibrate_speeds: bool = False, speed_cache: Path | None = None) -> int:
    """Run a spec: its setup phase (``[tune]``, ``[lr_range]``), then its arms. Everything is validated
    before the first run starts (ConfigError). Returns 0 when every run is complete, 1 when some failed.

    Time estimates use this machine's speeds from ``speed_cache`` (default :func:`default_speed_cache`)
    where it holds the run's configuration, else a fixed table of speeds; ``calibrate_speeds`` first
    measures the configurations missing there (a short timed run each)."""
    spec = load_spec(spec_path, device=device)
    out = Path(out) if out is not None else Path("results") / spec.name
    _check_backend(backend, address, workers)
    check_writable(out)
    setup = plan_setup(spec)
    runs = plan(spec)  # with stand-ins for the values the setup phase will give
    done_tuned, done_ranges = _setup_on_disk(setup, out)
    if done_tuned is not None or done_ranges is not None:  # a resumed batch: what its setup phase gave so far
        runs = plan(spec, tuned=done_tuned, ranges=done_ranges)
    tradeoffs = plan_tradeoffs(spec, out)
    shape = f"{len(spec.envs)} envs x {len(spec.arms)} arms x {len(spec.seeds)} seeds"
    meta: dict[str, Any] = {"name": spec.name, "spec": spec.raw, "baseline": spec.baseline, "shape": shape}
    cache = speed_cache or default_speed_cache()
    speeds = calibrate(setup.tune_runs + runs, cache) if calibrate_speeds else cached_speeds(cache)
    options: dict[str, Any] = {"workers": workers, "retry_failed": retry_failed, "backend": backend,
                               "address": address, "gpus_per_run": spec.gpus_per_run, "speeds": speeds}
    n = workers or os.cpu_count() or 1
    range_s = {job.folder: 0.0 if (out / job.folder / "lr_range.json").is_file() else range_estimate(job, speeds, n)
               for job in setup.range_jobs}
    minutes = (sum(planned_minutes(phase, out, n, speeds, retry_failed) for phase in (setup.tune_runs, runs))
               + sum(range_s.values()) / 60)
    from clr_rl.tuning import DQN_SINGLE_WARNING

    for job in setup.range_jobs:
        if job.method == "single" and job.algo == "dqn":
            print(f"{spec.name}: lr_range on {job.env_id}: {DQN_SINGLE_WARNING}", file=sys.stderr, flush=True)
    whole = (f"{spec.name}: whole batch (setup phase, then arms) about {minutes:.1f} min with {n} workers"
             + (" plus the [tune] trials (not estimated)" if setup.trials else ""))
    if dry_run:
        if setup.tune_runs:
            execute(setup.tune_runs, out, meta={"name": f"{spec.name} setup: tuning"}, dry_run=True,
                    files=_TUNE_FILES, **options)
        for job in setup.range_jobs:
            runs_note = f" x {job.seeds} seeds x the grid" if job.method == "sweep" else ""
            seconds = range_s[job.folder]
            print(f"{spec.name} setup: LR range test ({job.method}) for {job.algo} on {job.env_id}: "
                  f"{job.timesteps:,} timesteps{runs_note}, est {seconds:,.0f} s "
                  f"{f'on {n} workers' if job.method == 'sweep' else 'in the driver'}, one test at a time"
                  f"{' (done)' if not seconds else ''} -> {out / job.folder}")
        execute(runs, out, meta=meta, dry_run=True, **options)
        for tjob in tradeoffs:
            print(f"{spec.name} tradeoff: {tjob.describe()} (not in the estimate)")
        if setup.tune_runs or setup.range_jobs:
            print(whole)
        return 0
    if setup.tune_runs or setup.range_jobs:
        print(f"{whole} (estimate; {_speed_source(setup.tune_runs + runs, speeds)})", flush=True)
    status = 0
    tuned: Results = {}
    if setup.tune_runs or setup.trials:
        status, tuned = run_tuning(spec, setup, out, **options)
    ranges = run_range_tests(setup, out, workers)
    if tuned or ranges:
        runs = plan(spec, tuned=tuned, ranges=ranges)
    meta["setup"] = setup_costs(spec, out, setup, tuned, ranges)
    status |= execute(runs, out, meta=meta, spec_text=Path(spec_path).read_text(), **options)
    return status | run_tradeoffs(spec, out, tuned, **options)


# ---------------------------------------------------------------------------------- setup phase


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
    from clr_rl.runner import prepare
    from clr_rl.schedules import Constant

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
    from clr_rl.runner import RunConfig, prepare
    from clr_rl.schedules import Exponential
    from clr_rl.tuning import lr_grid, single_resolution

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


def _setup_on_disk(setup: SetupPlan, out: Path) -> tuple[Results | None, Results | None]:
    """(tuned, ranges) as an earlier run of this batch left them in ``out``: (algo, env) -> result for
    each tuning and range test finished there, or None where none is (the arms whose values are
    missing are planned with stand-ins). Read, not checked: the batch itself reruns its setup phase."""
    keys = dict.fromkeys([(r.prepared.config.algo, r.env_id) for r in setup.tune_runs] + setup.trials)
    tuned = _on_disk({key: out / "tune" / key[1] / "tuned_lr.json" for key in keys})
    ranges = _on_disk({(job.algo, job.env_id): out / job.folder / "lr_range.json" for job in setup.range_jobs})
    return tuned, ranges


def _on_disk(paths: dict[tuple[str, str], Path]) -> Results | None:
    """key -> the JSON at its path, for the paths that hold one; None when none does."""
    return {key: read_json(path) for key, path in paths.items() if path.is_file()} or None


def _lr_scores(out: Path, runs: list[PlannedRun], criterion: str) -> dict[float, list[float]]:
    """LR -> per-seed scores of its complete runs; a diverged run scores -inf (never the best)."""
    scores: dict[float, list[float]] = {}
    for run in runs:
        status = read_status(out / run.folder)
        if not status.complete:
            continue
        record = RunRecord.read(out / run.folder)
        value = record.auc if criterion == "auc" else record.final_eval.get("mean_return")
        score = -math.inf if status == Status.DIVERGED or value is None else float(value)
        scores.setdefault(float(run.prepared.schedule.lr), []).append(score)
    return scores


def _tuned_result(spec: Spec, out: Path, algo: str, env_id: str, runs: list[PlannedRun],
                  method: str) -> dict[str, Any]:
    from clr_rl.runner import versions

    assert spec.tune is not None
    scores = _lr_scores(out, runs, spec.tune.criterion)
    if not scores:
        raise RuntimeError(f"no [tune] run of {algo} on {env_id} completed; see {out / 'tune' / env_id}")
    means = {lr: sum(v) / len(v) for lr, v in scores.items()}
    best = max(means, key=lambda lr: means[lr])
    records = [RunRecord.read(out / r.folder) for r in runs if read_status(out / r.folder).complete]
    result = {
        "algo": algo, "env_id": env_id, "value": best, "criterion": spec.tune.criterion, "method": method,
        "seeds": list(spec.tune.seeds), "timesteps": runs[0].prepared.config.timesteps,
        "tried": [{"lr": lr, "score_mean": means[lr], "per_seed": scores[lr]} for lr in sorted(scores)],
        "cost_timesteps": sum(int(r.timesteps_done or 0) for r in records),
        "wall_seconds": round(sum(float(r.wall_seconds or 0.0) for r in records), 3),
        "versions": versions(),
    }
    write_json_atomic(out / "tune" / env_id / "tuned_lr.json", result)
    return result


def run_tuning(spec: Spec, setup: SetupPlan, out: Path, **options: Any) -> tuple[int, dict[tuple[str, str], Any]]:
    """Train the ``[tune]`` runs (resumably, like any run) and pick each (algo, env)'s best fixed LR."""
    assert spec.tune is not None
    status = 0
    tuned: dict[tuple[str, str], Any] = {}
    if setup.tune_runs:
        status |= execute(setup.tune_runs, out, meta={"name": f"{spec.name}-tune"}, files=_TUNE_FILES, quiet=True,
                          **options)
        grid = spec.tune.grid
        assert grid is not None
        for key in dict.fromkeys((r.prepared.config.algo, r.env_id) for r in setup.tune_runs):
            runs = [r for r in setup.tune_runs if (r.prepared.config.algo, r.env_id) == key]
            tuned[key] = _tuned_result(spec, out, *key, runs, f"log grid {grid[0]:g}:{grid[1]:g}:{grid[2]}")
    for algo, env_id in setup.trials:
        status |= _optuna(spec, out, algo, env_id, tuned, **options)
    return status, tuned


def _optuna(spec: Spec, out: Path, algo: str, env_id: str, tuned: dict[tuple[str, str], Any], **options: Any) -> int:
    """Optuna TPE over log10(lr) (sampler seed 0); earlier trials' folders are reused, so a rerun replays them."""
    assert spec.tune is not None and spec.tune.trials is not None
    try:
        import optuna
    except ImportError:
        raise ConfigError("[tune] trials needs Optuna: pip install 'clr-rl[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lo, hi = spec.tune.lr_range
    dist = optuna.distributions.FloatDistribution(math.log10(lo), math.log10(hi))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    settings = _needs(spec, "tuned")[(algo, env_id)]
    status, all_runs = 0, list[PlannedRun]()
    for _ in range(spec.tune.trials):
        trial = study.ask({"log10_lr": dist})
        lr = float(f"{10 ** trial.params['log10_lr']:.3g}")
        runs = _tune_runs(spec, algo, env_id, settings, [lr])
        all_runs += [r for r in runs if r.folder not in {a.folder for a in all_runs}]
        status |= execute(all_runs, out, meta={"name": f"{spec.name}-tune"}, files=_TUNE_FILES, quiet=True,
                          **options)
        per_seed = _lr_scores(out, runs, spec.tune.criterion).get(lr, [])
        finite = [v for v in per_seed if math.isfinite(v)]
        if finite and len(finite) == len(per_seed):
            study.tell(trial, sum(per_seed) / len(per_seed))
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    tuned[(algo, env_id)] = _tuned_result(
        spec, out, algo, env_id, all_runs,
        f"Optuna TPE, {spec.tune.trials} trials over log10(lr) in [{lo:g}, {hi:g}], sampler seed 0")
    return status


def run_range_tests(setup: SetupPlan, out: Path, workers: int | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Run (or read back) each ``[lr_range]`` test, one at a time (a sweep's runs on ``workers``
    workers); a test interrupted before its result reruns (a sweep keeps its finished runs)."""
    from clr_rl import tuning

    results = {}
    for job in setup.range_jobs:
        folder = out / job.folder
        result_file = folder / "lr_range.json"
        if not result_file.is_file():
            t0 = time.time()
            if job.method == "single":
                shutil.rmtree(folder, ignore_errors=True)
                tuning.lr_range_single(algo=job.algo, env_id=job.env_id, timesteps=job.timesteps, out=folder,
                                       overrides=job.overrides, seed=job.seed, device=job.device, points=job.points,
                                       start_lr=job.lr_range[0], end_lr=job.lr_range[1])
            else:
                grid = ":".join(f"{v:g}" for v in job.grid)
                tuning.lr_range_sweep(algo=job.algo, env_id=job.env_id, timesteps=job.timesteps, out=folder,
                                      grid=grid, seeds=job.seeds, overrides=job.overrides, device=job.device,
                                      workers=workers, first_seed=job.seed, budget=job.budget)
            result = read_json(result_file)
            result.setdefault("wall_seconds", round(time.time() - t0, 3))
            write_json_atomic(result_file, result)
        results[(job.algo, job.env_id)] = read_json(result_file)
    return results


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
                    parts.append(("tune", int(t["cost_timesteps"]), float(t["wall_seconds"]),
                                  f"{t['method']}, {len(t['tried'])} LRs x {len(t['seeds'])} seeds, "
                                  f"best {t['value']:g} by {t['criterion']}"))
                elif key in spec.tuned:
                    rec = spec.tuned[key]
                    parts.append(("tune", int(rec.get("cost_timesteps") or 0), float(rec.get("wall_seconds") or 0),
                                  f"clr-rl tune record ({rec.get('method', '?')})"))
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


# ---------------------------------------------------------------------------------- tradeoff curves


@dataclass(frozen=True)
class TradeoffJob:
    """The ``[tradeoff]`` curve of one env: :func:`clr_rl.tradeoff.tradeoff`'s arguments and plan."""

    env_id: str
    kwargs: dict[str, Any]
    max_lr_note: str
    plan: Any  # clr_rl.tradeoff.TradeoffPlan (imported lazily)
    folder: Path

    def describe(self) -> str:
        p, seeds = self.plan, self.kwargs["seeds"]
        runs, steps = seeds, seeds * p.timesteps
        line = (f"{p.algo} on {self.env_id}: {seeds} seeds x one {p.cycles}-cycle run of {p.timesteps:,} timesteps "
                f"(asked {p.requested_timesteps:,}); budgets {' / '.join(f'{b:,}' for b in p.budgets)}")
        if self.kwargs["validate"]:
            runs, steps = runs + seeds * len(p.budgets), steps + seeds * sum(p.budgets)
            line += f"; validate: + {seeds} x {len(p.budgets)} separate runs"
        return f"{line}; {runs} runs, {steps:,} timesteps; {self.max_lr_note} -> {self.folder}"


def plan_tradeoffs(spec: Spec, out: Path, tuned: dict[tuple[str, str], Any] | None = None) -> list[TradeoffJob]:
    """Validate and place the ``[tradeoff]`` curve of every env (no training): cycles, budgets and LR
    bounds by :func:`clr_rl.tradeoff.plan_tradeoff`, the run itself by :func:`clr_rl.runner.prepare`.
    Bad input is a ConfigError naming ``tradeoff on <env>``."""
    from clr_rl.errors import config_errors
    from clr_rl.runner import prepare
    from clr_rl.specs import tradeoff_request
    from clr_rl.tradeoff import plan_tradeoff

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


def run_tradeoffs(spec: Spec, out: Path, tuned: dict[tuple[str, str], Any], **options: Any) -> int:
    """Train (or resume) each env's ``[tradeoff]`` curve into ``<out>/tradeoff/<env>/``; 0 when every
    run finished, 1 otherwise. ``max_lr.json`` beside it records where the max LR came from."""
    from clr_rl.tradeoff import tradeoff

    status = 0
    for job in plan_tradeoffs(spec, out, tuned):
        print(f"{spec.name} tradeoff: {job.describe()}", flush=True)
        write_json_atomic(job.folder / "max_lr.json", {"max_lr": job.kwargs["max_lr"], "source": job.max_lr_note})
        try:
            result = tradeoff(out=job.folder, workers=options.get("workers"), **job.kwargs)
        except ValueError as exc:  # no single run finished: the runs' own records say why
            print(f"tradeoff on {job.env_id}: {exc}", file=sys.stderr)
            status = 1
            continue
        status |= 1 if result["exit_status"] else 0
    return status


# ---------------------------------------------------------------------------------- execution


def execute(runs: list[PlannedRun], out: Path, *, meta: dict[str, Any], spec_text: str | None = None,
            workers: int | None = None, dry_run: bool = False, retry_failed: bool = False, backend: str = "local",
            address: str | None = None, gpus_per_run: float = 1.0, quiet: bool = False,
            files: BatchFiles = _ARM_FILES, speeds: dict[str, dict[str, float]] | None = None) -> int:
    """Train the planned runs into ``out`` (skipping complete ones); 0 all complete, 1 some failed.

    Shared by ``compare`` (arms and tuning), ``tune`` and ``lr-range``: the run folders are the only state.
    """
    _check_backend(backend, address, workers)
    check_writable(out)
    workers = workers or os.cpu_count() or 1
    states = {r.folder: run_state(out, r) for r in runs}
    stale = [r for r in runs if states[r.folder] is None]
    if stale:
        raise ConfigError(f"{out / stale[0].folder} holds a run with a different config than the spec now gives; "
                          "use a new --out (or delete that folder)")
    todo = [r for r in runs if states[r.folder] in _rerun(retry_failed)]
    est = {r.folder: estimate(r, speeds) for r in runs}
    if dry_run:
        _print_plan(runs, todo, states, est, out, meta, workers, speeds)
        return 0
    tasks = _tasks(out, todo, gpus_per_run)
    gpu_slots = _gpu_slots(gpus_per_run)
    if tasks and gpu_slots and all(t["gpus"] > 0 for t in tasks) and backend == "local":
        workers = min(workers, gpu_slots)
    _check_memory(todo, est, workers)
    with _lock(out):
        _record_plan(runs, out, {**meta, "estimate": {
            "cpu_seconds": round(sum(est[r.folder][0] for r in todo), 1), "workers": workers,
            "source": _speed_source(todo, speeds)}}, spec_text, files)
        for r in todo:
            if states[r.folder] == Status.FAILED:
                shutil.rmtree(out / r.folder)
        complete = sum(1 for r in runs if (states[r.folder] or Status.FAILED).complete)
        kept = len(runs) - len(todo) - complete  # failed runs left as they are (no --retry-failed)
        name = meta.get("name", out.name)
        print(f"{name}: {len(runs)} runs, {complete} already complete, "
              + (f"{kept} failed (rerun them with --retry-failed), " if kept else "")
              + f"{len(todo)} to run, {workers} {backend} workers -> {out}", flush=True)
        t0 = time.time()
        seconds = {r.folder: 0.0 if states[r.folder] == Status.FAILED and not retry_failed else est[r.folder][0]
                   for r in runs}  # a failed run left as it is has no work left
        start = _progress_line(out, runs, t0, None, seconds)

        def report() -> str:
            return _describe(_progress_line(out, runs, t0, start, seconds))

        try:
            if tasks and backend == "ray":  # nothing to train: no Ray instance to start
                _run_ray(tasks, workers, address, report)
            elif tasks:
                _run_local(tasks, workers, report)
        except KeyboardInterrupt:
            _write_summary(out / files.summary, summary_rows(out, runs))
            print("\nstopped: finished runs are kept, running ones stopped at a checkpoint; run the same command "
                  "again to continue", file=sys.stderr)
            raise
        rows = summary_rows(out, runs)
        _write_summary(out / files.summary, rows)
    return _summarise(rows, out, files, quiet)


def _rerun(retry_failed: bool) -> set[Status]:
    """The states of the runs a batch (re)starts."""
    return {Status.NOT_STARTED, Status.RUNNING, Status.INTERRUPTED} | ({Status.FAILED} if retry_failed else set())


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


def range_estimate(job: RangeJob, speeds: dict[str, dict[str, float]] | None, workers: int = 1) -> float:
    """Seconds an ``[lr_range]`` test is expected to take: its training timesteps at the training speed
    of its configuration (see :func:`estimate`), evaluation aside (a single test evaluates nothing; a
    sweep's runs score their training episodes); a sweep's grid x seeds runs share ``workers`` workers."""
    from clr_rl.runner import RunConfig, prepare
    from clr_rl.schedules import Constant

    config = RunConfig(job.algo, job.env_id, Constant(job.lr_range[0]), job.timesteps, overrides=job.overrides,
                       device=job.device, threads=1)
    run = PlannedRun(job.env_id, "lr_range", job.seed, job.folder, prepare(config))
    seconds, _ = estimate(run, speeds, evaluations=False)
    return _minutes([seconds] * (job.seeds * job.grid[2]), workers) * 60 if job.method == "sweep" else seconds


def _print_plan(runs: list[PlannedRun], todo: list[PlannedRun], states: dict[str, Status | None], est: dict[str, Any],
                out: Path, meta: dict[str, Any], workers: int, speeds: dict[str, dict[str, float]] | None) -> None:
    shape = f" ({meta['shape']})" if meta.get("shape") else ""
    print(f"{meta.get('name', out.name)}: {len(runs)} runs{shape}, {len(todo)} to run -> {out}")
    print(f"{'env':<24} {'algo':<4} {'arm':<20} {'seed':>4} {'timesteps':>10} {'est_s':>7} {'est_GB':>6}  state")
    for r in runs:
        s, gb = est[r.folder]
        state = states[r.folder]
        print(f"{r.env_id:<24} {r.prepared.config.algo:<4} {r.arm:<20} {r.seed:>4} "
              f"{r.prepared.config.timesteps:>10,} {s:>7.0f} {gb:>6.2f}  {state or 'stale'}")
    seconds = [est[r.folder][0] for r in todo]
    print(f"estimated: {sum(seconds):,.0f} CPU-seconds, about {_minutes(seconds, workers):.1f} min "
          f"with {workers} workers ({_speed_source(runs, speeds)}, 1 thread per run)")


def _speed_source(runs: list[PlannedRun], speeds: dict[str, dict[str, float]] | None) -> str:
    from clr_rl.runner import speed_key

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


def _record_plan(runs: list[PlannedRun], out: Path, meta: dict[str, Any], spec_text: str | None,
                 files: BatchFiles) -> None:
    if spec_text is not None:
        spec_copy = out / "spec.toml"
        if not spec_copy.exists() or spec_copy.read_text() != spec_text:
            write_text_atomic(spec_copy, spec_text)
    write_json_atomic(out / files.plan, {
        **meta, "runs": [{"folder": r.folder, "run_id": r.prepared.run_id(), **r.prepared.resolved()} for r in runs],
    })
    if files.layout:
        from clr_rl.tensorboard import write_layout

        write_layout(out / "runs", list(dict.fromkeys(r.env_id for r in runs)))


def _summarise(rows: list[dict[str, Any]], out: Path, files: BatchFiles, quiet: bool) -> int:
    if not quiet:
        print()
        _print_table(rows)
    failed = [r for r in rows if r["status"] == Status.FAILED.value]
    for row in failed:
        print(f"FAILED {row['folder']}: {read_json(out / row['folder'] / RECORD_FILE).get('error', '?')}")
    diverged = sum(1 for r in rows if r["status"] == Status.DIVERGED.value)
    if diverged:
        print(f"{diverged} run(s) diverged (complete: the report scores them by its diverged-run rule)")
    if failed:
        print(f"{len(failed)} run(s) failed; see run.json in their folders; rerun with --retry-failed")
    print(f"summary: {out / files.summary}")
    return 1 if failed else 0


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _gpu_slots(gpus_per_run: float) -> int:
    """How many GPU runs fit at once on this machine's GPUs (a fraction lets runs share one)."""
    n = _cuda_count()
    if n == 0:
        return 0
    return n * int(1 / gpus_per_run) if gpus_per_run < 1 else max(1, n // math.ceil(gpus_per_run))


def _tasks(out: Path, runs: list[PlannedRun], gpus_per_run: float) -> list[dict[str, Any]]:
    """Tasks with their device placed: CUDA runs go round-robin over the local GPUs."""
    from clr_rl.runner import resolve_device

    n_gpus = _cuda_count()
    tasks = []
    for i, run in enumerate(runs):
        task = _task(out, run)
        device = resolve_device(run.prepared.config.device, run.prepared.agent.policy)
        if device.startswith("cuda"):
            task["gpus"] = gpus_per_run
            if device == "cuda" and n_gpus > 1:
                device = f"cuda:{i % n_gpus}"
        else:
            task["gpus"] = 0
        task["config"]["device"] = device
        tasks.append(task)
    return tasks


def _show(report: Any, last: float, final: bool) -> float:
    """Print the progress line: in place on a terminal, every 30 s in a log."""
    now = time.time()
    tty = sys.stderr.isatty()
    if tty or now - last > 30 or final:
        print(f"\r{report()}" if tty else report(), end="\n" if final or not tty else "", file=sys.stderr, flush=True)
        return now
    return last


def _run_local(tasks: list[dict[str, Any]], workers: int, report: Any) -> None:
    """A spawn-context process pool, one torch thread per worker.

    A dead worker (OOM, segfault, kill) breaks the whole pool: runs that had not started are
    queued again in a fresh pool; runs that were in flight are queued again once (they resume
    from their checkpoints) and marked failed if they are in flight at a second breakage.
    Ctrl-C / SIGTERM: queued runs are cancelled, running ones stop at a rollout boundary with a
    checkpoint, and KeyboardInterrupt propagates.
    """
    import multiprocessing
    import signal
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending = list(tasks)
    breaks: dict[str, int] = {}
    last = 0.0
    pool: ProcessPoolExecutor | None = None

    def on_term(signum: int, frame: Any) -> None:
        for proc in list(getattr(pool, "_processes", {}).values()):  # workers stop at a rollout boundary
            try:
                os.kill(proc.pid, signal.SIGINT)
            except OSError:
                pass
        raise KeyboardInterrupt

    import threading

    main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        while pending:
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx,
                                       initializer=_worker_init)
            futures = {pool.submit(run_task, t): t for t in pending}
            pending = []
            not_done = set(futures)
            try:
                while not_done:
                    done, not_done = wait(not_done, timeout=2.0, return_when=FIRST_COMPLETED)
                    for f in done:
                        task = futures[f]
                        try:
                            f.result()
                        except BrokenProcessPool:
                            path = Path(task["folder"]) / "run.json"
                            started = path.is_file() and read_json(path).get("status") == "running"
                            breaks[task["folder"]] = breaks.get(task["folder"], 0) + int(started)
                            if breaks[task["folder"]] >= 2:
                                _mark_dead(task)
                            else:
                                pending.append(task)
                        except Exception as exc:  # pragma: no cover - run_task never raises
                            _mark_dead(task, repr(exc))
                    last = _show(report, last, final=not not_done and not pending)
            except KeyboardInterrupt:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    finally:
        if main:
            signal.signal(signal.SIGTERM, old_term)


def _run_ray(tasks: list[dict[str, Any]], workers: int, address: str | None, report: Any) -> None:
    """Each run is a Ray task (1 CPU, or ``num_gpus`` for CUDA runs); results land in the same folders.

    Ray tasks rather than Tune trials: a run is one function call with no search to drive,
    and the run folder (not Tune's experiment state) is the source of truth for resume.
    Run folders must be on storage every node sees (shared filesystem) — with a local
    instance that is simply this disk.
    """
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        refs = {}
        for t in tasks:
            if t["gpus"]:  # Ray picks the GPU and sets CUDA_VISIBLE_DEVICES: the task sees it as cuda
                t = {**t, "config": {**t["config"], "device": "cuda"}}
            refs[remote.options(num_gpus=t["gpus"]).remote(t)] = t
        last = 0.0
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as exc:  # a worker that died: only its run fails
                    _mark_dead(refs[ref], f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            last = _show(report, last, final=not pending)
    finally:
        if started_here:
            ray.shutdown()


def _mark_dead(task: dict[str, Any], error: str = "the worker process died (killed, or out of memory)") -> None:
    """Record a run whose worker died (or that raised before its lifecycle began) as failed."""
    folder = Path(task["folder"])
    try:
        record = RunRecord.read(folder)
    except ConfigError:
        record = RunRecord(run_id=task["run_id"], config=task["config"])
    if not record.status.complete:
        record.status, record.error = Status.FAILED, error
        folder.mkdir(parents=True, exist_ok=True)
        record.write(folder)


def print_status(out: Path) -> int:
    """``clr-rl status DIR``: counts, steps and the summary table of a batch."""
    out = Path(out)
    if not (out / "spec.resolved.json").is_file():
        raise ConfigError(f"{str(out)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json(out / "spec.resolved.json")
    folders = [r["folder"] for r in resolved["runs"]]
    counts = {status: 0 for status in Status}
    for folder in folders:
        counts[read_status(out / folder)] += 1
    steps = 0
    for folder in folders:
        evals = read_evaluations(out / folder / "evaluations.csv")
        steps += int(evals[-1]["timesteps"]) if evals else 0
    total = sum(int(r["timesteps"]) for r in resolved["runs"])
    print(f"{resolved['name']}: {len(folders)} runs: " + ", ".join(f"{status.value.replace('_', ' ')} {n}"
                                                                  for status, n in counts.items())
          + f" | {steps:,}/{total:,} steps ({100 * steps / max(total, 1):.0f}%)")
    rows = []
    for r in resolved["runs"]:
        record = read_json(out / r["folder"] / RECORD_FILE) if (out / r["folder"] / RECORD_FILE).is_file() else {}
        evals = read_evaluations(out / r["folder"] / "evaluations.csv")
        rows.append({"env": r["env_id"], "algo": r["algo"], "arm": r["arm"], "seed": r["seed"],
                     "status": read_status(out / r["folder"]).value,
                     "final_return": record.get("final_eval", {}).get("mean_return", ""),
                     "auc": record.get("auc", ""), "timesteps": int(evals[-1]["timesteps"]) if evals else 0,
                     "wall_seconds": record.get("wall_seconds", "")})
    _print_table(rows)
    return 0
