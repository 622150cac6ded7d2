"""The single-run LR range test's resolution (how many distinct LRs a budget gives) and its health rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.run.limits import MAX_POINTS

__all__ = ["Resolution", "SPIKE", "WINDOW", "dqn_resolution", "first_unhealthy", "ppo_resolution", "ramp_progress",
           "single_resolution", "td_loss_unhealthy"]

# ------------------------------------------------------------------ single-run range test
WINDOW = 3  # points in the running median of the health rule



SPIKE = 10.0  # a single value above SPIKE x the limit is a catastrophe, not noise



@dataclass(frozen=True)
class Resolution:
    """How finely one run samples its LR ramp: the arithmetic behind ``lr_range_single``.

    ``points`` LRs are measured, ``steps_per_point`` gradient steps each (PPO) or one ``train()``
    call each (DQN), over ``timesteps`` (the request rounded up to whole updates, as SB3 runs them).
    Neighbouring points differ by the factor ``ratio`` = (end_lr / start_lr) ** (g / (S - 1)) for
    PPO (the ramp runs per gradient step: S steps in all, g per point) and
    (end / start) ** (update / timesteps) for DQN (SB3 sets the LR once per ``train()`` call).
    """

    points: int
    steps_per_point: int
    steps_per_update: int
    updates: int
    update_timesteps: int
    timesteps: int
    ratio: float
    algo: str = "ppo"

    def grain(self) -> str:
        """The grain in words, e.g. ``"one point per 160 of the 640 gradient steps of an update"``."""
        if self.algo == "dqn":
            return f"one point per train() call (every {self.update_timesteps} timesteps)"
        if self.steps_per_point == self.steps_per_update:
            return f"one point per update ({self.steps_per_update} gradient steps)"
        return f"one point per {self.steps_per_point} of the {self.steps_per_update} gradient steps of an update"



def ppo_resolution(timesteps: int, *, update_timesteps: int, steps_per_update: int, start_lr: float,
                   end_lr: float, points: int = 24) -> Resolution:
    """The coarsest grain that measures at least ``points`` LRs in a PPO run of ``timesteps``.

    The run takes u = ceil(timesteps / update_timesteps) updates of K = ``steps_per_update``
    gradient steps, and the LR rises per gradient step. A point is a block of g consecutive steps,
    g the largest divisor of K with u * K / g >= ``points`` (g = K: a point per update). When even
    g = 1 (a point per gradient step) gives fewer than ``points``, the request is refused with the
    smallest budget that reaches them: (ceil(points / K) - 1) * update_timesteps + 1.

    >>> r = ppo_resolution(30000, update_timesteps=4096, steps_per_update=640, start_lr=1e-6, end_lr=1e-1)
    >>> (r.updates, r.timesteps, r.steps_per_point, r.points, round(r.ratio, 4))
    (8, 32768, 160, 32, 1.4331)
    """
    if not 2 <= points <= MAX_POINTS:
        raise ConfigError(f"--points={points} must be in [2, {MAX_POINTS}] (a size limit)")
    updates = math.ceil(timesteps / update_timesteps)
    if updates * steps_per_update < points:
        needed = (math.ceil(points / steps_per_update) - 1) * update_timesteps + 1
        raise ConfigError(f"--timesteps={timesteps} gives {updates} update(s) x {steps_per_update} gradient steps = "
                         f"{updates * steps_per_update} LR points even measured per gradient step, fewer than "
                         f"--points={points}; needs --timesteps >= {needed}")
    g = max(d for d in range(1, steps_per_update + 1)
            if steps_per_update % d == 0 and updates * steps_per_update // d >= points)
    n = updates * steps_per_update // g
    return Resolution(n, g, steps_per_update, updates, update_timesteps, updates * update_timesteps,
                      (end_lr / start_lr) ** (g / (updates * steps_per_update - 1)))



def single_resolution(algo: str, env_id: str, timesteps: int, *, overrides: dict[str, Any] | None = None,
                      start_lr: float = 1e-6, end_lr: float = 1e-1, points: int = 24) -> Resolution:
    """The resolution a single-run range test of this algo, env and budget would have (nothing is
    trained); raises ConfigError with the timesteps needed when it cannot reach ``points``. A batch
    can call this while planning, before anything runs."""
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.schedules.base import Exponential

    agent = prepare(RunConfig(algo=algo, env_id=env_id, schedule=Exponential(start_lr, end_lr), timesteps=timesteps,
                              overrides=dict(overrides or {}))).agent
    if algo == "ppo":
        return ppo_resolution(timesteps, update_timesteps=agent.timesteps_per_update(),
                              steps_per_update=agent.gradient_steps_per_update(), start_lr=start_lr, end_lr=end_lr,
                              points=points)
    return dqn_resolution(timesteps, update_timesteps=agent.timesteps_per_update(),
                          learning_starts=int(agent.hyperparams["learning_starts"]), start_lr=start_lr, end_lr=end_lr,
                          points=points)



def ramp_progress(step: int, total_steps: int) -> float:
    """``progress_remaining`` of gradient step ``step`` (0-based) of ``total_steps``: the PPO range
    test's ramp runs per gradient step, from start_lr at the first to end_lr at the last.

    >>> [ramp_progress(s, 5) for s in range(5)]
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    return 1.0 - step / (total_steps - 1) if total_steps > 1 else 0.0



def dqn_resolution(timesteps: int, *, update_timesteps: int, learning_starts: int, start_lr: float,
                   end_lr: float, points: int = 24) -> Resolution:
    """A point per ``train()`` call: SB3's DQN trains at each multiple of ``update_timesteps``
    (``train_freq x n_envs``) above ``learning_starts``, up to the budget rounded up to one.

    >>> r = dqn_resolution(1000, update_timesteps=4, learning_starts=100, start_lr=1e-5, end_lr=1e-1)
    >>> (r.points, r.timesteps)
    (225, 1000)
    >>> r.grain()
    'one point per train() call (every 4 timesteps)'
    """
    if not 2 <= points <= MAX_POINTS:
        raise ConfigError(f"--points={points} must be in [2, {MAX_POINTS}] (a size limit)")
    updates = math.ceil(timesteps / update_timesteps)
    calls = updates - learning_starts // update_timesteps
    if calls < points:
        needed = (points + learning_starts // update_timesteps - 1) * update_timesteps + 1
        raise ConfigError(f"--timesteps={timesteps} gives {max(calls, 0)} DQN train() calls (one per "
                         f"{update_timesteps} timesteps after learning_starts={learning_starts}), fewer than "
                         f"--points={points}; needs --timesteps >= {needed}")
    run = updates * update_timesteps
    return Resolution(calls, 1, 1, updates, update_timesteps, run, (end_lr / start_lr) ** (update_timesteps / run),
                      "dqn")



def first_unhealthy(values: list[float], limit: float, window: int = WINDOW, spike: float = SPIKE) -> int | None:
    """Where a sustained crossing of ``limit`` starts, or None: the health rule of the range test.

    A value is *over* when it exceeds ``limit`` or is not finite. The crossing is confirmed at the
    first index i where the median of the last ``window`` values is over (a full window), or the
    value at i is not finite or above ``spike x limit`` (a catastrophic jump, not noise); it starts
    at the first over value after the last value that is not over inside that window (the window's
    start if all are over). A mild isolated excursion (one value in ``window``, below
    ``spike x limit``) never confirms a crossing. The range test's max_lr is the LR of the point
    just before the returned index.

    >>> first_unhealthy([0.01, 0.2, 0.01, 0.02, 0.03, 0.06, 0.07], 0.05)
    5
    >>> first_unhealthy([0.01, 0.2, 0.01, 0.02], 0.05) is None
    True
    >>> first_unhealthy([0.01, 0.02, 2.3, 0.0, 0.0], 0.05)
    2
    """
    def over(v: float) -> bool:
        return not math.isfinite(v) or v > limit

    for i, value in enumerate(values):
        recent = values[max(0, i - window + 1): i + 1]
        confirmed = not math.isfinite(value) or value > spike * limit or (
            len(recent) == window and sorted(math.inf if math.isnan(v) else v for v in recent)[window // 2] > limit)
        if confirmed:
            start = i - len(recent) + 1
            below = [start + k for k, v in enumerate(recent) if not over(v)]
            return below[-1] + 1 if below else start
    return None



def td_loss_unhealthy(losses: list[float], factor: float) -> int | None:
    """DQN rule: first index i >= 3 whose running median of 3 TD losses exceeds ``factor`` x the
    lowest running median of indices 2..i-1, or whose running median (the upper of two at i = 1,
    the value at i = 0) is not finite.

    >>> td_loss_unhealthy([1.0, 1.0, 1.0, 1.0, 5.0, 5.0], 4.0)
    5
    """
    clean = [math.inf if math.isnan(v) else v for v in losses]  # NaN sorts like +inf
    medians = [sorted(clean[max(0, i - 2): i + 1])[len(clean[max(0, i - 2): i + 1]) // 2] for i in range(len(clean))]
    lowest = math.inf
    for i, m in enumerate(medians):
        if not math.isfinite(m) or (i >= 2 and m > factor * lowest):
            return i
        if i >= 2:
            lowest = min(lowest, m)
    return None



def _kl(p: Any, q: Any) -> Any:
    """Exact KL(p || q) per state between two torch distributions (summed over action dimensions)."""
    import torch

    if isinstance(p, list):  # MultiCategorical
        return sum(_kl(a, b) for a, b in zip(p, q))
    kl = torch.distributions.kl_divergence(p, q)
    return kl.sum(dim=-1) if kl.dim() > 1 else kl
