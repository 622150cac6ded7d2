"""Learning-rate schedules as pure values.

Every schedule is a frozen dataclass called with SB3's ``progress_remaining``
(1.0 at the start of training, 0.0 at the end) and returning a builtin ``float``.
Progress outside ``[0, 1]`` is clamped: SB3 overshoots the budget when it is not a
multiple of the rollout size and then passes a slightly negative progress.

Units live in one place: :func:`elapsed_fraction` turns ``progress_remaining``
into the fraction of the run elapsed, and ``_CycleLength.n_cycles`` turns the
user's cycle length (a number of cycles over the run, or a half-cycle in
timesteps plus the run's total) into a number of cycles. The experimental
per-gradient-step kinds (``alternating``, ``spike``) count their period in gradient
steps; ``_PerStep.step_index`` turns ``progress_remaining`` into a gradient step
once the run's number of gradient steps is bound (:func:`bind_gradient_steps`).

Example:
    >>> s = parse_schedule("triangular2:base_lr=1e-4,max_lr=1e-3,cycles=4")
    >>> s == Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=4)
    True
    >>> str(s)
    'triangular2:base_lr=0.0001,max_lr=0.001,cycles=4'
    >>> round(s(1.0), 12), round(s(1 - 1 / 8), 12), round(s(1 - 3 / 8), 12)
    (0.0001, 0.001, 0.00055)
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union

__all__ = [
    "Alternating",
    "Constant",
    "CosineRestarts",
    "ExpRange",
    "Exponential",
    "Linear",
    "OneCycle",
    "SCHEDULE_KINDS",
    "Schedule",
    "Spike",
    "Triangular",
    "Triangular2",
    "bind_gradient_steps",
    "bind_total_timesteps",
    "check_lr_resolution",
    "elapsed_fraction",
    "parse_schedule",
    "schedule_params",
]


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


# ------------------------------------------------- per-gradient-step schedules (experimental)


class _PerStep(_Text):
    """A schedule whose period is counted in gradient steps (optimizer steps), not timesteps.

    SB3 only knows ``progress_remaining``; the run's number of gradient steps
    ``total_steps`` (bound by :func:`bind_gradient_steps`) places the steps on it:
    gradient step ``i = floor((1 - p) * total_steps + 1e-6)`` (:meth:`step_index`, the
    one place progress meets gradient steps), so ``p = 1 - i / total_steps`` selects step
    ``i`` exactly. These schedules only make sense when the LR is set before every
    gradient step (``lr_per_step``): SB3 alone sets it once per update and would sample
    the cycle at one phase only. Subclasses declare ``total_steps`` last.
    """

    per_step_only: ClassVar[bool] = True
    total_steps: int | None

    def _check_total_steps(self) -> None:
        v = self.total_steps
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise ValueError(f"{_name(self)}: total_steps={v!r} must be a positive integer")

    def step_index(self, progress_remaining: float) -> int:
        """Gradient step selected by ``progress_remaining``, in ``[0, total_steps - 1]``.

        The end of the run (``p <= 0``, no step of its own) reads as the last step, so a plot
        or a final log line shows the LR the run ended with.
        """
        f = elapsed_fraction(progress_remaining)
        if self.total_steps is None:
            raise ValueError(
                f"{_name(self)}: total_steps is unset; its period is in gradient steps, so it needs the run's "
                "number of gradient steps (give total_steps=..., or train with lr_per_step, which binds it)"
            )
        return min(self.total_steps - 1, math.floor(f * self.total_steps + 1e-6))

    def at_step(self, step: int) -> float:
        raise NotImplementedError

    def __call__(self, progress_remaining: float) -> float:
        return self.at_step(self.step_index(progress_remaining))

    def _shortest_stretch(self) -> int:
        raise NotImplementedError

    def min_segment_fraction(self) -> float:
        """Shortest stretch of constant LR, as a fraction of the run (needs ``total_steps``)."""
        self.step_index(1.0)  # raises when unbound
        assert self.total_steps is not None
        return self._shortest_stretch() / self.total_steps


def _steps(obj: object, field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{_name(obj)}: {field}={value!r} must be an integer >= {minimum}")
    return value


def _heavy_ball_momentum(c: float) -> float:
    """Root in ``(0, 1)`` of ``c * (1 + m) ** 2 = 4 * m``: ``m = (1 - sqrt(1 - c)) / (1 + sqrt(1 - c))``."""
    s = math.sqrt(1.0 - c)
    return (1.0 - s) / (1.0 + s)


@dataclass(frozen=True, kw_only=True)
class Alternating(_PerStep):
    """EXPERIMENTAL. Cyclical heavy-ball step sizes (Goujaud et al. 2021, arXiv 2106.09687).

    Gradient step ``i`` uses ``small_lr`` when ``i mod period < period / 2``, else
    ``large_lr``; ``period = 2`` (the paper's main result) alternates every step,
    ``small_lr`` first. A larger even ``period`` holds each value for ``period / 2``
    steps (our extension, not covered by the paper's result).

    The pair can instead be derived from the Hessian's spectrum, assumed to lie in
    ``[mu, mu1] U [L1, L]``. Intervals of unequal length are first widened to the
    longer one (``w = max(mu1 - mu, L - L1)``, ``mu1 = mu + w``, ``L1 = L - w``; the
    two-step result needs equal lengths, and widening keeps its guarantee). Then, for
    heavy ball ``x+ = x - h_i grad f(x) + m (x - x-)``::

        c = (L1 - mu) (mu1 - mu) / (L1 mu1)
        m = (1 - sqrt(1 - c)) / (1 + sqrt(1 - c))     (momentum, exposed as .momentum)
        small_lr = (1 + m) / L1,   large_lr = (1 + m) / mu1
        rate = sqrt(m) per iteration                  (exposed as .rate)

    Derived (as in Goujaud & Pedregosa's post "On the Link Between Optimization and
    Polynomials, Part 5", 2022) from the two-step transfer matrix of each eigenvalue
    ``lam``: its determinant is ``m**2`` and its trace is ``a0 a1 - 2m`` with
    ``a_j = 1 + m - h_j lam``, so every eigenvalue with ``0 <= a0 a1 <= 4m`` contracts
    at ``sqrt(m)`` per step; the parabola ``a0 a1`` vanishes at ``mu1`` and ``L1`` and
    equals ``4m`` at ``mu`` and ``L``. Without a gap (``mu1 = L1 = (mu + L) / 2``) this
    is Polyak's heavy ball. ``benchmarks/theory_check.py`` measures the rate.

    Derived for quadratics (least squares), with heavy-ball momentum ``m``; not for RL,
    nor for Adam (torch's SGD multiplies its momentum buffer by the LR, so it is
    heavy ball only while the LR is constant).

    >>> s = Alternating(small_lr=0.1, large_lr=2.0, total_steps=6)
    >>> [s.at_step(i) for i in range(6)], s(1 - 3 / 6)
    ([0.1, 2.0, 0.1, 2.0, 0.1, 2.0], 2.0)
    >>> t = Alternating(mu=0.01, mu1=0.11, L1=0.9, L=1.0)
    >>> round(t.momentum, 4), round(t.rate, 4), round(t.small_step, 4), round(t.large_step, 4)
    (0.5177, 0.7195, 1.6863, 13.7969)
    """

    kind: ClassVar[str] = "alternating"
    small_lr: float | None = None
    large_lr: float | None = None
    period: int = 2
    mu: float | None = None
    mu1: float | None = None
    L1: float | None = None
    L: float | None = None
    total_steps: int | None = None

    def __post_init__(self) -> None:
        pair = (self.small_lr, self.large_lr)
        spectrum = (self.mu, self.mu1, self.L1, self.L)
        given_pair, given_spectrum = any(v is not None for v in pair), any(v is not None for v in spectrum)
        if given_pair == given_spectrum:
            raise ValueError(
                f"{self.kind}: give either small_lr and large_lr, or the spectrum mu, mu1, L1, L "
                f"(got small_lr={self.small_lr}, large_lr={self.large_lr}, mu={self.mu}, mu1={self.mu1}, "
                f"L1={self.L1}, L={self.L})"
            )
        names = ("small_lr", "large_lr") if given_pair else ("mu", "mu1", "L1", "L")
        for name in names:
            value = getattr(self, name)
            if value is None:
                raise ValueError(f"{self.kind}: {name} is missing (needed with {', '.join(names)})")
            _positive_lr(self, name, value)
            _set(self, name, float(value))
        for a, b in zip(names, names[1:]):
            _ordered(self, a, b)
        if given_spectrum:
            lo, hi = self._gap()
            if not lo < hi:
                raise ValueError(
                    f"{self.kind}: mu={self.mu}, mu1={self.mu1}, L1={self.L1}, L={self.L} leave no gap once the "
                    f"intervals are widened to equal length (inner ends {lo:g} and {hi:g}): use constant heavy ball"
                )
        period = _steps(self, "period", self.period, 2)
        if period % 2:
            raise ValueError(f"{self.kind}: period={period} must be even (each value held period/2 steps)")
        self._check_total_steps()

    def _gap(self) -> tuple[float, float]:
        """Inner ends ``(mu1, L1)`` of the spectrum after widening to equal lengths."""
        assert self.mu is not None and self.mu1 is not None and self.L1 is not None and self.L is not None
        w = max(self.mu1 - self.mu, self.L - self.L1)
        return self.mu + w, self.L - w

    @property
    def momentum(self) -> float | None:
        """Heavy-ball momentum the spectral form assumes (``None`` for a given pair)."""
        if self.mu is None:
            return None
        mu1, l1 = self._gap()
        return _heavy_ball_momentum((l1 - self.mu) * (mu1 - self.mu) / (l1 * mu1))

    @property
    def rate(self) -> float | None:
        """Guaranteed per-iteration contraction ``sqrt(m)`` of the spectral form (``None`` for a given pair)."""
        m = self.momentum
        return None if m is None else math.sqrt(m)

    @property
    def small_step(self) -> float:
        """The smaller step size (``small_lr``, or ``(1 + m) / L1`` from the spectrum)."""
        if self.small_lr is not None:
            return self.small_lr
        m = self.momentum
        assert m is not None
        return (1.0 + m) / self._gap()[1]

    @property
    def large_step(self) -> float:
        """The larger step size (``large_lr``, or ``(1 + m) / mu1`` from the spectrum)."""
        if self.large_lr is not None:
            return self.large_lr
        m = self.momentum
        assert m is not None
        return (1.0 + m) / self._gap()[0]

    def at_step(self, step: int) -> float:
        """LR of gradient step ``step`` (from 0)."""
        return float(self.small_step if step % self.period < self.period // 2 else self.large_step)

    def _shortest_stretch(self) -> int:
        return self.period // 2


@dataclass(frozen=True, kw_only=True)
class Spike(_PerStep):
    """EXPERIMENTAL. A short large-LR spike once per cycle (Oymak 2021, arXiv 2102.10734).

    Gradient step ``i`` uses ``spike_lr`` when ``i mod period < width``, else ``base_lr``:
    each cycle opens with ``width`` large (possibly unstable) steps followed by
    ``period - width`` small stable steps that undo the instability, so a run whose
    length is a multiple of ``period`` ends on small steps. Oymak proves super-convergence
    for least squares whose Hessian spectrum has two clusters (the large step fixes the
    small-eigenvalue directions at a cost in the large ones that the small steps repay);
    derived for (over-parameterised) least squares, not for RL.

    >>> s = Spike(base_lr=1e-3, spike_lr=0.1, period=4, total_steps=8)
    >>> [s.at_step(i) for i in range(8)]
    [0.1, 0.001, 0.001, 0.001, 0.1, 0.001, 0.001, 0.001]
    >>> s(1.0), s(1 - 4 / 8), s(1 - 5 / 8), s(0.0)
    (0.1, 0.1, 0.001, 0.001)
    """

    kind: ClassVar[str] = "spike"
    base_lr: float
    spike_lr: float
    period: int
    width: int = 1
    total_steps: int | None = None

    def __post_init__(self) -> None:
        _positive_lr(self, "base_lr", self.base_lr)
        _positive_lr(self, "spike_lr", self.spike_lr)
        _ordered(self, "base_lr", "spike_lr")
        _set(self, "base_lr", float(self.base_lr))
        _set(self, "spike_lr", float(self.spike_lr))
        width = _steps(self, "width", self.width, 1)
        period = _steps(self, "period", self.period, 2)
        if not period > width:
            raise ValueError(f"{self.kind}: period={period} must be > width={width} (steps per cycle vs spike steps)")
        self._check_total_steps()

    def at_step(self, step: int) -> float:
        """LR of gradient step ``step`` (from 0)."""
        return float(self.spike_lr if step % self.period < self.width else self.base_lr)

    def _shortest_stretch(self) -> int:
        return min(self.width, self.period - self.width)


Schedule = Union[
    Constant, Linear, Exponential, Triangular, Triangular2, ExpRange, OneCycle, CosineRestarts, Alternating, Spike
]

SCHEDULE_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        Constant,
        Linear,
        Exponential,
        Triangular,
        Triangular2,
        ExpRange,
        OneCycle,
        CosineRestarts,
        Alternating,
        Spike,
    )
}


# ---------------------------------------------------------- text and dict forms


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def schedule_params(schedule: Schedule, *, all_fields: bool = False) -> dict[str, Any]:
    """The schedule's parameters as plain data (defaults and unset fields left out).

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


def _scalar_types(annotation: Any) -> set[type]:
    """The scalar types an annotation admits: ``float | None`` -> {float}; ``Literal[...]`` -> {str}."""
    if annotation in (bool, int, float, str):
        return {annotation}
    if typing.get_origin(annotation) is Literal:
        return {str}
    out: set[type] = set()
    for arg in typing.get_args(annotation):
        out |= _scalar_types(arg)
    return out


def _convert(kind: str, name: str, types: set[type], raw: Any) -> Any:
    """Turn a text or TOML value into the field's type (``types``: from its resolved annotation; never ``eval``)."""
    if isinstance(raw, str):
        text = raw.strip()
        if bool in types:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError(f"{kind}: {name}={raw!r} must be true or false")
        if int in types and float not in types:
            try:
                return int(text.replace("_", ""))
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    as_float = math.nan
                if as_float.is_integer():
                    return int(as_float)
                raise ValueError(f"{kind}: {name}={raw!r} must be an integer") from None
        if float in types:
            try:
                return float(text.replace("_", ""))
            except ValueError:
                raise ValueError(f"{kind}: {name}={raw!r} must be a number") from None
        return text
    if int in types and float not in types and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw


def parse_schedule(spec: str | float | Mapping[str, Any] | Schedule) -> Schedule:
    """Build a schedule from its text form, a TOML/dict table, a number, or a schedule.

    Text: ``kind:name=value,name=value`` (a bare number means ``constant``). Table:
    ``{kind = "...", name = value, ...}``. Unknown kinds and parameters are errors.

    >>> parse_schedule({"kind": "one_cycle", "max_lr": 1e-3}) == parse_schedule("one_cycle:max_lr=0.001")
    True
    >>> parse_schedule("3e-4")
    Constant(lr=0.0003)
    """
    if isinstance(spec, tuple(SCHEDULE_KINDS.values())):
        return spec  # type: ignore[return-value]
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(float(spec))
    if isinstance(spec, str):
        text = spec.strip()
        try:
            return Constant(float(text))
        except ValueError:
            pass
        kind, _, rest = text.partition(":")
        params: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"schedule {text!r}: {item!r} must look like name=value")
            if key.strip() in params:
                raise ValueError(f"schedule {text!r}: parameter {key.strip()!r} given twice")
            params[key.strip()] = value.strip()
        table: Mapping[str, Any] = {"kind": kind.strip(), **params}
    elif isinstance(spec, Mapping):
        table = spec
    else:
        raise ValueError(f"schedule {spec!r} must be text, a number or a table")
    kind_value: Any = table.get("kind")
    if not isinstance(kind_value, str) or kind_value not in SCHEDULE_KINDS:
        raise ValueError(f"schedule kind {kind_value!r} is unknown; expected one of {', '.join(SCHEDULE_KINDS)}")
    kind = kind_value
    cls = SCHEDULE_KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "kind":
            continue
        if key not in fields:
            raise ValueError(f"{kind}: unknown parameter {key!r}; expected one of {', '.join(fields)}")
        kwargs[key] = _convert(kind, key, _scalar_types(hints[key]), raw)
    missing = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in kwargs
    ]
    if missing:
        raise ValueError(f"{kind}: missing required parameter {missing[0]!r}")
    schedule: Schedule = cls(**kwargs)
    return schedule


def bind_total_timesteps(schedule: Schedule, total_timesteps: int) -> Schedule:
    """Fill in the run's budget for a schedule whose cycle length is in timesteps.

    Schedules given in ``cycles`` (or without cycles) are returned unchanged.
    """
    if isinstance(schedule, _CycleLength) and schedule.step_size_timesteps is not None:
        if schedule.total_timesteps is None:
            bound: Schedule = dataclasses.replace(schedule, total_timesteps=int(total_timesteps))  # type: ignore[arg-type]
            return bound
    return schedule


def bind_gradient_steps(schedule: Schedule, total_gradient_steps: int) -> Schedule:
    """Fill in the run's number of gradient steps for a per-gradient-step schedule.

    Other kinds, and per-step schedules already bound (``total_steps`` given), are
    returned unchanged. Gradient step ``i`` is then ``schedule(1 - i / total_gradient_steps)``.

    >>> s = bind_gradient_steps(Spike(base_lr=1e-3, spike_lr=1e-2, period=3), 6)
    >>> s.total_steps, [s(1 - i / 6) for i in range(6)]
    (6, [0.01, 0.001, 0.001, 0.01, 0.001, 0.001])
    >>> bind_gradient_steps(Constant(1e-3), 6)
    Constant(lr=0.001)
    """
    if isinstance(schedule, _PerStep) and schedule.total_steps is None:
        if (
            isinstance(total_gradient_steps, bool)
            or not isinstance(total_gradient_steps, int)
            or (total_gradient_steps <= 0)
        ):
            raise ValueError(
                f"{schedule.kind}: total_gradient_steps={total_gradient_steps!r} must be a positive integer"
            )
        bound: Schedule = dataclasses.replace(schedule, total_steps=total_gradient_steps)  # type: ignore[arg-type]
        return bound
    return schedule


def check_lr_resolution(schedule: Schedule, total_timesteps: int, update_every: int, how: str) -> None:
    """Refuse a schedule whose shortest rise or fall spans fewer than 2 LR updates.

    SB3 sets the LR once per ``train()`` call, every ``update_every`` timesteps
    (``how`` explains where that number comes from). A shorter half-cycle aliases.
    """
    segment = schedule.min_segment_fraction() * total_timesteps
    if segment < 2 * update_every:
        raise ValueError(
            f"schedule {schedule}: its shortest rise/fall spans {segment:.0f} timesteps, fewer "
            f"than 2 LR updates (SB3 sets the LR once every {update_every} timesteps: {how}); "
            "use fewer cycles, a longer step size or more timesteps"
        )
