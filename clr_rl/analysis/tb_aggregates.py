"""The series of one arm's TensorBoard run: every env's mean return with its bootstrap band, the LR
it applied (with its range), and the batch-level IQM from the report.

One run per arm (``runs/arms/<arm>``) holds every env under env-prefixed tags
(:func:`clr_rl.run.tblayout.aggregate_tag`), so TensorBoard, which colours by run, gives an arm
one colour in every chart and section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl import stats as st
from clr_rl.run.references import EnvRefs
from clr_rl.run.tblayout import ALL_ENVS, aggregate_tag, scalar_summary, write_events
from clr_rl.run.tblog import LR_STEP_TAG, LR_TAG

__all__ = ["ArmSeries", "FinishedRun", "arm_series", "finished_runs", "write_arm"]


@dataclass(frozen=True)
class FinishedRun:
    """A finished run with evaluations: its folder, resolved config and evaluation rows."""

    folder: Path
    config: dict[str, Any]
    evals: list[dict[str, float]]


@dataclass
class ArmSeries:
    """tag -> [(step, value)] of one arm's run, and env -> the (min, max) LR it applied."""

    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    lr_range: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add(self, env: str, name: str, step: int, value: float) -> None:
        self.scalars.setdefault(aggregate_tag(env, name), []).append((int(step), float(value)))


def finished_runs(batch_dir: Path, planned: list[dict[str, Any]]) -> dict[tuple[str, str], list[FinishedRun]]:
    """(env, arm) -> its finished runs that have evaluations, in plan order (status read by
    :mod:`clr_rl.run.record`)."""
    from clr_rl.run.record import Status, read_record
    from clr_rl.store import read_evaluations

    out: dict[tuple[str, str], list[FinishedRun]] = {}
    for r in planned:
        folder = batch_dir / r["folder"]
        status, record = read_record(folder)
        evals = read_evaluations(folder / "evaluations.csv")
        if status == Status.FINISHED and evals:
            out.setdefault((r["env_id"], r["arm"]), []).append(FinishedRun(folder, record.get("config") or r, evals))
    return out


def _applied_lr(run: FinishedRun, steps: list[int]) -> list[tuple[int, float]]:
    """The LR a run applied, from its events (``train/lr_applied``, else ``train/lr_per_step``);
    for a run without them, its schedule at ``steps``: ``schedule(1 - t / timesteps)``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from clr_rl.schedules.text import bind_total_timesteps, parse_schedule

    acc = EventAccumulator(str(run.folder), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags().get("scalars", []))
    for tag in (LR_TAG, LR_STEP_TAG):
        if tag in tags:
            return [(int(e.step), float(e.value)) for e in acc.Scalars(tag)]
    if "timesteps" not in run.config or "schedule" not in run.config:  # a record without its config
        return []
    total = int(run.config["timesteps"])
    schedule = bind_total_timesteps(parse_schedule(run.config["schedule"]), total)
    return [(t, float(schedule(min(1.0, max(0.0, 1 - t / total))))) for t in steps]


def _returns_by_step(seeds: list[FinishedRun]) -> dict[int, list[float]]:
    """step -> the seeds' finite mean returns (never a NaN in a chart: a run that diverged)."""
    by_step: dict[int, list[float]] = {}
    for run in seeds:
        for row in run.evals:
            if math.isfinite(row["mean_return"]):
                by_step.setdefault(int(row["timesteps"]), []).append(float(row["mean_return"]))
    return dict(sorted(by_step.items()))


def _env_series(series: ArmSeries, env: str, seeds: list[FinishedRun], refs: EnvRefs,
                rng: np.random.Generator, reps: int) -> None:
    """Mean over seeds with its 95% percentile bootstrap CI (:func:`clr_rl.stats.bootstrap_ci` of the
    mean over a (seeds, 1) matrix: the band never leaves the observed returns), the normalised
    score where the env has a reference, the seed count, and the LR with its min and max."""
    for step, values in _returns_by_step(seeds).items():
        mean, low, high = st.bootstrap_ci(np.array(values)[:, None], st.AGGREGATES["mean"], reps=reps, rng=rng)
        series.add(env, "return_mean", step, mean)
        series.add(env, "return_mean_ci95_low", step, low)
        series.add(env, "return_mean_ci95_high", step, high)
        series.add(env, "seeds", step, len(values))
        if refs.normalisable:
            a, b, c = (float(st.normalize(v, refs.random_score, refs.reference_score)) for v in (mean, low, high))  # type: ignore[arg-type]
            series.add(env, "normalized_mean", step, a)
            series.add(env, "normalized_mean_ci95_low", step, min(b, c))
            series.add(env, "normalized_mean_ci95_high", step, max(b, c))
    steps = sorted({int(e["timesteps"]) for s in seeds for e in s.evals})
    lr = _applied_lr(seeds[0], steps)
    if not lr:
        return
    lo, hi = min(v for _, v in lr), max(v for _, v in lr)
    series.lr_range[env] = (lo, hi)
    for step, value in lr:  # the range as flat lines with as many points as the LR: see tblayout._layout
        series.add(env, "lr_applied", step, value)
        series.add(env, "lr_applied_min", step, lo)
        series.add(env, "lr_applied_max", step, hi)


def _iqm_series(series: ArmSeries, band: dict[str, Any], fractions: list[float]) -> None:
    """The report's ``sample_efficiency`` band of this arm (IQM, stratified bootstrap CI) at % of budget."""
    rows = zip(fractions, band.get("iqm", []), band.get("ci_low", []), band.get("ci_high", []))
    for f, m, lo, hi in rows:
        if None in (m, lo, hi) or not all(math.isfinite(v) for v in (m, lo, hi)):
            continue
        step = round(100 * f)
        series.add(ALL_ENVS, "normalized_iqm", step, m)
        series.add(ALL_ENVS, "normalized_iqm_ci95_low", step, lo)
        series.add(ALL_ENVS, "normalized_iqm_ci95_high", step, hi)


def arm_series(arm: str, envs: list[str], finished: dict[tuple[str, str], list[FinishedRun]],
               refs: dict[str, EnvRefs], stats: dict[str, Any] | None, *, seed: int, reps: int) -> ArmSeries:
    """Every series of ``arm``'s run. The bootstrap stream is ``rng_for(seed, "tensorboard", env, arm)``."""
    series = ArmSeries()
    for env in envs:
        seeds = finished.get((env, arm), [])
        if seeds:
            _env_series(series, env, seeds, refs[env], st.rng_for(seed, "tensorboard", env, arm), reps)
    efficiency = (stats or {}).get("sample_efficiency") or {}
    if isinstance(efficiency.get(arm), dict) and efficiency.get("fractions"):
        _iqm_series(series, efficiency[arm], efficiency["fractions"])
    return series


def write_arm(folder: Path, series: ArmSeries) -> None:
    """One event file in ``folder`` with every series (the folder is the arm's run)."""
    write_events(folder, [(step, scalar_summary(tag, value)) for tag, points in series.scalars.items()
                          for step, value in points])
