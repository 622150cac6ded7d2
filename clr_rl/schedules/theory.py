"""Experimental per-gradient-step schedules from optimisation theory: alternating (Goujaud et al. 2021)
and spike (Oymak 2021)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from clr_rl.schedules.base import _name, _ordered, _positive_lr, _set, _Text, elapsed_fraction

__all__ = ["Alternating", "Spike"]


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
