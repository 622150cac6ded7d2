"""Train one run into its folder: start or resume from a checkpoint, evaluate, record."""

from __future__ import annotations

import os
import re
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError, Diverged
from clr_rl.run.agents import build_model
from clr_rl.run.config import RunConfig
from clr_rl.run.envs import env_info, make_env
from clr_rl.run.prepare import PreparedRun, buffer_gb, check_out_dir, prepare, resolve_device, versions
from clr_rl.run.record import RunRecord, Status
from clr_rl.run.trust import verify_checkpoint
from clr_rl.stats.aggregates import auc
from clr_rl.store import read_json, write_evaluations

__all__ = ["resume", "train"]


_NON_FINITE = re.compile(r"\b(nan|inf)\b", re.IGNORECASE)  # torch's "found invalid values: tensor([[nan, nan]])"



def _default_checkpoint_every(prepared: PreparedRun) -> int:
    """PPO: checkpoint at each evaluation. DQN: only when the replay buffer is small (<256 MB)."""
    if prepared.config.algo == "ppo":
        return prepared.eval_every
    return prepared.eval_every if buffer_gb(prepared) < 0.256 else 0



def _start_state(prepared: PreparedRun, out: Path, resume: bool, trust: bool) -> tuple[dict[str, Any], int | None]:
    """The loop state to start from: a checkpoint's (resuming; its signature checked first, see
    :mod:`clr_rl.run.trust`) or a fresh one (stale files removed)."""
    checkpoint = out / "checkpoint"
    if resume and not checkpoint.exists() and (out / "checkpoint.old" / "state.json").is_file():
        (out / "checkpoint.old").rename(checkpoint)  # killed between the two renames of a checkpoint
    if resume and (checkpoint / "state.json").is_file():
        verify_checkpoint(checkpoint, trust=trust)
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
        from clr_rl.run.callbacks import install_step_hook

        install_step_hook(model, prepared, writer=tb.writer)
    if resumed_from is None:  # this run's HParams session (the batch's experiment: runs/arms/<first arm>)
        from clr_rl.run.tblog import run_hparams, session_start_summary

        tb.writer._get_file_writer().add_summary(session_start_summary(run_hparams(prepared.resolved())))
        tb.writer.flush()
    return model



def _learn(prepared: PreparedRun, model: Any, out: Path, eval_env: Any, state: dict[str, Any],
           progress_bar: bool, resuming: bool) -> bool:
    """Train to the budget; True when stopped early on request (Ctrl-C, SIGTERM) at a checkpoint."""
    from clr_rl.run.callbacks import Interrupt, parameters_finite, trainer_callbacks

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



def train(prepared: PreparedRun, out: Path | str, *, progress_bar: bool = False, resume: bool = False,
          trust_checkpoints: bool = False) -> RunRecord:
    """Train one run into folder ``out`` and return its record (also in ``out/run.json``).

    With ``resume=True`` and a checkpoint in ``out``, training continues from it towards the
    same total budget, so the schedule keeps its phase (progress = timesteps / total). The checkpoint
    must carry this user's signature (:func:`clr_rl.run.trust.verify_checkpoint`) unless
    ``trust_checkpoints``: it holds pickles.
    Whatever happens, ``run.json`` ends in a final status (see :mod:`clr_rl.run.record`); an
    exception is re-raised after it is recorded.
    """
    out = Path(out)
    check_out_dir(out, resume=resume)
    c = prepared.config
    if c.threads:
        import torch

        torch.set_num_threads(c.threads)
    out.mkdir(parents=True, exist_ok=True)
    state, resumed_from = _start_state(prepared, out, resume, trust_checkpoints)
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
    from clr_rl.run.tblog import session_end_summary

    end = session_end_summary(status.value)
    if end is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(log_dir=str(out), filename_suffix=".session_end") as writer:
            writer._get_file_writer().add_summary(end)



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



def resume(out: Path | str, *, progress_bar: bool = False, trust_checkpoints: bool = False) -> RunRecord:
    """Continue an interrupted run in ``out`` from its last checkpoint, to its planned budget
    (a checkpoint this user did not sign is refused unless ``trust_checkpoints``)."""
    out = Path(out)
    record = RunRecord.read(out)
    if record.status.complete:
        raise ConfigError(f"out={str(out)!r} holds a {record.status} run; nothing to resume")
    return train(prepare(RunConfig.from_dict(record.config)), out, progress_bar=progress_bar, resume=True,
                 trust_checkpoints=trust_checkpoints)
