"""Environments: family detection, vectorised construction, and the suites in ``envs/``.

Families are read off the Gymnasium spec's entry point: Atari (ale_py) gets SB3's
standard preprocessing (``AtariWrapper``: no-op starts, frame skip 4, 84x84 grey,
life-loss terminal, reward clipping; then a 4-frame stack) through one of two vectorised
pipelines: ``vec_env="sb3"`` (SB3's ``make_atari_env`` + ``VecFrameStack``, Python per env
step) or ``vec_env="ale"`` (``AleVecEnv``: an SB3 ``VecEnv`` over ``ale_py.AtariVectorEnv``,
which does the same preprocessing in C++ threads; differences listed on ``AleVecEnv``), MuJoCo gets
``VecNormalize`` when the agent config asks for it (the normaliser is saved with the
model), classic control and Box2D are plain.
"""

from __future__ import annotations

import difflib
import time
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["EnvInfo", "VEC_ENVS", "check_vec_env", "data_dir", "env_family", "env_info", "load_suite", "make_env",
           "suite_names"]

# ``AleVecEnv`` (the "ale" pipeline) is built on first access: ``from clr_rl.run.envs import AleVecEnv``.
VEC_ENVS = ("sb3", "ale")  # how an Atari env is vectorised: SB3's Python wrappers, or ALE's C++ vector env


def data_dir(name: str) -> Path:
    """Folder of shipped data (``agents`` or ``envs``): inside the wheel, or the source tree."""
    package = Path(__file__).resolve().parent.parent  # clr_rl/
    packaged = package / "_data" / name
    if packaged.is_dir():
        return packaged
    return package.parent / name


def _registry() -> dict[str, Any]:
    import gymnasium as gym

    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:  # pragma: no cover - atari extra not installed
        pass
    return dict(gym.registry)


@cache
def env_family(env_id: str) -> str:
    """The family of a registered Gymnasium id, or ValueError with close matches.

    >>> env_family("CartPole-v1")
    'classic'
    """
    registry = _registry()
    if env_id not in registry:
        close = difflib.get_close_matches(env_id, list(registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"env {env_id!r} is not a registered Gymnasium environment{hint}")
    entry = str(registry[env_id].entry_point)
    if "ale_py" in entry:
        return "atari"
    if "mujoco" in entry:
        return "mujoco"
    if "box2d" in entry:
        return "box2d"
    if "classic_control" in entry:
        return "classic"
    return "other"


def make_env(
    env_id: str,
    *,
    n_envs: int,
    seed: int,
    normalize: bool,
    for_eval: bool = False,
    gamma: float = 0.99,
    vec_env: str = "sb3",
) -> Any:
    """A vectorised env for ``env_id`` with its family's standard wrappers.

    ``for_eval`` gives the evaluation twin: no reward clipping or life-loss episodes
    are counted (returns come from the ``Monitor`` under the wrappers) and a
    ``VecNormalize`` that does not update its statistics.

    ``vec_env`` picks the Atari pipeline (see ``VEC_ENVS``): ``"sb3"`` is
    ``VecTransposeImage(VecFrameStack(make_atari_env(...), 4))``; ``"ale"`` is
    ``AleVecEnv`` (same observations, (n_envs, 4, 84, 84) uint8, channel-first). Its
    evaluation twin plays full games with unclipped rewards. Other families accept only
    ``"sb3"`` (``check_vec_env``).
    """
    check_vec_env(env_id, vec_env)
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize, VecTransposeImage

    family = env_family(env_id)
    if family == "atari" and vec_env == "ale":
        return _ale_vec_env_class()(
            env_id, n_envs=n_envs, seed=seed, terminal_on_life_loss=not for_eval, clip_reward=not for_eval
        )
    if family == "atari":
        env_kwargs: dict[str, Any] = {}
        if env_id.startswith("ALE/"):
            env_kwargs["frameskip"] = 1  # v5 skips frames itself; AtariWrapper skips 4 more
        venv = make_atari_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
        # Channel-first here (as SB3 would do inside the model), so that the training env
        # and its evaluation twin have the same wrapper chain (sync_envs_normalization).
        return VecTransposeImage(VecFrameStack(venv, n_stack=4))
    venv = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalize:
        venv = VecNormalize(venv, gamma=gamma, training=not for_eval, norm_reward=not for_eval)
    return venv


def check_vec_env(env_id: str, vec_env: str) -> None:
    """ValueError (one line) unless ``vec_env`` is a known pipeline that can run ``env_id``.

    ``"ale"`` needs an Atari id whose frames are not skipped by the env itself
    (``<Game>NoFrameskip-v4``) or an ``ALE/<Game>-v5`` id (its frameskip and sticky actions
    are taken over by the vector env), with image observations.

    >>> check_vec_env("CartPole-v1", "sb3")
    >>> check_vec_env("CartPole-v1", "ale")
    Traceback (most recent call last):
    ...
    ValueError: vec_env='ale' needs an Atari env (ale_py); env 'CartPole-v1' is in family 'classic'
    """
    if vec_env not in VEC_ENVS:
        raise ValueError(f"vec_env={vec_env!r} is unknown; expected one of {', '.join(map(repr, VEC_ENVS))}")
    if vec_env == "sb3":
        return
    family = env_family(env_id)
    if family != "atari":
        raise ValueError(f"vec_env='ale' needs an Atari env (ale_py); env {env_id!r} is in family {family!r}")
    _ale_settings(env_id)


def _ale_settings(env_id: str) -> dict[str, Any]:
    """``AtariVectorEnv`` arguments that reproduce ``env_id``'s registered game settings."""
    kwargs = dict(_registry()[env_id].kwargs)
    own_skip = kwargs.get("frameskip", 4)
    if kwargs.get("obs_type", "rgb") != "rgb":
        raise ValueError(f"vec_env='ale' needs image observations; env {env_id!r} has obs_type={kwargs['obs_type']!r}")
    if not (own_skip == 1 or env_id.startswith("ALE/")):
        raise ValueError(
            f"vec_env='ale' supports <Game>NoFrameskip-v4 and ALE/<Game>-v5 ids; env {env_id!r} skips "
            f"frames itself (frameskip={own_skip!r}), which the vector env cannot reproduce"
        )
    return {
        "game": str(kwargs["game"]),
        "repeat_action_probability": float(kwargs.get("repeat_action_probability", 0.25)),
        "full_action_space": bool(kwargs.get("full_action_space", False)),
        "max_num_frames_per_episode": int(kwargs.get("max_num_frames_per_episode", 108_000)),
    }


def __getattr__(name: str) -> Any:
    if name == "AleVecEnv":  # built on first use: SB3 is imported only then
        return _ale_vec_env_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _ale_vec_env_class() -> type:
    import numpy as np
    from ale_py import Action
    from ale_py.vector_env import AtariVectorEnv
    from gymnasium import spaces
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import VecEnv

    class AleVecEnv(VecEnv):
        """SB3 ``VecEnv`` over ``ale_py.AtariVectorEnv``: SB3's Atari pipeline, stepped in C++ threads.

        Same as ``VecFrameStack(make_atari_env(env_id), 4)`` (+ ``VecTransposeImage``):
        observations (n_envs, 4, 84, 84) uint8, channel-first, oldest frame first, zero-padded
        stack after a reset; frame skip 4 with a max over the last two frames; 84x84 grey
        (INTER_AREA); up to 30 no-op frames and FIRE at a reset; rewards clipped to their
        sign (``clip_reward``); a life loss ends the episode for training
        (``terminal_on_life_loss``) without resetting the game, and FIRE is pressed after it;
        sticky actions and the 108,000-frame limit as registered for ``env_id`` (v4: 0.0,
        v5: 0.25); the limit is reported as ``info["TimeLimit.truncated"]`` with
        ``info["terminal_observation"]``; env ``i`` is seeded with ``seed + i`` at the first
        reset. ``info["episode"]`` = ``{"r": full-game unclipped return, "l": frames,
        "t": seconds}`` at the end of each game, as SB3's ``Monitor`` under ``AtariWrapper``.

        Differences from SB3's pipeline (the ALE emulator is the same; frames differ):
        - reset: ALE presses FIRE for 1 frame, then 0-29 no-op frames (SB3: 1-30 no-op
          frames, then FIRE and UP for 4 frames each);
        - after a life loss: FIRE replaces the agent's next action in that env (SB3 takes
          NOOP, FIRE, UP steps the agent does not see), and the frame stack keeps the
          frames before the loss (SB3's ``VecFrameStack`` zeroes it at every done);
        - grey: ALE's palette luminance (SB3: ``cv2.cvtColor`` of the RGB frame), a few
          grey levels apart on some pixels;
        - ``info["episode"]["l"]`` counts frames from the emulator's frame counters.
        """

        def __init__(
            self,
            env_id: str,
            *,
            n_envs: int,
            seed: int,
            terminal_on_life_loss: bool = True,
            clip_reward: bool = True,
            num_threads: int = 0,
        ) -> None:
            settings = _ale_settings(env_id)
            self.env_id = env_id
            self.terminal_on_life_loss = terminal_on_life_loss
            self.clip_reward = clip_reward
            self.render_mode = None
            self._ale = AtariVectorEnv(
                settings.pop("game"), n_envs, num_threads=num_threads, frameskip=4, maxpool=True,
                img_height=84, img_width=84, grayscale=True, stack_num=4, noop_max=30, use_fire_reset=True,
                episodic_life=False, life_loss_info=False, reward_clipping=False, autoreset_mode="SameStep",
                **settings,
            )
            action_set = list(self._ale.ale.get_action_set())
            self._fire = action_set.index(Action.FIRE) if Action.FIRE in action_set else None
            super().__init__(
                n_envs,
                spaces.Box(0, 255, (4, 84, 84), np.uint8),
                spaces.Discrete(len(action_set)),
            )
            self.seed(seed)
            self._actions = np.zeros(n_envs, dtype=np.int32)
            self._fire_next = np.zeros(n_envs, dtype=bool)
            self._lives = np.zeros(n_envs, dtype=np.int32)
            self._returns = np.zeros(n_envs, dtype=np.float64)
            self._start_frame = np.zeros(n_envs, dtype=np.int64)
            self._t0 = time.time()

        def reset(self) -> Any:
            seeds = None if self._seeds[0] is None else np.asarray(self._seeds, dtype=np.int64)
            obs, info = self._ale.reset(seed=seeds)
            self._reset_seeds()
            self._reset_options()
            self._fire_next[:] = False
            self._returns[:] = 0.0
            self._lives[:] = info["lives"]
            self._start_frame[:] = info["frame_number"] - info["episode_frame_number"]
            return obs

        def step_async(self, actions: Any) -> None:
            self._actions = np.asarray(actions, dtype=np.int32).reshape(self.num_envs)

        def step_wait(self) -> Any:
            actions = self._actions
            if self._fire is not None and self._fire_next.any():
                actions = np.where(self._fire_next, np.int32(self._fire), actions)
            obs, raw, terminated, truncated, info = self._ale.step(actions)
            raw = raw.astype(np.float64)
            self._returns += raw
            game_over = terminated | truncated
            lives = info["lives"]
            life_lost = (lives < self._lives) & (lives > 0) & ~game_over
            self._lives[:] = lives
            self._fire_next = life_lost
            dones = game_over | life_lost if self.terminal_on_life_loss else game_over
            rewards = (np.sign(raw) if self.clip_reward else raw).astype(np.float32)
            infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(dones):
                if game_over[i]:
                    # SameStep autoreset: obs[i] is already the next game's first observation
                    infos[i]["terminal_observation"] = info["final_obs"][i]
                    end_frame = int(info["frame_number"][i] - info["episode_frame_number"][i])
                    infos[i]["episode"] = {
                        "r": float(self._returns[i]),
                        "l": end_frame - int(self._start_frame[i]),
                        "t": round(time.time() - self._t0, 6),
                    }
                    self._returns[i] = 0.0
                    self._start_frame[i] = end_frame
                else:  # a life lost: the game goes on from this observation
                    infos[i]["terminal_observation"] = obs[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            return obs, rewards, dones, infos

        def close(self) -> None:
            self._ale.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self, attr_name, value)

        def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list:
            raise AttributeError(f"AleVecEnv has no per-env method {method_name!r}")

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            # info["episode"] is written as Monitor writes it: evaluate_policy counts full games
            return [wrapper_class is Monitor] * len(list(self._get_indices(indices)))

    return AleVecEnv


# ------------------------------------------------------------------------ suites


@dataclass(frozen=True)
class EnvInfo:
    """An env's entry in a suite: budget, evaluation protocol, normalisation scores."""

    env_id: str
    suite: str
    family: str
    timesteps: int
    eval_every: int
    eval_episodes: int
    random_score: float
    reference_score: float
    reference_source: str
    threshold: float | None = None


def suite_names() -> list[str]:
    return sorted(p.stem for p in data_dir("envs").glob("*.toml"))


@cache
def load_suite(name: str) -> tuple[EnvInfo, ...]:
    """The envs of suite ``name`` (a file ``envs/<name>.toml``)."""
    path = data_dir("envs") / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"suite {name!r} is unknown; expected one of {', '.join(suite_names())}")
    data = tomllib.loads(path.read_text())
    out = []
    for env_id, row in data.get("env", {}).items():
        out.append(
            EnvInfo(
                env_id=env_id,
                suite=name,
                family=row["family"],
                timesteps=int(row["timesteps"]),
                eval_every=int(row["eval_every"]),
                eval_episodes=int(row["eval_episodes"]),
                random_score=float(row["random_score"]),
                reference_score=float(row["reference_score"]),
                reference_source=str(row.get("reference_source", "")),
                threshold=float(row["threshold"]) if "threshold" in row else None,
            )
        )
    return tuple(out)


def env_info(env_id: str) -> EnvInfo | None:
    """The suite entry for ``env_id`` (first suite that lists it), or None."""
    for name in suite_names():
        for info in load_suite(name):
            if info.env_id == env_id:
                return info
    return None
