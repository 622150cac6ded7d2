"""The one home of per-algorithm hyperparameter *value* rules (names are checked by :mod:`clr_rl.run.agents`).

Each rule is a type and a range taken from Stable-Baselines3 2.9's own constraints (its asserts and
what its code divides by): PPO ``batch_size > 1`` (SB3 asserts it), ``n_steps * n_envs > 1``,
``0 < gamma <= 1``, ``0 <= gae_lambda <= 1``, DQN ``0 < tau <= 1``, ``0 < exploration_fraction <= 1``
(SB3's linear schedule divides by it), ``gradient_steps = -1`` or ``>= 1``, ... A number must be finite
(TOML admits ``nan`` and ``inf``) and an integer setting an integer (``batch_size = 64.0`` is refused, as
torch would refuse it later). A hyperparameter SB3 takes that has no rule here is checked against the
type of its default in SB3's signature (int, float or bool), when that default has one.

Called from :func:`clr_rl.run.agents.agent_config`, so ``train``, ``tune``, ``lr-range``, ``tradeoff`` and
``compare`` all refuse a bad value before anything is written.

>>> check_hyperparams("ppo", {"batch_size": 64, "n_steps": 128, "gamma": 0.99}, n_envs=1)
>>> check_hyperparams("ppo", {"batch_size": 1}, n_envs=1)
Traceback (most recent call last):
...
ValueError: hyperparameter batch_size=1 must be an integer > 1 (SB3 PPO asserts batch_size > 1)
>>> check_hyperparams("dqn", {"gamma": float("nan")}, n_envs=1)
Traceback (most recent call last):
...
ValueError: hyperparameter gamma=nan must be a finite number in (0, 1]
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["MAX_N_ENVS", "check_hyperparams", "check_n_envs", "check_policy_kwargs"]

MAX_N_ENVS = 1024


@dataclass(frozen=True)
class _Rule:
    """``kind`` int, float or bool; bounds with their openness; ``none``: None allowed; ``also``: extra
    integer values allowed outside the range (``gradient_steps = -1``); ``why``: the rule's source."""

    kind: str
    lo: float | None = None
    lo_open: bool = False
    hi: float | None = None
    hi_open: bool = False
    none: bool = False
    also: tuple[int, ...] = ()
    why: str = ""

    def describe(self) -> str:
        noun = {"int": "an integer", "float": "a finite number", "bool": "true or false"}[self.kind]
        if self.kind == "bool":
            return noun
        if self.lo is not None and self.hi is not None:
            rng = f" in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            rng = f" {'>' if self.lo_open else '>='} {self.lo:g}"
        elif self.hi is not None:
            rng = f" {'<' if self.hi_open else '<='} {self.hi:g}"
        else:
            rng = ""
        extra = "".join(f" or {v}" for v in self.also)
        return f"{noun}{rng}{extra}{' or omitted' if self.none else ''}{f' ({self.why})' if self.why else ''}"

    def holds(self, value: Any) -> bool:
        if value is None:
            return self.none
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if isinstance(value, int) and value in self.also:
            return True
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))


_COMMON = {
    "gamma": _Rule("float", lo=0.0, lo_open=True, hi=1.0),
    "max_grad_norm": _Rule("float", lo=0.0, lo_open=True),
    "stats_window_size": _Rule("int", lo=1),
    "sde_sample_freq": _Rule("int", lo=-1),
    "use_sde": _Rule("bool"),
}
_RULES: dict[str, dict[str, _Rule]] = {
    "ppo": {
        **_COMMON,
        "n_steps": _Rule("int", lo=1),
        "batch_size": _Rule("int", lo=1, lo_open=True, why="SB3 PPO asserts batch_size > 1"),
        "n_epochs": _Rule("int", lo=1),
        "gae_lambda": _Rule("float", lo=0.0, hi=1.0),
        "clip_range": _Rule("float", lo=0.0, lo_open=True),
        "clip_range_vf": _Rule("float", lo=0.0, lo_open=True, none=True),
        "normalize_advantage": _Rule("bool"),
        "ent_coef": _Rule("float", lo=0.0),
        "vf_coef": _Rule("float", lo=0.0),
        "target_kl": _Rule("float", lo=0.0, lo_open=True, none=True),
    },
    "dqn": {
        **_COMMON,
        "buffer_size": _Rule("int", lo=1),
        "learning_starts": _Rule("int", lo=0),
        "batch_size": _Rule("int", lo=1),
        "tau": _Rule("float", lo=0.0, lo_open=True, hi=1.0),
        "gradient_steps": _Rule("int", lo=1, also=(-1,), why="-1: as many as environment steps collected"),
        "optimize_memory_usage": _Rule("bool"),
        "n_steps": _Rule("int", lo=1),
        "target_update_interval": _Rule("int", lo=1),
        "exploration_fraction": _Rule("float", lo=0.0, lo_open=True, hi=1.0,
                                      why="SB3's linear exploration schedule divides by it"),
        "exploration_initial_eps": _Rule("float", lo=0.0, hi=1.0),
        "exploration_final_eps": _Rule("float", lo=0.0, hi=1.0),
    },
}


@cache
def _signature_kinds(algo: str) -> dict[str, str]:
    """SB3 constructor parameter -> int/float/bool, from the type of its default (where it has one)."""
    from stable_baselines3 import DQN, PPO

    kinds = {}
    for name, p in inspect.signature((PPO if algo == "ppo" else DQN).__init__).parameters.items():
        default = p.default
        if isinstance(default, bool):
            kinds[name] = "bool"
        elif isinstance(default, int):
            kinds[name] = "int"
        elif isinstance(default, float):
            kinds[name] = "float"
    return kinds


def _check_train_freq(value: Any) -> None:
    ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
        isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], int)
        and not isinstance(value[0], bool) and value[0] >= 1 and value[1] in ("step", "episode"))
    if not ok:
        raise ValueError(f"hyperparameter train_freq={value!r} must be an integer >= 1 or [n, \"step\" | "
                         "\"episode\"] with n >= 1")


def check_n_envs(value: Any) -> None:
    """``n_envs``: an integer in [1, MAX_N_ENVS] (each is a live environment, often a process)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_N_ENVS:
        raise ValueError(f"n_envs={value!r} must be an integer in [1, {MAX_N_ENVS}]")


def check_policy_kwargs(kwargs: dict[str, Any]) -> None:
    """``net_arch``: positive layer widths (a list, or a table of lists per network); ``ortho_init``
    a bool; ``log_std_init`` finite."""
    arch = kwargs.get("net_arch")
    if arch is not None:
        lists = list(arch.values()) if isinstance(arch, dict) else [arch]
        if not all(isinstance(layers, list) and all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 65536
                                                    for w in layers) for layers in lists):
            raise ValueError(f"policy_kwargs.net_arch={arch!r} must be a list of layer widths (integers in "
                             "[1, 65536]) or a table of such lists (pi, vf, qf)")
    if "ortho_init" in kwargs and not isinstance(kwargs["ortho_init"], bool):
        raise ValueError(f"policy_kwargs.ortho_init={kwargs['ortho_init']!r} must be true or false")
    if "log_std_init" in kwargs and not _Rule("float").holds(kwargs["log_std_init"]):
        raise ValueError(f"policy_kwargs.log_std_init={kwargs['log_std_init']!r} must be a finite number")


def check_hyperparams(algo: str, hyperparams: dict[str, Any], *, n_envs: int) -> None:
    """Every value of ``hyperparams`` (SB3 keyword arguments of ``algo``) by its rule; ValueError
    naming the first bad one, its value and the rule."""
    rules = _RULES[algo]
    kinds: dict[str, str] | None = None
    for key, value in hyperparams.items():
        if key == "train_freq" and algo == "dqn":
            _check_train_freq(value)
            continue
        rule = rules.get(key)
        if rule is None:
            kinds = kinds if kinds is not None else _signature_kinds(algo)
            if key not in kinds:
                continue
            rule = _Rule(kinds[key], none=True)
        if not rule.holds(value):
            raise ValueError(f"hyperparameter {key}={value!r} must be {rule.describe()}")
    if algo == "ppo":
        n_steps = hyperparams.get("n_steps")
        if isinstance(n_steps, int) and n_steps * n_envs <= 1:
            raise ValueError(f"hyperparameter n_steps={n_steps} x n_envs={n_envs} must be > 1 (SB3 PPO needs a "
                             "rollout of at least 2 steps)")
