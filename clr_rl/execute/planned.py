"""A planned run: where it goes in a batch folder and its prepared config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clr_rl.run.record import Status, read_record

__all__ = ["PlannedRun", "run_folder", "run_state"]


def run_folder(env_id: str, arm: str, seed: int) -> str:
    """A run's folder inside a batch folder: ``runs/<env>/<arm>/seed<k>``.

    >>> run_folder("CartPole-v1", "fixed", 3)
    'runs/CartPole-v1/fixed/seed3'
    """
    return f"runs/{env_id}/{arm}/seed{seed}"



@dataclass(frozen=True)
class PlannedRun:
    """One resolved run of a batch and its folder (relative to the batch folder)."""

    env_id: str
    arm: str
    seed: int
    folder: str
    prepared: Any  # clr_rl.run.prepare.PreparedRun (imported lazily: specs must load without torch)


def run_state(out: Path, run: PlannedRun) -> Status | None:
    """The run's :class:`~clr_rl.run.record.Status` in ``out``; None when its folder holds another config (stale)."""
    status, record = read_record(out / run.folder)
    if status == Status.NOT_STARTED or not record:  # no record, or a torn one (resumable)
        return status
    return status if record.get("run_id") == run.prepared.run_id() else None



def _rerun(retry_failed: bool) -> set[Status]:
    """The states of the runs a batch (re)starts."""
    return {Status.NOT_STARTED, Status.RUNNING, Status.INTERRUPTED} | ({Status.FAILED} if retry_failed else set())
