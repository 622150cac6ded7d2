"""Reading a batch's runs back for analysis and scoring them (the report's diverged-run rule)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl import stats as st
from clr_rl.errors import ConfigError
from clr_rl.run.record import read_record
from clr_rl.run.references import EnvRefs
from clr_rl.store import read_evaluations, read_json_checked

__all__ = ["COMPLETE", "RunData", "Score", "collect", "score_runs"]


_GRID = np.linspace(0.0, 1.0, 21)  # fractions of the budget for sample-efficiency curves



COMPLETE = ("finished", "diverged")



@dataclass(frozen=True)
class RunData:
    """A planned run and whatever it has written so far (``status`` as in run.json, or ``not_started``)."""

    env: str
    arm: str
    seed: int
    folder: str
    status: str
    timesteps: int
    schedule: str
    evals: list[dict[str, float]]
    record: dict[str, Any]
    lr_provenance: str | None = None

    @property
    def final(self) -> float:
        return float(self.evals[-1]["mean_return"]) if self.evals else math.nan

    @property
    def complete(self) -> bool:
        """Finished with evaluations, or diverged: the run enters the statistics."""
        return self.diverged or (self.status == "finished" and bool(self.evals))

    @property
    def diverged(self) -> bool:
        return self.status == "diverged" or (self.status == "finished" and bool(self.evals)
                                             and not math.isfinite(self.final))



_REDO_PLAN = ("clr-rl compare writes it: rerun `clr-rl compare SPEC --out` on this folder (spec.toml beside it is "
              "the spec) and it is written again; finished runs are kept")
_REDO_RUN = ("the run's record is damaged: rerun `clr-rl compare SPEC --out` on this batch and that run trains again "
             "(it counts as interrupted), or delete its folder")


def collect(out: Path) -> tuple[dict[str, Any], list[RunData]]:
    """The batch's resolved spec and every planned run with whatever it has written so far."""
    path = out / "spec.resolved.json"
    if not path.is_file():
        raise ConfigError(f"out={str(out)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json_checked(path, _REDO_PLAN)
    runs = []
    for r in resolved["runs"]:
        folder = out / r["folder"]
        state, record = read_record(folder)
        if not record and (folder / "run.json").is_file():  # torn or not JSON: name it and the way out
            read_json_checked(folder / "run.json", _REDO_RUN)
        status = state.value
        evals = read_evaluations(folder / "evaluations.csv")
        runs.append(RunData(r["env_id"], r["arm"], int(r["seed"]), r["folder"], status, int(r["timesteps"]),
                            r["schedule"], evals, record, r.get("lr_provenance")))
    return resolved, runs



# ------------------------------------------------------------------------ scoring each run
@dataclass(frozen=True)
class Score:
    """One complete run as it enters every statistic (diverged runs already scored by the rule)."""

    seed: int
    final: float
    auc: float
    curve: tuple[float, ...]  # returns at the fractions of _GRID; the last point is the final evaluation
    diverged: bool
    reason: str = ""



def _curve(run: RunData) -> tuple[float, ...]:
    t = np.array([e["timesteps"] for e in run.evals], dtype=float) / run.timesteps
    y = np.array([e["mean_return"] for e in run.evals], dtype=float)
    values = np.interp(_GRID, t, y)
    values[-1] = y[-1]  # 100% of the budget = the final evaluation (the last one may overshoot the budget)
    return tuple(float(v) for v in values)



def score_runs(runs: list[RunData], refs: dict[str, EnvRefs]) -> dict[tuple[str, str], list[Score]]:
    """``{(env, arm): [Score by seed]}`` for every complete run; diverged = the env's random score."""
    table: dict[tuple[str, str], list[Score]] = {(r.env, r.arm): [] for r in runs}
    for r in sorted(runs, key=lambda r: r.seed):
        if not r.complete:
            continue
        if r.diverged:
            rnd = refs[r.env].random_score
            reason = str(r.record.get("error") or "non-finite final return")
            table[r.env, r.arm].append(Score(r.seed, rnd, rnd, (rnd,) * len(_GRID), True, reason))
        else:
            table[r.env, r.arm].append(Score(r.seed, r.final, st.auc(r.evals), _curve(r), False))
    return table



def _seeds_in_all(table: dict[tuple[str, str], list[Score]], arms: list[str], envs: list[str]) -> list[int]:
    """Seed ids complete in every env for every arm named (a balanced comparison)."""
    sets = [{s.seed for s in table.get((e, a), [])} for e in envs for a in arms]
    return sorted(set.intersection(*sets)) if sets else []



def _matrix(table: dict[tuple[str, str], list[Score]], arm: str, envs: list[str], seeds: list[int],
            value: Any) -> np.ndarray:
    """``(seeds, envs)`` of ``value(score, env)`` for the given seed ids."""
    by_seed = {e: {s.seed: s for s in table[e, arm]} for e in envs}
    return np.array([[value(by_seed[e][k], e) for e in envs] for k in seeds], dtype=float).reshape(len(seeds),
                                                                                                    len(envs))
