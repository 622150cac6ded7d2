"""How fast a run's configuration trains on this machine: a short timed run."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from contextlib import ExitStack

from clr_rl.run.agents import build_model
from clr_rl.run.config import _PROVENANCE_KEYS
from clr_rl.run.prepare import PreparedRun, resolve_device
from clr_rl.run.train import _make_envs

__all__ = ["measure_speed", "speed_key"]


def speed_key(prepared: PreparedRun) -> str:
    """What a run's speed depends on: algo, env, the resolved agent, optimizer, per-step LR, vector env,
    device, and the machine (host name, CPU count). Runs that share it train at the same speed."""
    c = prepared.config
    data = {"algo": c.algo, "env_id": c.env_id, "agent": {k: v for k, v in prepared.agent.as_dict().items()
                                                         if k not in _PROVENANCE_KEYS},
            "optimizer": c.optimizer, "lr_per_step": c.lr_per_step, "momentum": bool(c.cycle_momentum),
            "vec_env": c.vec_env, "device": resolve_device(c.device, prepared.agent.policy),
            "machine": [platform.node(), os.cpu_count()]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]



def measure_speed(prepared: PreparedRun, *, steps: int | None = None) -> dict[str, float]:
    """Time a short training run of this configuration here (one torch thread; nothing written).

    Returns timesteps per second before learning starts (DQN's ``learning_starts``: collection
    only), while learning, and while evaluating (deterministic policy, 2 episodes), and the
    evaluation episode length to assume: the env's ``max_episode_steps`` where set, else the
    measured one. ``steps`` after learning starts: default four updates or 4,000 timesteps; the
    first update after learning starts is not timed (warm-up: first calls into torch and SB3).
    """
    import time

    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    c, agent = prepared.config, prepared.agent
    learning_starts = int(agent.hyperparams.get("learning_starts", 0)) if c.algo == "dqn" else 0
    warmup = agent.timesteps_per_update()
    steps = steps or max(4 * warmup, 4000)
    marks: dict[str, tuple[int, float]] = {}

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps > learning_starts and "collected" not in marks:
                marks["collected"] = (self.num_timesteps, time.perf_counter())
            if self.num_timesteps > learning_starts + warmup and "learning" not in marks:
                marks["learning"] = (self.num_timesteps, time.perf_counter())
            return True

    with ExitStack() as stack:
        env, eval_env = _make_envs(prepared, stack)
        model = build_model(agent, env, prepared.schedule, seed=c.seed, device=resolve_device(c.device, agent.policy),
                            optimizer=c.optimizer)
        if c.lr_per_step or c.cycle_momentum:
            from clr_rl.run.callbacks import install_step_hook

            install_step_hook(model, prepared)
        t0 = time.perf_counter()
        model.learn(learning_starts + warmup + steps, callback=Clock())
        t1 = time.perf_counter()
        _, episode_lengths = evaluate_policy(model, eval_env, n_eval_episodes=2, deterministic=True,
                                             return_episode_rewards=True, warn=False)
        lengths = [int(n) for n in episode_lengths]  # type: ignore[union-attr]
        t2 = time.perf_counter()
    at, when = marks["learning"]
    train = (model.num_timesteps - at) / max(t1 - when, 1e-9)
    collected, collected_at = marks["collected"]
    import gymnasium

    limit = gymnasium.spec(c.env_id).max_episode_steps
    return {"collect_steps_per_s": collected / (collected_at - t0) if learning_starts > 0 else train,
            "train_steps_per_s": train, "eval_steps_per_s": sum(lengths) / max(t2 - t1, 1e-9),
            "eval_episode_steps": float(limit if limit and limit <= 10_000 else sum(lengths) / len(lengths)),
            "learning_starts": float(learning_starts), "measured_steps": float(steps)}
