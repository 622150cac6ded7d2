"""The run record: the only code that reads or writes a run folder's ``run.json``.

A run's life is one :class:`Status` at a time, and :meth:`RunRecord.lifecycle` is the only
place that moves it::

    not_started -> running -> finished
                           -> interrupted   (Ctrl-C, SIGTERM, a worker shut down, a full disk: resumable)
                           -> failed        (a crash: the traceback is kept)
                           -> diverged      (a non-finite loss, parameter or return)

Whatever is raised inside ``with record.lifecycle(folder):`` leaves a final status on disk,
so no exception path can leave a run ``running``. Writes are atomic (temp file + rename).
The batch, the CLI and the report all use this vocabulary.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from clr_rl.errors import DISK_FULL, ConfigError, Diverged
from clr_rl.store import read_json, write_json_atomic

__all__ = ["RECORD_FILE", "RunRecord", "Status", "read_record", "read_status"]

RECORD_FILE = "run.json"


class Status(StrEnum):
    """Where a run stands. ``FINISHED`` and ``DIVERGED`` runs are complete (rerunning a diverged
    run would diverge again: same seed, same config); ``FAILED`` ones rerun with ``--retry-failed``.

    >>> Status("finished") is Status.FINISHED, Status.DIVERGED.complete, Status.INTERRUPTED.resumable
    (True, True, True)
    """

    NOT_STARTED = "not_started"
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DIVERGED = "diverged"

    @property
    def complete(self) -> bool:
        """The run has its final result (finished, or diverged: scored by the report's rule)."""
        return self in (Status.FINISHED, Status.DIVERGED)

    @property
    def resumable(self) -> bool:
        """A rerun continues it from its checkpoint (or starts it)."""
        return self in (Status.NOT_STARTED, Status.RUNNING, Status.INTERRUPTED)


@dataclass
class RunRecord:
    """What ``run.json`` holds. ``config`` is the resolved run (see ``PreparedRun.resolved``)."""

    run_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    status: Status = Status.NOT_STARTED
    versions: dict[str, str] = field(default_factory=dict)
    started: str = ""
    finished: str = ""
    pid: int | None = None
    resumed_from: int | None = None
    timesteps_done: int | None = None
    wall_seconds: float | None = None
    device_used: str = ""
    final_eval: dict[str, Any] = field(default_factory=dict)
    auc: float | None = None
    error: str = ""
    traceback: str = ""
    executor: dict[str, Any] = field(default_factory=dict)  # where a batch ran it: backend, host, pid

    # --- files -------------------------------------------------------------------------------
    @classmethod
    def read(cls, folder: Path) -> RunRecord:
        """The record in ``folder``; ConfigError if it is missing or not a run record."""
        path = Path(folder) / RECORD_FILE
        if not path.is_file():
            raise ConfigError(f"out={str(folder)!r} holds no run ({RECORD_FILE} missing)")
        try:
            data = read_json(path)
            known = {f.name for f in fields(cls)}
            kwargs = {k: v for k, v in data.items() if k in known}
            kwargs["status"] = Status(kwargs.get("status", Status.NOT_STARTED))
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not a clr-rl run record ({exc})") from None

    def write(self, folder: Path) -> None:
        """Atomically replace ``folder/run.json`` (empty fields are left out)."""
        data = {k: v for k, v in asdict(self).items() if v not in ("", None, {}) or k in ("run_id", "config")}
        data["status"] = self.status.value
        write_json_atomic(Path(folder) / RECORD_FILE, data)

    # --- lifecycle ---------------------------------------------------------------------------
    @contextmanager
    def lifecycle(self, folder: Path) -> Iterator[RunRecord]:
        """Mark the run ``running``; on leaving, whatever happened, leave a final status on disk.

        The body sets ``FINISHED`` (or ``INTERRUPTED`` when it stopped on request) itself;
        an exception maps to ``INTERRUPTED`` (KeyboardInterrupt, SystemExit), ``DIVERGED``
        (:class:`~clr_rl.errors.Diverged`) or ``FAILED`` (anything else), with the traceback,
        and is re-raised.
        """
        self.status = Status.RUNNING
        self.started = self.started or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.write(folder)
        try:
            yield self
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)) or (
                    isinstance(exc, OSError) and exc.errno in DISK_FULL):  # the environment's fault: resumable
                self.status = Status.INTERRUPTED
            elif isinstance(exc, Diverged):
                self.status = Status.DIVERGED
            else:
                self.status = Status.FAILED
            self.error = f"{type(exc).__name__}: {exc}"
            self.traceback = traceback.format_exc()
            try:
                self.write(folder)
            except OSError:  # cannot record its own end (a full disk): left "running", which a rerun resumes
                pass
            raise
        if self.status == Status.RUNNING:  # the body returned without saying how it ended
            self.status = Status.FAILED
            self.error = "training returned without a final status"
        if self.status == Status.FINISHED:
            self.finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.write(folder)


def read_record(folder: Path) -> tuple[Status, dict[str, Any]]:
    """The status of the run in ``folder`` and its run.json as plain data, in one read
    (``NOT_STARTED`` and ``{}`` without a record; a torn or foreign record counts as
    ``INTERRUPTED``: resumable)."""
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return Status.NOT_STARTED, {}
    try:
        data = read_json(path)
        return Status(data.get("status", Status.NOT_STARTED)), data
    except (ValueError, AttributeError):
        return Status.INTERRUPTED, {}


def read_status(folder: Path) -> Status:
    """Status of the run in ``folder`` (see :func:`read_record`)."""
    return read_record(folder)[0]
