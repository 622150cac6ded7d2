"""Train one agent: validate, build, learn with evaluation and checkpoints, write the run folder.

The run folder is the source of truth (see :mod:`clr_rl.store`). Everything is
validated by :func:`prepare` before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from clr_rl.agents import OPTIMIZERS, AgentConfig, agent_config, build_model
from clr_rl.envs import env_family, env_info, make_env
from clr_rl.schedules import Schedule, bind_total_timesteps, check_lr_resolution, parse_schedule, schedule_params
from clr_rl.store import append_eval_row, check_writable, read_json, write_evaluations, write_json_atomic
from clr_rl.tensorboard import env_tag

__all__ = ["PreparedRun", "RunConfig", "auc", "check_out_dir", "prepare", "resume", "train"]

LR_TAG = "train/lr_applied"
LR_STEP_TAG = "train/lr_per_step"
MOMENTUM_TAG = "train/momentum_applied"
RETURN_TAG = "eval/mean_return"


@dataclass(frozen=True)
class RunConfig:
    """What the user asks for: one algo on one env with one LR schedule and seed."""

    algo: str
    env_id: str
    schedule: Schedule | str
    timesteps: int
    seed: int = 0
    device: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adam"
    eval_every: int | None = None
    eval_episodes: int | None = None
    arm: str = ""
    threads: int | None = None
    lr_per_step: bool = False
    cycle_momentum: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; also takes a run.json ``config`` (extra keys are ignored)."""
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if kwargs.get("cycle_momentum"):
            kwargs["cycle_momentum"] = tuple(kwargs["cycle_momentum"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that ``RunConfig(**d)`` rebuilds (the schedule as its text form)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["schedule"] = str(parse_schedule(self.schedule))
        d["overrides"] = dict(self.overrides)
        d["cycle_momentum"] = list(self.cycle_momentum) if self.cycle_momentum else None
        return d


@dataclass(frozen=True)
class PreparedRun:
    """A validated, fully resolved run: the input to :func:`train`."""

    config: RunConfig
    schedule: Schedule
    family: str
    agent: AgentConfig
    eval_every: int
    eval_episodes: int

    def resolved(self) -> dict[str, Any]:
        """Plain-data description of the run, enough to reproduce it (and its id)."""
        c = self.config
        return {
            "algo": c.algo,
            "env_id": c.env_id,
            "family": self.family,
            "arm": c.arm,
            "schedule": str(self.schedule),
            "schedule_kind": self.schedule.kind,
            "schedule_params": schedule_params(self.schedule),
            "timesteps": c.timesteps,
            "seed": c.seed,
            "device": c.device,
            "optimizer": c.optimizer,
            "agent": self.agent.as_dict(),
            "overrides": dict(c.overrides),
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
            "lr_per_step": c.lr_per_step,
            "cycle_momentum": list(c.cycle_momentum) if c.cycle_momentum else None,
        }

    def run_id(self) -> str:
        """Deterministic id of the resolved config (device and threads do not change results' meaning)."""
        data = {k: v for k, v in self.resolved().items() if k not in ("device",)}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def resolve_device(device: str, policy: str) -> str:
    """``auto``: CUDA for CNN policies when a GPU is present, else CPU (SB3 itself warns that
    PPO with an MLP policy is meant for the CPU); explicit devices are kept."""
    if device != "auto":
        return device
    if policy == "CnnPolicy":
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"


def _check_momentum(config: RunConfig) -> None:
    m = config.cycle_momentum
    if m is None:
        return
    if (len(m) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in m)
            or not 0.0 <= m[0] < m[1] < 1.0):
        raise ValueError(f"cycle_momentum={list(m)!r} must be [low, high] with 0 <= low < high < 1")


def check_device(device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:k`` that this machine has."""
    if device in ("auto", "cpu"):
        return
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} is not available here (torch.cuda.is_available() is False)")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
        return
    raise ValueError(f"device={device!r} must be auto, cpu, cuda or cuda:<index>")


def check_out_dir(out: Path, *, resume: bool = False) -> None:
    """The output folder must be new (or empty), or hold a run when resuming; and be writable."""
    check_writable(out)
    if out.is_dir() and any(out.iterdir()) and not resume:
        raise ValueError(f"--out={str(out)!r} is not empty; pick a new folder (or --resume a run there)")


@cache
def _discrete_actions(env_id: str, family: str) -> bool:
    """Atari is discrete and MuJoCo continuous by construction; others are asked (no ALE banner)."""
    if family in ("atari", "mujoco"):
        return family == "atari"
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        return isinstance(env.action_space, gym.spaces.Discrete)
    finally:
        env.close()


def prepare(config: RunConfig) -> PreparedRun:
    """Validate and resolve everything about a run; raises ValueError naming the field."""
    if config.algo not in ("ppo", "dqn"):
        raise ValueError(f"algo={config.algo!r} must be ppo or dqn")
    _int("timesteps", config.timesteps, 1)
    _int("seed", config.seed, 0)
    if config.threads is not None:
        _int("threads", config.threads, 1)
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={config.optimizer!r} must be one of {', '.join(OPTIMIZERS)}")
    check_device(config.device)
    _check_momentum(config)
    family = env_family(config.env_id)
    agent = agent_config(config.algo, config.env_id, family, config.overrides)
    if config.algo == "dqn" and not _discrete_actions(config.env_id, family):
        raise ValueError(f"env {config.env_id!r} has a continuous action space; DQN needs discrete actions")
    schedule = bind_total_timesteps(parse_schedule(config.schedule), config.timesteps)
    schedule(1.0)  # a timestep-based cycle without a total raises here
    every, how = agent.lr_update_every()
    check_lr_resolution(schedule, config.timesteps, every, how)
    info = env_info(config.env_id)
    eval_every = config.eval_every if config.eval_every is not None else (
        info.eval_every if info else max(1, config.timesteps // 10))
    eval_every = min(_int("eval_every", eval_every, 1), config.timesteps)
    episodes = config.eval_episodes if config.eval_episodes is not None else (info.eval_episodes if info else 10)
    eval_episodes = _int("eval_episodes", episodes, 1)
    return PreparedRun(config, schedule, family, agent, eval_every, eval_episodes)


def auc(rows: list[dict[str, float]]) -> float:
    """Normalised area under the evaluation curve: trapezoid integral / timesteps covered.

    >>> auc([{"timesteps": 0, "mean_return": 0.0}, {"timesteps": 10, "mean_return": 10.0}])
    5.0
    """
    if not rows:
        return math.nan
    if len(rows) == 1:
        return float(rows[0]["mean_return"])
    area = 0.0
    for a, b in zip(rows, rows[1:]):
        area += (b["timesteps"] - a["timesteps"]) * (a["mean_return"] + b["mean_return"]) / 2
    span = rows[-1]["timesteps"] - rows[0]["timesteps"]
    return float(area / span) if span > 0 else float(rows[-1]["mean_return"])


def _versions() -> dict[str, str]:
    import gymnasium
    import stable_baselines3
    import torch

    from clr_rl import __version__

    return {
        "clr_rl": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "platform": platform.platform(),
    }


def _hparams(prepared: PreparedRun) -> dict[str, Any]:
    c = prepared.config
    out: dict[str, Any] = {
        "algo": c.algo, "env": c.env_id, "arm": c.arm or prepared.schedule.kind, "seed": c.seed,
        "schedule": str(prepared.schedule), "schedule_kind": prepared.schedule.kind, "optimizer": c.optimizer,
    }
    for key, value in schedule_params(prepared.schedule).items():
        out[f"lr.{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


class _Interrupt:
    """SIGINT/SIGTERM ask the run to stop at the next rollout boundary (a second one kills)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
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


def _make_callback(prepared: PreparedRun, out: Path, eval_env: Any, state: dict[str, Any], stop: _Interrupt) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.logger import TensorBoardOutputFormat
    from stable_baselines3.common.vec_env import sync_envs_normalization

    class ClrCallback(BaseCallback):
        """Logs the LR each update really used, evaluates, checkpoints, stops on request."""

        def _writer(self) -> Any:
            for fmt in self.model.logger.output_formats:
                if isinstance(fmt, TensorBoardOutputFormat):
                    return fmt.writer
            raise RuntimeError("no TensorBoard output")  # pragma: no cover

        def _on_training_start(self) -> None:
            self.n_updates_logged = self.model._n_updates
            self.stopping = False
            self.t0 = time.time() - state.get("wall_seconds", 0.0)
            if not state["rows"]:
                self._evaluate()

        def _log_lr(self) -> None:
            if self.model._n_updates != self.n_updates_logged and not prepared.config.lr_per_step:
                self.n_updates_logged = self.model._n_updates
                lr = self.model.policy.optimizer.param_groups[0]["lr"]
                self._writer().add_scalar(LR_TAG, lr, self.num_timesteps)
                self._writer().add_scalar(env_tag(prepared.config.env_id, "lr"), lr, self.num_timesteps)

        def _evaluate(self) -> None:
            sync_envs_normalization(self.training_env, eval_env)
            episodes, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=prepared.eval_episodes,
                                          deterministic=True, return_episode_rewards=True, warn=False)
            returns = [float(r) for r in episodes]  # type: ignore[union-attr]
            mean = float(sum(returns) / len(returns))
            std = float(math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns)))
            row = {"timesteps": self.num_timesteps, "mean_return": mean, "std_return": std,
                   "episodes": len(returns), "wall_seconds": round(time.time() - self.t0, 3)}
            state["rows"].append(row)
            append_eval_row(out / "evaluations.csv", row)
            self._writer().add_scalar(RETURN_TAG, mean, self.num_timesteps)
            self._writer().add_scalar(env_tag(prepared.config.env_id, "eval_return"), mean, self.num_timesteps)
            self._writer().flush()
            state["next_eval"] = (self.num_timesteps // prepared.eval_every + 1) * prepared.eval_every

        def _checkpoint(self) -> None:
            tmp, final, old = out / "checkpoint.tmp", out / "checkpoint", out / "checkpoint.old"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            self.model.save(tmp / "model.zip")
            venv = self.model.get_vec_normalize_env()
            if venv is not None:
                venv.save(str(tmp / "vecnormalize.pkl"))
            if prepared.config.algo == "dqn":
                self.model.save_replay_buffer(tmp / "replay_buffer.pkl")  # type: ignore[attr-defined]
            state["wall_seconds"] = time.time() - self.t0
            state["next_checkpoint"] = self.num_timesteps + state["checkpoint_every"]
            write_json_atomic(tmp / "state.json", {"timesteps": self.num_timesteps, **state})
            shutil.rmtree(old, ignore_errors=True)  # left by a kill after the last checkpoint's rename
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)

        def _on_rollout_start(self) -> None:
            self._log_lr()
            if stop.requested or (state["checkpoint_every"] and self.num_timesteps >= state["next_checkpoint"]):
                self._checkpoint()
            if stop.requested:
                self.stopping = True

        def _on_step(self) -> bool:
            if self.stopping:
                return False
            if self.num_timesteps >= state["next_eval"]:
                self._evaluate()
            return True

        def _on_training_end(self) -> None:
            self._log_lr()
            if not self.stopping and (not state["rows"] or state["rows"][-1]["timesteps"] != self.num_timesteps):
                self._evaluate()
            state["wall_seconds"] = time.time() - self.t0

    return ClrCallback()


def install_step_hook(model: Any, prepared: PreparedRun, writer: Any = None) -> Any:
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
    if c.algo == "ppo":
        hp = agent.hyperparams
        every = int(hp.get("n_steps", 2048)) * agent.n_envs
        steps = int(hp.get("n_epochs", 10)) * math.ceil(every / int(hp.get("batch_size", 64)))
    else:
        every = int(agent.hyperparams.get("train_freq", 4)) * agent.n_envs
        gradient_steps = int(agent.hyperparams.get("gradient_steps", 1))
        steps = gradient_steps if gradient_steps > 0 else every
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


def buffer_gb(prepared: PreparedRun) -> float:
    """Memory of the run's experience buffer: DQN's replay buffer (obs and next_obs unless
    ``optimize_memory_usage``; ~0.56 GB per 10k Atari transitions), PPO's rollout buffer."""
    obs_bytes = 84 * 84 * 4 if prepared.family == "atari" else 4 * 400
    hp = prepared.agent.hyperparams
    if prepared.config.algo == "dqn":
        transitions = min(int(hp.get("buffer_size", 1_000_000)), prepared.config.timesteps)
        return transitions * obs_bytes * (1 if hp.get("optimize_memory_usage") else 2) / 1e9
    return int(hp.get("n_steps", 2048)) * prepared.agent.n_envs * obs_bytes * 4 / 1e9


def _default_checkpoint_every(prepared: PreparedRun) -> int:
    """PPO: checkpoint at each evaluation. DQN: only when the replay buffer is small (<256 MB)."""
    if prepared.config.algo == "ppo":
        return prepared.eval_every
    return prepared.eval_every if buffer_gb(prepared) < 0.256 else 0


def train(prepared: PreparedRun | RunConfig, out: Path | str, *, progress_bar: bool = False,
          resume: bool = False) -> dict[str, Any]:
    """Train one run into folder ``out`` and return its ``run.json`` record.

    With ``resume=True`` and a checkpoint in ``out``, training continues from it towards the
    same total budget, so the schedule keeps its phase (progress = timesteps / total).
    """
    if isinstance(prepared, RunConfig):
        prepared = prepare(prepared)
    out = Path(out)
    check_out_dir(out, resume=resume)
    c = prepared.config
    if c.threads:
        import torch

        torch.set_num_threads(c.threads)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "run_id": prepared.run_id(), "status": "running", "config": prepared.resolved(),
        "versions": _versions(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
    }
    checkpoint = out / "checkpoint"
    if resume and not checkpoint.exists() and (out / "checkpoint.old" / "state.json").is_file():
        (out / "checkpoint.old").rename(checkpoint)  # killed between the two renames of _checkpoint
    resuming = resume and (checkpoint / "state.json").is_file()
    if resuming:
        state = read_json(checkpoint / "state.json")
        record["resumed_from"] = state.pop("timesteps")
    else:
        for stale in ("evaluations.csv", "model.zip", "vecnormalize.pkl"):
            (out / stale).unlink(missing_ok=True)
        for event in out.glob("events.out.tfevents.*"):
            event.unlink()
        every = _default_checkpoint_every(prepared)
        state = {"rows": [], "next_eval": 0, "checkpoint_every": every, "next_checkpoint": every, "wall_seconds": 0.0}
    write_json_atomic(out / "run.json", record)
    write_evaluations(out / "evaluations.csv", state["rows"])

    from stable_baselines3.common.logger import HParam, Logger, TensorBoardOutputFormat

    agent = prepared.agent
    env = make_env(c.env_id, n_envs=agent.n_envs, seed=c.seed, normalize=agent.normalize,
                   gamma=float(agent.hyperparams.get("gamma", 0.99)))
    eval_env = make_env(c.env_id, n_envs=1, seed=c.seed + 10_000, normalize=agent.normalize, for_eval=True,
                        gamma=float(agent.hyperparams.get("gamma", 0.99)))
    if resuming:
        model = _load_checkpoint(prepared, checkpoint, env)
    else:
        model = build_model(agent, env, prepared.schedule, seed=c.seed,
                            device=resolve_device(c.device, agent.policy), optimizer=c.optimizer)
    tb = TensorBoardOutputFormat(str(out))
    if resuming:  # drop events the interrupted process wrote after its checkpoint
        from torch.utils.tensorboard import SummaryWriter

        tb.writer.close()
        tb.writer = SummaryWriter(log_dir=str(out), purge_step=model.num_timesteps + 1)
    model.set_logger(Logger(folder=str(out), output_formats=[tb]))
    if c.lr_per_step or c.cycle_momentum:
        install_step_hook(model, prepared, writer=tb.writer)
    if not resuming:
        model.logger.record("hparams", HParam(_hparams(prepared), {"eval/final_return": 0.0, "eval/auc": 0.0}),
                            exclude=("stdout", "log", "json", "csv"))
        model.logger.dump(0)
    try:
        with _Interrupt() as stop:
            callback = _make_callback(prepared, out, eval_env, state, stop)
            remaining = c.timesteps - model.num_timesteps
            model.learn(remaining, callback=callback, reset_num_timesteps=not resuming, progress_bar=progress_bar)
    except BaseException as exc:
        # Ctrl-C, or the process being shut down (a Ray worker killed with its driver raises SystemExit):
        # resumable from the last checkpoint, not a failure of the run
        stopped = isinstance(exc, (KeyboardInterrupt, SystemExit))
        record.update(status="interrupted" if stopped else "failed", error=repr(exc))
        import traceback

        record["traceback"] = traceback.format_exc()
        write_json_atomic(out / "run.json", record)
        env.close()
        eval_env.close()
        raise
    if stop.requested and model.num_timesteps < c.timesteps:
        # SB3 takes one more env step before it sees the stop; the run is done to its checkpoint.
        saved = int(read_json(checkpoint / "state.json")["timesteps"])
        record.update(status="interrupted", timesteps_done=saved,
                      wall_seconds=round(state["wall_seconds"], 3))
        write_json_atomic(out / "run.json", record)
        tb.close()
        env.close()
        eval_env.close()
        return record
    rows = state["rows"]
    final = rows[-1]
    area = auc(rows)
    writer = tb.writer
    writer.add_scalar("eval/final_return", final["mean_return"], model.num_timesteps)
    writer.add_scalar("eval/auc", area, model.num_timesteps)
    writer.flush()
    model.save(out / "model.zip")
    venv = model.get_vec_normalize_env()
    if venv is not None:
        venv.save(str(out / "vecnormalize.pkl"))
    tb.close()
    env.close()
    eval_env.close()
    record.update(
        status="finished", timesteps_done=model.num_timesteps, device_used=str(model.device),
        wall_seconds=round(state["wall_seconds"], 3), finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        final_eval={k: final[k] for k in ("timesteps", "mean_return", "std_return", "episodes")}, auc=area,
    )
    shutil.rmtree(checkpoint, ignore_errors=True)  # before "finished": a finished run never keeps one
    write_json_atomic(out / "run.json", record)
    return record


def _load_checkpoint(prepared: PreparedRun, checkpoint: Path, env: Any) -> Any:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.vec_env import VecNormalize

    if (checkpoint / "vecnormalize.pkl").is_file():
        inner = env.venv if isinstance(env, VecNormalize) else env
        env = VecNormalize.load(str(checkpoint / "vecnormalize.pkl"), inner)
    cls = PPO if prepared.config.algo == "ppo" else DQN
    model = cls.load(checkpoint / "model.zip", env=env, device=prepared.config.device,
                     custom_objects={"learning_rate": prepared.schedule, "lr_schedule": prepared.schedule})
    if (checkpoint / "replay_buffer.pkl").is_file():
        model.load_replay_buffer(checkpoint / "replay_buffer.pkl")  # type: ignore[union-attr]
    return model


def resume(out: Path | str, *, progress_bar: bool = False) -> dict[str, Any]:
    """Continue an interrupted run in ``out`` from its last checkpoint, to its planned budget."""
    out = Path(out)
    if not (out / "run.json").is_file():
        raise ValueError(f"out={str(out)!r} holds no run (run.json missing)")
    record = read_json(out / "run.json")
    if record.get("status") == "finished":
        raise ValueError(f"out={str(out)!r} holds a finished run; nothing to resume")
    cfg = record["config"]
    config = RunConfig.from_dict(cfg)
    return train(prepare(config), out, progress_bar=progress_bar, resume=True)
