"""Cyclical schedules: one cycle shape, amplitude policies (triangular, triangular2, exp_range), one-cycle, SGDR."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from clr_rl.schedules.base import (
    Space,
    _between,
    _choice,
    _CycleLength,
    _number,
    _open_unit,
    _ordered,
    _positive_lr,
    _set,
    _Text,
    elapsed_fraction,
)

__all__ = ["Anneal", "CosineRestarts", "ExpRange", "OneCycle", "Triangular", "Triangular2"]


@dataclass(frozen=True, kw_only=True)
class _Cyclical(_CycleLength):
    """Smith's cyclical LR: a triangle wave between ``base_lr`` and ``max_lr``.

    With ``c`` = cycles elapsed (a real number), ``x = c - floor(c)`` and
    ``u = up_fraction``: ``h = x / u`` while rising, ``(1 - x) / (1 - u)`` while falling;
    ``lr = base + (max - base) * h * scale`` (``space="log"``:
    ``base * (max / base) ** (h * scale)``). Subclasses choose ``scale``.
    """

    per_step_only: ClassVar[bool] = False
    base_lr: float
    max_lr: float
    cycles: float | None = None
    step_size_timesteps: int | None = None
    total_timesteps: int | None = None
    up_fraction: float = 0.5
    space: Space = "linear"

    def __post_init__(self) -> None:
        _positive_lr(self, "base_lr", self.base_lr)
        _positive_lr(self, "max_lr", self.max_lr)
        _ordered(self, "base_lr", "max_lr")
        _set(self, "base_lr", float(self.base_lr))
        _set(self, "max_lr", float(self.max_lr))
        _set(self, "up_fraction", _number(self, "up_fraction", self.up_fraction))
        _open_unit(self, "up_fraction", self.up_fraction)
        _choice(self, "space", self.space, ("linear", "log"))
        self._check_cycle_length()
        self._check_amplitude()

    def _check_amplitude(self) -> None:
        pass

    def _scale(self, cycle: int, position: float) -> float:
        raise NotImplementedError

    def __call__(self, progress_remaining: float) -> float:
        position = elapsed_fraction(progress_remaining) * self.n_cycles()
        cycle = math.floor(1.0 + position)
        x = 1.0 + position - cycle
        u = self.up_fraction
        h = x / u if x <= u else (x - 1.0) / (u - 1.0)
        return _between(self.base_lr, self.max_lr, h * self._scale(cycle, position), self.space)

    def min_segment_fraction(self) -> float:
        return min(self.up_fraction, 1.0 - self.up_fraction) / self.n_cycles()



@dataclass(frozen=True, kw_only=True)
class Triangular(_Cyclical):
    """Triangular CLR (Smith 2017): constant amplitude, ``scale = 1``.

    >>> s = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2)
    >>> [round(s(p), 9) for p in (1.0, 0.75, 0.5, 0.25, 0.0)]
    [0.0001, 0.001, 0.0001, 0.001, 0.0001]
    """

    kind: ClassVar[str] = "triangular"

    def _scale(self, cycle: int, position: float) -> float:
        return 1.0



@dataclass(frozen=True, kw_only=True)
class Triangular2(_Cyclical):
    """Triangular2 CLR (Smith 2017): the amplitude halves every cycle, ``scale = 2 ** -(cycle - 1)``.

    >>> s = Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=2)
    >>> round(s(0.75), 9), round(s(0.25), 9)
    (0.001, 0.00055)
    """

    kind: ClassVar[str] = "triangular2"

    def _scale(self, cycle: int, position: float) -> float:
        return float(0.5 ** (cycle - 1))



@dataclass(frozen=True, kw_only=True)
class ExpRange(_Cyclical):
    """Exponential-range CLR (Smith 2017): ``scale = gamma ** c``, c = cycles elapsed.

    ``gamma`` is the amplitude factor **per cycle** (torch's per-iteration gamma ``g``
    with ``n`` iterations per cycle is ``g ** n`` here), in ``(0, 1]``.

    >>> s = ExpRange(base_lr=1e-4, max_lr=1e-3, cycles=2, gamma=0.5)
    >>> round(s(0.75), 12)  # peak of cycle 1 at c = 0.5: 1e-4 + 9e-4 * 0.5 ** 0.5
    0.000736396103
    """

    kind: ClassVar[str] = "exp_range"
    gamma: float

    def _check_amplitude(self) -> None:
        g = _number(self, "gamma", self.gamma)
        if not 0.0 < g <= 1.0:
            raise ValueError(f"{self.kind}: gamma={self.gamma} must be in (0, 1]")
        _set(self, "gamma", g)

    def _scale(self, cycle: int, position: float) -> float:
        return float(self.gamma**position)



Anneal = Literal["cos", "linear"]



def _anneal(start: float, end: float, pct: float, how: str) -> float:
    """torch OneCycleLR's annealing from ``start`` to ``end`` at ``pct`` in [0, 1]."""
    if how == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start



def _piecewise(f: float, knots: list[tuple[float, float]], how: str) -> float:
    """Join annealing segments: ``knots`` are ``(elapsed_fraction, lr)``, increasing in f."""
    for (f0, lr0), (f1, lr1) in zip(knots, knots[1:]):
        if f <= f1 or f1 == knots[-1][0]:
            return float(_anneal(lr0, lr1, (f - f0) / (f1 - f0), how))
    raise AssertionError("unreachable")



@dataclass(frozen=True, kw_only=True)
class OneCycle(_Text):
    """1cycle (Smith & Topin 2019) with torch ``OneCycleLR``'s parameters and defaults.

    ``initial = max_lr / div_factor``, ``final = initial / final_div_factor``. Two phases:
    ``initial -> max`` over ``pct_start`` of the run, then ``max -> final``. Three phases:
    ``initial -> max`` (pct_start), ``max -> initial`` (pct_start), ``initial -> final``.
    Each segment anneals by ``cos`` or ``linear``.

    >>> s = OneCycle(max_lr=1e-3)
    >>> round(s(1.0), 12), s(0.7), s(0.0)
    (4e-05, 0.001, 4e-09)
    """

    kind: ClassVar[str] = "one_cycle"
    per_step_only: ClassVar[bool] = False
    max_lr: float
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: Anneal = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        _positive_lr(self, "max_lr", self.max_lr)
        _set(self, "max_lr", float(self.max_lr))
        _set(self, "pct_start", _number(self, "pct_start", self.pct_start))
        _open_unit(self, "pct_start", self.pct_start, 0.5 if self.three_phase else 1.0)
        for field in ("div_factor", "final_div_factor"):
            v = _number(self, field, getattr(self, field))
            if v < 1.0:
                raise ValueError(f"{self.kind}: {field}={v} must be >= 1")
            _set(self, field, v)
        _choice(self, "anneal", self.anneal, ("cos", "linear"))
        if not isinstance(self.three_phase, bool):
            raise ValueError(f"{self.kind}: three_phase={self.three_phase!r} must be true or false")

    def _knots(self) -> list[tuple[float, float]]:
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        if self.three_phase:
            p = self.pct_start
            return [(0.0, initial), (p, self.max_lr), (2 * p, initial), (1.0, final)]
        return [(0.0, initial), (self.pct_start, self.max_lr), (1.0, final)]

    def __call__(self, progress_remaining: float) -> float:
        return _piecewise(elapsed_fraction(progress_remaining), self._knots(), self.anneal)

    def min_segment_fraction(self) -> float:
        knots = self._knots()
        return min(f1 - f0 for (f0, _), (f1, _) in zip(knots, knots[1:]))



@dataclass(frozen=True, kw_only=True)
class CosineRestarts(_CycleLength):
    """SGDR (Loshchilov & Hutter 2017): cosine from ``max_lr`` to ``min_lr``, then restart.

    Cycle ``i`` (from 0) is ``t_mult ** i`` times the first. ``cycles`` is the number of
    cycles in the run, so the run ends at a trough: with ``t_mult = 2`` each cycle end is
    one point of Portes et al.'s (2022) accuracy-vs-time curve. ``step_size_timesteps``
    instead gives the first cycle's length in timesteps. Inside a cycle, at fraction
    ``x``: ``lr = min + (max - min) * (1 + cos(pi * x)) / 2`` (``space="log"``: geometric).

    >>> s = CosineRestarts(min_lr=1e-5, max_lr=1e-3, cycles=2, t_mult=1)
    >>> s(1.0), round(s(0.75), 9), s(0.5), s(0.0)
    (0.001, 0.000505, 0.001, 1e-05)
    """

    kind: ClassVar[str] = "cosine_restarts"
    per_step_only: ClassVar[bool] = False
    min_lr: float
    max_lr: float
    cycles: float | None = None
    step_size_timesteps: int | None = None
    total_timesteps: int | None = None
    t_mult: float = 1.0
    space: Space = "linear"

    def __post_init__(self) -> None:
        _positive_lr(self, "min_lr", self.min_lr, allow_zero=self.space == "linear")
        _positive_lr(self, "max_lr", self.max_lr)
        _ordered(self, "min_lr", "max_lr")
        _set(self, "min_lr", float(self.min_lr))
        _set(self, "max_lr", float(self.max_lr))
        m = _number(self, "t_mult", self.t_mult)
        if m < 1.0:
            raise ValueError(f"{self.kind}: t_mult={self.t_mult} must be >= 1")
        _set(self, "t_mult", m)
        _choice(self, "space", self.space, ("linear", "log"))
        self._check_cycle_length()

    def first_cycle_fraction(self) -> float:
        """Length of the first cycle as a fraction of the run."""
        if self.step_size_timesteps is not None and self.total_timesteps is not None:
            return self.step_size_timesteps / self.total_timesteps
        n, m = self.n_cycles(), self.t_mult
        return 1.0 / n if m == 1.0 else (m - 1.0) / (m**n - 1.0)

    def n_cycles(self) -> float:
        if self.cycles is not None or self.total_timesteps is None:
            return super().n_cycles()
        assert self.step_size_timesteps is not None
        u, m = self.total_timesteps / self.step_size_timesteps, self.t_mult
        return u if m == 1.0 else math.log(u * (m - 1.0) + 1.0, m)

    def _start(self, n: int) -> float:
        """Start of cycle ``n`` in units of the first cycle."""
        m = self.t_mult
        return float(n) if m == 1.0 else (m**n - 1.0) / (m - 1.0)

    def __call__(self, progress_remaining: float) -> float:
        f = elapsed_fraction(progress_remaining)
        n_total = self.n_cycles()
        if f >= 1.0 and abs(n_total - round(n_total)) < 1e-9:
            return float(self.min_lr)  # the run ends at the trough of its last cycle
        u = f / self.first_cycle_fraction()
        m = self.t_mult
        n = int(u) if m == 1.0 else int(math.log(u * (m - 1.0) + 1.0, m))
        while self._start(n + 1) <= u:  # guard float log at exact restarts
            n += 1
        while n > 0 and self._start(n) > u:
            n -= 1
        if self._start(n + 1) - u <= 1e-12 * max(1.0, u):
            n += 1  # progress arrives as 1 - t/N: a restart can land a few ulps early
        x = max(0.0, u - self._start(n)) / m**n
        weight = (1.0 + math.cos(math.pi * x)) / 2.0
        if self.space == "log":
            return _between(self.min_lr, self.max_lr, weight, "log")
        return float(self.min_lr + (self.max_lr - self.min_lr) * weight)

    def min_segment_fraction(self) -> float:
        return self.first_cycle_fraction()
