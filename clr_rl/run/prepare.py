"""A run made concrete before it trains: agent hyperparameters, evaluation cadence, device, versions."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError, config_errors
from clr_rl.run.agents import AgentConfig, agent_config
from clr_rl.run.config import _PROVENANCE_KEYS, RunConfig
from clr_rl.run.envs import env_family, env_info
from clr_rl.run.machine import machine
from clr_rl.schedules.base import schedule_params
from clr_rl.schedules.text import (
    Schedule,
    bind_gradient_steps,
    bind_total_timesteps,
    check_lr_resolution,
    parse_schedule,
)
from clr_rl.store import check_writable

__all__ = ["PreparedRun", "buffer_gb", "check_device", "check_out_dir", "prepare", "resolve_device", "versions"]


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
        """Plain-data description of the run, enough to reproduce it, with its provenance."""
        c = self.config
        return {
            **c.to_dict(),
            "family": self.family,
            "schedule": str(self.schedule),
            "schedule_kind": self.schedule.kind,
            "schedule_params": schedule_params(self.schedule),
            "agent": self.agent.as_dict(),
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
        }

    def identity(self) -> dict[str, Any]:
        """What defines the trained result: the identity settings, the resolved agent and evaluation
        protocol, and the versions that change results. Provenance (labels, paths, where a value
        came from), the device and thread count are left out, so the same run planned from another
        working directory, or under another arm name, has the same id."""
        settings = RunConfig.settings()
        data = {k: v for k, v in self.resolved().items() if k not in settings or settings[k].identity}
        data["overrides"] = {k: v for k, v in self.config.overrides.items() if k not in _PROVENANCE_KEYS}
        data["agent"] = {k: v for k, v in self.agent.as_dict().items() if k not in _PROVENANCE_KEYS}
        data["versions"] = _result_versions()
        return data

    def run_id(self) -> str:
        """Deterministic id of :meth:`identity` (12 hex digits of its SHA-256)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()[:12]



@cache
def _result_versions() -> dict[str, str]:
    """Major.minor of the libraries whose releases change training results (read without importing them)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("stable_baselines3", "gymnasium"):
        try:
            out[name] = ".".join(version(name).split(".")[:2])
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "?"
    return out



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



def check_device(device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:k`` that this machine has."""
    if device in ("auto", "cpu"):
        return
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} is not available here (torch.cuda.is_available() is False)")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
        return
    raise ConfigError(f"device={device!r} must be auto, cpu, cuda or cuda:<index>")



def check_out_dir(out: Path, *, resume: bool = False) -> None:
    """The output folder must be new (or empty), or hold a run when resuming; and be writable."""
    check_writable(out)
    if out.is_dir() and any(out.iterdir()) and not resume:
        raise ConfigError(f"out={str(out)!r} is not empty; pick a new folder (or resume the run there: "
                          "resume=True, --resume)")



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
    """Validate and resolve everything about a run; raises ConfigError naming the field."""
    with config_errors():
        config.validate()
        check_device(config.device)
        family = env_family(config.env_id)
        if config.vec_env != "sb3":
            from clr_rl.run.envs import check_vec_env

            check_vec_env(config.env_id, config.vec_env)
        agent = agent_config(config.algo, config.env_id, family, config.overrides)
        if config.algo == "dqn" and not _discrete_actions(config.env_id, family):
            raise ConfigError(f"env {config.env_id!r} has a continuous action space; DQN needs discrete actions")
        schedule = bind_total_timesteps(parse_schedule(config.schedule), config.timesteps)
        if schedule.per_step_only:  # a period in gradient steps: needs the per-step hook and the step count
            if not config.lr_per_step:
                raise ConfigError(f"schedule {schedule}: {schedule.kind} changes the LR every gradient step (its "
                                  "period is in gradient steps); set lr_per_step = true on the arm "
                                  "(clr-rl train --lr-per-step)")
            schedule = bind_gradient_steps(schedule, agent.planned_gradient_steps(config.timesteps))
        schedule(1.0)  # a timestep-based cycle without a total raises here
        if not schedule.per_step_only:
            every, how = agent.lr_update_every()
            check_lr_resolution(schedule, config.timesteps, every, how)
        info = env_info(config.env_id)
        eval_every = config.eval_every if config.eval_every is not None else (
            info.eval_every if info else max(1, config.timesteps // 10))
        eval_every = min(eval_every, config.timesteps)
        eval_episodes = config.eval_episodes if config.eval_episodes is not None else (
            info.eval_episodes if info else 10)
    return PreparedRun(config, schedule, family, agent, eval_every, eval_episodes)



def versions() -> dict[str, str]:
    """Versions of everything that produced a result (written into run.json and tune records)."""
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
        **machine(),  # CPU model, torch's CPU capability and BLAS, numpy and its BLAS
    }



def buffer_gb(prepared: PreparedRun) -> float:
    """Memory of the run's experience buffer: DQN's replay buffer (obs and next_obs unless
    ``optimize_memory_usage``; ~0.56 GB per 10k Atari transitions), PPO's rollout buffer."""
    obs_bytes = 84 * 84 * 4 if prepared.family == "atari" else 4 * 400
    hp = prepared.agent.hyperparams
    if prepared.config.algo == "dqn":
        transitions = min(int(hp["buffer_size"]), prepared.config.timesteps)
        return transitions * obs_bytes * (1 if hp.get("optimize_memory_usage") else 2) / 1e9
    return prepared.agent.timesteps_per_update() * obs_bytes * 4 / 1e9
