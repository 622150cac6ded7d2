"""How a batch executes: one frozen options object handed to every phase and every :func:`execute` call."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from typing import Any

from clr_rl.errors import ConfigError

__all__ = ["BACKENDS", "ExecOptions"]

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class ExecOptions:
    """Where and how runs execute; the same object reaches tuning, range tests, tradeoff curves and arms.

    ``workers``: parallel runs (None: one per CPU); ``backend``: ``local`` (process pool) or ``ray``
    (``address``: an existing cluster, else a local instance); ``retry_failed``: rerun failed runs;
    ``gpus_per_run``: the GPU share of a CUDA run; ``trust_checkpoints``: resume from checkpoints this
    user's key did not sign (see :mod:`clr_rl.run.trust`); ``speeds``: this machine's calibrations (see
    :func:`clr_rl.execute.estimates.calibrate`) for the time estimates.

    >>> ExecOptions(workers=0)
    Traceback (most recent call last):
    ...
    clr_rl.errors.ConfigError: --workers=0 must be >= 1
    """

    workers: int | None = None
    backend: str = "local"
    address: str | None = None
    retry_failed: bool = False
    gpus_per_run: float = 1.0
    trust_checkpoints: bool = False
    speeds: dict[str, dict[str, float]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers={self.workers} must be >= 1")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend={self.backend!r} must be local or ray")
        if self.backend != "ray" and self.address is not None:
            raise ConfigError("--address is only for --backend ray")
        if self.backend == "ray" and importlib.util.find_spec("ray") is None:
            raise ConfigError("--backend ray needs Ray: pip install 'clr-rl[ray]' (or pip install 'ray[default]')")

    def with_(self, **changes: Any) -> ExecOptions:
        """A copy with some fields changed (e.g. a spec's ``gpus_per_run``)."""
        return replace(self, **changes)
