"""The two kinds of failure clr-rl distinguishes.

- :class:`ConfigError`: the user asked for something invalid (a spec field, a CLI flag, a
  schedule parameter, an env id, a path). Raised before anything is written; the CLI prints
  its one-line message and exits with status 2. It subclasses ``ValueError`` so plain Python
  callers can keep catching ``ValueError``.
- :class:`Diverged`: training itself went wrong numerically (a non-finite loss, parameter or
  return). The run is recorded as ``diverged`` with the reason; it is not bad input.

- :class:`StateError`: the environment, not the input, is at fault: a record on disk that is not
  valid (truncated, edited), a checkpoint that cannot be trusted. The CLI prints its one line (which
  names the file and says how to recover) and exits with status 1. An ``OSError`` such as a full
  disk or a read-only target is reported the same way (see :func:`describe_os_error`).

Everything else raised while training is a crash: the run is recorded ``failed`` with its
traceback and the CLI exits with status 1.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ConfigError", "DISK_FULL", "Diverged", "StateError", "config_errors", "describe_os_error"]


class ConfigError(ValueError):
    """Bad configuration: the message names the parameter, its value and the rule.

    >>> str(ConfigError("timesteps=0 must be an integer >= 1"))
    'timesteps=0 must be an integer >= 1'
    """


class Diverged(RuntimeError):
    """Training produced a non-finite number (loss, parameters or evaluation return)."""


class StateError(RuntimeError):
    """A file on disk is not what clr-rl wrote (or cannot be trusted); the message names it and the way out.

    >>> str(StateError("results/x/run.json is not valid JSON"))
    'results/x/run.json is not valid JSON'
    """


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run the same command again (finished runs are kept, "
                  "the others resume from their last checkpoint)",
    errno.EDQUOT: "the disk quota is exhausted: free some space and run the same command again (finished runs are "
                  "kept, the others resume from their last checkpoint)",
    errno.EROFS: "the target is on a read-only filesystem: pick another place",
    errno.EACCES: "permission denied: pick a place you can write to",
    errno.EPERM: "operation not permitted: pick a place you can write to",
    errno.EISDIR: "a folder is where a file must be",
    errno.ENOTDIR: "a file is where a folder must be",
    errno.EEXIST: "something already exists there",
    errno.ENOENT: "no such file or folder",
    errno.EIO: "an input/output error from the device",
    errno.ENAMETOOLONG: "the file name is too long",
}


def describe_os_error(exc: OSError) -> str | None:
    """One line for an OSError the environment caused (full disk, read-only target, a file where a
    folder must be, ...); None for others (a crash, shown with its traceback).

    >>> print(describe_os_error(OSError(errno.EROFS, "Read-only file system", "out/a.png")))
    out/a.png: Read-only file system: the target is on a read-only filesystem: pick another place
    """
    hint = _HINTS.get(exc.errno) if exc.errno is not None else None
    if hint is None:
        return None
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return f"{where}{exc.strerror or type(exc).__name__}: {hint}"


@contextmanager
def config_errors(prefix: str = "") -> Iterator[None]:
    """Validation boundary: a ``ValueError`` raised inside (by a schedule, a parser, a check) is
    bad configuration, re-raised as :class:`ConfigError` (with ``prefix`` naming where).

    >>> try:
    ...     with config_errors("arms.fast"):
    ...         int("x")
    ... except ConfigError as exc:
    ...     print(exc)
    arms.fast: invalid literal for int() with base 10: 'x'
    """
    try:
        yield
    except ConfigError as exc:
        if prefix:
            raise ConfigError(f"{prefix}: {exc}") from None
        raise
    except ValueError as exc:
        raise ConfigError(f"{prefix}: {exc}" if prefix else str(exc)) from None
