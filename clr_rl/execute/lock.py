"""One lock per results folder: the whole batch (setup phase, arms, tradeoff curves) runs under it.

``clr-rl compare`` takes it before it reads any run state, so a second compare of the same folder
refuses before it touches anything (it never deletes, reruns or rewrites what the first is doing).
:func:`clr_rl.execute.batch.execute` takes it too (for ``tune``, ``lr-range`` and ``tradeoff`` run on
their own); within one process the lock is re-entrant, so the phases of a batch nest under the
batch's lock. An ``flock`` dies with its process: a ``kill -9`` leaves no stale lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from clr_rl.errors import ConfigError

__all__ = ["LOCK_FILE", "batch_lock"]

LOCK_FILE = ".lock"

_HELD: dict[Path, tuple[IO[str], int]] = {}  # this process's locks: folder -> (open lock file, depth)


@contextmanager
def batch_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock (ConfigError when another process holds it). On leaving, the lock file is
    removed, and the folder too when this call made it and nothing else was written into it (bad input
    found under the lock leaves nothing behind). A process that opened the lock file just before its
    holder removed it sees a different inode there and refuses, as if still locked."""
    key = Path(os.path.abspath(out))
    if key in _HELD:
        fh, depth = _HELD[key]
        _HELD[key] = (fh, depth + 1)
        try:
            yield
        finally:
            fh, depth = _HELD[key]
            _HELD[key] = (fh, depth - 1)
        return
    made = not key.exists()
    key.mkdir(parents=True, exist_ok=True)
    path = key / LOCK_FILE
    fh = open(path, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fh.fileno()).st_ino != os.stat(path).st_ino:  # its holder removed it as we opened it
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        fh.close()
        raise ConfigError(f"out={str(out)!r} is in use by another clr-rl process (a compare, tune, lr-range or "
                          "tradeoff of the same folder); wait for it to end, or pick another --out") from None
    _HELD[key] = (fh, 1)
    try:
        yield
    finally:
        del _HELD[key]
        try:  # leave nothing behind: the lock file, and the folder when this call made it and nothing else is in it
            path.unlink()
            if made and not any(key.iterdir()):
                key.rmdir()
        except OSError:  # pragma: no cover - best effort
            pass
        fh.close()
