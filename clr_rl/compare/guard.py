"""What ``compare`` checks and holds around the whole batch: the spec first, then the Ray address, then
one lock on the results folder for every phase (setup, arms, tradeoff), taken before any run state
is read. A second ``compare`` of the same folder so refuses before it touches anything.

Kept as a decorator of :func:`clr_rl.compare.driver.compare` so the driver stays one plain sequence.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clr_rl.compare.spec import Spec, load_spec
from clr_rl.execute.lock import batch_lock
from clr_rl.store import check_writable

__all__ = ["default_out", "guarded"]


def default_out(spec: Spec) -> Path:
    """Where a batch goes without ``--out``: ``results/<spec name>``."""
    return Path("results") / spec.name


def guarded(func: Callable[..., int]) -> Callable[..., int]:
    """Run ``func(spec_path, out=..., ...)`` under the batch lock of its results folder (not for a
    ``dry_run``, which writes nothing); a bad spec or Ray address is refused before the lock is taken."""

    @functools.wraps(func)
    def wrapped(spec_path: Path | str, *, out: Path | None = None, dry_run: bool = False, backend: str = "local",
                address: str | None = None, **kwargs: Any) -> int:
        spec = load_spec(spec_path)
        out = Path(out) if out is not None else default_out(spec)
        if backend == "ray" and address is not None:
            from clr_rl.execute.backends import check_ray_address

            check_ray_address(address)
        call = functools.partial(func, spec_path, out=out, dry_run=dry_run, backend=backend, address=address,
                                 **kwargs)
        if dry_run:
            return call()
        check_writable(out)  # before the lock makes the folder
        with batch_lock(out):
            return call()

    return wrapped
