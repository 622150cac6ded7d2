"""The "ale" Atari pipeline (AleVecEnv over ale_py.AtariVectorEnv) against SB3's own.

Real ALE emulators, real SB3 training, tiny budgets. The oracle is SB3's pipeline
(make_atari_env + VecFrameStack + VecTransposeImage), run side by side, and facts of the
games: a Pong game that the agent never plays ends 0-21 (return -21, 21 points lost);
Breakout starts with 5 lives (4 life-loss episode ends, then the game over).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clr_rl.run.envs import check_vec_env, make_env

PONG = "PongNoFrameskip-v4"
BREAKOUT = "BreakoutNoFrameskip-v4"


def _env(env_id: str, vec_env: str, n_envs: int = 1, seed: int = 0, for_eval: bool = False) -> Any:
    return make_env(env_id, n_envs=n_envs, seed=seed, normalize=False, for_eval=for_eval, vec_env=vec_env)


def _play(env: Any, policy: Any, games: int, max_steps: int = 20_000) -> dict[str, Any]:
    """Step until ``games`` full games have ended in env 0's slot count; collect what the agent sees."""
    out: dict[str, Any] = {"episodes": [], "dones": 0, "rewards": [], "steps": 0, "terminal": []}
    obs = env.reset()
    for _ in range(max_steps):
        obs, rewards, dones, infos = env.step(policy(obs))
        out["steps"] += 1
        out["rewards"].append(rewards.copy())
        for i in np.flatnonzero(dones):
            out["dones"] += 1
            out["terminal"].append(infos[i])
            if "episode" in infos[i]:
                out["episodes"].append(infos[i]["episode"])
        if len(out["episodes"]) >= games:
            return out
    raise AssertionError(f"only {len(out['episodes'])} of {games} games ended in {max_steps} steps")


def test_check_vec_env_names_field_value_and_rule() -> None:
    check_vec_env(PONG, "ale")
    check_vec_env("ALE/Pong-v5", "ale")
    check_vec_env("CartPole-v1", "sb3")
    with pytest.raises(ValueError, match=r"vec_env='gpu' is unknown; expected one of 'sb3', 'ale'"):
        check_vec_env(PONG, "gpu")
    with pytest.raises(ValueError, match=r"vec_env='ale' needs an Atari env .*'CartPole-v1' is in family 'classic'"):
        check_vec_env("CartPole-v1", "ale")
    with pytest.raises(ValueError, match=r"'Pong-v4' skips frames itself"):
        check_vec_env("Pong-v4", "ale")  # stochastic frameskip (2, 5): not reproducible
    with pytest.raises(ValueError, match=r"vec_env='ale' needs an Atari"):
        make_env("CartPole-v1", n_envs=1, seed=0, normalize=False, vec_env="ale")


def test_settings_follow_the_registered_id() -> None:
    from clr_rl.run.envs import _ale_settings

    assert _ale_settings(PONG) == {"game": "pong", "repeat_action_probability": 0.0,
                                   "full_action_space": False, "max_num_frames_per_episode": 108_000}
    assert _ale_settings("ALE/Breakout-v5")["repeat_action_probability"] == 0.25  # v5 sticky actions


def test_vecenv_contract_breakout() -> None:
    env = _env(BREAKOUT, "ale", n_envs=3, seed=5)
    assert env.num_envs == 3
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    assert env.action_space.n == 4
    obs = env.reset()
    assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
    assert (obs[:, :3] == 0).all() and (obs[:, 3] > 0).any()  # zero-padded stack after reset, newest frame last
    rng = np.random.default_rng(0)
    games, life_losses = 0, 0
    for _ in range(800):
        prev = obs
        obs, rewards, dones, infos = env.step(rng.integers(0, 4, size=3))
        assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
        assert rewards.shape == (3,) and rewards.dtype == np.float32 and dones.shape == (3,) and dones.dtype == bool
        assert isinstance(infos, list) and len(infos) == 3
        assert set(np.unique(rewards)) <= {0.0, 1.0}  # Breakout scores 1, 4 or 7: clipped to 1
        assert not np.shares_memory(obs, prev)  # SB3 may keep the previous array
        for i in range(3):
            assert ("terminal_observation" in infos[i]) == bool(dones[i])
            if not dones[i]:
                continue
            term = infos[i]["terminal_observation"]
            assert term.shape == (4, 84, 84) and term.dtype == np.uint8 and (term[:3] > 0).any()
            assert infos[i]["TimeLimit.truncated"] is False
            if "episode" in infos[i]:
                games += 1
                ep = infos[i]["episode"]
                assert set(ep) == {"r", "l", "t"} and ep["r"] >= 0 and ep["r"] == int(ep["r"]) and ep["l"] > 100
                assert (obs[i, :3] == 0).all()  # a new game started in the same step
            else:
                life_losses += 1
                assert (obs[i] == term).all()  # a life lost: the game goes on from the same frame
    assert games >= 3
    assert life_losses >= 4 * games  # 5 lives: 4 life-loss episode ends before each game over
    env.close()


def test_seeding_per_env() -> None:
    def first_obs(seed: int) -> np.ndarray:
        env = _env(BREAKOUT, "ale", n_envs=2, seed=seed)
        env.reset()
        out = [env.step(np.array([3, 3]))[0] for _ in range(40)]
        env.close()
        return np.stack(out)

    a, b, c = first_obs(7), first_obs(7), first_obs(8)
    assert (a == b).all()
    assert (a[:, 1] == c[:, 0]).all()  # env i is seeded with seed + i, as make_atari_env does
    assert not (a[:, 0] == c[:, 0]).all()


def test_truncation_reported_with_terminal_observation() -> None:
    import gymnasium as gym

    short = "PongShort400NoFrameskip-v4"
    if short not in gym.registry:
        gym.register(short, entry_point="ale_py.env:AtariEnv",
                     kwargs={"game": "pong", "obs_type": "rgb", "repeat_action_probability": 0.0,
                             "full_action_space": False, "frameskip": 1, "max_num_frames_per_episode": 400})
    steps, scores = {}, {}
    for vec_env in ("sb3", "ale"):
        env = _env(short, vec_env, seed=1)
        env.reset()
        for t in range(1, 200):
            _, _, dones, infos = env.step(np.array([0]))
            if dones[0]:
                assert infos[0]["TimeLimit.truncated"] is True
                assert infos[0]["terminal_observation"].shape == (4, 84, 84)
                steps[vec_env] = t
                scores[vec_env] = infos[0]["episode"]["r"]
                break
        env.close()
    # 400 frames = 100 agent steps; SB3 counts its 1-30 reset no-ops into the limit, ALE does not
    assert 92 <= steps["sb3"] <= 100 and steps["ale"] == 100, steps
    assert scores["sb3"] == scores["ale"] == -2.0  # the opponent scores twice in 400 frames of NOOP


def test_pong_unplayed_game_agrees_with_sb3() -> None:
    """NOOP for a whole Pong game: 21 points lost, in both pipelines, with the same full-game stats."""
    results = {}
    for vec_env in ("sb3", "ale"):
        env = _env(PONG, vec_env, seed=3)
        first = env.reset()
        values, counts = np.unique(first[0, 3], return_counts=True)
        results[vec_env] = _play(env, lambda obs: np.zeros(1, dtype=np.int64), games=1)
        results[vec_env]["background"] = int(values[counts.argmax()])
        results[vec_env]["first"] = first[0, 3].astype(int)
        env.close()
    for r in results.values():
        rewards = np.concatenate(r["rewards"])
        assert r["dones"] == 1 and r["episodes"][0]["r"] == -21.0  # Pong has no lives: one done, at game over
        assert (rewards == -1).sum() == 21 and (rewards == 1).sum() == 0
    sb3, ale = results["sb3"], results["ale"]
    assert sb3["background"] == ale["background"] == 87  # same grey level for Pong's background
    # same screen up to the paddles' and ball's positions (different no-op starts): < 3% of pixels off by > 8
    assert np.mean(np.abs(sb3["first"] - ale["first"]) > 8) < 0.03
    # the game lasts as long in frames (the opponent's serve is deterministic), within 1%
    assert abs(sb3["episodes"][0]["l"] - ale["episodes"][0]["l"]) <= 0.01 * sb3["episodes"][0]["l"]
    # agent steps: reset frames differ (SB3: 1-30 no-ops + FIRE, UP steps of 4 frames; ALE: 0-29 no-ops + FIRE)
    assert abs(sb3["steps"] - ale["steps"]) <= (30 + 8) // 4 + 2


def test_breakout_random_policy_agrees_with_sb3() -> None:
    """Random play: 5 dones per game (4 lives lost + game over), clipped rewards 0/1, full-game returns."""
    results = {}
    for vec_env in ("sb3", "ale"):
        env = _env(BREAKOUT, vec_env, n_envs=4, seed=11)
        rng = np.random.default_rng(11)
        results[vec_env] = _play(env, lambda obs, rng=rng: rng.integers(0, 4, size=4), games=12)
        env.close()
    for r in results.values():
        games = len(r["episodes"])
        life_dones = r["dones"] - games
        assert 4 * games <= life_dones <= 4 * (games + 3)  # up to 3 other envs mid-game
        rewards = np.concatenate(r["rewards"])
        assert set(np.unique(rewards)) <= {0.0, 1.0}
        returns = [e["r"] for e in r["episodes"]]
        assert all(x == int(x) and x >= 0 for x in returns)
        # full-game (unclipped) returns: at least the clipped sum of the rewards inside finished games
        assert sum(returns) >= 1
    mean_sb3 = np.mean([e["r"] for e in results["sb3"]["episodes"]])
    mean_ale = np.mean([e["r"] for e in results["ale"]["episodes"]])
    # random Breakout scores ~1.4 per game with sd ~1.3: 12 games each, 2.5 points is > 3 standard errors
    assert abs(mean_sb3 - mean_ale) < 2.5, (mean_sb3, mean_ale)


def test_eval_env_plays_full_games_unclipped() -> None:
    env = _env(BREAKOUT, "ale", n_envs=1, seed=2, for_eval=True)
    rng = np.random.default_rng(2)
    r = _play(env, lambda obs: rng.integers(0, 4, size=1), games=3)
    assert r["dones"] == 3  # no life-loss episodes
    rewards = np.concatenate(r["rewards"])
    assert sum(e["r"] for e in r["episodes"]) == rewards.sum()  # unclipped: what the agent saw = the score
    env.close()


def test_ppo_trains_and_saves_through_ale(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    env = _env(BREAKOUT, "ale", n_envs=2, seed=0)
    model = PPO("CnnPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    assert id(model.get_env()) == id(env)  # channel-first uint8 images: no VecTransposeImage added
    model.learn(512)
    assert model.num_timesteps == 512
    games = list(model.ep_info_buffer or [])
    assert games and all(g["l"] > 100 and g["r"] == int(g["r"]) for g in games)  # whole games, not lives
    eval_env = _env(BREAKOUT, "ale", seed=10_000, for_eval=True)
    returns, lengths = evaluate_policy(model, eval_env, n_eval_episodes=2, return_episode_rewards=True)
    assert isinstance(returns, list) and isinstance(lengths, list)
    assert len(returns) == 2 and all(x >= 0 for x in returns) and all(n > 20 for n in lengths)

    obs = env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", env=env, device="cpu")
    again, _ = loaded.predict(obs, deterministic=True)
    assert (actions == again).all()
    loaded.learn(256, reset_num_timesteps=False)  # resume
    assert loaded.num_timesteps == 768
    env.close()
    eval_env.close()


def test_dqn_trains_through_ale() -> None:
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    env = _env(BREAKOUT, "ale", n_envs=1, seed=0)
    model = DQN("CnnPolicy", env, buffer_size=2_000, learning_starts=300, train_freq=4, batch_size=32,
                target_update_interval=100, seed=0, device="cpu")
    model.learn(400)
    assert model.num_timesteps == 400 and model._n_updates > 0
    buf = model.replay_buffer
    assert buf is not None
    assert buf.pos == 400
    assert buf.dones[:400].sum() >= 1 and buf.timeouts[:400].sum() == 0  # lives lost, no time limit
    assert buf.observations.dtype == np.uint8 and buf.observations.shape[-3:] == (4, 84, 84)
    env.close()


def test_cli_train_with_the_ale_vector_env_then_resume(tmp_path: Path, h: Any) -> None:
    """`clr-rl train --vec-env ale` on Pong trains, evaluates full games, saves; Ctrl-C at a checkpoint,
    then `--resume` finishes the run from it."""
    import json
    import signal
    import time

    out = tmp_path / "pong"
    proc = h.start("train", "--algo", "ppo", "--env", "PongNoFrameskip-v4", "--vec-env", "ale", "--timesteps", "2048",
                   "--hp", "n_envs=2", "--hp", "n_steps=128", "--hp", "batch_size=64", "--eval-every", "512",
                   "--eval-episodes", "1", "--threads", "1", "--no-progress", "--out", out, cwd=tmp_path)
    deadline = time.time() + 240
    while not (out / "checkpoint" / "state.json").is_file():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=240)
    record = json.loads((out / "run.json").read_text())
    if proc.returncode == 0:  # pragma: no cover - it finished before the signal landed
        pytest.skip("the run finished before it could be interrupted")
    assert proc.returncode == 130 and record["status"] == "interrupted", stderr[-2000:]
    stopped = record["timesteps_done"]
    h.ok(h.run("train", "--resume", "--out", out, "--no-progress", cwd=tmp_path, timeout=600))
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "finished" and record["resumed_from"] == stopped
    assert record["config"]["vec_env"] == "ale" and record["timesteps_done"] == 2048
    rows = (out / "evaluations.csv").read_text().splitlines()[1:]
    returns = [float(r.split(",")[1]) for r in rows]
    assert [int(r.split(",")[0]) for r in rows] == [0, 512, 1024, 1536, 2048]
    assert all(-21 <= x <= 21 and x == int(x) for x in returns)  # whole games of Pong, unclipped scores
    assert (out / "model.zip").is_file()


def test_compare_and_report_with_vec_env_ale_on_two_games(tmp_path: Path, h: Any) -> None:
    import csv
    import json

    spec = tmp_path / "atari.toml"
    spec.write_text("""\
name = "atari-ale"
algo = "ppo"
seeds = 1
timesteps = 1024
envs = ["PongNoFrameskip-v4", "BreakoutNoFrameskip-v4"]
vec_env = "ale"
baseline = "fixed"
[eval]
every = 512
episodes = 1
[hyperparams]
n_envs = 2
n_steps = 128
batch_size = 64
[arms.fixed]
kind = "constant"
lr = "tuned"
[arms.tri]
kind = "triangular"
base_lr = "tuned/3"
max_lr = "tuned*3"
cycles = 1
""")
    out = tmp_path / "out"
    h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path, timeout=900))
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    for row in rows:
        config = json.loads((out / row["folder"] / "run.json").read_text())["config"]
        assert config["vec_env"] == "ale"
    h.ok(h.run("report", out, "--reps", "50", cwd=tmp_path))
    assert (out / "report" / "report.md").is_file()
