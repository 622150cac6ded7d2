"""The two kinds of failure clr-rl distinguishes.

- :class:`ConfigError`: the user asked for something invalid (a spec field, a CLI flag, a
  schedule parameter, an env id, a path). Raised before anything is written; the CLI prints
  its one-line message and exits with status 2. It subclasses ``ValueError`` so plain Python
  callers can keep catching ``ValueError``.
- :class:`Diverged`: training itself went wrong numerically (a non-finite loss, parameter or
  return). The run is recorded as ``diverged`` with the reason; it is not bad input.

Everything else raised while training is a crash: the run is recorded ``failed`` with its
traceback and the CLI exits with status 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ConfigError", "Diverged", "config_errors"]


class ConfigError(ValueError):
    """Bad configuration: the message names the parameter, its value and the rule.

    >>> str(ConfigError("timesteps=0 must be an integer >= 1"))
    'timesteps=0 must be an integer >= 1'
    """


class Diverged(RuntimeError):
    """Training produced a non-finite number (loss, parameters or evaluation return)."""


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
