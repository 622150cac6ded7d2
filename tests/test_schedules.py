"""Tests for clr_rl.schedules against independent oracles.

The oracles are torch's own schedulers (CyclicLR, OneCycleLR,
CosineAnnealingWarmRestarts, LinearLR), torch's golden CyclicLR table and
hand-computed values. torch counts iterations t = 0..N-1; a schedule sees SB3's
``progress_remaining`` p = 1 - t/N (OneCycleLR: p = 1 - t/(N-1), because torch's
run ends at iteration N-1).
"""

from __future__ import annotations

import dataclasses
import doctest
import itertools
import math
import pickle

import cloudpickle
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clr_rl import schedules
from clr_rl.schedules import (
    SCHEDULE_KINDS,
    Alternating,
    Constant,
    CosineRestarts,
    Exponential,
    ExpRange,
    Linear,
    OneCycle,
    Spike,
    Triangular,
    Triangular2,
    bind_gradient_steps,
    bind_total_timesteps,
    check_lr_resolution,
    elapsed_fraction,
    parse_schedule,
    schedule_params,
)

REL = 1e-9
FAST = settings(max_examples=150, deadline=None, database=None)


# ------------------------------------------------------------------ torch oracle


def torch_lrs(make_scheduler, n_iterations: int, lr: float = 1.0) -> list[float]:
    """LR of iterations 0..n-1 of a torch scheduler on a dummy one-parameter SGD."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(n_iterations - 1):
        opt.step()
        scheduler.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def assert_matches(schedule, expected: list[float], progress, rel: float = REL) -> None:
    got = [schedule(progress(t)) for t in range(len(expected))]
    bad = [
        (t, e, g)
        for t, (e, g) in enumerate(zip(expected, got, strict=True))
        if not math.isclose(g, e, rel_tol=rel, abs_tol=0.0)
    ]
    assert not bad, f"{schedule}: {len(bad)} of {len(expected)} iterations differ, first (t, torch, ours): {bad[:5]}"


# ------------------------------------------------------------------ CLR vs CyclicLR

CLR_SHAPES = [  # (up, down, n_cycles)
    (10, 10, 4),
    (10, 10, 5.5),
    (50, 50, 4),
    (250, 250, 5.5),
    (5, 15, 4),
    (5, 15, 5.5),
    (30, 10, 4),
    (30, 10, 5.5),
]


@pytest.mark.parametrize(("up", "down", "n_cycles"), CLR_SHAPES)
@pytest.mark.parametrize(
    ("cls", "mode"), [(Triangular, "triangular"), (Triangular2, "triangular2"), (ExpRange, "exp_range")]
)
def test_cyclical_matches_torch_cycliclr(cls, mode, up, down, n_cycles):
    base, peak, g = 1e-4, 1e-3, 0.999
    period = up + down
    n = int(n_cycles * period)
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CyclicLR(
            opt, base, peak, step_size_up=up, step_size_down=down, mode=mode, gamma=g, cycle_momentum=False
        ),
        n,
    )
    extra = {"gamma": g**period} if cls is ExpRange else {}
    s = cls(base_lr=base, max_lr=peak, cycles=n / period, up_fraction=up / period, **extra)
    assert_matches(s, expected, lambda t: 1 - t / n)


def test_triangular_torch_golden_table():
    # torch's own CyclicLR test: base 1, max 5, step_size_up 4.
    golden = [1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3]
    n = len(golden)
    s = Triangular(base_lr=1, max_lr=5, cycles=n / 8)
    assert_matches(s, [float(v) for v in golden], lambda t: 1 - t / n)
    oracle = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, 1, 5, step_size_up=4, cycle_momentum=False), n
    )
    assert oracle == pytest.approx(golden, rel=1e-12)


@pytest.mark.parametrize("cls,mode", [(Triangular, "triangular"), (Triangular2, "triangular2")])
def test_step_size_timesteps_is_torch_step_size_up(cls, mode):
    # step_size_timesteps is a half-cycle: torch's step_size_up with one iteration per timestep.
    step, n = 25, 275
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CyclicLR(
            opt, 1e-4, 1e-3, step_size_up=step, mode=mode, cycle_momentum=False
        ),
        n,
    )
    s = cls(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=step, total_timesteps=n)
    assert_matches(s, expected, lambda t: 1 - t / n)


# ------------------------------------------------------------------ OneCycle vs OneCycleLR

ONE_CYCLE_CASES = [  # (n, pct_start, anneal, div, final_div, three_phase)
    (100, 0.3, "cos", 25.0, 1e4, False),
    (100, 0.3, "linear", 25.0, 1e4, False),
    (257, 0.25, "cos", 10.0, 100.0, False),
    (257, 0.45, "linear", 5.0, 50.0, False),
    (100, 0.3, "cos", 25.0, 1e4, True),
    (100, 0.3, "linear", 25.0, 1e4, True),
    (301, 0.2, "cos", 8.0, 30.0, True),
    (301, 0.4, "linear", 8.0, 30.0, True),
]


@pytest.mark.parametrize(("n", "pct", "anneal", "div", "final_div", "three_phase"), ONE_CYCLE_CASES)
def test_one_cycle_matches_torch_onecyclelr(n, pct, anneal, div, final_div, three_phase):
    peak = 3e-3
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt,
            peak,
            total_steps=n,
            pct_start=pct,
            anneal_strategy=anneal,
            div_factor=div,
            final_div_factor=final_div,
            three_phase=three_phase,
            cycle_momentum=False,
        ),
        n,
    )
    s = OneCycle(
        max_lr=peak,
        pct_start=(pct * n - 1) / (n - 1),
        div_factor=div,
        final_div_factor=final_div,
        anneal=anneal,
        three_phase=three_phase,
    )
    assert_matches(s, expected, lambda t: 1 - t / (n - 1))


def test_one_cycle_defaults_hand_computed():
    s = OneCycle(max_lr=1e-3)
    assert (s.pct_start, s.div_factor, s.final_div_factor, s.anneal, s.three_phase) == (0.3, 25.0, 1e4, "cos", False)
    assert s(1.0) == pytest.approx(4e-5, rel=1e-12)
    assert s(0.7) == pytest.approx(1e-3, rel=1e-12)
    assert s(0.0) == pytest.approx(4e-9, rel=1e-12)
    # halfway up the cosine warm-up: the mean of initial and max
    assert s(1 - 0.15) == pytest.approx((4e-5 + 1e-3) / 2, rel=1e-12)
    t3 = OneCycle(max_lr=1e-3, pct_start=0.25, three_phase=True, anneal="linear")
    assert t3(0.75) == pytest.approx(1e-3, rel=1e-12)
    assert t3(0.5) == pytest.approx(4e-5, rel=1e-12)
    assert t3(0.25) == pytest.approx((4e-5 + 4e-9) / 2, rel=1e-12)


# ------------------------------------------------------------------ SGDR vs CosineAnnealingWarmRestarts

SGDR_CASES = [(10, 1, 5), (10, 2, 4), (7, 3, 3)]  # (T_0, T_mult, cycles)


def _sgdr_len(t0: int, mult: int, k: int) -> int:
    return t0 * sum(mult**i for i in range(k))


@pytest.mark.parametrize(("t0", "mult", "k"), SGDR_CASES)
@pytest.mark.parametrize("by", ["cycles", "step_size_timesteps"])
def test_cosine_restarts_matches_torch(t0, mult, k, by):
    eta_min, base = 1e-5, 1e-3
    n = _sgdr_len(t0, mult, k)
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, t0, T_mult=mult, eta_min=eta_min),
        n,
        lr=base,
    )
    length = {"cycles": k} if by == "cycles" else {"step_size_timesteps": t0, "total_timesteps": n}
    s = CosineRestarts(min_lr=eta_min, max_lr=base, t_mult=mult, **length)
    assert_matches(s, expected, lambda t: 1 - t / n)


@pytest.mark.parametrize(("t0", "mult", "k"), SGDR_CASES)
def test_cosine_restarts_ends_at_trough(t0, mult, k):
    # torch would restart at t = N; the run ends at the trough of its last cycle instead.
    n = _sgdr_len(t0, mult, k)
    for s in (
        CosineRestarts(min_lr=1e-5, max_lr=1e-3, cycles=k, t_mult=mult),
        CosineRestarts(min_lr=1e-5, max_lr=1e-3, step_size_timesteps=t0, total_timesteps=n, t_mult=mult),
    ):
        assert s(0.0) == 1e-5
        assert s(-0.01) == 1e-5
        assert s(1e-9) == pytest.approx(1e-5, rel=1e-6)


def test_cosine_restarts_hand_computed():
    s = CosineRestarts(min_lr=1e-5, max_lr=1e-3, cycles=2, t_mult=1)
    assert s(1.0) == 1e-3
    assert s(0.75) == pytest.approx((1e-5 + 1e-3) / 2, rel=1e-12)
    assert s(0.5) == pytest.approx(1e-3, rel=1e-12)
    assert s(0.0) == 1e-5
    # t_mult = 2, 3 cycles: lengths 1, 2, 4 of 7; restarts at 1/7 and 3/7
    s2 = CosineRestarts(min_lr=0.0, max_lr=1.0, cycles=3, t_mult=2)
    assert s2(1 - 0.5 / 7) == pytest.approx(0.5, rel=1e-9)  # middle of the first cycle
    assert s2(1 - 2 / 7) == pytest.approx(0.5, rel=1e-9)  # middle of the second cycle
    assert s2(1 - 5 / 7) == pytest.approx(0.5, rel=1e-9)  # middle of the third cycle
    log = CosineRestarts(min_lr=1e-5, max_lr=1e-3, cycles=1, space="log")
    assert log(0.5) == pytest.approx(1e-4, rel=1e-12)


@pytest.mark.parametrize(
    ("cycles", "t_mult", "total", "restarts"),
    [
        (5, 1, 50, [10, 20, 30, 40]),
        (5, 1, 100_000, [20_000, 40_000, 60_000, 80_000]),
        (4, 2, 150_000, [10_000, 30_000, 70_000]),
        (3, 3, 91, [7, 28]),
        (3, 2, 7, [1, 3]),
    ],
)
def test_cosine_restarts_restart_points_are_peaks(cycles, t_mult, total, restarts):
    # SB3 passes progress_remaining = 1 - num_timesteps / total_timesteps; at the first
    # timestep of a new cycle the LR has restarted to max_lr (torch: T_cur = 0).
    s = CosineRestarts(min_lr=1e-5, max_lr=1e-3, cycles=cycles, t_mult=t_mult)
    got = {t: s(1 - t / total) for t in restarts}
    assert got == {t: pytest.approx(1e-3, rel=1e-9) for t in restarts}


# ------------------------------------------------------------------ Constant and Linear


def test_constant_hand_computed():
    s = Constant(3e-4)
    for p in (1.0, 0.7, 0.0, -0.024, 1.5):
        assert s(p) == 3e-4
    assert Constant(1)(0.5) == 1.0 and type(Constant(1).lr) is float


def test_linear_hand_computed():
    s = Linear(1e-3, 0.0)
    assert s(1.0) == 1e-3
    assert s(0.25) == pytest.approx(2.5e-4, rel=1e-12)
    assert s(0.0) == 0.0
    s2 = Linear(start_lr=1e-3, end_lr=1e-4)
    assert s2(0.5) == pytest.approx(5.5e-4, rel=1e-12)
    assert s2(0.0) == pytest.approx(1e-4, rel=1e-12)
    # rising linear schedules are allowed
    assert Linear(1e-4, 1e-3)(0.0) == pytest.approx(1e-3, rel=1e-12)


def test_linear_matches_torch_linearlr():
    n, start, end = 200, 1e-3, 2e-4
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=end / start, total_iters=n),
        n,
        lr=start,
    )
    assert_matches(Linear(start, end), expected, lambda t: 1 - t / n)


# ------------------------------------------------------------------ step_size_timesteps and binding


@pytest.mark.parametrize("cls", [Triangular, Triangular2])
def test_step_size_timesteps_equals_cycles(cls):
    step, total = 1000, 7000
    by_steps = cls(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=step, total_timesteps=total)
    by_cycles = cls(base_lr=1e-4, max_lr=1e-3, cycles=total / (2 * step))
    assert by_steps.n_cycles() == by_cycles.cycles == 3.5
    for p in np.linspace(0.0, 1.0, 401):
        assert by_steps(p) == pytest.approx(by_cycles(p), rel=1e-12)


def test_exp_range_step_size_timesteps_equals_cycles():
    a = ExpRange(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=500, total_timesteps=4500, gamma=0.8)
    b = ExpRange(base_lr=1e-4, max_lr=1e-3, cycles=4.5, gamma=0.8)
    for p in np.linspace(0.0, 1.0, 301):
        assert a(p) == pytest.approx(b(p), rel=1e-12)


def test_bind_total_timesteps():
    unbound = Triangular(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=1000)
    with pytest.raises(ValueError, match="step_size_timesteps=1000 needs total_timesteps"):
        unbound(0.5)
    bound = bind_total_timesteps(unbound, 8000)
    assert bound == Triangular(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=1000, total_timesteps=8000)
    assert unbound.total_timesteps is None  # the original value is untouched
    assert bound(1 - 1 / 8) == pytest.approx(1e-3, rel=1e-12)  # first peak after 1000 of 8000 timesteps
    # already bound, given in cycles, or without cycles: unchanged
    assert bind_total_timesteps(bound, 5) is bound
    by_cycles = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2)
    assert bind_total_timesteps(by_cycles, 8000) is by_cycles
    c = Constant(1e-3)
    assert bind_total_timesteps(c, 8000) is c
    sgdr = bind_total_timesteps(CosineRestarts(min_lr=0.0, max_lr=1e-3, step_size_timesteps=100), 700)
    assert isinstance(sgdr, CosineRestarts)
    assert sgdr.total_timesteps == 700 and sgdr.n_cycles() == pytest.approx(7.0)


# ------------------------------------------------------------------ properties

lr_pairs = st.tuples(st.floats(1e-6, 1e-2), st.floats(1.01, 1000.0)).map(lambda bm: (bm[0], bm[0] * bm[1]))
progress = st.floats(-0.1, 1.1, allow_nan=False)
n_cycles = st.floats(0.25, 20.0)
up_fraction = st.floats(0.02, 0.98)
space = st.sampled_from(["linear", "log"])


def _within(v: float, low: float, high: float) -> bool:
    return low <= v <= high


@FAST
@given(lr_pairs, n_cycles, up_fraction, space, st.floats(0.05, 1.0), progress)
def test_cyclical_stays_within_bounds(lrs, c, u, sp, gamma, p):
    base, peak = lrs
    for s in (
        Triangular(base_lr=base, max_lr=peak, cycles=c, up_fraction=u, space=sp),
        Triangular2(base_lr=base, max_lr=peak, cycles=c, up_fraction=u, space=sp),
        ExpRange(base_lr=base, max_lr=peak, cycles=c, up_fraction=u, space=sp, gamma=gamma),
    ):
        v = s(p)
        assert type(v) is float
        assert _within(v, base, peak), (s, p, v)


@FAST
@given(lr_pairs, st.integers(1, 8), st.sampled_from([1.0, 1.5, 2.0, 3.0]), space, progress)
def test_cosine_restarts_stays_within_bounds(lrs, k, mult, sp, p):
    low, high = lrs
    s = CosineRestarts(min_lr=low, max_lr=high, cycles=k, t_mult=mult, space=sp)
    v = s(p)
    assert type(v) is float
    assert _within(v, low, high), (s, p, v)


@FAST
@given(
    st.floats(1e-5, 1.0),
    st.floats(0.05, 0.95),
    st.floats(1.0, 100.0),
    st.floats(1.0, 1e4),
    st.sampled_from(["cos", "linear"]),
    st.booleans(),
    progress,
)
def test_one_cycle_stays_within_bounds(peak, pct, div, final_div, anneal, three, p):
    pct = pct / 2 if three else pct
    s = OneCycle(
        max_lr=peak, pct_start=pct, div_factor=div, final_div_factor=final_div, anneal=anneal, three_phase=three
    )
    v = s(p)
    assert type(v) is float
    # linear annealing computes (end - start) * 1 + start, as torch does: exact to ~1e-12 of the range
    assert peak / div / final_div - 1e-12 * peak <= v <= peak * (1 + 1e-12), (s, p, v)


@FAST
@given(lr_pairs, st.integers(2, 12), up_fraction, space, st.floats(0.0, 1.0))
def test_triangular_is_periodic(lrs, c, u, sp, p):
    s = Triangular(base_lr=lrs[0], max_lr=lrs[1], cycles=c, up_fraction=u, space=sp)
    p = 1.0 / c + p * (1.0 - 1.0 / c)  # p and p - 1/c both in [0, 1]
    assert s(p) == pytest.approx(s(p - 1.0 / c), rel=1e-7, abs=lrs[1] * 1e-9)


@pytest.mark.parametrize("u", [0.5, 0.25, 0.75])
def test_triangular_peaks_and_troughs(u):
    c = 5
    s = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=c, up_fraction=u)
    for k in range(c):
        assert s(1 - (k + u) / c) == pytest.approx(1e-3, rel=1e-9)
        assert s(1 - k / c) == pytest.approx(1e-4, rel=1e-9)
    assert s(0.0) == pytest.approx(1e-4, rel=1e-9)


@pytest.mark.parametrize("u", [0.5, 0.3])
def test_triangular2_amplitude_halves_every_cycle(u):
    base, peak, c = 1e-4, 1e-3, 6
    s = Triangular2(base_lr=base, max_lr=peak, cycles=c, up_fraction=u)
    amplitudes = [s(1 - (k + u) / c) - base for k in range(c)]
    for k, a in enumerate(amplitudes):
        assert a == pytest.approx((peak - base) * 0.5**k, rel=1e-9)
    for a, b in itertools.pairwise(amplitudes):
        assert b / a == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("gamma", [1.0, 0.9, 0.5])
def test_exp_range_peaks_follow_gamma(gamma):
    base, peak, c, u = 1e-4, 1e-3, 5, 0.5
    s = ExpRange(base_lr=base, max_lr=peak, cycles=c, up_fraction=u, gamma=gamma)
    for k in range(c):
        assert s(1 - (k + u) / c) - base == pytest.approx((peak - base) * gamma ** (k + u), rel=1e-9)
    # the docstring's worked value
    assert ExpRange(base_lr=1e-4, max_lr=1e-3, cycles=2, gamma=0.5)(0.75) == pytest.approx(
        1e-4 + 9e-4 * 0.5**0.5, rel=1e-12
    )


@pytest.mark.parametrize("u", [0.5, 0.2])
def test_log_space_midpoint_is_geometric_mean(u):
    base, peak, c = 1e-5, 1e-3, 3
    s = Triangular(base_lr=base, max_lr=peak, cycles=c, up_fraction=u, space="log")
    for k in range(c):
        assert s(1 - (k + u / 2) / c) == pytest.approx(math.sqrt(base * peak), rel=1e-9)  # 1e-4
        assert s(1 - (k + u + (1 - u) / 2) / c) == pytest.approx(1e-4, rel=1e-9)  # middle of the fall
        assert s(1 - (k + u) / c) == pytest.approx(peak, rel=1e-9)
    for p in np.linspace(0, 1, 301):
        assert base * (1 - 1e-12) <= s(p) <= peak * (1 + 1e-12)
    # linear space differs: the arithmetic mean
    lin = Triangular(base_lr=base, max_lr=peak, cycles=c, up_fraction=u)
    assert lin(1 - (u / 2) / c) == pytest.approx((base + peak) / 2, rel=1e-9)


def _examples():
    return [
        Constant(3e-4),
        Linear(1e-3, 0.0),
        Linear(start_lr=1e-3, end_lr=1e-5),
        Exponential(1e-6, 1e-1),
        Exponential(start_lr=1e-2, end_lr=1e-4),
        Triangular(base_lr=1e-4, max_lr=1e-3, cycles=3),
        Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2.5, up_fraction=0.25, space="log"),
        Triangular(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=2048, total_timesteps=100_000),
        Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=4),
        Triangular2(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=500),
        ExpRange(base_lr=1e-4, max_lr=1e-3, cycles=3, gamma=0.7),
        ExpRange(base_lr=2e-5, max_lr=3e-3, cycles=1.5, gamma=1.0, up_fraction=0.4, space="log"),
        OneCycle(max_lr=1e-3),
        OneCycle(max_lr=3e-3, pct_start=0.2, div_factor=10, final_div_factor=100, anneal="linear", three_phase=True),
        CosineRestarts(min_lr=1e-5, max_lr=1e-3, cycles=4),
        CosineRestarts(min_lr=0.0, max_lr=1e-3, cycles=3, t_mult=2),
        CosineRestarts(
            min_lr=1e-5, max_lr=1e-3, step_size_timesteps=1000, total_timesteps=15000, t_mult=2, space="log"
        ),
        # experimental per-gradient-step kinds (tests/test_theory_schedules.py checks their values)
        Alternating(small_lr=1e-4, large_lr=1e-3),
        Alternating(mu=0.01, mu1=0.11, L1=0.9, L=1.0, period=4, total_steps=640),
        Spike(base_lr=1e-4, spike_lr=1e-2, period=50, width=2),
        Spike(base_lr=1e-4, spike_lr=1e-2, period=50, total_steps=2000),
    ]


EXAMPLES = _examples()
EXAMPLE_IDS = [str(s) for s in EXAMPLES]


def _bound(s):
    return bind_gradient_steps(bind_total_timesteps(s, 10_000), 1000)


@pytest.mark.parametrize("s", EXAMPLES, ids=EXAMPLE_IDS)
def test_clamping_and_builtin_float(s):
    s = _bound(s)
    assert s(-0.024) == s(0.0)
    assert s(-5.0) == s(0.0)
    assert s(1.5) == s(1.0)
    for p in (1.0, 0.3, 0.0, -0.024, 1.5, np.float32(0.3), np.float64(0.3), 1, 0):
        v = s(p)
        assert type(v) is float, (p, type(v))
        assert v >= 0.0
    assert s(np.float64(0.3)) == s(0.3)
    assert s(np.float32(0.3)) == pytest.approx(s(float(np.float32(0.3))), rel=1e-15)


def test_linear_to_zero_never_negative():
    s = Linear(1e-3, 0.0)
    assert s(-0.024) == 0.0
    assert s(-1.0) == 0.0
    assert s(0.0) == 0.0
    assert s(1.5) == 1e-3


@pytest.mark.parametrize("s", EXAMPLES, ids=EXAMPLE_IDS)
def test_nan_progress_is_refused(s):
    with pytest.raises(ValueError, match="progress_remaining=nan must be a number"):
        _bound(s)(math.nan)


def test_elapsed_fraction():
    assert elapsed_fraction(1.0) == 0.0
    assert elapsed_fraction(0.25) == 0.75
    assert elapsed_fraction(-0.024) == 1.0
    assert elapsed_fraction(1.7) == 0.0


# ------------------------------------------------------------------ text, dict, repr, pickle


def test_every_kind_has_an_example():
    assert {s.kind for s in EXAMPLES} == set(SCHEDULE_KINDS)


@pytest.mark.parametrize("s", EXAMPLES, ids=EXAMPLE_IDS)
def test_text_round_trip(s):
    text = str(s)
    assert text.startswith(f"{s.kind}:")
    back = parse_schedule(text)
    assert back == s
    assert type(back) is type(s)
    assert parse_schedule(s) is s
    # whitespace is tolerated
    assert parse_schedule(" " + text.replace(",", " , ") + " ") == s


@pytest.mark.parametrize("s", EXAMPLES, ids=EXAMPLE_IDS)
def test_dict_round_trip(s):
    table = {"kind": s.kind, **schedule_params(s)}
    assert parse_schedule(table) == s
    assert parse_schedule({"kind": s.kind, **schedule_params(s, all_fields=True)}) == s


@pytest.mark.parametrize("s", EXAMPLES, ids=EXAMPLE_IDS)
def test_repr_names_the_class_and_evaluates_back(s):
    r = repr(s)
    assert r.startswith(type(s).__name__ + "(")
    assert eval(r, vars(schedules)) == s  # test-only check that the repr is complete


@pytest.mark.parametrize("s", EXAMPLES, ids=EXAMPLE_IDS)
@pytest.mark.parametrize("dumps,loads", [(pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)])
def test_pickle_round_trip(s, dumps, loads):
    back = loads(dumps(s))
    assert back == s and hash(back) == hash(s)
    b, s2 = _bound(back), _bound(s)
    for p in (1.0, 0.9, 0.55, 0.3, 0.0):
        assert b(p) == s2(p)


@pytest.mark.parametrize("s", EXAMPLES, ids=EXAMPLE_IDS)
def test_sb3_float_schedule(s):
    from stable_baselines3.common.utils import FloatSchedule

    s = _bound(s)
    wrapped = FloatSchedule(s)
    for p in (1.0, 0.3, 0.0):
        assert wrapped(p) == s(p)
    assert pickle.loads(pickle.dumps(wrapped))(0.3) == s(0.3)


def test_dict_and_text_forms_agree():
    pairs = [
        (
            {"kind": "triangular2", "base_lr": 1e-4, "max_lr": 1e-3, "cycles": 4},
            "triangular2:base_lr=1e-4,max_lr=1e-3,cycles=4",
        ),
        ({"kind": "one_cycle", "max_lr": 1e-3}, "one_cycle:max_lr=0.001"),
        (
            {"kind": "one_cycle", "max_lr": 1e-3, "three_phase": True, "pct_start": 0.25, "anneal": "linear"},
            "one_cycle:max_lr=1e-3,three_phase=true,pct_start=0.25,anneal=linear",
        ),
        (
            {"kind": "exp_range", "base_lr": 1e-4, "max_lr": 1e-3, "cycles": 3, "gamma": 0.9},
            "exp_range:base_lr=1e-4,max_lr=1e-3,cycles=3,gamma=0.9",
        ),
        (
            {"kind": "cosine_restarts", "min_lr": 0, "max_lr": 1e-3, "step_size_timesteps": 1000.0, "t_mult": 2},
            "cosine_restarts:min_lr=0,max_lr=1e-3,step_size_timesteps=1_000,t_mult=2",
        ),
        ({"kind": "constant", "lr": 3e-4}, "3e-4"),
        ({"kind": "linear", "start_lr": 1e-3}, "linear:start_lr=0.001"),
    ]
    for table, text in pairs:
        a, b = parse_schedule(table), parse_schedule(text)
        assert a == b, (table, text)
        for p in (1.0, 0.6, 0.1, 0.0):
            assert _bound(a)(p) == _bound(b)(p)
    assert parse_schedule("triangular2:base_lr=1e-4,max_lr=1e-3,cycles=4") == Triangular2(
        base_lr=1e-4, max_lr=1e-3, cycles=4
    )
    assert parse_schedule(3e-4) == Constant(3e-4) == parse_schedule("3e-4")
    assert parse_schedule(1) == Constant(1.0)
    assert str(parse_schedule("triangular2:base_lr=1e-4,max_lr=1e-3,cycles=4")) == (
        "triangular2:base_lr=0.0001,max_lr=0.001,cycles=4"
    )


def test_schedules_are_frozen_values():
    s = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_lr = 1.0  # type: ignore[misc]
    assert s == Triangular(base_lr=1e-4, max_lr=1e-3, cycles=3.0)
    assert s != Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=3)
    assert len({s, Triangular(base_lr=1e-4, max_lr=1e-3, cycles=3)}) == 1


def test_docstring_examples_run():
    import importlib

    results = [doctest.testmod(importlib.import_module(f"clr_rl.schedules.{name}"), verbose=False)
               for name in ("base", "cyclical", "theory", "text")]
    assert sum(r.attempted for r in results) > 10
    assert sum(r.failed for r in results) == 0


# ------------------------------------------------------------------ resolution check


def test_min_segment_fraction_and_lr_resolution():
    s = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=4, up_fraction=0.25)
    assert s.min_segment_fraction() == pytest.approx(0.25 / 4)
    # 100_000 timesteps: shortest rise 6250 timesteps; PPO updating every 2048 is fine, every 4096 is not
    check_lr_resolution(s, 100_000, 2048, "n_steps * n_envs")
    with pytest.raises(
        ValueError, match=r"spans 6250 timesteps, fewer than 2 LR updates.*every 4096 timesteps: n_steps"
    ):
        check_lr_resolution(s, 100_000, 4096, "n_steps")
    assert OneCycle(max_lr=1e-3, pct_start=0.2, three_phase=True).min_segment_fraction() == pytest.approx(0.2)
    assert CosineRestarts(min_lr=0.0, max_lr=1.0, cycles=3, t_mult=2).min_segment_fraction() == pytest.approx(1 / 7)
    # constant and linear schedules cannot alias: any budget passes, even one shorter than an update
    assert Constant(1e-3).min_segment_fraction() == math.inf
    assert Linear(1e-3, 0.0).min_segment_fraction() == math.inf
    check_lr_resolution(Constant(1e-3), 1024, 4096, "n_steps=256 x n_envs=16")


# ------------------------------------------------------------------ validation

BAD = [
    (lambda: Triangular(base_lr=0.01, max_lr=0.001, cycles=2), "triangular: base_lr=0.01 must be < max_lr=0.001"),
    (lambda: Triangular2(base_lr=1e-3, max_lr=1e-3, cycles=2), "base_lr=0.001 must be < max_lr=0.001"),
    (lambda: CosineRestarts(min_lr=1e-3, max_lr=1e-4, cycles=2), "min_lr=0.001 must be < max_lr=0.0001"),
    (lambda: Triangular(base_lr=1e-4, max_lr=1e-3, cycles=0), "cycles=0 must be > 0"),
    (lambda: Triangular(base_lr=1e-4, max_lr=1e-3, cycles=-2.0), "cycles=-2.0 must be > 0"),
    (lambda: Triangular(base_lr=1e-4, max_lr=1e-3, cycles=math.inf), "cycles=inf must be a finite number"),
    (lambda: ExpRange(base_lr=1e-4, max_lr=1e-3, cycles=2, gamma=0), "exp_range: gamma=0 must be in (0, 1]"),
    (lambda: ExpRange(base_lr=1e-4, max_lr=1e-3, cycles=2, gamma=1.5), "gamma=1.5 must be in (0, 1]"),
    (lambda: OneCycle(max_lr=1e-3, pct_start=0), "one_cycle: pct_start=0.0 must be in (0, 1)"),
    (lambda: OneCycle(max_lr=1e-3, pct_start=1), "pct_start=1.0 must be in (0, 1)"),
    (lambda: OneCycle(max_lr=1e-3, pct_start=0.5, three_phase=True), "pct_start=0.5 must be in (0, 0.5)"),
    (lambda: OneCycle(max_lr=1e-3, div_factor=0.5), "div_factor=0.5 must be >= 1"),
    (lambda: OneCycle(max_lr=1e-3, anneal="exp"), "anneal='exp' must be one of cos, linear"),  # type: ignore[arg-type]
    (lambda: OneCycle(max_lr=1e-3, three_phase="yes"), "three_phase='yes' must be true or false"),  # type: ignore[arg-type]
    (lambda: parse_schedule("sawtooth:lr=1e-3"), "schedule kind 'sawtooth' is unknown"),
    (lambda: parse_schedule({"lr": 1e-3}), "schedule kind None is unknown"),
    (lambda: parse_schedule("constant:lr=1e-3,bogus=1"), "constant: unknown parameter 'bogus'"),
    (lambda: parse_schedule({"kind": "one_cycle", "max_lr": 1e-3, "bogus": 1}), "unknown parameter 'bogus'"),
    (lambda: parse_schedule("triangular:base_lr=1e-4,cycles=2"), "triangular: missing required parameter 'max_lr'"),
    (lambda: parse_schedule({"kind": "one_cycle"}), "missing required parameter 'max_lr'"),
    (lambda: Constant(-1e-3), "constant: lr=-0.001 must be > 0"),
    (lambda: Constant(0), "lr=0 must be > 0"),
    (lambda: Constant(math.nan), "lr=nan must be finite"),
    (lambda: Constant(math.inf), "lr=inf must be finite"),
    (lambda: Constant(True), "lr=True must be a number"),
    (lambda: Linear(1e-3, -1e-4), "end_lr=-0.0001 must be >= 0"),
    (lambda: Triangular(base_lr=-1e-4, max_lr=1e-3, cycles=2), "base_lr=-0.0001 must be > 0"),
    (lambda: CosineRestarts(min_lr=0, max_lr=1e-3, cycles=2, space="log"), "min_lr=0 must be > 0"),
    (
        lambda: Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2, step_size_timesteps=100),
        "give exactly one of cycles or step_size_timesteps (got cycles=2, step_size_timesteps=100)",
    ),
    (lambda: Triangular(base_lr=1e-4, max_lr=1e-3), "give exactly one of cycles or step_size_timesteps"),
    (
        lambda: Triangular(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=0),
        "step_size_timesteps=0 must be a positive integer",
    ),
    (
        lambda: Triangular(base_lr=1e-4, max_lr=1e-3, step_size_timesteps=10, total_timesteps=-5),
        "total_timesteps=-5 must be a positive integer",
    ),
    (
        lambda: parse_schedule("triangular:base_lr=1e-4,max_lr=1e-3,step_size_timesteps=2.5"),
        "step_size_timesteps='2.5' must be an integer",
    ),
    (lambda: Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2, up_fraction=1), "up_fraction=1.0 must be in (0, 1)"),
    (lambda: Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2, up_fraction=0), "up_fraction=0.0 must be in (0, 1)"),
    (
        lambda: Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2, space="cubic"),  # type: ignore[arg-type]
        "space='cubic' must be one of linear, log",
    ),
    (lambda: CosineRestarts(min_lr=0, max_lr=1e-3, cycles=2, t_mult=0.5), "t_mult=0.5 must be >= 1"),
    (
        lambda: parse_schedule("triangular:base_lr=abc,max_lr=1e-3,cycles=2"),
        "triangular: base_lr='abc' must be a number",
    ),
    (lambda: parse_schedule("one_cycle:max_lr=1e-3,three_phase=maybe"), "three_phase='maybe' must be true or false"),
    (lambda: parse_schedule("triangular:base_lr"), "'base_lr' must look like name=value"),
    (lambda: parse_schedule("constant:lr=1e-3,lr=2e-3"), "parameter 'lr' given twice"),
    (lambda: parse_schedule([1e-3]), "must be text, a number or a table"),  # type: ignore[arg-type]
    (lambda: parse_schedule(True), "must be text, a number or a table"),
]


@pytest.mark.parametrize(("make", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_names_field_and_rule(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_exponential_matches_torch_exponentiallr():
    """The LR range test's ramp: torch ExponentialLR with gamma = (end/start)^(1/N), t <-> p = 1 - t/N."""
    n, start, end = 200, 1e-6, 1e-1
    gamma = (end / start) ** (1 / n)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=start)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    s = Exponential(start, end)
    for t in range(n + 1):
        assert s(1 - t / n) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9), t
        opt.step()
        sched.step()
    assert s.min_segment_fraction() == math.inf
    with pytest.raises(ValueError, match=r"exponential: end_lr=0\.0 must be > 0"):
        Exponential(1e-3, 0.0)
