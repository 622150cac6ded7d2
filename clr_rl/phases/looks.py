"""The sequential looks of a ``[sequential]`` batch: which arms get seeds at each look, and the decisions.

A passive phase, driven from above (as Ray Tune's searchers are by their controller): the driver
(:func:`clr_rl.compare.sequential.run_sequential`) asks :meth:`Looks.next_look` and
:meth:`Looks.seeds` what to train, trains it, scores it by the report's rule and hands the score
matrices to :meth:`Looks.decide`, which applies :func:`clr_rl.stats.sequential.decide_look` and
records the look in ``<out>/sequential.json`` before anything else trains. That file is the phase's
only state: a Ctrl-C or ``kill -9`` mid-look leaves the look unrecorded, so a rerun trains what
is missing of that look and reaches the same decisions (the permutations derive from ``seed``);
a rerun of a finished batch trains nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl.errors import ConfigError
from clr_rl.stats.sequential import STATISTIC, LookDecision, SequentialDesign, decide_look
from clr_rl.store import read_json, write_json_atomic

__all__ = ["LOOKS_FILE", "LookRecord", "Looks", "read_looks"]

LOOKS_FILE = "sequential.json"


@dataclass(frozen=True)
class LookRecord:
    """One look: its seeds per env and arm, the arms judged at it, and each one's decision."""

    look: int
    seeds: int
    decisions: dict[str, LookDecision]

    def to_dict(self) -> dict[str, Any]:
        return {"look": self.look, "seeds": self.seeds,
                "decisions": {a: asdict(d) for a, d in self.decisions.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LookRecord:
        decisions = {a: LookDecision(**{**v, "ci": tuple(v["ci"])}) for a, v in d["decisions"].items()}
        return cls(int(d["look"]), int(d["seeds"]), decisions)


def _design_dict(design: SequentialDesign) -> dict[str, Any]:
    d = asdict(design)
    d["boundaries"] = list(d["boundaries"]) if isinstance(d["boundaries"], tuple) else d["boundaries"]
    return d


class Looks:
    """The looks of one batch (``arms`` compared with ``baseline`` under ``design``) recorded in ``folder``."""

    def __init__(self, design: SequentialDesign, arms: list[str], baseline: str, folder: Path, *, seed: int = 0):
        self.design, self.arms, self.baseline, self.seed = design, list(arms), baseline, seed
        self.path = Path(folder) / LOOKS_FILE
        self.records: list[LookRecord] = self._load()

    def _header(self) -> dict[str, Any]:
        return {"design": _design_dict(self.design), "statistic": STATISTIC, "arms": self.arms,
                "baseline": self.baseline, "seed": self.seed}

    def _load(self) -> list[LookRecord]:
        if not self.path.is_file():
            return []
        try:
            data = read_json(self.path)
            statistic = data.get("statistic", "plain-p")  # a record from before the studentized rule has none
            same = {k: data[k] for k in self._header() if k != "statistic"} == {
                k: v for k, v in self._header().items() if k != "statistic"}
            records = [LookRecord.from_dict(r) for r in data["looks"]]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{self.path} is not a clr-rl sequential record; move it away to start the looks "
                              "again") from None
        if same and statistic != STATISTIC:
            raise ConfigError(f"{self.path} was decided with the statistic {statistic!r}, this version decides with "
                              f"{STATISTIC!r}: finish that batch with the clr-rl that started it, or use a new --out")
        if not same:
            raise ConfigError(f"{self.path} was written for another [sequential] design, arms or baseline than the "
                              "spec now gives; use a new --out (or delete that file to start the looks again)")
        return records

    def decided(self) -> dict[str, LookDecision]:
        """Arm -> the look decision that decided it (BEATS, WORSE, EQUIVALENT or INCONCLUSIVE at the cap)."""
        out: dict[str, LookDecision] = {}
        for rec in self.records:
            out.update({a: d for a, d in rec.decisions.items() if d.verdict is not None})
        return out

    def next_look(self) -> int | None:
        """The look to run now (0-based), or None when every arm is decided."""
        if len(self.decided()) == len(self.arms) or len(self.records) == len(self.design.looks()):
            return None
        return len(self.records)

    def live(self, look: int) -> list[str]:
        """The arms judged at ``look``: those no earlier look decided."""
        done = {a for rec in self.records[:look] for a, d in rec.decisions.items() if d.verdict is not None}
        return [a for a in self.arms if a not in done]

    def seeds(self, look: int) -> dict[str, int]:
        """Seeds per env each arm (and the baseline) has trained once ``look``'s runs are done: a live arm
        and the baseline have that look's seeds, a decided arm keeps those of its deciding look."""
        n = self.design.looks()[look]
        decided = {a: d.seeds for a, d in self.decided().items() if d.look < look}
        return {a: decided.get(a, n) for a in [*self.arms, self.baseline]}

    def decide(self, look: int, arms: dict[str, np.ndarray], baseline: np.ndarray) -> LookRecord:
        """Decide the live arms at ``look`` from their ``(seeds, envs)`` score matrices and record the look."""
        if look != len(self.records):
            raise ValueError(f"look={look} must be the next look, {len(self.records)}")
        earlier = {a: d.verdict for a, d in self.decided().items() if d.verdict is not None}
        decisions = decide_look(self.design, look, arms, baseline, decided=earlier, seed=self.seed)
        record = LookRecord(look, self.design.looks()[look], decisions)
        self.records.append(record)
        write_json_atomic(self.path, {**self._header(), "looks": [r.to_dict() for r in self.records]})
        return record


def read_looks(folder: Path) -> dict[str, Any] | None:
    """A batch's ``sequential.json`` as written (None when it is not a sequential batch); for the report."""
    path = Path(folder) / LOOKS_FILE
    if not path.is_file():
        return None
    data = read_json(path)
    data.setdefault("statistic", "plain-p")
    data["looks"] = [LookRecord.from_dict(r) for r in data["looks"]]
    return data
