"""Agent hyperparameters (``agents/<algo>.toml``) and the PPO / DQN builders.

Layers, later wins: ``[defaults]`` (SB3's defaults) < ``[family.<family>]`` <
``[env."<id>"]`` < the user's overrides (``--hp key=value``).
"""

from __future__ import annotations

import inspect
import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from clr_rl.run.envs import data_dir
from clr_rl.run.hyperparams import check_hyperparams, check_n_envs, check_policy_kwargs

__all__ = ["ALGOS", "AgentConfig", "OPTIMIZERS", "agent_config", "build_model", "parse_overrides"]

ALGOS = ("ppo", "dqn")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
_SPECIAL = ("policy", "n_envs", "normalize", "tuned_lr", "tuned_lr_source", "tuned_lr_cost_timesteps")
_ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu")


@dataclass(frozen=True)
class AgentConfig:
    """Resolved hyperparameters for one algo on one env."""

    algo: str
    policy: str
    n_envs: int
    normalize: bool
    hyperparams: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    tuned_lr: float = 3e-4
    tuned_lr_source: str = ""
    tuned_lr_cost_timesteps: int | None = None  # what tuning it cost, when clr-rl tune measured it

    # The update geometry, in one place. Every key is present: agents/<algo>.toml [defaults] holds SB3's defaults.
    def timesteps_per_update(self) -> int:
        """Timesteps between two ``train()`` calls: PPO ``n_steps x n_envs``, DQN ``train_freq x n_envs``."""
        key = "n_steps" if self.algo == "ppo" else "train_freq"
        return int(self.hyperparams[key]) * self.n_envs

    def gradient_steps_per_update(self) -> int:
        """Optimizer steps in one ``train()`` call: PPO ``n_epochs x ceil(rollout / batch_size)``;
        DQN ``gradient_steps`` (``-1``: as many as timesteps collected)."""
        if self.algo == "ppo":
            return int(self.hyperparams["n_epochs"]) * math.ceil(self.timesteps_per_update() /
                                                                 int(self.hyperparams["batch_size"]))
        steps = int(self.hyperparams["gradient_steps"])
        return steps if steps > 0 else self.timesteps_per_update()

    def updates_before_learning(self) -> int:
        """``train()`` calls skipped before learning starts (DQN's ``learning_starts``; PPO none)."""
        if self.algo == "ppo":
            return 0
        return int(self.hyperparams["learning_starts"]) // self.timesteps_per_update()

    def planned_gradient_steps(self, timesteps: int) -> int:
        """Optimizer steps of a run of ``timesteps``: ``train()`` calls x gradient steps each."""
        calls = math.ceil(timesteps / self.timesteps_per_update()) - self.updates_before_learning()
        return max(1, calls * self.gradient_steps_per_update())

    def lr_update_every(self) -> tuple[int, str]:
        """Timesteps between two LR updates in SB3, and how that number arises."""
        key = "n_steps" if self.algo == "ppo" else "train_freq"
        return self.timesteps_per_update(), f"{key}={int(self.hyperparams[key])} x n_envs={self.n_envs}"

    @property
    def gamma(self) -> float:
        return float(self.hyperparams["gamma"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "n_envs": self.n_envs,
            "normalize": self.normalize,
            "hyperparams": dict(self.hyperparams),
            "policy_kwargs": dict(self.policy_kwargs),
            "tuned_lr": self.tuned_lr,
            "tuned_lr_source": self.tuned_lr_source,
            "tuned_lr_cost_timesteps": self.tuned_lr_cost_timesteps,
        }


@cache
def _table(algo: str) -> dict[str, Any]:
    return tomllib.loads((data_dir("agents") / f"{algo}.toml").read_text())


def _sb3_params(algo: str) -> set[str]:
    from stable_baselines3 import DQN, PPO

    cls = PPO if algo == "ppo" else DQN
    names = set(inspect.signature(cls.__init__).parameters)
    return names - {"self", "policy", "env", "learning_rate", "tensorboard_log", "verbose", "seed", "device",
                    "_init_setup_model", "policy_kwargs"}


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["n_steps=128", "gamma=0.98"]`` -> ``{"n_steps": 128, "gamma": 0.98}`` (TOML values).

    >>> parse_overrides(["n_steps=128", "normalize=true", "policy=CnnPolicy"])
    {'n_steps': 128, 'normalize': True, 'policy': 'CnnPolicy'}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--hp {item!r} must look like key=value")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[key] = value
    return out


def agent_config(algo: str, env_id: str, family: str, overrides: dict[str, Any] | None = None) -> AgentConfig:
    """Merge defaults < family < env < overrides for ``algo`` and check every key."""
    if algo not in ALGOS:
        raise ValueError(f"algo={algo!r} must be one of {', '.join(ALGOS)}")
    table = _table(algo)
    layers = [table.get("defaults", {}), table.get("family", {}).get(family, {}), table.get("env", {}).get(env_id, {})]
    merged: dict[str, Any] = {"hyperparams": {}, "policy_kwargs": {}}
    for layer in layers:
        for key, value in layer.items():
            if key in ("hyperparams", "policy_kwargs"):
                merged[key].update(value)
            else:
                merged[key] = value
    allowed = _sb3_params(algo)
    for key, value in (overrides or {}).items():
        if key in _SPECIAL:
            merged[key] = value
        elif key in allowed:
            merged["hyperparams"][key] = value
        elif key == "learning_rate":
            raise ValueError("hyperparameter learning_rate is not allowed: the LR is the schedule "
                             "(--schedule, or the arm's kind; e.g. constant:lr=3e-4)")
        else:
            raise ValueError(f"hyperparameter {key}={value!r}: unknown {algo.upper()} hyperparameter; expected one of "
                             f"{', '.join(sorted(allowed | set(_SPECIAL)))}")
    n_envs = merged.get("n_envs", 1)
    check_n_envs(n_envs)
    if not isinstance(merged.get("normalize", False), bool):
        raise ValueError(f"normalize={merged['normalize']!r} must be true or false")
    if merged.get("policy", "MlpPolicy") not in ("MlpPolicy", "CnnPolicy", "MultiInputPolicy"):
        raise ValueError(f"policy={merged['policy']!r} must be one of MlpPolicy, CnnPolicy, MultiInputPolicy")
    act = merged["policy_kwargs"].get("activation_fn")
    if act is not None and act not in _ACTIVATIONS:
        raise ValueError(f"policy_kwargs.activation_fn={act!r} must be one of {', '.join(_ACTIVATIONS)}")
    check_policy_kwargs(merged["policy_kwargs"])
    lr = merged.get("tuned_lr", 3e-4)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"tuned_lr={lr!r} must be a finite number > 0")
    check_hyperparams(algo, merged["hyperparams"], n_envs=n_envs)
    return AgentConfig(
        algo=algo,
        policy=str(merged.get("policy", "MlpPolicy")),
        n_envs=int(n_envs),
        normalize=bool(merged.get("normalize", False)),
        hyperparams=dict(merged["hyperparams"]),
        policy_kwargs=dict(merged["policy_kwargs"]),
        tuned_lr=float(merged.get("tuned_lr", 3e-4)),
        tuned_lr_source=str(merged.get("tuned_lr_source", "")),
        tuned_lr_cost_timesteps=merged.get("tuned_lr_cost_timesteps"),
    )


def _policy_kwargs(config: AgentConfig, optimizer: str) -> dict[str, Any]:
    import torch

    kwargs = dict(config.policy_kwargs)
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = {
            "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "elu": torch.nn.ELU,
            "leaky_relu": torch.nn.LeakyReLU, "gelu": torch.nn.GELU,
        }[kwargs["activation_fn"]]
    if optimizer == "sgd":
        kwargs["optimizer_class"] = torch.optim.SGD
        kwargs["optimizer_kwargs"] = {"momentum": 0.9, "nesterov": False}
    elif optimizer == "rmsprop":
        kwargs["optimizer_class"] = torch.optim.RMSprop
        kwargs["optimizer_kwargs"] = {"alpha": 0.99, "eps": 1e-5}
    elif optimizer != "adam":
        raise ValueError(f"optimizer={optimizer!r} must be one of {', '.join(OPTIMIZERS)}")
    return kwargs


def build_model(
    config: AgentConfig, env: Any, learning_rate: Any, *, seed: int, device: str, optimizer: str = "adam"
) -> Any:
    """A fresh SB3 model; PPO and DQN are built explicitly, each with its own keywords. Its logger writes
    nowhere until the caller sets one (SB3's default would make an empty ``/tmp/SB3-<date>/`` folder)."""
    from stable_baselines3.common.logger import Logger

    if config.algo == "ppo":
        from stable_baselines3 import PPO

        model: Any = PPO(
            config.policy, env, learning_rate=learning_rate, seed=seed, device=device, verbose=0,
            policy_kwargs=_policy_kwargs(config, optimizer), **config.hyperparams,
        )
    else:
        from stable_baselines3 import DQN

        model = DQN(
            config.policy, env, learning_rate=learning_rate, seed=seed, device=device, verbose=0,
            policy_kwargs=_policy_kwargs(config, optimizer), **config.hyperparams,
        )
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model
