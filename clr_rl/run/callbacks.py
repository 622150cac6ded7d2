"""SB3 callbacks used by the trainer, one concern each, combined with ``CallbackList``.

- :class:`LogAppliedLR`: the LR each update really used, read from the optimizer.
- :class:`Evaluate`: deterministic evaluation on a separate env, every ``eval_every`` steps and at the end.
- :class:`Checkpoint`: a resumable checkpoint (model, normaliser, replay buffer, loop state), atomically.
- :class:`StopOnRequest`: stop at the next rollout boundary when SIGINT/SIGTERM arrived.
- :class:`CheckFinite`: raise :class:`~clr_rl.errors.Diverged` as soon as a loss or parameter is not finite.
- :func:`install_step_hook`: per-gradient-step LR (and cycled momentum) as an optimizer pre-step hook.

They share one plain ``state`` dict (evaluation rows, next evaluation / checkpoint timesteps,
wall time), which is what a checkpoint saves and a resumed run starts from. This module
imports SB3 at the top: the runner imports it only inside ``train``.
"""

from __future__ import annotations

import math
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import sync_envs_normalization

from clr_rl.errors import Diverged
from clr_rl.run.tblog import LR_STEP_TAG, LR_TAG, RETURN_TAG, env_tag
from clr_rl.run.trust import sign_checkpoint
from clr_rl.store import append_eval_row, write_json_atomic

__all__ = ["CheckFinite", "Checkpoint", "Evaluate", "Interrupt", "LogAppliedLR", "MOMENTUM_TAG", "StopOnRequest",
           "install_step_hook", "parameters_finite", "trainer_callbacks"]

MOMENTUM_TAG = "train/momentum_applied"


class Interrupt:
    """SIGINT/SIGTERM ask the run to stop at the next rollout boundary (a second one kills)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            signal.signal(signum, self._old.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _writer(model: Any) -> Any:
    from stable_baselines3.common.logger import TensorBoardOutputFormat

    for fmt in model.logger.output_formats:
        if isinstance(fmt, TensorBoardOutputFormat):
            return fmt.writer
    raise RuntimeError("the model logs to no TensorBoard output")  # pragma: no cover


class LogAppliedLR(BaseCallback):
    """Log ``train/lr_applied`` (and ``env/<env>/lr``) once per update, at that update's timestep.

    SB3's own ``train/learning_rate`` is dumped one rollout late; this reads the optimizer.
    Not used with per-step LR (the step hook logs ``train/lr_per_step`` instead).
    """

    def __init__(self, env_id: str) -> None:
        super().__init__()
        self.env_id = env_id
        self.logged_updates = -1

    def _on_training_start(self) -> None:
        self.logged_updates = self.model._n_updates

    def _log(self) -> None:
        if self.model._n_updates != self.logged_updates:
            self.logged_updates = self.model._n_updates
            lr = self.model.policy.optimizer.param_groups[0]["lr"]
            _writer(self.model).add_scalar(LR_TAG, lr, self.num_timesteps)
            _writer(self.model).add_scalar(env_tag(self.env_id, "lr"), lr, self.num_timesteps)

    def _on_rollout_start(self) -> None:
        self._log()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._log()


class Evaluate(BaseCallback):
    """Deterministic evaluation on ``eval_env`` at the start, every ``eval_every`` steps and at the end.

    Each evaluation appends a row to ``evaluations.csv`` and to ``state["rows"]``.
    """

    def __init__(self, eval_env: Any, out: Path, state: dict[str, Any], *, eval_every: int, episodes: int,
                 env_id: str, stopped: Any) -> None:
        super().__init__()
        self.eval_env, self.out, self.state = eval_env, out, state
        self.eval_every, self.episodes, self.env_id, self.stopped = eval_every, episodes, env_id, stopped

    def _on_training_start(self) -> None:
        self.t0 = time.time() - self.state.get("wall_seconds", 0.0)
        if not self.state["rows"]:
            self.evaluate()

    def evaluate(self) -> None:
        sync_envs_normalization(self.training_env, self.eval_env)
        episodes, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes,
                                      deterministic=True, return_episode_rewards=True, warn=False)
        returns = [float(r) for r in episodes]  # type: ignore[union-attr]
        mean = float(sum(returns) / len(returns))
        std = float(math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns)))
        row = {"timesteps": self.num_timesteps, "mean_return": mean, "std_return": std,
               "episodes": len(returns), "wall_seconds": round(time.time() - self.t0, 3)}
        self.state["rows"].append(row)
        append_eval_row(self.out / "evaluations.csv", row)
        writer = _writer(self.model)
        writer.add_scalar(RETURN_TAG, mean, self.num_timesteps)
        writer.add_scalar(env_tag(self.env_id, "eval_return"), mean, self.num_timesteps)
        writer.flush()
        self.state["next_eval"] = (self.num_timesteps // self.eval_every + 1) * self.eval_every
        if not math.isfinite(mean):
            raise Diverged(f"evaluation return {mean} at timestep {self.num_timesteps} is not finite")

    def _on_step(self) -> bool:
        if not self.stopped() and self.num_timesteps >= self.state["next_eval"]:
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        rows = self.state["rows"]
        if not self.stopped() and (not rows or rows[-1]["timesteps"] != self.num_timesteps):
            self.evaluate()
        self.state["wall_seconds"] = time.time() - self.t0


class Checkpoint(BaseCallback):
    """At a rollout boundary every ``state["checkpoint_every"]`` steps (and when a stop is asked for),
    save ``checkpoint/``: model, normaliser, DQN replay buffer and the loop state, swapped in atomically."""

    def __init__(self, out: Path, state: dict[str, Any], *, save_replay_buffer: bool, stop: Interrupt,
                 clock: Evaluate) -> None:
        super().__init__()
        self.out, self.state, self.save_replay_buffer = out, state, save_replay_buffer
        self.stop, self.clock = stop, clock

    def _on_rollout_start(self) -> None:
        every = self.state["checkpoint_every"]
        if self.stop.requested or (every and self.num_timesteps >= self.state["next_checkpoint"]):
            self.save()

    def save(self) -> None:
        tmp, final, old = self.out / "checkpoint.tmp", self.out / "checkpoint", self.out / "checkpoint.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.model.save(tmp / "model.zip")
        venv = self.model.get_vec_normalize_env()
        if venv is not None:
            venv.save(str(tmp / "vecnormalize.pkl"))
        if self.save_replay_buffer:
            self.model.save_replay_buffer(tmp / "replay_buffer.pkl")  # type: ignore[attr-defined]
        self.state["wall_seconds"] = time.time() - self.clock.t0
        self.state["next_checkpoint"] = self.num_timesteps + self.state["checkpoint_every"]
        write_json_atomic(tmp / "state.json", {"timesteps": self.num_timesteps, **self.state})
        sign_checkpoint(tmp)  # a resume unpickles these files only when this user's key signed them
        shutil.rmtree(old, ignore_errors=True)  # left by a kill after the last checkpoint's rename
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def _on_step(self) -> bool:
        return True


class StopOnRequest(BaseCallback):
    """End ``learn()`` at the first step after a rollout boundary at which a stop was requested
    (the :class:`Checkpoint` before it has saved that boundary)."""

    def __init__(self, stop: Interrupt) -> None:
        super().__init__()
        self.stop = stop
        self.stopping = False

    def _on_rollout_start(self) -> None:
        self.stopping = self.stopping or self.stop.requested

    def _on_step(self) -> bool:
        return not self.stopping


class CheckFinite(BaseCallback):
    """Raise :class:`~clr_rl.errors.Diverged` at a rollout boundary when the last update logged a
    non-finite loss. (Non-finite parameters that crash the next forward pass are caught by the
    trainer, which checks the parameters when ``learn`` raises: see :func:`parameters_finite`.)"""

    def __init__(self) -> None:
        super().__init__()
        self.checked_updates = -1

    def _on_rollout_start(self) -> None:
        if self.model._n_updates == self.checked_updates:
            return
        self.checked_updates = self.model._n_updates
        values = self.model.logger.name_to_value
        for key in ("train/loss", "train/value_loss", "train/policy_gradient_loss"):
            if key in values and not math.isfinite(float(values[key])):
                raise Diverged(f"{key} = {values[key]} after update {self.model._n_updates} "
                               f"(timestep {self.num_timesteps})")

    def _on_step(self) -> bool:
        return True


def parameters_finite(model: Any) -> bool:
    """Whether every parameter of the model's policy is finite."""
    import torch

    return all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())


def trainer_callbacks(*, env_id: str, out: Path, eval_env: Any, state: dict[str, Any], eval_every: int,
                      episodes: int, per_step_lr: bool, save_replay_buffer: bool, stop: Interrupt) -> CallbackList:
    """The trainer's callbacks in order: finiteness check, LR log, checkpoint, stop, evaluation."""
    stopper = StopOnRequest(stop)
    evaluate = Evaluate(eval_env, out, state, eval_every=eval_every, episodes=episodes, env_id=env_id,
                        stopped=lambda: stopper.stopping)
    callbacks: list[BaseCallback] = [CheckFinite()]
    if not per_step_lr:
        callbacks.append(LogAppliedLR(env_id))
    callbacks += [Checkpoint(out, state, save_replay_buffer=save_replay_buffer, stop=stop, clock=evaluate),
                  stopper, evaluate]
    return CallbackList(callbacks)


def install_step_hook(model: Any, prepared: Any, writer: Any = None) -> Any:
    """Set the LR (and cycled momentum) before every optimizer step; returns the hook handle.

    Per-gradient-step LR: within one ``train()`` call at timestep ``T`` with ``K`` planned
    gradient steps (PPO: ``n_epochs x ceil(n_steps*n_envs / batch_size)``; DQN:
    ``gradient_steps``), step ``k`` uses ``schedule(1 - (T + k/K * U) / total)`` where ``U`` is
    the timesteps until the next update, so the LR moves smoothly from this update's value
    towards the next one's. PPO stopping early on ``target_kl`` just skips the rest of them.
    Without ``lr_per_step`` the LR stays SB3's per-update value and only momentum is cycled:
    ``momentum = high - (high - low) * w`` with ``w`` the LR's position between the schedule's
    lowest and highest LR (1cycle: momentum falls while the LR rises). For Adam the momentum
    is beta1 (only when asked: torch's CyclicLR cycles it silently, we never do).
    """
    c, agent = prepared.config, prepared.agent
    schedule = prepared.schedule
    every = agent.timesteps_per_update()
    steps = agent.gradient_steps_per_update()
    grid = [schedule(1 - i / 1000) for i in range(1001)]  # plus the exact bounds the schedule names
    grid += [getattr(schedule, a) for a in ("base_lr", "max_lr", "min_lr") if hasattr(schedule, a)]
    lo, hi = min(grid), max(grid)
    state = {"T": -1, "k": 0}

    def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        t_update = model.num_timesteps
        if t_update != state["T"]:
            state["T"], state["k"] = t_update, 0
        total = model._total_timesteps or c.timesteps
        if c.lr_per_step:
            if schedule.per_step_only:  # the exact gradient-step index, from the timestep count (survives resume)
                u = max(0, t_update // every - 1 - agent.updates_before_learning())  # this train() call's index
                lr = schedule(1 - (u * steps + state["k"]) / schedule.total_steps)
                t = t_update
            else:
                t = t_update + min(state["k"] / steps, 1.0) * every
                lr = schedule(1 - t / total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if writer is not None and state["k"] * every % steps == 0:  # whole timesteps only
                writer.add_scalar(LR_STEP_TAG, lr, int(t))
        if c.cycle_momentum:
            low, high = c.cycle_momentum
            lr = optimizer.param_groups[0]["lr"]
            w = 0.0 if hi == lo else min(1.0, max(0.0, (lr - lo) / (hi - lo)))
            momentum = high - (high - low) * w
            for group in optimizer.param_groups:
                if "betas" in group:
                    group["betas"] = (momentum, group["betas"][1])
                elif "momentum" in group:
                    group["momentum"] = momentum
            if writer is not None and state["k"] == 0:
                writer.add_scalar(MOMENTUM_TAG, momentum, t_update)
        state["k"] += 1

    return model.policy.optimizer.register_step_pre_hook(hook)
