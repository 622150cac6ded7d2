"""LR range tests by sweep (short runs at log-spaced fixed LRs) and the setup phase's range jobs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.execute.options import ExecOptions
from clr_rl.phases.tune import _check_common, _sweep_runs, lr_grid, lr_scores, parse_grid, sweep_cost
from clr_rl.plotting import _pyplot
from clr_rl.store import (
    write_text_atomic,
)

__all__ = ["explore_as_budget", "lr_range_sweep", "plot_lr_range", "suggest_from_sweep"]


def explore_as_budget(algo: str, env_id: str, timesteps: int, budget: int | None,
                      overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` for a short DQN run of ``timesteps`` that explores as the first ``timesteps`` of a
    run of ``budget`` would: SB3's epsilon falls over ``exploration_fraction`` of *the run's own*
    timesteps, so a run a fifth as long explores a fifth as long, and a short sweep would score a
    different agent. Its exploration_fraction becomes ``fraction x budget / timesteps`` (it may exceed 1:
    epsilon then has not reached its floor when the short run ends). PPO, or no budget: unchanged.

    >>> explore_as_budget("dqn", "Acrobot-v1", 20_000, 100_000, {})
    {'exploration_fraction': 0.6}
    """
    if budget is not None and budget < 1:
        raise ConfigError(f"--budget={budget} must be >= 1")
    if algo != "dqn" or budget is None or budget == timesteps:
        return overrides
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.schedules.base import Constant

    agent = prepare(RunConfig(algo=algo, env_id=env_id, schedule=Constant(1e-3), timesteps=budget,
                              overrides=overrides)).agent
    fraction = float(agent.hyperparams["exploration_fraction"])
    return {**overrides, "exploration_fraction": float(f"{fraction * budget / timesteps:.6g}")}



def suggest_from_sweep(scores: dict[float, float]) -> tuple[float, float, str]:
    """Smith's rule on a score-vs-LR curve: base where it starts improving, max before it worsens.

    base_lr: the smallest LR whose score is at least 25% of the way from the smallest LR's score to
    the best. max_lr: the largest LR at or above the best one whose score stays within 10% of the
    best (of the best-minus-worst span). If they meet, base = max / 4 (Smith: base ~ max/3..4).

    >>> suggest_from_sweep({1e-5: 10.0, 1e-4: 50.0, 1e-3: 100.0, 1e-2: 95.0, 1e-1: 0.0})[:2]
    (0.0001, 0.01)
    """
    lrs = sorted(scores)
    best_lr = max(lrs, key=lambda lr: scores[lr])
    best, worst, low_end = scores[best_lr], min(scores.values()), scores[lrs[0]]
    base = next(lr for lr in lrs if scores[lr] >= low_end + 0.25 * (best - low_end))
    span = best - worst
    max_lr = max(lr for lr in lrs if lr >= best_lr and scores[lr] >= best - 0.10 * span)
    how = ("base_lr = smallest LR scoring >= 25% of the way from the lowest LR's score to the best; "
           "max_lr = largest LR at or above the best one scoring within 10% of the best-worst span")
    if base >= max_lr:
        base = float(f"{max_lr / 4:.3g}")
        how += "; they met, so base_lr = max_lr / 4 (Smith)"
    return base, max_lr, how



def _suggested_spec(base: float, max_lr: float) -> str:
    from clr_rl.schedules.cyclical import Triangular2

    if max_lr / base >= 10:
        return str(Triangular2(base_lr=base, max_lr=max_lr, cycles=4, space="log"))
    return str(Triangular2(base_lr=base, max_lr=max_lr, cycles=4))



def _write_result(out: Path, result: dict[str, Any]) -> None:
    write_text_atomic(out / "lr_range.json", json.dumps(result, indent=2) + "\n")
    print(f"suggested: {result['suggested_schedule']}")
    print(f"how: {result['rule']}")
    print(f"wrote {out / 'lr_range.json'} and {out / 'lr_range.png'}")



def lr_range_sweep(*, algo: str, env_id: str, timesteps: int, out: Path, grid: str = "1e-5:1e-2:7", seeds: int = 2,
                   criterion: str = "auc", overrides: dict[str, Any] | None = None, workers: int | None = None,
                   eval_every: int | None = None, eval_episodes: int | None = None,
                   device: str = "auto", first_seed: int = 0, budget: int | None = None,
                   options: ExecOptions | None = None) -> dict[str, Any]:
    """LR range test by sweep: short runs at log-spaced fixed LRs (the same runs as ``tune``), on
    seeds ``first_seed .. first_seed + seeds - 1`` (a batch passes seeds disjoint from its evaluation
    seeds). ``budget``: the timesteps of the runs the range is for; a DQN sweep's shorter runs then
    explore as the start of such a run (:func:`explore_as_budget`)."""
    from clr_rl.execute.batch import execute
    pass

    out = Path(out)
    _check_common(algo, timesteps, seeds, criterion, out)
    lrs = lr_grid(*parse_grid(grid))
    overrides = explore_as_budget(algo, env_id, timesteps, budget, dict(overrides or {}))
    runs = _sweep_runs(algo, env_id, timesteps, seeds, lrs, overrides, eval_every, eval_episodes, device, first_seed)
    meta = {"name": f"lr-range-{algo}-{env_id}".replace("/", "_"), "baseline": None,
            "spec": {"lr_range": {"method": "sweep", "grid": grid, "seeds": seeds, "first_seed": first_seed,
                                  "timesteps": timesteps, "budget": budget, "overrides": overrides}}}
    execute(runs, out, meta=meta, options=options or ExecOptions(workers=workers), quiet=True)
    # lr_scores' rule, read as a curve: a diverged run (-inf) is no point on it
    finite = {lr: [s for s in v if math.isfinite(s)] for lr, v in lr_scores(out, runs, criterion).items()}
    per_seed = {lr: v for lr, v in finite.items() if v}
    if len(per_seed) < 2:
        raise RuntimeError("fewer than 2 LRs of the sweep finished; see the run folders for their errors")
    means = {lr: sum(v) / len(v) for lr, v in per_seed.items()}
    base, max_lr, how = suggest_from_sweep(means)
    spec = _suggested_spec(base, max_lr)
    plot_lr_range(out / "lr_range.png", {"score": (sorted(means), [means[lr] for lr in sorted(means)])},
                  base, max_lr, f"{algo.upper()} {env_id}: {criterion} vs fixed LR (sweep, {seeds} seeds)",
                  points={lr: per_seed[lr] for lr in per_seed})
    result = {"method": "sweep", "algo": algo, "env_id": env_id, "timesteps": timesteps, "seeds": seeds,
              "criterion": criterion, "scores": [{"lr": lr, "mean": means[lr], "per_seed": per_seed[lr]}
                                                 for lr in sorted(means)],
              "base_lr": base, "max_lr": max_lr, "rule": how, "suggested_schedule": spec,
              "cost_timesteps": sweep_cost(out, runs)[0], "budget": budget,
              "exploration_fraction": overrides.get("exploration_fraction")}
    _write_result(out, result)
    return result












def plot_lr_range(path: Path, series: dict[str, tuple[list[float], list[float]]], base_lr: float, max_lr: float,
                  title: str, points: dict[float, list[float]] | None = None, limits: dict[str, float] | None = None,
                  note: str | None = None) -> Path:
    """Metrics vs LR (log x), one panel per metric: every measured point marked, the suggested
    base/max as vertical lines, a health limit (``limits[name]``) as a horizontal line, and
    ``note`` (e.g. the resolution: points measured, LR ratio between them) under the title."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(7, 2.6 * len(series) + 0.6), dpi=100, sharex=True,
                             squeeze=False)
    for ax, (name, (lrs, values)) in zip(axes[:, 0], series.items()):
        ax.plot(lrs, values, marker="o", ms=4 if len(lrs) < 60 else 2.5, lw=1.2)
        if points and name == "score":
            for lr, vs in points.items():
                ax.scatter([lr] * len(vs), vs, s=10, color="grey", alpha=0.6)
        ax.axvline(base_lr, color="tab:green", ls="--", label=f"base_lr {base_lr:.3g}")
        ax.axvline(max_lr, color="tab:red", ls="--", label=f"max_lr {max_lr:.3g}")
        if limits and name in limits:
            ax.axhline(limits[name], color="grey", ls=":", label=f"limit {limits[name]:g}")
        ax.set_xscale("log")
        positive = [v for v in values if v == v and 0 < v < float("inf")]
        if positive and max(positive) / min(positive) > 1e3:  # KL spans decades once training destabilises
            if len(positive) == len(values):
                ax.set_yscale("log")
            elif all(v == 0 or v in positive for v in values):  # zeros (a collapsed policy) stay visible
                ax.set_yscale("symlog", linthresh=max(positive) * 1e-4)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title + (f"\n{note}" if note else ""), fontsize=9)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("learning rate")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
