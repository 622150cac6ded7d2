"""Units and the plain schedules: progress_remaining <-> elapsed fraction, Constant, Linear, Exponential."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

__all__ = ["Constant", "Exponential", "Linear", "Space", "elapsed_fraction", "schedule_params"]


# --------------------------------------------------------------------------- units
def elapsed_fraction(progress_remaining: float) -> float:
    """Fraction of the run elapsed, ``1 - progress_remaining`` clamped to ``[0, 1]``.

    >>> elapsed_fraction(1.0), elapsed_fraction(0.25), elapsed_fraction(-0.024)
    (0.0, 0.75, 1.0)
    """
    p = float(progress_remaining)
    if math.isnan(p):
        raise ValueError(f"progress_remaining={p} must be a number")
    return min(1.0, max(0.0, 1.0 - p))



# ------------------------------------------------------------------- validation
def _name(obj: object) -> str:
    return getattr(obj, "kind", type(obj).__name__)



def _positive_lr(obj: object, field: str, value: float, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{_name(obj)}: {field}={value!r} must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{_name(obj)}: {field}={value} must be finite")
    if value < 0 or (value == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{_name(obj)}: {field}={value} must be {rule}")



def _ordered(obj: object, low: str, high: str) -> None:
    lo, hi = getattr(obj, low), getattr(obj, high)
    if not lo < hi:
        raise ValueError(f"{_name(obj)}: {low}={lo} must be < {high}={hi}")



def _number(obj: object, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{_name(obj)}: {field}={value!r} must be a finite number")
    return float(value)



def _open_unit(obj: object, field: str, value: float, upper: float = 1.0) -> None:
    if not 0.0 < value < upper:
        raise ValueError(f"{_name(obj)}: {field}={value} must be in (0, {upper:g})")



def _choice(obj: object, field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{_name(obj)}: {field}={value!r} must be one of {', '.join(allowed)}")



def _set(obj: object, field: str, value: Any) -> None:
    object.__setattr__(obj, field, value)



# ------------------------------------------------------------------ schedules
class _Text:
    """Every schedule prints as its text form, ``kind:name=value,...`` (see :func:`parse_schedule`)."""

    def __str__(self) -> str:
        return _to_text(self)



@dataclass(frozen=True)
class Constant(_Text):
    """A fixed learning rate: ``lr(p) = lr``.

    >>> Constant(3e-4)(0.5)
    0.0003
    """

    kind: ClassVar[str] = "constant"
    per_step_only: ClassVar[bool] = False
    lr: float

    def __post_init__(self) -> None:
        _positive_lr(self, "lr", self.lr)
        _set(self, "lr", float(self.lr))

    def __call__(self, progress_remaining: float) -> float:
        elapsed_fraction(progress_remaining)
        return self.lr

    def min_segment_fraction(self) -> float:
        """Shortest monotone stretch of the schedule, as a fraction of the run (no cycle: infinite)."""
        return math.inf



@dataclass(frozen=True)
class Linear(_Text):
    """Linear interpolation from ``start_lr`` to ``end_lr``: ``lr = end + (start - end) * p``.

    >>> Linear(1e-3, 0.0)(0.25)
    0.00025
    """

    kind: ClassVar[str] = "linear"
    per_step_only: ClassVar[bool] = False
    start_lr: float
    end_lr: float = 0.0

    def __post_init__(self) -> None:
        _positive_lr(self, "start_lr", self.start_lr)
        _positive_lr(self, "end_lr", self.end_lr, allow_zero=True)
        _set(self, "start_lr", float(self.start_lr))
        _set(self, "end_lr", float(self.end_lr))

    def __call__(self, progress_remaining: float) -> float:
        f = elapsed_fraction(progress_remaining)
        return float(self.start_lr + (self.end_lr - self.start_lr) * f)

    def min_segment_fraction(self) -> float:
        return math.inf  # monotone: nothing to alias



@dataclass(frozen=True)
class Exponential(_Text):
    """Geometric interpolation from ``start_lr`` to ``end_lr``: ``lr = start * (end / start) ** (1 - p)``.

    The LR range test's ramp: one decade per equal share of the run.

    >>> round(Exponential(1e-5, 1e-1)(0.5), 12)
    0.001
    """

    kind: ClassVar[str] = "exponential"
    per_step_only: ClassVar[bool] = False
    start_lr: float
    end_lr: float

    def __post_init__(self) -> None:
        _positive_lr(self, "start_lr", self.start_lr)
        _positive_lr(self, "end_lr", self.end_lr)
        _set(self, "start_lr", float(self.start_lr))
        _set(self, "end_lr", float(self.end_lr))

    def __call__(self, progress_remaining: float) -> float:
        return _between(self.start_lr, self.end_lr, elapsed_fraction(progress_remaining), "log")

    def min_segment_fraction(self) -> float:
        return math.inf



Space = Literal["linear", "log"]



def _between(low: float, high: float, weight: float, space: str) -> float:
    """Interpolate ``low -> high`` by ``weight`` in [0, 1], linearly or geometrically."""
    if space == "log":
        return float(low * (high / low) ** weight)
    return float(low + (high - low) * weight)



class _CycleLength(_Text):
    """Cycle length, given as ``cycles`` over the run or ``step_size_timesteps`` (a half-cycle).

    With ``step_size_timesteps`` the run's ``total_timesteps`` is needed to place the
    cycles on ``progress_remaining``; ``clr-rl train`` and the harness fill it in
    from the budget (:func:`bind_total_timesteps`). Subclasses declare the three fields
    after their LR bounds, so that reprs read bounds first.
    """

    cycles: float | None
    step_size_timesteps: int | None
    total_timesteps: int | None

    def _check_cycle_length(self) -> None:
        if (self.cycles is None) == (self.step_size_timesteps is None):
            raise ValueError(
                f"{_name(self)}: give exactly one of cycles or step_size_timesteps "
                f"(got cycles={self.cycles}, step_size_timesteps={self.step_size_timesteps})"
            )
        if self.cycles is not None:
            c = _number(self, "cycles", self.cycles)
            if c <= 0:
                raise ValueError(f"{_name(self)}: cycles={self.cycles} must be > 0")
            _set(self, "cycles", c)
        for field in ("step_size_timesteps", "total_timesteps"):
            v = getattr(self, field)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"{_name(self)}: {field}={v!r} must be a positive integer")

    def n_cycles(self) -> float:
        """Number of cycles over the whole run (the one place cycles meet timesteps)."""
        if self.cycles is not None:
            return self.cycles
        if self.total_timesteps is None:
            raise ValueError(
                f"{_name(self)}: step_size_timesteps={self.step_size_timesteps} needs "
                "total_timesteps (the run's budget) to place the cycles"
            )
        assert self.step_size_timesteps is not None
        return self.total_timesteps / (2 * self.step_size_timesteps)


# ---------------------------------------------------------- text and dict forms
def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)



def schedule_params(schedule: Any, *, all_fields: bool = False) -> dict[str, Any]:
    """The schedule's parameters as plain data (defaults and unset fields left out).

    >>> from clr_rl.schedules import Triangular
    >>> schedule_params(Triangular(base_lr=1e-4, max_lr=1e-3, cycles=3))
    {'base_lr': 0.0001, 'max_lr': 0.001, 'cycles': 3.0}
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(schedule):
        value = getattr(schedule, f.name)
        default = f.default if f.default is not dataclasses.MISSING else object()
        if all_fields or value != default or f.name in ("lr", "start_lr", "end_lr", "base_lr", "max_lr", "min_lr"):
            if value is not None or all_fields:
                out[f.name] = value
    return out



def _to_text(schedule: Any) -> str:
    params = ",".join(f"{k}={_fmt(v)}" for k, v in schedule_params(schedule).items())
    return f"{schedule.kind}:{params}"
