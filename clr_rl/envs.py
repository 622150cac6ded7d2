"""Environments: family detection, vectorised construction, and the suites in ``envs/``.

Families are read off the Gymnasium spec's entry point: Atari (ale_py) gets SB3's
standard preprocessing (``AtariWrapper``: no-op starts, frame skip 4, 84x84 grey,
life-loss terminal, reward clipping; then a 4-frame stack), MuJoCo gets
``VecNormalize`` when the agent config asks for it (the normaliser is saved with the
model), classic control and Box2D are plain.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["EnvInfo", "data_dir", "env_family", "env_info", "load_suite", "make_env", "suite_names"]

FAMILIES = ("classic", "box2d", "mujoco", "atari", "other")


def data_dir(name: str) -> Path:
    """Folder of shipped data (``agents`` or ``envs``): inside the wheel, or the source tree."""
    packaged = Path(__file__).parent / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


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
    env_id: str, *, n_envs: int, seed: int, normalize: bool, for_eval: bool = False, gamma: float = 0.99
) -> Any:
    """A vectorised env for ``env_id`` with its family's standard wrappers.

    ``for_eval`` gives the evaluation twin: no reward clipping or life-loss episodes
    are counted (returns come from the ``Monitor`` under the wrappers) and a
    ``VecNormalize`` that does not update its statistics.
    """
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize, VecTransposeImage

    family = env_family(env_id)
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
