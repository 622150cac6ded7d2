"""One run's settings: :class:`RunConfig` and the :class:`Setting` metadata that makes each field a CLI
flag and a spec key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from functools import partial
from typing import Any

from clr_rl.run.agents import ALGOS, OPTIMIZERS
from clr_rl.run.envs import VEC_ENVS
from clr_rl.run.limits import check_seed
from clr_rl.schedules.text import (
    Schedule,
    parse_schedule,
)

__all__ = ["RunConfig", "Setting"]


@dataclass(frozen=True)
class Setting:
    """How one run setting appears everywhere: the ``train`` CLI flag, the spec key, its check, and
    whether it is part of the run's identity (changes what is trained) or only provenance.

    ``spec_key`` names the key of an arm table (and of the spec's top level) that sets it;
    ``None`` when the spec sets it some other way (envs, seeds, budgets, the arm's schedule).
    ``check(value)`` raises ValueError naming the value and the rule; ``parse(text)`` turns a
    CLI string into the value; ``to_json``/``from_json`` (de)serialise it.
    """

    help: str
    flag: str | None = None
    spec_key: str | None = None
    identity: bool = True
    check: Callable[[Any], None] | None = None
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    to_json: Callable[[Any], Any] | None = None
    from_json: Callable[[Any], Any] | None = None



def _setting(default: Any = MISSING, **meta: Any) -> Any:
    if default is MISSING:
        return field(metadata={"setting": Setting(**meta)})
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"setting": Setting(**meta)})
    return field(default=default, metadata={"setting": Setting(**meta)})



def _int_check(name: str, minimum: int, optional: bool = False, maximum: int | None = None) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"{name}={value!r} must be an integer in [{minimum}, {maximum}] (a size limit)")
    return check



def _choice_check(name: str, allowed: tuple[str, ...]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in allowed:
            raise ValueError(f"{name}={value!r} must be one of {', '.join(allowed)}")
    return check



def _bool_check(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r} must be true or false")
    return check



def _check_momentum(value: Any) -> None:
    if value is None:
        return
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not 0.0 <= value[0] < value[1] < 1.0):
        raise ValueError(f"cycle_momentum={list(value) if isinstance(value, tuple) else value!r} must be "
                         "[low, high] with 0 <= low < high < 1")



def _parse_momentum(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"cycle_momentum={text!r} must look like low,high, e.g. 0.85,0.95") from None
    return low, high



def _check_overrides(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"hyperparams={value!r} must be a table of SB3 keyword arguments")



def _check_schedule(value: Any) -> None:
    parse_schedule(value)



def _check_vec_env(value: Any) -> None:
    if value not in VEC_ENVS:
        raise ValueError(f"vec_env={value!r} must be one of {', '.join(VEC_ENVS)}")



@dataclass(frozen=True)
class RunConfig:
    """What the user asks for: one algo on one env with one LR schedule and seed.

    Every field is a :class:`Setting`: its metadata drives the ``clr-rl train`` flags, the keys an
    arm may set in a spec, serialisation, validation and the run id. Adding a setting = adding
    a field here (and using it in the trainer).
    """

    algo: str = _setting("ppo", flag="--algo", spec_key="algo", choices=ALGOS, check=_choice_check("algo", ALGOS),
                         help="ppo or dqn")
    env_id: str = _setting("", flag="--env", help="Gymnasium id, e.g. CartPole-v1, HalfCheetah-v5, "
                                                  "PongNoFrameskip-v4")
    schedule: Schedule | str = _setting("", flag="--schedule", check=_check_schedule,
                                        help="LR schedule, e.g. triangular2:base_lr=1e-4,max_lr=1e-3,cycles=4 or 3e-4 "
                                             "(default: the env's fixed LR in agents/)",
                                        to_json=lambda s: str(parse_schedule(s)))
    timesteps: int = _setting(0, flag="--timesteps", parse=int, check=_int_check("timesteps", 1, maximum=10**12),
                              help="training budget in environment steps")
    seed: int = _setting(0, flag="--seed", parse=int, check=partial(check_seed, "seed"),
                         help="random seed (default 0)")
    device: str = _setting("auto", flag="--device", spec_key="device", identity=False,
                           help="auto, cpu, cuda or cuda:<k> (default auto)")
    overrides: dict[str, Any] = _setting({}, flag="--hp", spec_key="hyperparams", check=_check_overrides,
                                         help="override an agent hyperparameter (repeatable), e.g. --hp n_steps=256",
                                         to_json=dict)
    optimizer: str = _setting("adam", flag="--optimizer", spec_key="optimizer", choices=OPTIMIZERS,
                              check=_choice_check("optimizer", OPTIMIZERS),
                              help="adam (default), sgd (momentum 0.9) or rmsprop")
    eval_every: int | None = _setting(None, flag="--eval-every", parse=int,
                                      check=_int_check("eval_every", 1, optional=True),
                                      help="evaluate every N timesteps (default from envs/ or budget/10)")
    eval_episodes: int | None = _setting(None, flag="--eval-episodes", parse=int,
                                         check=_int_check("eval_episodes", 1, optional=True, maximum=100_000),
                                         help="episodes per evaluation (default from envs/ or 10)")
    arm: str = _setting("", identity=False, help="the arm's name in a batch (a label)")
    threads: int | None = _setting(None, flag="--threads", parse=int, identity=False,
                                   check=_int_check("threads", 1, optional=True),
                                   help="torch CPU threads (default: torch's choice)")
    lr_per_step: bool = _setting(False, flag="--lr-per-step", spec_key="lr_per_step", check=_bool_check("lr_per_step"),
                                 help="apply the schedule at every gradient step (default: once per update, as SB3)")
    cycle_momentum: tuple[float, float] | None = _setting(
        None, flag="--cycle-momentum", spec_key="cycle_momentum", check=_check_momentum, parse=_parse_momentum,
        help="cycle momentum inversely to the LR (SGD/RMSprop momentum, Adam beta1), e.g. 0.85,0.95",
        to_json=lambda m: list(m) if m else None, from_json=lambda m: tuple(m) if m else None)
    vec_env: str = _setting("sb3", flag="--vec-env", spec_key="vec_env", choices=VEC_ENVS, check=_check_vec_env,
                            help="Atari only: sb3 (SB3's AtariWrapper, default) or ale (ale_py's native vector env)")
    lr_provenance: str = _setting("", identity=False, help="where the schedule's LR values came from")

    @staticmethod
    def settings() -> dict[str, Setting]:
        """Each field's :class:`Setting`, in declaration order."""
        return {f.name: f.metadata["setting"] for f in fields(RunConfig)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; also takes a run.json ``config`` (extra keys are ignored)."""
        kwargs = {}
        for name, setting in cls.settings().items():
            if name in data:
                value = data[name]
                kwargs[name] = setting.from_json(value) if setting.from_json else value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` rebuilds (the schedule as its text form)."""
        out = {}
        for name, setting in self.settings().items():
            value = getattr(self, name)
            out[name] = setting.to_json(value) if setting.to_json else value
        return out

    def validate(self) -> None:
        """Run every setting's check; ValueError naming the first bad one."""
        if not self.env_id:
            raise ValueError("env_id is required")
        for name, setting in self.settings().items():
            if setting.check is not None:
                setting.check(getattr(self, name))



_PROVENANCE_KEYS = ("tuned_lr", "tuned_lr_source", "tuned_lr_cost_timesteps")
