"""Train one agent: validate, build, learn with evaluation and checkpoints, write the run folder.

The run folder is the source of truth (see :mod:`clr_rl.store`). Everything is
validated by :func:`prepare` before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from clr_rl.agents import ALGOS, OPTIMIZERS, AgentConfig, agent_config, build_model
from clr_rl.envs import VEC_ENVS, env_family, env_info, make_env
from clr_rl.errors import ConfigError, Diverged, config_errors
from clr_rl.record import RunRecord, Status
from clr_rl.schedules import (
    Schedule,
    bind_gradient_steps,
    bind_total_timesteps,
    check_lr_resolution,
    parse_schedule,
    schedule_params,
)
from clr_rl.stats import auc
from clr_rl.store import check_writable, read_json, write_evaluations

__all__ = ["PreparedRun", "RunConfig", "Setting", "buffer_gb", "check_out_dir", "measure_speed", "prepare", "resume",
           "speed_key", "train", "versions"]


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


def _int_check(name: str, minimum: int, optional: bool = False) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
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
    timesteps: int = _setting(0, flag="--timesteps", parse=int, check=_int_check("timesteps", 1),
                              help="training budget in environment steps")
    seed: int = _setting(0, flag="--seed", parse=int, check=_int_check("seed", 0), help="random seed (default 0)")
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
                                         check=_int_check("eval_episodes", 1, optional=True),
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
_NON_FINITE = re.compile(r"\b(nan|inf)\b", re.IGNORECASE)  # torch's "found invalid values: tensor([[nan, nan]])"


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
            from clr_rl.envs import check_vec_env

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


def _default_checkpoint_every(prepared: PreparedRun) -> int:
    """PPO: checkpoint at each evaluation. DQN: only when the replay buffer is small (<256 MB)."""
    if prepared.config.algo == "ppo":
        return prepared.eval_every
    return prepared.eval_every if buffer_gb(prepared) < 0.256 else 0


def _start_state(prepared: PreparedRun, out: Path, resume: bool) -> tuple[dict[str, Any], int | None]:
    """The loop state to start from: a checkpoint's (resuming) or a fresh one (stale files removed)."""
    checkpoint = out / "checkpoint"
    if resume and not checkpoint.exists() and (out / "checkpoint.old" / "state.json").is_file():
        (out / "checkpoint.old").rename(checkpoint)  # killed between the two renames of a checkpoint
    if resume and (checkpoint / "state.json").is_file():
        state = read_json(checkpoint / "state.json")
        return state, int(state.pop("timesteps"))
    for stale in ("evaluations.csv", "model.zip", "vecnormalize.pkl"):
        (out / stale).unlink(missing_ok=True)
    for event in out.glob("events.out.tfevents.*"):
        event.unlink()
    every = _default_checkpoint_every(prepared)
    return {"rows": [], "next_eval": 0, "checkpoint_every": every, "next_checkpoint": every, "wall_seconds": 0.0}, None


def _make_envs(prepared: PreparedRun, stack: ExitStack) -> tuple[Any, Any]:
    c, agent = prepared.config, prepared.agent
    kwargs: dict[str, Any] = {"normalize": agent.normalize, "gamma": agent.gamma}
    if c.vec_env != "sb3":
        kwargs["vec_env"] = c.vec_env
    env = make_env(c.env_id, n_envs=agent.n_envs, seed=c.seed, **kwargs)
    stack.callback(env.close)
    eval_env = make_env(c.env_id, n_envs=1, seed=c.seed + 10_000, for_eval=True, **kwargs)
    stack.callback(eval_env.close)
    return env, eval_env


def _make_model(prepared: PreparedRun, out: Path, env: Any, resumed_from: int | None, stack: ExitStack) -> Any:
    """A fresh model (HParams logged) or the checkpoint's; logging to TensorBoard in ``out``."""
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

    c, agent = prepared.config, prepared.agent
    if resumed_from is not None:
        model = _load_checkpoint(prepared, out / "checkpoint", env)
    else:
        model = build_model(agent, env, prepared.schedule, seed=c.seed,
                            device=resolve_device(c.device, agent.policy), optimizer=c.optimizer)
    tb = TensorBoardOutputFormat(str(out))
    stack.callback(tb.close)
    if resumed_from is not None:  # drop events the interrupted process wrote after its checkpoint
        from torch.utils.tensorboard import SummaryWriter

        tb.writer.close()
        tb.writer = SummaryWriter(log_dir=str(out), purge_step=model.num_timesteps + 1)
    model.set_logger(Logger(folder=str(out), output_formats=[tb]))
    if c.lr_per_step or c.cycle_momentum:
        from clr_rl.callbacks import install_step_hook

        install_step_hook(model, prepared, writer=tb.writer)
    if resumed_from is None:  # this run's HParams session (the batch's experiment config lives in runs/_layout)
        from clr_rl.tensorboard import run_hparams, session_start_summary

        tb.writer._get_file_writer().add_summary(session_start_summary(run_hparams(prepared.resolved())))
        tb.writer.flush()
    return model


def _learn(prepared: PreparedRun, model: Any, out: Path, eval_env: Any, state: dict[str, Any],
           progress_bar: bool, resuming: bool) -> bool:
    """Train to the budget; True when stopped early on request (Ctrl-C, SIGTERM) at a checkpoint."""
    from clr_rl.callbacks import Interrupt, parameters_finite, trainer_callbacks

    c = prepared.config
    with Interrupt() as stop:
        callbacks = trainer_callbacks(
            env_id=c.env_id, out=out, eval_env=eval_env, state=state, eval_every=prepared.eval_every,
            episodes=prepared.eval_episodes, per_step_lr=c.lr_per_step, save_replay_buffer=c.algo == "dqn", stop=stop)
        try:
            model.learn(c.timesteps - model.num_timesteps, callback=callbacks, reset_num_timesteps=not resuming,
                        progress_bar=progress_bar)
        except (Diverged, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # NaN/inf parameters or activations crash the next forward pass (NaN logits)
            if not parameters_finite(model) or _NON_FINITE.search(str(exc)):
                raise Diverged(f"parameters became non-finite ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
            raise
    return stop.requested and model.num_timesteps < c.timesteps


def _finish(prepared: PreparedRun, model: Any, out: Path, state: dict[str, Any], record: RunRecord) -> None:
    """Final metrics into TensorBoard and the record; the model (and normaliser) saved."""
    rows = state["rows"]
    final = rows[-1]
    area = auc(rows)
    writer = next(fmt.writer for fmt in model.logger.output_formats if hasattr(fmt, "writer"))
    writer.add_scalar("eval/final_return", final["mean_return"], model.num_timesteps)
    writer.add_scalar("eval/auc", area, model.num_timesteps)
    info = env_info(prepared.config.env_id)
    if info is not None:
        writer.add_scalar("eval/normalized_final_return", (final["mean_return"] - info.random_score)
                          / (info.reference_score - info.random_score), model.num_timesteps)
    writer.flush()
    model.save(out / "model.zip")
    venv = model.get_vec_normalize_env()
    if venv is not None:
        venv.save(str(out / "vecnormalize.pkl"))
    record.timesteps_done = model.num_timesteps
    record.device_used = str(model.device)
    record.wall_seconds = round(state["wall_seconds"], 3)
    record.final_eval = {k: final[k] for k in ("timesteps", "mean_return", "std_return", "episodes")}
    record.auc = area
    shutil.rmtree(out / "checkpoint", ignore_errors=True)  # before "finished": a finished run never keeps one
    record.status = Status.FINISHED


def train(prepared: PreparedRun, out: Path | str, *, progress_bar: bool = False, resume: bool = False) -> RunRecord:
    """Train one run into folder ``out`` and return its record (also in ``out/run.json``).

    With ``resume=True`` and a checkpoint in ``out``, training continues from it towards the
    same total budget, so the schedule keeps its phase (progress = timesteps / total).
    Whatever happens, ``run.json`` ends in a final status (see :mod:`clr_rl.record`); an
    exception is re-raised after it is recorded.
    """
    out = Path(out)
    check_out_dir(out, resume=resume)
    c = prepared.config
    if c.threads:
        import torch

        torch.set_num_threads(c.threads)
    out.mkdir(parents=True, exist_ok=True)
    state, resumed_from = _start_state(prepared, out, resume)
    record = RunRecord(run_id=prepared.run_id(), config=prepared.resolved(), versions=versions(), pid=os.getpid(),
                       resumed_from=resumed_from)
    try:
        with record.lifecycle(out), ExitStack() as stack:
            write_evaluations(out / "evaluations.csv", state["rows"])
            env, eval_env = _make_envs(prepared, stack)
            model = _make_model(prepared, out, env, resumed_from, stack)
            if _learn(prepared, model, out, eval_env, state, progress_bar, resumed_from is not None):
                # SB3 takes one more env step before it sees the stop; the run is done to its checkpoint.
                record.timesteps_done = int(read_json(out / "checkpoint" / "state.json")["timesteps"])
                record.wall_seconds = round(state["wall_seconds"], 3)
                record.status = Status.INTERRUPTED
            else:
                _finish(prepared, model, out, state, record)
    finally:
        _log_session_end(out, record.status)
    return record


def _log_session_end(out: Path, status: Status) -> None:
    """The HParams session's end status (finished: success; failed, diverged: failure)."""
    from clr_rl.tensorboard import session_end_summary

    end = session_end_summary(status.value)
    if end is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(log_dir=str(out), filename_suffix=".session_end") as writer:
            writer._get_file_writer().add_summary(end)


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
            from clr_rl.callbacks import install_step_hook

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


def resume(out: Path | str, *, progress_bar: bool = False) -> RunRecord:
    """Continue an interrupted run in ``out`` from its last checkpoint, to its planned budget."""
    out = Path(out)
    record = RunRecord.read(out)
    if record.status.complete:
        raise ConfigError(f"out={str(out)!r} holds a {record.status} run; nothing to resume")
    return train(prepare(RunConfig.from_dict(record.config)), out, progress_bar=progress_bar, resume=True)
