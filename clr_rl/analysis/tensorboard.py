"""A batch in TensorBoard: aggregate runs per arm, the custom-scalars layout, HParams, serving."""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from clr_rl.run.tblog import (
    AGGREGATE_DIR,
    ALL_ENVS,
    LAYOUT_RUN,
    LR_STEP_TAG,
    LR_TAG,
    aggregate_tag,
    write_layout,
)

__all__ = ["serve", "write_aggregates"]























# ------------------------------------------------------------------------------ aggregates
def _refs(resolved: dict[str, Any], env: str) -> tuple[float, float] | None:
    """(random, reference) scores: the spec's ``[overrides."<env>"]``, else ``envs/``, else None."""
    from clr_rl.run.envs import env_info

    over = (resolved.get("spec") or {}).get("overrides", {}).get(env, {})
    if "random_score" in over and "reference_score" in over:
        return float(over["random_score"]), float(over["reference_score"])
    info = env_info(env)
    return (info.random_score, info.reference_score) if info is not None else None



def _applied_lr(folder: Path, config: dict[str, Any], steps: list[int]) -> list[tuple[int, float]]:
    """The LR a run applied, from its events (``train/lr_applied``, else ``train/lr_per_step``);
    for a run without them, its schedule at ``steps``: ``schedule(1 - t / timesteps)``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from clr_rl.schedules.text import bind_total_timesteps, parse_schedule

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags().get("scalars", []))
    for tag in (LR_TAG, LR_STEP_TAG):
        if tag in tags:
            return [(int(e.step), float(e.value)) for e in acc.Scalars(tag)]
    if "timesteps" not in config or "schedule" not in config:  # a record without its config (crashed early)
        return []
    total = int(config["timesteps"])
    schedule = bind_total_timesteps(parse_schedule(config["schedule"]), total)
    return [(t, float(schedule(min(1.0, max(0.0, 1 - t / total))))) for t in steps]



def _write_arm(folder: Path, env: str, seeds: list[dict[str, Any]], refs: tuple[float, float] | None,
               lr: list[tuple[int, float]]) -> None:
    """One aggregate run: mean and t-interval over the seeds at each evaluation step."""
    from torch.utils.tensorboard import SummaryWriter

    from clr_rl.stats.aggregates import mean_ci_t

    by_step: dict[int, list[float]] = {}
    for run in seeds:
        for row in run["evals"]:
            if math.isfinite(row["mean_return"]):  # never a NaN in a chart (a run that diverged)
                by_step.setdefault(int(row["timesteps"]), []).append(float(row["mean_return"]))
    folder.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(folder))
    for step in sorted(by_step):
        values = by_step[step]
        mean, _, low, high = mean_ci_t(values)
        if len(values) < 2:  # no interval from one seed: the band collapses onto the mean
            low = high = mean
        scalars = {"return_mean": mean, "return_mean_ci95_low": low, "return_mean_ci95_high": high,
                   "seeds": float(len(values))}
        if refs is not None:
            rnd, ref = refs
            a, b, c = ((v - rnd) / (ref - rnd) for v in (mean, low, high))
            scalars.update(normalized_mean=a, normalized_mean_ci95_low=min(b, c), normalized_mean_ci95_high=max(b, c))
        for name, value in scalars.items():
            writer.add_scalar(aggregate_tag(env, name), value, step)
    for step, value in lr:
        writer.add_scalar(aggregate_tag(env, "lr_applied"), value, step)
    writer.close()



def _iqm_curve(arm: str, envs: list[str], finished: dict[tuple[str, str], list[dict[str, Any]]],
               refs: dict[str, tuple[float, float] | None], stats: dict[str, Any] | None
               ) -> list[tuple[int, float, float, float]]:
    """(percent of budget, IQM, CI low, CI high) of the arm's normalised return over envs and seeds.

    From the report's ``stats["sample_efficiency"]`` when given (the same numbers as the
    report); otherwise computed the same way: each finished run's evaluation curve linearly
    interpolated at 0, 5, ..., 100% of its budget and normalised, the first ``n`` seeds of each
    env (``n`` = fewest finished in any env), IQM with a stratified bootstrap CI (1000
    resamples, seed 0).
    """
    import numpy as np

    efficiency = (stats or {}).get("sample_efficiency") or {}
    if isinstance(efficiency.get(arm), dict) and efficiency.get("fractions"):
        band = efficiency[arm]
        rows = zip(efficiency["fractions"], band.get("iqm", []), band.get("ci_low", []), band.get("ci_high", []))
        return [(round(100 * f), m, lo, hi) for f, m, lo, hi in rows if None not in (m, lo, hi)]
    from clr_rl.stats.aggregates import bootstrap_ci, iqm, normalize

    grid = np.linspace(0.0, 1.0, 21)
    curves: dict[str, list[np.ndarray]] = {}
    for env in envs:
        rnd, ref = refs[env] or (0.0, 1.0)
        curves[env] = []
        for run in finished.get((env, arm), []):
            t = np.array([e["timesteps"] for e in run["evals"]], dtype=float) / run["timesteps"]
            y = np.array([e["mean_return"] for e in run["evals"]], dtype=float)
            curves[env].append(normalize(np.interp(grid, t, y), rnd, ref))
    n = min(len(c) for c in curves.values())
    if n == 0:
        return []
    rng = np.random.default_rng(0)
    out = []
    for g, fraction in enumerate(grid):
        matrix = np.array([[curves[e][i][g] for e in envs] for i in range(n)])
        out.append((round(100 * float(fraction)), *bootstrap_ci(matrix, iqm, reps=1000, rng=rng)))
    return out



def _finished_runs(batch_dir: Path, planned: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(env, arm) -> its finished runs that have evaluations: folder, config, evaluations, timesteps."""
    from clr_rl.store import read_evaluations, read_json

    finished: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in planned:
        folder = batch_dir / r["folder"]
        record = read_json(folder / "run.json") if (folder / "run.json").is_file() else {}
        evals = read_evaluations(folder / "evaluations.csv")
        if record.get("status") == "finished" and evals:
            finished.setdefault((r["env_id"], r["arm"]), []).append(
                {"folder": folder, "config": record.get("config", r), "evals": evals, "timesteps": int(r["timesteps"])})
    return finished



def _write_arms(root: Path, envs: list[str], arms: list[str], finished: dict[tuple[str, str], list[dict[str, Any]]],
                refs: dict[str, tuple[float, float] | None]) -> list[Path]:
    """One aggregate run per (env, arm) with finished seeds, under ``root/<env>/<arm>``; the folders written."""
    written = []
    for env in envs:
        for arm in arms:
            seeds = finished.get((env, arm), [])
            if not seeds:
                continue
            steps = sorted({int(e["timesteps"]) for s in seeds for e in s["evals"]})
            lr = _applied_lr(seeds[0]["folder"], seeds[0]["config"], steps)
            folder = root / env / arm
            _write_arm(folder, env, seeds, refs[env], lr)
            written.append(folder)
    return written



def _write_iqm_run(folder: Path, curve: list[tuple[int, float, float, float]]) -> None:
    """One ``aggregate/all_envs/<arm>`` run: the IQM and its CI bounds at each percent of budget."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder))
    for step, estimate, low, high in curve:
        writer.add_scalar(aggregate_tag(ALL_ENVS, "normalized_iqm"), estimate, step)
        writer.add_scalar(aggregate_tag(ALL_ENVS, "normalized_iqm_ci95_low"), low, step)
        writer.add_scalar(aggregate_tag(ALL_ENVS, "normalized_iqm_ci95_high"), high, step)
    writer.close()



def _write_iqm_runs(root: Path, envs: list[str], arms: list[str],
                    finished: dict[tuple[str, str], list[dict[str, Any]]],
                    refs: dict[str, tuple[float, float] | None], stats: dict[str, Any] | None) -> list[Path]:
    """One batch-level IQM run per arm whose curve has finite points; the folders written."""
    written = []
    for arm in arms:
        curve = _iqm_curve(arm, envs, finished, refs, stats)
        curve = [p for p in curve if all(math.isfinite(v) for v in p[1:])]
        if not curve:
            continue
        folder = root / ALL_ENVS / arm
        _write_iqm_run(folder, curve)
        written.append(folder)
    return written



def write_aggregates(batch_dir: Path, stats: dict[str, Any] | None = None) -> list[Path]:
    """Write one TensorBoard run per (env, arm) under ``<batch>/runs/aggregate/<env>/<arm>/``.

    Only finished runs count, and only their finite evaluations (runs that diverged are left
    out; the report scores them by its own rule, so its numbers can differ where they exist).
    The whole ``runs/aggregate/`` folder is deleted and rewritten each call, never appended.
    Also writes ``aggregate/all_envs/<arm>``
    (normalised IQM, when every env has references; from ``stats`` -- the report's
    ``stats.json`` -- when given) and rewrites the ``_layout`` run. Returns the run folders
    written. Raises ValueError if ``batch_dir`` holds no ``spec.resolved.json``.
    """
    from clr_rl.store import read_json

    batch_dir = Path(batch_dir)
    path = batch_dir / "spec.resolved.json"
    if not path.is_file():
        raise ValueError(f"{str(batch_dir)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json(path)
    planned: list[dict[str, Any]] = resolved["runs"]
    runs_dir = batch_dir / "runs"
    root = runs_dir / AGGREGATE_DIR
    shutil.rmtree(root, ignore_errors=True)
    envs = list(dict.fromkeys(r["env_id"] for r in planned))
    arms = list(dict.fromkeys(r["arm"] for r in planned))
    refs = {env: _refs(resolved, env) for env in envs}
    finished = _finished_runs(batch_dir, planned)
    written = _write_arms(root, envs, arms, finished, refs)
    iqm = all(refs[env] is not None for env in envs)
    if iqm:
        written += _write_iqm_runs(root, envs, arms, finished, refs, stats)
    write_layout(runs_dir, envs, runs=planned, iqm=iqm)
    return written



def _aggregates_stale(batch_dir: Path) -> bool:
    """Missing, or older than some run's ``run.json`` / ``evaluations.csv``."""
    runs_dir = batch_dir / "runs"
    root = runs_dir / AGGREGATE_DIR
    written = [p.stat().st_mtime for p in root.rglob("events.out.tfevents.*")] if root.is_dir() else []
    if not written or not (runs_dir / LAYOUT_RUN).is_dir():
        return True
    newest = 0.0
    for pattern in ("run.json", "evaluations.csv"):
        for p in runs_dir.rglob(pattern):
            if root not in p.parents:
                newest = max(newest, p.stat().st_mtime)
    return newest > min(written)



# ------------------------------------------------------------------------------ serve
def serve(folder: Path, *, port: int = 6006) -> int:
    """Start TensorBoard on a batch (its ``runs/``) or a single run folder; blocks until Ctrl-C.

    On a batch, the aggregate runs are (re)written first when missing or older than the runs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder")
    if not 1 <= port <= 65535:
        raise ValueError(f"--port={port} must be in 1..65535")
    if (folder / "spec.resolved.json").is_file() and (folder / "runs").is_dir() and _aggregates_stale(folder):
        try:
            written = write_aggregates(folder)
            print(f"wrote {len(written)} aggregate runs under {folder / 'runs' / AGGREGATE_DIR}", flush=True)
        except (ValueError, OSError, KeyError) as exc:  # the per-seed runs are still worth showing
            print(f"aggregate runs not written ({exc}); showing the runs as they are", file=sys.stderr, flush=True)
    logdir = folder / "runs" if (folder / "runs").is_dir() else folder
    exe = shutil.which("tensorboard") or str(Path(sys.executable).with_name("tensorboard"))
    print(f"TensorBoard on {logdir}: http://localhost:{port}/ (Ctrl-C to stop)", flush=True)
    proc = subprocess.Popen([exe, "--logdir", str(logdir), "--port", str(port), "--host", "localhost"])

    def on_term(signum: int, frame: object) -> None:  # SIGTERM as Ctrl-C: never leave TensorBoard orphaned
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        return 0
    finally:
        if main:
            signal.signal(signal.SIGTERM, old_term)
