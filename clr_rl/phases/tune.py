"""Tuning a fixed LR: a log grid or Optuna TPE over short runs, one scoring rule, the tuned-LR record."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.execute.batch import execute
from clr_rl.execute.options import ExecOptions
from clr_rl.execute.planned import PlannedRun
from clr_rl.run.limits import MAX_SEEDS, MAX_TRIALS
from clr_rl.run.record import RunRecord, Status, read_record
from clr_rl.store import (
    write_json_atomic,
)

__all__ = ["CRITERIA", "TriedLR", "TunedLR", "lr_grid", "lr_scores", "optuna_search", "parse_grid", "parse_range",
           "sweep_cost", "tune", "tuned_record"]


CRITERIA = ("auc", "final")


def parse_grid(text: str, *, flag: str = "--grid") -> tuple[float, float, int]:
    """``"1e-5:1e-2:7"`` -> (1e-5, 1e-2, 7): log-spaced from lo to hi, n points.

    >>> parse_grid("1e-5:1e-2:4")
    (1e-05, 0.01, 4)
    """
    parts = text.split(":")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise IndexError
    except (IndexError, ValueError):
        raise ConfigError(f"{flag}={text!r} must look like lo:hi:n, e.g. 1e-5:1e-2:7") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ConfigError(f"{flag}={text!r}: needs 0 < lo < hi")
    from clr_rl.run.limits import MAX_GRID_POINTS

    if not 2 <= n <= MAX_GRID_POINTS:
        raise ConfigError(f"{flag}={text!r}: n={n} must be in [2, {MAX_GRID_POINTS}] (a size limit)")
    return lo, hi, n


def parse_range(text: str, *, flag: str = "--range") -> tuple[float, float]:
    """``"1e-6:1e-1"`` -> (1e-06, 0.1), with 0 < lo < hi.

    >>> parse_range("1e-6:1e-1")
    (1e-06, 0.1)
    """
    parts = text.split(":")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{flag}={text!r} must look like lo:hi, e.g. 1e-6:1e-1") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ConfigError(f"{flag}={text!r}: needs 0 < lo < hi")
    return lo, hi


def lr_grid(lo: float, hi: float, n: int) -> list[float]:
    """``n`` log-spaced LRs from ``lo`` to ``hi``, rounded to 3 significant digits.

    >>> lr_grid(1e-4, 1e-2, 3)
    [0.0001, 0.001, 0.01]
    """
    return [float(f"{lo * (hi / lo) ** (i / (n - 1)):.3g}") for i in range(n)]


def _sweep_runs(algo: str, env_id: str, timesteps: int, seeds: int, lrs: list[float], overrides: dict[str, Any],
                eval_every: int | None, eval_episodes: int | None, device: str, first_seed: int = 0) -> list[Any]:
    from clr_rl.execute.planned import PlannedRun
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.schedules.base import Constant

    runs = []
    for lr in lrs:
        arm = f"lr{lr:.3g}"
        for seed in range(first_seed, first_seed + seeds):
            config = RunConfig(algo=algo, env_id=env_id, schedule=Constant(lr), timesteps=timesteps, seed=seed,
                               device=device, overrides=overrides, eval_every=eval_every,
                               eval_episodes=eval_episodes, arm=arm, threads=1)
            runs.append(PlannedRun(env_id, arm, seed, f"runs/{env_id}/{arm}/seed{seed}", prepare(config)))
    return runs


@dataclass(frozen=True)
class TriedLR:
    """One LR of a tuning sweep: its mean score over seeds and the per-seed scores (-inf: diverged)."""

    lr: float
    score_mean: float
    per_seed: tuple[float, ...]


@dataclass(frozen=True)
class TunedLR:
    """The ``tuned_lr.json`` record: the one writer is :meth:`write`, the one reader :meth:`read`.

    ``value`` is the LR that maximises ``criterion`` averaged over ``seeds`` (see :func:`lr_scores`);
    ``tried`` holds every LR tried, ``cost_timesteps`` / ``wall_seconds`` what the tuning cost.
    ``source`` is the file it was read from (not written).
    """

    algo: str
    env_id: str
    value: float
    criterion: str
    method: str
    timesteps: int
    seeds: tuple[int, ...]
    tried: tuple[TriedLR, ...]
    cost_timesteps: int
    wall_seconds: float = 0.0
    criterion_rule: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    date: str = ""
    source: str = field(default="", compare=False)

    def where_in_grid(self) -> str:
        """Where ``value`` sits among the LRs tried, in words: an LR at an edge of what was tried is
        not known to be tuned (the best may lie past it).

        >>> TunedLR("ppo", "E", 1e-3, "auc", "grid", 1, (0,), tuple(TriedLR(v, 0.0, ()) for v in (1e-4, 1e-3)),
        ...         0).where_in_grid()
        'the largest of 2 LRs tried (at the edge: the best LR may lie above it)'
        """
        lrs = sorted(t.lr for t in self.tried)
        if self.value not in lrs or len(lrs) < 2:
            return f"{len(lrs)} LR(s) tried"
        i = lrs.index(self.value)
        if i in (0, len(lrs) - 1):
            side = ("smallest", "below") if i == 0 else ("largest", "above")
            return f"the {side[0]} of {len(lrs)} LRs tried (at the edge: the best LR may lie {side[1]} it)"
        return f"LR {i + 1} of {len(lrs)} tried, inside the grid"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        d["seeds"], d["tried"] = list(self.seeds), [{**t, "per_seed": list(t["per_seed"])} for t in d["tried"]]
        return d

    def write(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def read(cls, path: Path) -> TunedLR:
        """The record at ``path``; ConfigError naming the file when it is not a tune record."""
        try:
            d = json.loads(Path(path).read_text())
            tried = tuple(TriedLR(float(t["lr"]), float(t["score_mean"]), tuple(float(v) for v in t["per_seed"]))
                          for t in d.get("tried", []))
            return cls(algo=str(d["algo"]), env_id=str(d["env_id"]), value=float(d["value"]),
                       criterion=str(d.get("criterion", "?")), method=str(d.get("method", "?")),
                       timesteps=int(d.get("timesteps", 0)), seeds=tuple(int(s) for s in d.get("seeds", [])),
                       tried=tried, cost_timesteps=int(d.get("cost_timesteps") or 0),
                       wall_seconds=float(d.get("wall_seconds") or 0.0),
                       criterion_rule=str(d.get("criterion_rule", "")),
                       overrides=dict(d.get("overrides") or {}), versions=dict(d.get("versions") or {}),
                       date=str(d.get("date", "")), source=str(Path(path).resolve()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"{str(path)!r} is not a clr-rl tune record (needs algo, env_id, value)") from None


def lr_scores(out: Path, runs: list[PlannedRun], criterion: str) -> dict[float, list[float]]:
    """The one LR-scoring rule (``clr-rl tune``, a spec's ``[tune]``, range sweeps): LR -> per-seed scores.

    A finished run scores its criterion (AUC of the evaluation curve, or the final evaluation return);
    a diverged run scores -inf, so an LR that diverged on any seed is never the best; runs that did
    not complete (failed, interrupted, not started) are left out.
    """
    scores: dict[float, list[float]] = {}
    for run in runs:
        status, _ = read_record(out / run.folder)
        if not status.complete:
            continue
        record = RunRecord.read(out / run.folder)
        value = record.auc if criterion == "auc" else record.final_eval.get("mean_return")
        score = -math.inf if status == Status.DIVERGED or value is None else float(value)
        scores.setdefault(float(run.prepared.schedule.lr), []).append(score)
    return scores


def sweep_cost(out: Path, runs: list[PlannedRun]) -> tuple[int, float]:
    """What a sweep's runs cost: (timesteps trained, wall seconds), over every run that has a record."""
    timesteps, seconds = 0, 0.0
    for run in runs:
        _, record = read_record(out / run.folder)  # a torn record counts nothing
        timesteps += int(record.get("timesteps_done") or 0)
        seconds += float(record.get("wall_seconds") or 0.0)
    return timesteps, round(seconds, 3)


def _check_common(algo: str, timesteps: int, seeds: int, criterion: str, out: Path) -> None:
    from clr_rl.store import check_writable

    if algo not in ("ppo", "dqn"):
        raise ConfigError(f"--algo={algo!r} must be ppo or dqn")
    if timesteps < 1:
        raise ConfigError(f"--timesteps={timesteps} must be >= 1")
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds={seeds} must be in [1, {MAX_SEEDS}] (a size limit)")
    if criterion not in CRITERIA:
        raise ConfigError(f"--criterion={criterion!r} must be one of {', '.join(CRITERIA)}")
    check_writable(out)


def optuna_search(trials: int, lr_range: tuple[float, float], seed: int, plan: Callable[[list[float]], list[Any]],
                  run: Callable[[list[Any]], int], out: Path, criterion: str) -> tuple[list[Any], int, str]:
    """The one Optuna loop: TPE over log10(lr) with sampler seed ``seed``.

    Each trial's LR (3 significant digits) is planned by ``plan`` and trained by ``run`` (earlier trials'
    folders are reused, so a rerun replays the study). A trial scores the mean of its seeds' scores
    (:func:`lr_scores`); one whose seeds did not all complete, or that diverged, is told FAIL.
    Returns the runs of every distinct LR tried, the exit status and the method in words.
    """
    if not 1 <= trials <= MAX_TRIALS:
        raise ConfigError(f"--trials={trials} must be in [1, {MAX_TRIALS}] (a size limit)")
    try:
        import optuna
    except ImportError:
        raise ConfigError("--trials needs Optuna: pip install 'clr-rl[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lo, hi = lr_range
    dist = optuna.distributions.FloatDistribution(math.log10(lo), math.log10(hi))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    status, all_runs = 0, list[Any]()
    for _ in range(trials):
        trial = study.ask({"log10_lr": dist})
        lr = float(f"{10 ** trial.params['log10_lr']:.3g}")
        runs = plan([lr])
        all_runs += [r for r in runs if r.folder not in {a.folder for a in all_runs}]
        status |= run(all_runs)
        per_seed = lr_scores(out, runs, criterion).get(lr, [])
        if len(per_seed) == len(runs) and all(math.isfinite(v) for v in per_seed):
            study.tell(trial, sum(per_seed) / len(per_seed))
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return all_runs, status, f"Optuna TPE, {trials} trials over log10(lr) in [{lo:g}, {hi:g}], sampler seed {seed}"


def tuned_record(out: Path, runs: list[PlannedRun], criterion: str, method: str, *, algo: str, env_id: str,
                 overrides: dict[str, Any] | None = None) -> TunedLR:
    """The tuned LR of a sweep's runs: the best mean score over seeds (:func:`lr_scores`), every LR tried,
    the cost (all runs' timesteps and wall seconds). RuntimeError when no run completed."""
    from clr_rl.run.prepare import versions

    scores = lr_scores(out, runs, criterion)
    if not scores:
        raise RuntimeError(f"no tuning run of {algo} on {env_id} completed; see the run folders under {out}")
    means = {lr: sum(v) / len(v) for lr, v in scores.items()}
    if not any(math.isfinite(m) for m in means.values()):
        raise RuntimeError(f"every LR tried for {algo} on {env_id} diverged on some seed; see the run folders under "
                           f"{out} (try smaller LRs)")
    best = max(means, key=lambda lr: means[lr])
    measure = "AUC of the evaluation curve" if criterion == "auc" else "final evaluation return"
    cost_timesteps, wall_seconds = sweep_cost(out, runs)
    return TunedLR(
        algo=algo, env_id=env_id, value=best, criterion=criterion, method=method,
        timesteps=runs[0].prepared.config.timesteps, seeds=tuple(sorted({r.seed for r in runs})),
        tried=tuple(TriedLR(lr, means[lr], tuple(scores[lr])) for lr in sorted(scores)),
        cost_timesteps=cost_timesteps, wall_seconds=wall_seconds,
        criterion_rule=f"mean over seeds of the {measure} (a diverged run scores -inf); the best LR maximises it",
        overrides=dict(overrides or {}), versions=versions(), date=time.strftime("%Y-%m-%d"))


def _print_tuned(record: TunedLR, path: Path, status: int) -> None:
    """The LRs tried with their scores (the best marked), the tuned LR and where its record is."""
    print(f"{'lr':>10}  {'score (' + record.criterion + ')':>14}  seeds")
    for row in record.tried:
        mark = "  <- best" if row.lr == record.value else ""
        print(f"{row.lr:>10.3g}  {row.score_mean:>14.2f}  {len(row.per_seed)}{mark}")
    print(f"tuned fixed LR for {record.algo} on {record.env_id}: {record.value:g} ({record.method}; "
          f"cost {record.cost_timesteps:,} timesteps) -> {path}")
    if status:
        print("some runs failed; the record uses the finished ones")


def tune(*, algo: str, env_id: str, timesteps: int, seeds: int, out: Path, grid: str | None = None,
         trials: int | None = None, lr_range: str = "1e-5:1e-2", criterion: str = "auc",
         overrides: dict[str, Any] | None = None, workers: int | None = None, eval_every: int | None = None,
         eval_episodes: int | None = None, device: str = "auto", seed: int = 0,
         options: ExecOptions | None = None) -> dict[str, Any]:
    """Sweep a fixed LR (log grid, or Optuna TPE trials) and write ``out/tuned_lr.json``.

    The best LR maximises the criterion averaged over seeds (:func:`lr_scores`). Every LR tried is in
    the record with its scores, and the cost is the sum of all runs' timesteps. ``options`` (default:
    ``workers`` local workers) says where the runs execute.
    """
    out = Path(out)
    _check_common(algo, timesteps, seeds, criterion, out)
    options = options or ExecOptions(workers=workers)
    overrides = dict(overrides or {})
    if (grid is None) == (trials is None):
        raise ConfigError("give exactly one of --grid lo:hi:n or --trials N")
    meta = {"name": f"tune-{algo}-{env_id}".replace("/", "_"), "baseline": None,
            "spec": {"tune": {"algo": algo, "env_id": env_id, "timesteps": timesteps, "seeds": seeds,
                              "criterion": criterion, "grid": grid, "trials": trials}}}
    plan = partial(_sweep_runs, algo, env_id, timesteps, seeds, overrides=overrides, eval_every=eval_every,
                   eval_episodes=eval_episodes, device=device)
    run = partial(execute, out=out, meta=meta, options=options, quiet=True)
    if grid is not None:
        all_runs = plan(lr_grid(*parse_grid(grid)))
        status = run(all_runs)
        method = f"log grid {grid}"
    else:
        assert trials is not None
        all_runs, status, method = optuna_search(trials, parse_range(lr_range), seed, plan, run, out, criterion)
    record = tuned_record(out, all_runs, criterion, method, algo=algo, env_id=env_id, overrides=overrides)
    record.write(out / "tuned_lr.json")
    _print_tuned(record, out / "tuned_lr.json", status)
    return {**record.to_dict(), "exit_status": status}
