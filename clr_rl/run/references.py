"""Score references of an env (random and reference scores) for normalisation: one resolver for the
report, TensorBoard and tradeoff curves."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl.run.envs import env_info
from clr_rl.store import read_json, write_text_atomic

__all__ = ["EnvRefs", "RANDOM_EPISODES", "measure_random_score", "resolve_refs"]


RANDOM_EPISODES = 100



# ------------------------------------------------------------------------ score references
@dataclass(frozen=True)
class EnvRefs:
    """An env's normalisation scores and where they came from."""

    random_score: float
    random_source: str
    reference_score: float | None
    reference_source: str
    threshold: float | None = None

    @property
    def normalisable(self) -> bool:
        return self.reference_score is not None and self.reference_score != self.random_score



def measure_random_score(env_id: str, *, episodes: int = RANDOM_EPISODES, seed: int = 0) -> dict[str, Any]:
    """Mean return of a uniformly random policy: ``action_space.seed(seed)``, episode k reset with ``seed + k``.

    The protocol of ``envs/*.toml``'s random scores; returns the score with its provenance.
    """
    import datetime

    import gymnasium as gym

    from clr_rl.run.envs import env_family

    env_family(env_id)  # validates the id and registers ALE's envs
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    try:
        for k in range(episodes):
            env.reset(seed=seed + k)
            total, done, steps = 0.0, False, 0
            while not done and steps < 100_000:  # a guard for envs without a time limit
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total, done, steps = total + float(reward), terminated or truncated, steps + 1
            returns.append(total)
    finally:
        env.close()
    return {"random_score": float(np.mean(returns)), "episodes": episodes, "seed": seed,
            "date": datetime.date.today().isoformat(), "gymnasium": gym.__version__,
            "protocol": "uniformly random actions (action_space.seed(seed)); episode k reset with seed + k"}



def _random_cache(out: Path, env: str, episodes: int) -> dict[str, Any]:
    path = out / "random_scores.json"
    cache = read_json(path) if path.is_file() else {}
    entry = cache.get(env)
    if not entry or entry.get("episodes") != episodes or entry.get("seed") != 0:
        entry = measure_random_score(env, episodes=episodes, seed=0)
        cache[env] = entry
        write_text_atomic(path, json.dumps(cache, indent=2, sort_keys=True) + "\n")
    return dict(entry)



def resolve_refs(out: Path, resolved: dict[str, Any], envs: list[str], *,
                 episodes: int = RANDOM_EPISODES, measure: bool = True) -> dict[str, EnvRefs]:
    """Random and reference scores per env: the spec's overrides (``resolved["spec"]["overrides"]``),
    else ``envs/``, else measured (cached in ``out/random_scores.json``; ``measure=False``: left
    unknown, NaN) / none. The one resolver of the report, TensorBoard and tradeoff curves."""
    overrides = (resolved.get("spec") or {}).get("overrides", {})
    refs = {}
    for env in envs:
        over, info = overrides.get(env, {}), env_info(env)
        if "random_score" in over:
            rnd, rsrc = float(over["random_score"]), "spec [overrides] random_score"
        elif info is not None:
            rnd, rsrc = info.random_score, f"envs/{info.suite}.toml"
        elif not measure:
            rnd, rsrc = math.nan, "not measured"
        else:
            m = _random_cache(out, env, episodes)
            rnd = float(m["random_score"])
            rsrc = (f"measured: {m['episodes']} episodes of a uniformly random policy, seed {m['seed']}, "
                    f"{m['date']}, gymnasium {m['gymnasium']} (random_scores.json)")
        if "reference_score" in over:
            ref, src = float(over["reference_score"]), "spec [overrides] reference_score"
        elif info is not None:
            ref, src = info.reference_score, info.reference_source or f"envs/{info.suite}.toml"
        else:
            ref, src = None, ("no reference score (not in envs/, none in the spec's [overrides]): "
                              "left out of the cross-env aggregates")
        refs[env] = EnvRefs(rnd, rsrc, ref, src, info.threshold if info else None)
    return refs
