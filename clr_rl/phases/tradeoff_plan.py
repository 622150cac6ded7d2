"""Planning a tradeoff curve: one multiplicative SGDR schedule whose cycle ends are the budgets read off it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clr_rl.schedules.cyclical import CosineRestarts

__all__ = ["SINGLE_ARM", "TradeoffJob", "TradeoffPlan", "plan_tradeoff"]

SINGLE_ARM = "restarts"



def _anneal_arm(budget: int) -> str:
    return f"anneal{budget}"



@dataclass(frozen=True)
class TradeoffPlan:
    """Where the cycles and budgets of a tradeoff run fall, in timesteps (no training yet)."""

    algo: str
    env_id: str
    requested_timesteps: int
    timesteps: int  # the single run's length as trained
    cycles: int
    t_mult: float
    update_every: int  # timesteps between two LR updates
    update_how: str
    first_cycle_timesteps: float
    cycle_ends: tuple[float, ...]  # the schedule's troughs
    budgets: tuple[int, ...]  # evaluation points: the first LR-update boundary at or after each trough
    eval_every: int
    schedule: CosineRestarts
    lr_provenance: str
    overrides: dict[str, Any]

    def anneal_schedule(self) -> CosineRestarts:
        """The separate runs' schedule: one cosine cycle from max_lr to min_lr over the run."""
        return CosineRestarts(min_lr=self.schedule.min_lr, max_lr=self.schedule.max_lr, cycles=1)

    def compute(self) -> dict[str, Any]:
        """Timesteps per seed of each approach: one run of T vs one run per budget."""
        separate = sum(self.budgets)
        return {"single_timesteps_per_seed": self.timesteps, "separate_timesteps_per_seed": separate,
                "separate_over_single": separate / self.timesteps}



def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value



def _max_lr(max_lr: float | str, tuned_lr: float, tuned_source: str) -> tuple[float, str]:
    if max_lr == "tuned":
        return float(tuned_lr), f"max_lr {tuned_lr:g} = the env's tuned fixed LR ({tuned_source})"
    if isinstance(max_lr, bool) or not isinstance(max_lr, (int, float)) or not math.isfinite(max_lr) or max_lr <= 0:
        raise ValueError(f"max_lr={max_lr!r} must be a number > 0 or 'tuned'")
    return float(max_lr), f"max_lr {max_lr:g} given by the user"



def plan_tradeoff(algo: str, env_id: str, timesteps: int, cycles: int, *, t_mult: float = 2.0,
                  min_lr_fraction: float = 0.0, max_lr: float | str = "tuned",
                  overrides: dict[str, Any] | None = None) -> TradeoffPlan:
    """Validate a tradeoff request and place its cycles and budgets on LR-update boundaries.

    Raises ValueError for ``cycles < 2``, ``t_mult <= 1``, a first cycle shorter than two LR
    updates, and bad LR bounds. ``min_lr = min_lr_fraction * max_lr`` (default 0: Composer's
    ``alpha_f`` default, and the Zoo's ``lin_`` schedules also end at 0).
    """
    from clr_rl.run.agents import agent_config
    from clr_rl.run.envs import env_family

    if algo not in ("ppo", "dqn"):
        raise ValueError(f"algo={algo!r} must be ppo or dqn")
    _int("timesteps", timesteps, 1)
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 2:
        raise ValueError(f"cycles={cycles!r} must be an integer >= 2 (one cycle gives a single budget point)")
    if isinstance(t_mult, bool) or not isinstance(t_mult, (int, float)) or not math.isfinite(t_mult) or t_mult <= 1:
        raise ValueError(f"t_mult={t_mult!r} must be a number > 1 (each cycle longer than the last; "
                         "t_mult = 1 gives equal cycles, not a tradeoff curve)")
    if (isinstance(min_lr_fraction, bool) or not isinstance(min_lr_fraction, (int, float))
            or not 0.0 <= min_lr_fraction < 1.0):
        raise ValueError(f"min_lr_fraction={min_lr_fraction!r} must be in [0, 1)")
    agent = agent_config(algo, env_id, env_family(env_id), dict(overrides or {}))
    top, provenance = _max_lr(max_lr, agent.tuned_lr, agent.tuned_lr_source)
    m = float(t_mult)
    u, how = agent.lr_update_every()
    first = timesteps * (m - 1.0) / (m**cycles - 1.0)
    if first < 2 * u:
        raise ValueError(
            f"the first cycle of timesteps={timesteps} with cycles={cycles}, t_mult={t_mult:g} spans "
            f"{first:.0f} timesteps, fewer than 2 LR updates (2 x {u} = {2 * u}; SB3 sets the LR once every "
            f"{u} timesteps: {how}); use fewer cycles, a smaller t_mult or more timesteps")
    if m.is_integer():
        c0 = max(2, round(first / u)) * u
        total = c0 * (int(m) ** cycles - 1) // (int(m) - 1)
    else:
        total = max(1, round(timesteps / u)) * u
    schedule = CosineRestarts(min_lr=min_lr_fraction * top, max_lr=top, cycles=cycles, t_mult=m)
    c0_exact = total * schedule.first_cycle_fraction()
    ends = tuple(c0_exact * (m**k - 1.0) / (m - 1.0) for k in range(1, cycles + 1))
    budgets = (*(min(total, math.ceil(e / u - 1e-9) * u) for e in ends[:-1]), total)
    if len(set(budgets)) != len(budgets):
        raise ValueError(f"cycles={cycles}, t_mult={t_mult:g}: two cycle ends fall between the same LR updates "
                         f"(every {u} timesteps); use more timesteps or fewer cycles")
    eval_every = budgets[0]
    for b in budgets[1:]:
        eval_every = math.gcd(eval_every, b)
    if min_lr_fraction:
        provenance += f"; min_lr = {min_lr_fraction:g} x max_lr"
    else:
        provenance += "; min_lr 0 (cosine to zero at every trough)"
    return TradeoffPlan(
        algo=algo, env_id=env_id, requested_timesteps=timesteps, timesteps=total, cycles=cycles, t_mult=m,
        update_every=u, update_how=how, first_cycle_timesteps=float(c0_exact), cycle_ends=ends, budgets=budgets,
        eval_every=eval_every, schedule=schedule, lr_provenance=provenance, overrides=dict(overrides or {}))



def _planned_runs(plan: TradeoffPlan, seeds: int, validate: bool, eval_episodes: int | None,
                  device: str) -> list[Any]:
    from clr_rl.execute.planned import PlannedRun
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare

    def planned(arm: str, schedule: CosineRestarts, timesteps: int, eval_every: int, seed: int) -> Any:
        config = RunConfig(algo=plan.algo, env_id=plan.env_id, schedule=schedule, timesteps=timesteps, seed=seed,
                           device=device, overrides=plan.overrides, eval_every=eval_every,
                           eval_episodes=eval_episodes, arm=arm, threads=1)
        return PlannedRun(plan.env_id, arm, seed, f"runs/{plan.env_id}/{arm}/seed{seed}", prepare(config))

    runs = [planned(SINGLE_ARM, plan.schedule, plan.timesteps, plan.eval_every, s) for s in range(seeds)]
    if validate:  # longest first, so the pool ends on short runs
        for budget in sorted(plan.budgets, reverse=True):
            runs += [planned(_anneal_arm(budget), plan.anneal_schedule(), budget, budget, s) for s in range(seeds)]
    return runs



# ---------------------------------------------------------------------------------- tradeoff curves
@dataclass(frozen=True)
class TradeoffJob:
    """The ``[tradeoff]`` curve of one env: :func:`clr_rl.phases.tradeoff.tradeoff`'s arguments and plan."""

    env_id: str
    kwargs: dict[str, Any]
    max_lr_note: str
    plan: Any  # clr_rl.phases.tradeoff.TradeoffPlan (imported lazily)
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
