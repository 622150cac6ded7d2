"""End-to-end training tests: what a user reads back from a run folder.

The oracle for every learning rate is the schedule itself, evaluated at SB3's
``progress_remaining = 1 - t / total`` for the timestep ``t`` of each update, and
the update timesteps are derived independently from the rollout geometry
(``n_steps * n_envs`` for PPO; every ``train_freq`` steps after ``learning_starts``
for DQN). Learning rates are read back from the TensorBoard event files with
``EventAccumulator`` (TensorBoard stores float32, hence ``rel=1e-6``).

Budgets are tiny (a few thousand steps, one torch thread) so the whole file runs
in well under two minutes on two cores.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from clr_rl.run.config import RunConfig
from clr_rl.run.prepare import prepare
from clr_rl.run.record import RunRecord
from clr_rl.run.tblog import LR_TAG, RETURN_TAG
from clr_rl.run.train import train
from clr_rl.schedules import Triangular, Triangular2, parse_schedule

REL = 1e-6  # TensorBoard stores scalars as float32


# ----------------------------------------------------------------- helpers


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one scalar tag, as TensorBoard shows them (purged view)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    if tag not in ea.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def hparams(run_dir: Path) -> dict[str, Any]:
    """The HParams session-start values written into the event file."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    content = ea.PluginTagToContent("hparams")
    info = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    out: dict[str, Any] = {}
    for name, value in info.hparams.items():
        kind = value.WhichOneof("kind")
        out[name] = getattr(value, kind)
    return out


def read_csv(path: Path) -> list[dict[str, float]]:
    with open(path) as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def assert_lr_curve(points: list[tuple[int, float]], schedule: Any, total: int, steps: list[int]) -> None:
    """The logged LR curve is exactly ``schedule(1 - t/total)`` at exactly ``steps``."""
    assert [s for s, _ in points] == steps
    for step, value in points:
        assert value == pytest.approx(schedule(1 - step / total), rel=REL), f"LR at timestep {step}"


def cli() -> list[str]:
    script = Path(sys.executable).parent / "clr-rl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "clr_rl.cli"]


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# --------------------------------------------------------- 1. PPO, cyclical


PPO_TOTAL = 4096
PPO_ROLLOUT = 64 * 4  # n_steps x n_envs
PPO_SCHEDULE = Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=2)


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("ppo") / "run"
    record = train(
        prepare(RunConfig("ppo", "CartPole-v1", PPO_SCHEDULE, PPO_TOTAL, seed=0, device="cpu",
                  overrides={"n_steps": 64, "n_envs": 4}, eval_every=2048, eval_episodes=2, threads=1)),
        out,
    )
    return out, record


def test_ppo_lr_applied_follows_the_schedule_at_every_update(ppo_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = ppo_run
    points = scalars(out, LR_TAG)
    n_updates = PPO_TOTAL // PPO_ROLLOUT
    steps = [PPO_ROLLOUT * k for k in range(1, n_updates + 1)]
    assert len(points) == n_updates == 16
    assert steps[-1] == PPO_TOTAL  # the last update is there
    assert_lr_curve(points, PPO_SCHEDULE, PPO_TOTAL, steps)
    # Spot-check the shape by hand (triangular2, 2 cycles over 4096 steps): peak 1e-3 at
    # 1024, trough 1e-4 at 2048, half-height peak 5.5e-4 at 3072, trough at the end.
    lr = dict(points)
    assert lr[1024] == pytest.approx(1e-3, rel=REL)
    assert lr[2048] == pytest.approx(1e-4, rel=REL)
    assert lr[3072] == pytest.approx(5.5e-4, rel=REL)
    assert lr[4096] == pytest.approx(1e-4, rel=REL)


def test_sb3_learning_rate_tag_lags_one_rollout_and_misses_the_last(ppo_run: tuple[Path, dict[str, Any]]) -> None:
    """Why we log our own tag: SB3's ``train/learning_rate`` is dumped one rollout late."""
    out, _ = ppo_run
    applied = dict(scalars(out, LR_TAG))
    sb3 = scalars(out, "train/learning_rate")
    assert len(sb3) == len(applied) - 1
    for step, value in sb3:
        assert value == pytest.approx(applied[step - PPO_ROLLOUT], rel=REL)
    assert max(s for s, _ in sb3) == PPO_TOTAL
    assert sb3[-1][1] != pytest.approx(applied[PPO_TOTAL], rel=1e-3)  # the last LR never shows up


def test_ppo_run_folder_evaluations_record_and_hparams(ppo_run: tuple[Path, dict[str, Any]]) -> None:
    out, record = ppo_run
    assert {"run.json", "evaluations.csv", "model.zip"} <= {p.name for p in out.iterdir()}
    assert list(out.glob("events.out.tfevents.*"))
    assert not (out / "checkpoint").exists()

    rows = read_csv(out / "evaluations.csv")
    assert [r["timesteps"] for r in rows] == [0, 2048, 4096]
    assert all(r["episodes"] == 2 for r in rows)
    assert all(r["mean_return"] >= 1 for r in rows)  # CartPole pays 1 per step
    walls = [r["wall_seconds"] for r in rows]
    assert walls == sorted(walls)

    on_disk = json.loads((out / "run.json").read_text())
    assert RunRecord.read(out) == record  # the file holds exactly the record train() returned
    assert on_disk["status"] == "finished"
    assert on_disk["timesteps_done"] == PPO_TOTAL
    last = rows[-1]
    assert on_disk["final_eval"] == {
        "timesteps": PPO_TOTAL, "mean_return": last["mean_return"], "std_return": last["std_return"], "episodes": 2,
    }
    # AUC: trapezoid over the evaluation curve divided by the span, computed here by hand.
    ts, ys = [r["timesteps"] for r in rows], [r["mean_return"] for r in rows]
    area = sum((ts[i + 1] - ts[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(ts) - 1))
    assert on_disk["auc"] == pytest.approx(area / (ts[-1] - ts[0]))
    assert on_disk["config"]["schedule"] == str(PPO_SCHEDULE)
    assert parse_schedule(on_disk["config"]["schedule"]) == PPO_SCHEDULE

    assert scalars(out, RETURN_TAG) == [(int(r["timesteps"]), pytest.approx(r["mean_return"], rel=REL)) for r in rows]
    assert scalars(out, "eval/final_return") == [(PPO_TOTAL, pytest.approx(last["mean_return"], rel=REL))]
    assert scalars(out, "eval/auc") == [(PPO_TOTAL, pytest.approx(on_disk["auc"], rel=REL))]

    hp = hparams(out)
    assert hp["algo"] == "ppo"
    assert hp["env"] == "CartPole-v1"
    assert hp["schedule_kind"] == "triangular2"
    assert hp["schedule"] == str(PPO_SCHEDULE)
    assert hp["lr.base_lr"] == pytest.approx(1e-4)
    assert hp["lr.max_lr"] == pytest.approx(1e-3)
    assert hp["lr.cycles"] == 2


# --------------------------------------------------------- 2. DQN, cyclical


def test_dqn_lr_applied_at_each_train_call_after_learning_starts(tmp_path: Path) -> None:
    total, learning_starts, train_freq = 3000, 500, 4
    schedule = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2)
    out = tmp_path / "dqn"
    record = train(
        prepare(RunConfig("dqn", "CartPole-v1", schedule, total, seed=0, device="cpu",
                  overrides={"learning_starts": learning_starts, "train_freq": train_freq, "gradient_steps": 1,
                             "buffer_size": 5000, "target_update_interval": 500},
                  eval_every=1000, eval_episodes=2, threads=1)),
        out,
    )
    assert record.status == "finished"
    # SB3 DQN trains after each train_freq-step rollout once num_timesteps > learning_starts.
    steps = [t for t in range(train_freq, total + 1, train_freq) if t > learning_starts]
    assert steps[0] == 504 and steps[-1] == total
    assert_lr_curve(scalars(out, LR_TAG), schedule, total, steps)
    assert [r["timesteps"] for r in read_csv(out / "evaluations.csv")] == [0, 1000, 2000, 3000]


# ------------------------------------------- 3. the schedule object in plain SB3


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_schedule_object_works_in_plain_sb3_and_survives_save_load(algo: str, tmp_path: Path) -> None:
    import torch
    from stable_baselines3 import DQN, PPO

    torch.set_num_threads(1)
    schedule = Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=2)
    if algo == "ppo":
        cls: Any = PPO
        model = PPO("MlpPolicy", "CartPole-v1", learning_rate=schedule, n_steps=64, batch_size=64, n_epochs=1,
                    seed=0, device="cpu")
    else:
        cls = DQN
        model = DQN("MlpPolicy", "CartPole-v1", learning_rate=schedule, learning_starts=0, train_freq=4,
                    buffer_size=1000, seed=0, device="cpu")
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(schedule(1.0))  # built with lr_schedule(1)

    seen: list[tuple[float, float]] = []
    original = model._update_learning_rate

    def spy(optimizers: Any) -> None:
        original(optimizers)
        seen.append((model._current_progress_remaining, model.policy.optimizer.param_groups[0]["lr"]))

    model._update_learning_rate = spy  # type: ignore[method-assign]
    model.learn(512)
    assert seen, "SB3 never updated the LR"
    for progress, lr in seen:
        assert type(schedule(progress)) is float
        assert lr == pytest.approx(schedule(progress), rel=1e-12)
    assert seen[-1][0] == pytest.approx(0.0)  # the last update is at the end of the budget
    assert {round(lr, 12) for _, lr in seen} >= {1e-3}  # it went through the peak

    del model._update_learning_rate  # back to the class method before pickling
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip", device="cpu")
    assert loaded.learning_rate == schedule
    grid = [i / 64 for i in range(65)] + [-0.02]
    assert [loaded.lr_schedule(p) for p in grid] == [schedule(p) for p in grid]


# ------------------------------------- 4. interrupt, resume in a fresh process


RESUME_TOTAL = 12288
RESUME_SCHEDULE = "triangular:base_lr=1e-4,max_lr=1e-3,cycles=3"
RESUME_ARGS = ["--algo", "ppo", "--env", "CartPole-v1", "--schedule", RESUME_SCHEDULE, "--timesteps",
               str(RESUME_TOTAL), "--hp", "n_steps=64", "--hp", "n_envs=4", "--eval-every", "2048",
               "--eval-episodes", "2", "--seed", "0", "--device", "cpu", "--threads", "1", "--no-progress"]


STALE = 123.0


def _write_stale_events(out: Path, steps: list[int]) -> None:
    """An event file with bogus LR/return values at ``steps``, named to sort after the existing ones."""
    from torch.utils.tensorboard import SummaryWriter

    existing = sorted(out.glob("events.out.tfevents.*"))
    scratch = out.parent / "stale"
    writer = SummaryWriter(log_dir=str(scratch))
    for step in steps:
        writer.add_scalar(LR_TAG, STALE, step)
        writer.add_scalar(RETURN_TAG, STALE, step)
    writer.close()
    (written,) = scratch.glob("events.out.tfevents.*")
    written.rename(out / f"{existing[-1].name}.stale")
    assert scalars(out, LR_TAG)[-1] == (steps[-1], STALE)  # visible before the resume


def test_interrupt_then_resume_in_a_fresh_process_keeps_the_phase(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([*cli(), "train", *RESUME_ARGS, "--out", str(out)], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint" / "state.json").exists():
            assert proc.poll() is None, f"run ended before its first checkpoint: {proc.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"clr-rl train --resume --out {out}" in stdout
    interrupted = json.loads((out / "run.json").read_text())
    assert interrupted["status"] == "interrupted"
    stopped_at = interrupted["timesteps_done"]
    assert 0 < stopped_at < RESUME_TOTAL and stopped_at % 256 == 0
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["timesteps"] == stopped_at  # SIGINT checkpoints where it stops
    assert not (out / "model.zip").exists()

    # Simulate what a crash after the checkpoint leaves behind: events past the checkpoint,
    # in a file read after the interrupted process's. The resumed run must purge them.
    _write_stale_events(out, [stopped_at + 256, stopped_at + 512])

    done = subprocess.run([*cli(), "train", "--resume", "--out", str(out), "--no-progress"], env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    resumed = json.loads((out / "run.json").read_text())
    assert resumed["status"] == "finished"
    assert resumed["resumed_from"] == stopped_at
    assert resumed["timesteps_done"] == RESUME_TOTAL
    assert resumed["run_id"] == interrupted["run_id"]
    assert not (out / "checkpoint").exists()
    assert len(list(out.glob("events.out.tfevents.*"))) >= 3  # one per process (at least) + the stale one

    schedule = parse_schedule(RESUME_SCHEDULE)
    steps = list(range(256, RESUME_TOTAL + 1, 256))
    points = scalars(out, LR_TAG)
    assert len({s for s, _ in points}) == len(points), "a step is logged twice"
    assert STALE not in [v for _, v in points] and STALE not in [v for _, v in scalars(out, RETURN_TAG)]
    assert_lr_curve(points, schedule, RESUME_TOTAL, steps)  # whole run covered, phase kept after the resume
    after = [v for s, v in points if s > stopped_at]
    assert after and max(after) == pytest.approx(1e-3, rel=REL)  # a peak after the resume: the phase did not restart

    rows = read_csv(out / "evaluations.csv")
    assert [r["timesteps"] for r in rows] == list(range(0, RESUME_TOTAL + 1, 2048))

    # A genuinely uninterrupted run of the same config logs the very same LR curve.
    straight = tmp_path / "straight"
    record = train(
        prepare(RunConfig("ppo", "CartPole-v1", RESUME_SCHEDULE, RESUME_TOTAL, seed=0, device="cpu",
                  overrides={"n_steps": 64, "n_envs": 4}, eval_every=2048, eval_episodes=2, threads=1)),
        straight,
    )
    assert record.run_id == resumed["run_id"]
    assert dict(scalars(straight, LR_TAG)) == dict(points)


# ------------------------------------------------------------- 5. optimizers


@pytest.mark.parametrize(("optimizer", "cls_name", "extra"), [
    ("sgd", "SGD", {"momentum": 0.9, "nesterov": False}),
    ("rmsprop", "RMSprop", {"alpha": 0.99, "eps": 1e-5}),
])
def test_optimizer_choice_is_saved_with_the_model(optimizer: str, cls_name: str, extra: dict[str, Any],
                                                  tmp_path: Path) -> None:
    import torch
    from stable_baselines3 import PPO

    total = 1536
    schedule = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=1)
    out = tmp_path / optimizer
    record = train(prepare(RunConfig("ppo", "CartPole-v1", schedule, total, seed=0, device="cpu", optimizer=optimizer,
                             overrides={"n_steps": 64, "n_envs": 4}, eval_every=total, eval_episodes=1, threads=1)),
                   out)
    assert record.config["optimizer"] == optimizer
    model = PPO.load(out / "model.zip", device="cpu")
    opt = model.policy.optimizer
    assert type(opt) is getattr(torch.optim, cls_name)
    group = opt.param_groups[0]
    for key, value in extra.items():
        assert group[key] == value
    assert group["lr"] == pytest.approx(schedule(0.0))  # the last LR applied (end of the run: trough)
    assert_lr_curve(scalars(out, LR_TAG), schedule, total, list(range(256, total + 1, 256)))
    assert hparams(out)["optimizer"] == optimizer


# ------------------------------------------------------------ 6. smoke tests


def test_atari_smoke_pong_noframeskip(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    out = tmp_path / "pong"
    record = train(prepare(RunConfig("ppo", "PongNoFrameskip-v4", "linear:start_lr=2.5e-4", 256, seed=0, device="cpu",
                             overrides={"n_envs": 2, "n_steps": 64, "batch_size": 64}, eval_episodes=1, threads=1)),
                   out)
    assert record.status == "finished"
    assert record.config["family"] == "atari"
    assert record.config["agent"]["policy"] == "CnnPolicy"
    rows = read_csv(out / "evaluations.csv")
    assert [r["timesteps"] for r in rows] == [0, 256]
    assert all(-21 <= r["mean_return"] <= 21 and r["episodes"] == 1 for r in rows)
    model = PPO.load(out / "model.zip", device="cpu")
    assert model.observation_space.shape == (4, 84, 84)
    assert_lr_curve(scalars(out, LR_TAG), parse_schedule("linear:start_lr=2.5e-4"), 256, [128, 256])


def test_atari_envs_are_channel_first_and_v5_gets_frameskip_1() -> None:
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.atari_wrappers import MaxAndSkipEnv

    from clr_rl.run.envs import make_env

    for env_id, sticky in (("PongNoFrameskip-v4", 0.0), ("ALE/Pong-v5", 0.25)):
        venv = make_env(env_id, n_envs=1, seed=0, normalize=False)
        try:
            assert venv.observation_space.shape == (4, 84, 84)
            assert venv.reset().shape == (1, 4, 84, 84)
            inner = venv.unwrapped.envs[0]
            ale = inner.unwrapped
            assert ale._frameskip == 1, env_id  # the emulator itself does not skip...
            assert ale.spec.kwargs["repeat_action_probability"] == sticky
            skips = []
            layer = inner
            while isinstance(layer, gym.Wrapper):
                if isinstance(layer, MaxAndSkipEnv):
                    skips.append(layer._skip)
                layer = layer.env
            assert skips == [4], env_id  # ...the AtariWrapper does, exactly once
        finally:
            venv.close()
    # For contrast: a plain ALE/Pong-v5 skips 4 frames on its own.
    gym.register_envs(ale_py)
    plain = gym.make("ALE/Pong-v5")
    assert plain.unwrapped._frameskip == 4
    plain.close()


def test_mujoco_smoke_halfcheetah_zoo_hyperparams_and_vecnormalize(tmp_path: Path) -> None:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    out = tmp_path / "cheetah"
    record = train(prepare(RunConfig("ppo", "HalfCheetah-v5", "3e-5", 512, seed=0, device="cpu",
                             overrides={"n_steps": 128, "batch_size": 64}, eval_episodes=1, threads=1)), out)
    assert record.status == "finished"
    agent = record.config["agent"]
    assert agent["normalize"] is True
    assert agent["tuned_lr"] == pytest.approx(2.0633e-05)  # Zoo HalfCheetah PPO
    assert agent["hyperparams"]["n_steps"] == 128 and agent["hyperparams"]["batch_size"] == 64  # overrides win
    assert agent["hyperparams"]["gamma"] == 0.98 and agent["hyperparams"]["n_epochs"] == 20  # Zoo values

    model = PPO.load(out / "model.zip", device="cpu")
    assert model.gamma == 0.98 and model.n_epochs == 20 and model.gae_lambda == 0.92
    assert model.clip_range(1.0) == pytest.approx(0.1)
    assert model.policy.ortho_init is False
    assert model.policy.activation_fn is torch.nn.ReLU

    venv = VecNormalize.load(str(out / "vecnormalize.pkl"), make_vec_env("HalfCheetah-v5", n_envs=1, seed=0))
    try:
        assert venv.gamma == 0.98
        assert venv.obs_rms.mean.shape == (17,)
        assert venv.obs_rms.count >= 512  # updated by every training step
        assert venv.norm_obs and venv.norm_reward
    finally:
        venv.close()


# ------------------------------------- 7. cycle length in timesteps, via the CLI


def test_step_size_timesteps_is_bound_to_the_budget_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "run"
    spec = "triangular:base_lr=1e-4,max_lr=1e-3,step_size_timesteps=1024"
    done = subprocess.run(
        [*cli(), "train", "--env", "CartPole-v1", "--schedule", spec, "--timesteps", "4096", "--eval-every", "4096",
         "--eval-episodes", "1", "--device", "cpu", "--threads", "1", "--no-progress", "--out", str(out)],
        env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("finished ppo on CartPole-v1")
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["schedule_params"] == {"base_lr": 1e-4, "max_lr": 1e-3, "step_size_timesteps": 1024,
                                         "total_timesteps": 4096}
    assert "total_timesteps=4096" in config["schedule"]
    bound = parse_schedule(config["schedule"])
    assert bound == Triangular(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=1024, total_timesteps=4096)
    # Zoo CartPole PPO: n_envs 8 x n_steps 32 = 256 steps per update; a half-cycle of 1024 steps.
    points = scalars(out, LR_TAG)
    oracle = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2)
    assert_lr_curve(points, oracle, 4096, list(range(256, 4097, 256)))
    assert dict(points)[1024] == pytest.approx(1e-3, rel=REL) and dict(points)[3072] == pytest.approx(1e-3, rel=REL)
