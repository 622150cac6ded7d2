"""The single-run LR range test: a rising LR in one run, read by a health rule, with its resolution."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.phases.lr_sweep import _suggested_spec, _write_result
from clr_rl.phases.tune import _check_common
from clr_rl.run.limits import MAX_POINTS

__all__ = ["DQN_SINGLE_WARNING", "Resolution", "SPIKE", "WINDOW", "dqn_resolution", "first_unhealthy", "lr_range_single", "ppo_resolution", "ramp_progress", "single_resolution", "td_loss_unhealthy"]


# ------------------------------------------------------------------ single-run range test
WINDOW = 3  # points in the running median of the health rule



SPIKE = 10.0  # a single value above SPIKE x the limit is a catastrophe, not noise



DQN_SINGLE_WARNING = (
    "warning: the single-run range test is not validated for DQN: on CartPole-v1 and LunarLander-v3 it gave max_lr "
    "30-300x below the LRs a sweep found best (results/reference/classic-dqn/NOTES.md); use method sweep for DQN")



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



class _BlockProbe:
    """Measures PPO's health per block of ``g`` gradient steps, on the whole rollout batch.

    Optimizer hooks. Before every step the LR is set from the ramp by the step's planned index
    (:func:`ramp_progress`; steps skipped by an early stop do not shift it). Before an update's
    first step the policy's action distributions on all of the rollout's states are stored; after
    every ``g``-th step (and when an update ends early, e.g. on ``target_kl``) they are computed
    again and the point recorded: ``kl`` = mean over the states of the exact KL(before || after), ``kl_per_update`` =
    ``kl x K / steps`` (the KL a whole update would reach at this LR if the blocks' KLs add up, as
    they do for small independent steps), ``clip_fraction`` = share of the rollout's actions whose
    probability ratio to the rollout policy lies outside 1 +- clip_range (cumulative within the
    update, as SB3 logs it), ``value_loss`` = MSE of the values against the rollout's returns.
    """

    def __init__(self, model: Any, ramp: Any, resolution: Resolution) -> None:
        self.model, self.ramp = model, ramp
        self.g, self.k_total = resolution.steps_per_point, resolution.steps_per_update
        self.s_total = resolution.updates * resolution.steps_per_update
        self.points: list[dict[str, float]] = []
        self.t_update, self.k, self.k_block, self.update = -1, 0, 0, -1
        self.lr_first = self.lr_last = math.nan
        self.before: Any = None
        self.batch: Any = None
        model.policy.optimizer.register_step_pre_hook(self._pre)
        model.policy.optimizer.register_step_post_hook(self._post)

    def _forward(self) -> tuple[Any, Any, Any]:
        import torch
        from gymnasium import spaces

        policy = self.model.policy
        obs, actions = self.batch[:2]
        dists, logps, values = [], [], []
        with torch.no_grad():
            for s in range(0, len(obs), 1024):
                dist = policy.get_distribution(obs[s: s + 1024])
                a = actions[s: s + 1024]
                if isinstance(self.model.action_space, spaces.Discrete):
                    a = a.long().flatten()
                logps.append(dist.log_prob(a))
                values.append(policy.predict_values(obs[s: s + 1024]).flatten())
                dists.append(dist.distribution)
        return dists, torch.cat(logps), torch.cat(values)

    def _pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.model.num_timesteps != self.t_update:
            self.flush()
            buf = self.model.rollout_buffer  # flattened by train()'s first get(); flatten a copy if not

            def flat(a: Any) -> Any:
                return a if buf.generator_ready else buf.swap_and_flatten(a)

            obs, actions, logp, ret = (buf.to_torch(flat(getattr(buf, name)))
                                       for name in ("observations", "actions", "log_probs", "returns"))
            self.batch = (obs, actions.float(), logp.flatten(), ret.flatten())
            self.t_update, self.k, self.update = self.model.num_timesteps, 0, self.update + 1
            self.before = self._forward()[0]
        lr = self.ramp(ramp_progress(self.update * self.k_total + self.k, self.s_total))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if self.k_block == 0:
            self.lr_first = lr

    def _post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.k += 1
        self.k_block += 1
        self.lr_last = optimizer.param_groups[0]["lr"]
        if self.k_block == self.g:
            self._record()

    def _record(self) -> None:
        import torch

        after, logp, values = self._forward()
        kl = float(torch.cat([_kl(p, q) for p, q in zip(self.before, after)]).mean())
        _, _, old_logp, returns = self.batch
        clip_range = float(self.model.clip_range(self.model._current_progress_remaining))
        ratio = torch.exp(logp - old_logp)
        self.points.append({
            "update": self.update,
            "timesteps": self.t_update, "steps": self.k_block, "lr_first": self.lr_first, "lr": self.lr_last,
            "kl": kl, "kl_per_update": kl * self.k_total / self.k_block,
            "clip_fraction": float(((ratio - 1).abs() > clip_range).float().mean()),
            "value_loss": float(((returns - values) ** 2).mean()),
        })
        self.before, self.k_block = after, 0

    def flush(self) -> None:
        """Record a partial block (an update that stopped early)."""
        if self.k_block:
            self._record()



_Series = dict[str, tuple[list[float], list[float]]]



def _print_cost(res: Resolution, timesteps: int) -> None:
    """What the range test will run, printed before training: timesteps, updates, points, grain, LR spacing."""
    print(f"lr-range single: {res.timesteps:,} timesteps ({res.updates} updates of {res.update_timesteps:,}; "
          f"--timesteps {timesteps:,} rounded up to whole updates), {res.points} LR points, {res.grain()}; "
          f"LR x{res.ratio:.6g} between neighbouring points", flush=True)



def _range_model(prepared: Any, env_id: str, seed: int, device: str) -> tuple[Any, Any]:
    """(env, model) of the range test's one run, on one thread."""
    import torch

    from clr_rl.run.agents import build_model
    from clr_rl.run.envs import make_env
    from clr_rl.run.prepare import resolve_device

    agent, hp = prepared.agent, prepared.agent.hyperparams
    torch.set_num_threads(1)
    env = make_env(env_id, n_envs=agent.n_envs, seed=seed, normalize=agent.normalize,
                   gamma=float(hp.get("gamma", 0.99)))
    model = build_model(agent, env, prepared.schedule, seed=seed, device=resolve_device(device, agent.policy))
    return env, model



def _watch_ppo(model: Any, ramp: Any, res: Resolution) -> list[dict[str, float]]:
    """Learn, recording a point per block of gradient steps (see ``_BlockProbe``)."""
    probe = _BlockProbe(model, ramp, res)
    model.learn(res.timesteps)
    probe.flush()
    return probe.points



def _ppo_health(rows: list[dict[str, float]], kl_limit: float) -> tuple[int | None, str, _Series, dict[str, float]]:
    """PPO: (first unhealthy point or None, the rule in words, the plotted series, their limits)."""
    first = first_unhealthy([r["kl_per_update"] for r in rows], kl_limit)
    bad_value = next((i for i, r in enumerate(rows) if not math.isfinite(r["value_loss"])), None)
    first = min((i for i in (first, bad_value) if i is not None), default=None)
    rule = (f"PPO point unhealthy when kl_per_update (exact KL between the policy before and after the point's "
            f"gradient steps, mean over the rollout's states, x gradient steps per update / steps in the point) "
            f"> {kl_limit}, confirmed by the running median of {WINDOW} points or by one point above "
            f"{SPIKE:g} x {kl_limit}, or a non-finite KL or value loss")
    series = {k: ([r["lr"] for r in rows], [r[k] for r in rows])
              for k in ("kl_per_update", "clip_fraction", "value_loss")}
    return first, rule, series, {"kl_per_update": kl_limit}



def _dqn_health(rows: list[dict[str, float]], loss_factor: float) -> tuple[int | None, str, _Series, dict[str, float]]:
    """DQN: (first unhealthy point or None, the rule in words, the plotted series, their limits)."""
    first = td_loss_unhealthy([r.get("loss", math.nan) for r in rows], loss_factor)
    rule = (f"DQN update unhealthy when the TD loss (running median of {WINDOW}) exceeds {loss_factor}x its "
            "lowest so far")
    series = {"loss": ([r["lr"] for r in rows], [r.get("loss", math.nan) for r in rows])}
    return first, rule, series, {}



def _max_point(rows: list[dict[str, float]], first: int | None) -> tuple[int, str]:
    """Index of the point that gives max_lr (the last one before the crossing, or the last one
    measured when none is unhealthy), and how it was chosen, to append to the rule."""
    if first is None:
        return len(rows) - 1, (f"; no unhealthy point up to lr={rows[-1]['lr']:.3g}: max_lr is the last LR reached "
                               "(raise the range end)")
    how = f"; first unhealthy point at lr={rows[first]['lr']:.3g} (update at timestep {rows[first]['timesteps']})"
    if first == 0:
        how += "; already unhealthy at the first point (lower the range start)"
    return max(first - 1, 0), how



def _resolution_record(rows: list[dict[str, float]], max_i: int, res: Resolution, points: int) -> dict[str, Any]:
    """The result's ``resolution``: points measured, their grain and spacing, and where the crossing lies."""
    upper = rows[max_i + 1]["lr"] if max_i + 1 < len(rows) else None
    return {
        "points": len(rows), "points_required": points, "grain": res.grain(), "steps_per_point": res.steps_per_point,
        "updates": res.updates, "timesteps_run": res.timesteps, "lr_ratio_between_points": res.ratio,
        "max_lr_bracket": [rows[max_i]["lr"], upper],
        "max_lr_could_move": (f"the crossing lies between max_lr and the next measured point, lr={upper:.3g} "
                              f"(x{upper / rows[max_i]['lr']:.6g})" if upper is not None else
                              "no point above max_lr was measured: the crossing lies beyond the range end"),
    }



def lr_range_single(*, algo: str, env_id: str, timesteps: int, out: Path, start_lr: float = 1e-6,
                    end_lr: float = 1e-1, points: int = 24, overrides: dict[str, Any] | None = None, seed: int = 0,
                    device: str = "auto", kl_limit: float = 0.05, loss_factor: float = 4.0) -> dict[str, Any]:
    """LR range test in one run: the LR rises exponentially while health is measured at >= ``points`` LRs.

    PPO: the LR rises per gradient step (:func:`ramp_progress`) and a point is a block of gradient
    steps (:func:`ppo_resolution`: the coarsest grain giving ``points``); its health is the KL
    between the policy before and after the block on all rollout states, scaled to a whole update
    (see ``_BlockProbe``). A point is unhealthy when that ``kl_per_update`` exceeds ``kl_limit``,
    confirmed by a running median of 3 points or one point above 10x the limit
    (:func:`first_unhealthy`), or is not finite.
    DQN: a point per ``train()`` call; unhealthy when the TD loss (running median of 3) exceeds
    ``loss_factor`` x its lowest so far (:func:`td_loss_unhealthy`). max_lr = the LR of the last
    point before the crossing; base_lr = max_lr / 4 (Smith's base ~ max/3..4). The result states the
    resolution: points measured, the LR ratio between neighbours, and the bracket in which the
    crossing lies (max_lr could move up to the next point's LR).
    """
    from clr_rl.phases.lr_sweep import plot_lr_range
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import check_out_dir, prepare
    from clr_rl.schedules.base import Exponential

    out = Path(out)
    _check_common(algo, timesteps, 1, "auc", out)
    check_out_dir(out)
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"--range: start {start_lr} must be > 0 and < end {end_lr}")
    ramp = Exponential(start_lr, end_lr)
    res = single_resolution(algo, env_id, timesteps, overrides=overrides, start_lr=start_lr, end_lr=end_lr,
                            points=points)
    prepared = prepare(RunConfig(algo=algo, env_id=env_id, schedule=ramp, timesteps=res.timesteps, seed=seed,
                                 device=device, overrides=dict(overrides or {})))
    _print_cost(res, timesteps)
    if algo == "dqn":
        print(DQN_SINGLE_WARNING, file=sys.stderr, flush=True)
    env, model = _range_model(prepared, env_id, seed, device)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if algo == "ppo":
        rows = _watch_ppo(model, ramp, res)
        first, rule, series, limits = _ppo_health(rows, kl_limit)
    else:
        rows = _watch_dqn(model, res.timesteps)
        first, rule, series, limits = _dqn_health(rows, loss_factor)
    wall = time.time() - t0
    env.close()
    if len(rows) < points:  # the arithmetic above says this cannot happen; a guard against SB3 changing
        raise RuntimeError(f"only {len(rows)} LR points measured in {res.timesteps} timesteps; --points={points}")
    max_i, how = _max_point(rows, first)
    max_lr = float(f"{rows[max_i]['lr']:.3g}")
    base = float(f"{max_lr / 4:.3g}")
    rule += how + "; max_lr = LR of the point before it, base_lr = max_lr / 4 (Smith: base ~ max/3..4)"
    resolution = _resolution_record(rows, max_i, res, points)
    note = (f"{len(rows)} points, x{res.ratio:.6g} apart; max_lr could move up to x{res.ratio:.6g}")
    plot_lr_range(out / "lr_range.png", series, base, max_lr, f"{algo.upper()} {env_id}: one run, LR rising "
                  f"{start_lr:g} -> {end_lr:g} over {res.timesteps:,} timesteps", limits=limits, note=note)
    result = {"method": "single", "algo": algo, "env_id": env_id, "timesteps": timesteps, "seed": seed,
              "schedule": str(prepared.schedule), "resolution": resolution, "points": rows, "base_lr": base,
              "max_lr": max_lr, "rule": rule, "suggested_schedule": _suggested_spec(base, max_lr),
              "cost_timesteps": res.timesteps, "wall_seconds": round(wall, 1)}
    _write_result(out, result)
    print(f"resolution: {len(rows)} points, LR x{res.ratio:.6g} apart; {resolution['max_lr_could_move']}")
    return result



def _watch_dqn(model: Any, timesteps: int) -> list[dict[str, float]]:
    """Learn, recording the LR and TD loss of every ``train()`` call (read at the next rollout's start)."""
    from stable_baselines3.common.callbacks import BaseCallback

    rows: list[dict[str, float]] = []

    class Watch(BaseCallback):
        n_updates = 0

        def _on_rollout_start(self) -> None:
            if self.model._n_updates != self.n_updates:
                self.n_updates = self.model._n_updates
                values = self.model.logger.name_to_value
                rows.append({"timesteps": self.num_timesteps, "lr": self.model.policy.optimizer.param_groups[0]["lr"],
                             **({"loss": float(values["train/loss"])} if "train/loss" in values else {})})

        def _on_training_end(self) -> None:
            self._on_rollout_start()

        def _on_step(self) -> bool:
            return True

    model.learn(timesteps, callback=Watch())
    return rows
