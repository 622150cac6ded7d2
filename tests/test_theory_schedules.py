"""The experimental per-gradient-step schedules from theory: ``alternating`` and ``spike``.

Oracles: hand-written step sequences; for ``alternating``'s spectral form, the momentum
solved independently (numpy's polynomial roots of ``c (1 + m)^2 = 4 m``) and the rate read
off the eigenvalues of heavy ball's two-step transfer matrices over the whole spectrum;
Polyak's heavy ball as the no-gap limit; a heavy-ball run on a diagonal quadratic.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import tomllib
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clr_rl import schedules
from clr_rl.schedules import (
    SCHEDULE_KINDS,
    Alternating,
    Constant,
    Spike,
    Triangular,
    bind_gradient_steps,
    bind_total_timesteps,
    check_lr_resolution,
    parse_schedule,
    schedule_params,
)

FAST = settings(max_examples=200, deadline=None, database=None)


# ------------------------------------------------------------------ exact sequences


def sequence(s, n: int) -> list[float]:
    """LRs of gradient steps 0..n-1 read the way SB3 reads them: through progress_remaining."""
    bound = bind_gradient_steps(s, n)
    return [bound(1 - i / n) for i in range(n)]


def test_spike_sequence_by_hand():
    a, b = 1e-3, 5e-2
    s = Spike(base_lr=a, spike_lr=b, period=5, width=2)
    assert sequence(s, 12) == [b, b, a, a, a, b, b, a, a, a, b, b]
    s1 = Spike(base_lr=a, spike_lr=b, period=3)  # width 1 by default
    assert sequence(s1, 7) == [b, a, a, b, a, a, b]


def test_alternating_sequence_by_hand():
    s = Alternating(small_lr=0.25, large_lr=3.0)
    assert sequence(s, 7) == [0.25, 3.0, 0.25, 3.0, 0.25, 3.0, 0.25]
    s4 = Alternating(small_lr=0.25, large_lr=3.0, period=4)
    assert sequence(s4, 10) == [0.25, 0.25, 3.0, 3.0, 0.25, 0.25, 3.0, 3.0, 0.25, 0.25]
    s6 = Alternating(small_lr=1e-4, large_lr=1e-3, period=6)
    assert sequence(s6, 8) == [1e-4] * 3 + [1e-3] * 3 + [1e-4] * 2


def test_end_of_run_and_clamping():
    s = Spike(base_lr=1e-3, spike_lr=1e-2, period=4, total_steps=8)
    assert s(0.0) == s.at_step(7) == 1e-3  # the end of the run reads as its last step
    assert s.at_step(8) == 1e-2  # (the next cycle would open with a spike)
    assert s(-0.024) == s(0.0)  # SB3's overshoot
    assert s(1.7) == s(1.0) == 1e-2
    for p in (1.0, 0.5, 0.1, 0.0, np.float32(0.3), np.float64(0.3), 1, 0):
        assert type(s(p)) is float
    with pytest.raises(ValueError, match="progress_remaining=nan must be a number"):
        s(math.nan)


@FAST
@given(n=st.integers(1, 10**8), data=st.data())
def test_progress_selects_each_gradient_step_exactly(n, data):
    i = data.draw(st.integers(0, n - 1))
    s = Spike(base_lr=1.0, spike_lr=2.0, period=3, total_steps=n)
    assert s.step_index(1 - i / n) == i
    assert s(1 - i / n) == (2.0 if i % 3 == 0 else 1.0)


def test_unbound_schedule_names_total_steps():
    s = Spike(base_lr=1e-3, spike_lr=1e-2, period=4)
    for p in (1.0, 0.5):
        with pytest.raises(ValueError, match=r"spike: total_steps is unset; its period is in gradient steps"):
            s(p)
    with pytest.raises(ValueError, match="alternating: total_steps is unset"):
        Alternating(small_lr=0.1, large_lr=1.0).min_segment_fraction()
    assert s.at_step(4) == 1e-2  # the per-step value itself needs no binding


# ------------------------------------------------------------------ binding


def test_bind_gradient_steps():
    s = Alternating(small_lr=0.1, large_lr=1.0)
    bound = bind_gradient_steps(s, 500)
    assert bound == Alternating(small_lr=0.1, large_lr=1.0, total_steps=500)
    assert bind_gradient_steps(bound, 10) is bound  # already bound: the user's total wins
    assert bind_total_timesteps(s, 10_000) is s  # timesteps are not gradient steps
    tri = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2)
    assert bind_gradient_steps(tri, 500) is tri
    assert bind_gradient_steps(Constant(1e-3), 5) == Constant(1e-3)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=rf"alternating: total_gradient_steps={bad!r} must be a positive integer"):
            bind_gradient_steps(s, bad)  # type: ignore[arg-type]


def test_per_step_only_flag():
    flags = {kind: cls.per_step_only for kind, cls in SCHEDULE_KINDS.items()}
    assert flags.pop("alternating") is True and flags.pop("spike") is True
    assert flags and not any(flags.values())
    assert Spike(base_lr=1e-3, spike_lr=1e-2, period=4).per_step_only


def test_min_segment_fraction_and_resolution_check():
    s = Spike(base_lr=1e-3, spike_lr=1e-2, period=10, width=3, total_steps=1000)
    assert s.min_segment_fraction() == 3 / 1000
    assert Spike(base_lr=1e-3, spike_lr=1e-2, period=10, width=8, total_steps=1000).min_segment_fraction() == 2 / 1000
    assert Alternating(small_lr=0.1, large_lr=1.0, period=6, total_steps=600).min_segment_fraction() == 3 / 600
    # applied once per SB3 update, a per-step cycle aliases: the existing check refuses it
    with pytest.raises(ValueError, match="fewer than 2 LR updates"):
        check_lr_resolution(s, 100_000, 2048, "n_steps=2048")


# ------------------------------------------------------------------ alternating from the spectrum


def momentum_oracle(mu: float, mu1: float, l1: float, big_l: float) -> float:
    """Root in (0, 1) of c (1 + m)^2 - 4 m, solved by numpy (independent of the closed form)."""
    w = max(mu1 - mu, big_l - l1)
    mu1, l1 = mu + w, big_l - w
    c = (l1 - mu) * (mu1 - mu) / (l1 * mu1)
    roots = np.roots([c, 2 * c - 4, c])
    (m,) = [r.real for r in roots if 0 < r.real < 1]
    return float(m)


def two_step_radius(lam: float, h0: float, h1: float, m: float) -> float:
    """Spectral radius, per iteration, of heavy ball's two-step transfer matrix at eigenvalue lam."""

    def step(h: float) -> np.ndarray:
        return np.array([[1 + m - h * lam, -m], [1.0, 0.0]])

    return float(max(abs(np.linalg.eigvals(step(h1) @ step(h0)))) ** 0.5)


SPECTRA = [(0.01, 0.11, 0.9, 1.0), (1e-3, 0.011, 0.991, 1.0), (0.1, 0.5, 2.0, 2.4), (1.0, 3.0, 50.0, 60.0)]


@pytest.mark.parametrize("spectrum", SPECTRA)
def test_alternating_spectrum_parameters_and_rate(spectrum):
    mu, mu1, l1, big_l = spectrum
    s = Alternating(mu=mu, mu1=mu1, L1=l1, L=big_l)
    m = momentum_oracle(*spectrum)
    assert s.momentum == pytest.approx(m, rel=1e-12)
    assert s.rate == pytest.approx(math.sqrt(m), rel=1e-12)
    w = max(mu1 - mu, big_l - l1)
    assert s.small_step == pytest.approx((1 + m) / (big_l - w), rel=1e-12)
    assert s.large_step == pytest.approx((1 + m) / (mu + w), rel=1e-12)
    assert sequence(s, 4) == [s.small_step, s.large_step] * 2
    # every eigenvalue of both intervals contracts at sqrt(m) per step, and no faster
    grid = np.concatenate([np.linspace(mu, mu + w, 50), np.linspace(big_l - w, big_l, 50)])
    radii = [two_step_radius(lam, s.small_step, s.large_step, m) for lam in grid]
    assert max(radii) == pytest.approx(math.sqrt(m), rel=1e-6)
    # just outside the spectrum the guarantee is lost
    assert two_step_radius(big_l * 1.05, s.small_step, s.large_step, m) > math.sqrt(m) * 1.001
    assert two_step_radius(mu * 0.5, s.small_step, s.large_step, m) > math.sqrt(m) * 1.001


def test_alternating_beats_polyak_and_tends_to_it_without_gap():
    mu, big_l = 1e-3, 1.0
    polyak_rate = (math.sqrt(big_l) - math.sqrt(mu)) / (math.sqrt(big_l) + math.sqrt(mu))
    polyak_step = 4 / (math.sqrt(big_l) + math.sqrt(mu)) ** 2
    gap = Alternating(mu=mu, mu1=0.011, L1=0.991, L=big_l)
    assert gap.rate is not None and gap.rate < 0.75 < polyak_rate  # super-acceleration: 0.73 vs 0.94
    mid = (mu + big_l) / 2
    tiny = Alternating(mu=mu, mu1=mid - 1e-9, L1=mid + 1e-9, L=big_l)
    assert tiny.rate == pytest.approx(polyak_rate, rel=1e-6)
    assert tiny.small_step == pytest.approx(polyak_step, rel=1e-6)
    assert tiny.large_step == pytest.approx(polyak_step, rel=1e-6)


def test_alternating_unequal_intervals_are_widened():
    s = Alternating(mu=0.01, mu1=0.05, L1=0.9, L=1.0)  # widths 0.04 and 0.1
    assert s == Alternating(mu=0.01, mu1=0.05, L1=0.9, L=1.0)  # the user's numbers are kept
    assert s.momentum == Alternating(mu=0.01, mu1=0.11, L1=0.9, L=1.0).momentum


def test_alternating_heavy_ball_reaches_the_rate_on_a_quadratic():
    """Run heavy ball x+ = x - h_i A x + m (x - x-) with the schedule's LRs on a diagonal quadratic."""
    mu, mu1, l1, big_l = 0.01, 0.11, 0.9, 1.0
    s = bind_gradient_steps(Alternating(mu=mu, mu1=mu1, L1=l1, L=big_l), 200)
    assert s.momentum is not None and s.rate is not None
    m = s.momentum
    eig = np.concatenate([np.linspace(mu, mu1, 20), np.linspace(l1, big_l, 20)])
    x_prev = x = np.ones_like(eig)
    x = x - s(1.0) / (1 + m) * eig * x  # the post's first step
    errors = [float(np.linalg.norm(x))]
    for i in range(1, 200):
        h = s(1 - i / 200)
        x, x_prev = x - h * eig * x + m * (x - x_prev), x
        errors.append(float(np.linalg.norm(x)))
    measured = (errors[199] / errors[99]) ** (1 / 100)
    assert measured <= s.rate * 1.02
    assert measured >= s.rate * 0.9  # the bound is tight (eigenvalues at the interval ends)


# ------------------------------------------------------------------ forms, values, validation


EXAMPLES = [
    Alternating(small_lr=1e-4, large_lr=1e-3),
    Alternating(small_lr=1e-4, large_lr=1e-3, period=4, total_steps=1000),
    Alternating(mu=0.01, mu1=0.11, L1=0.9, L=1.0, total_steps=64),
    Spike(base_lr=1e-4, spike_lr=1e-2, period=50),
    Spike(base_lr=1e-4, spike_lr=1e-2, period=50, width=3, total_steps=2000),
]


@pytest.mark.parametrize("s", EXAMPLES, ids=str)
def test_text_toml_repr_pickle_round_trips(s):
    assert parse_schedule(str(s)) == s
    assert parse_schedule({"kind": s.kind, **schedule_params(s)}) == s
    assert parse_schedule({"kind": s.kind, **schedule_params(s, all_fields=True)}) == s
    toml_text = "[schedule]\n" + "".join(f"{k} = {v!r}\n" for k, v in {"kind": s.kind, **schedule_params(s)}.items())
    assert parse_schedule(tomllib.loads(toml_text.replace("'", '"'))["schedule"]) == s
    assert repr(s).startswith(type(s).__name__ + "(")
    assert eval(repr(s), vars(schedules)) == s  # test-only: the repr is complete
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        back = loads(dumps(s))
        assert back == s and hash(back) == hash(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.period = 3  # type: ignore[misc]


def test_text_forms():
    assert str(Spike(base_lr=1e-4, spike_lr=1e-2, period=50)) == "spike:base_lr=0.0001,spike_lr=0.01,period=50"
    assert str(Alternating(mu=0.01, mu1=0.11, L1=0.9, L=1)) == "alternating:mu=0.01,mu1=0.11,L1=0.9,L=1"
    assert parse_schedule("spike:base_lr=1e-4,spike_lr=1e-2,period=1_000,width=2.0,total_steps=5e3") == Spike(
        base_lr=1e-4, spike_lr=1e-2, period=1000, width=2, total_steps=5000
    )
    assert parse_schedule("alternating:small_lr=0.1,large_lr=1") == Alternating(small_lr=0.1, large_lr=1.0)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Spike(base_lr=1e-3, spike_lr=1e-2, period=4, width=4), r"spike: period=4 must be > width=4"),
        (lambda: Spike(base_lr=1e-3, spike_lr=1e-2, period=3, width=5), r"spike: period=3 must be > width=5"),
        (lambda: Spike(base_lr=1e-3, spike_lr=1e-2, period=4, width=0), r"spike: width=0 must be an integer >= 1"),
        (lambda: Spike(base_lr=1e-3, spike_lr=1e-2, period=1), r"spike: period=1 must be an integer >= 2"),
        (lambda: Spike(base_lr=1e-2, spike_lr=1e-3, period=4), r"spike: base_lr=0.01 must be < spike_lr=0.001"),
        (lambda: Spike(base_lr=0, spike_lr=1e-3, period=4), r"spike: base_lr=0 must be > 0"),
        (lambda: Spike(base_lr=1e-3, spike_lr=math.inf, period=4), r"spike: spike_lr=inf must be finite"),
        (lambda: Spike(base_lr=1e-3, spike_lr=1e-2, period=4, total_steps=0), r"total_steps=0 must be a positive"),
        (lambda: parse_schedule("spike:base_lr=1e-3,spike_lr=1e-2,period=2.5"), r"spike: period='2.5' must be an int"),
        (lambda: parse_schedule("spike:base_lr=1e-3,period=4"), r"spike: missing required parameter 'spike_lr'"),
        (lambda: parse_schedule("spike:base_lr=1e-3,spike_lr=1e-2,period=4,cycles=2"), r"unknown parameter 'cycles'"),
        (lambda: Alternating(small_lr=1.0, large_lr=0.1), r"alternating: small_lr=1.0 must be < large_lr=0.1"),
        (lambda: Alternating(small_lr=0.1, large_lr=0.1), r"alternating: small_lr=0.1 must be < large_lr=0.1"),
        (lambda: Alternating(small_lr=0.1), r"alternating: large_lr is missing"),
        (lambda: Alternating(), r"alternating: give either small_lr and large_lr, or the spectrum mu, mu1, L1, L"),
        (lambda: Alternating(small_lr=0.1, large_lr=1.0, mu=0.1), r"give either small_lr and large_lr, or the spec"),
        (lambda: Alternating(mu=0.1, mu1=0.2, L1=0.9), r"alternating: L is missing"),
        (lambda: Alternating(mu=0.1, mu1=0.05, L1=0.9, L=1.0), r"alternating: mu=0.1 must be < mu1=0.05"),
        (lambda: Alternating(mu=0.1, mu1=0.2, L1=0.9, L=0.8), r"alternating: L1=0.9 must be < L=0.8"),
        (lambda: Alternating(mu=0.1, mu1=0.5, L1=0.6, L=1.3), r"leave no gap once the intervals are widened"),
        (lambda: Alternating(mu=0.1, mu1=0.2, L1=0.3, L=1.0), r"mu=0.1, mu1=0.2, L1=0.3, L=1.0 leave no gap"),
        (lambda: Alternating(small_lr=0.1, large_lr=1.0, period=3), r"alternating: period=3 must be even"),
        (lambda: Alternating(small_lr=0.1, large_lr=1.0, period=0), r"alternating: period=0 must be an integer >= 2"),
    ],
)
def test_bad_input_names_field_value_and_rule(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ------------------------------------------------------------------ clr-rl schedule


def test_cli_schedule_prints_and_draws_spike(tmp_path: Path, capsys):
    import matplotlib.image

    from clr_rl.cli import main

    spec = "spike:base_lr=1e-3,spike_lr=1e-1,period=4,total_steps=16"
    png = tmp_path / "spike.png"
    assert main(["schedule", spec, "--timesteps", "16", "--points", "17", "--png", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Spike(base_lr=0.001, spike_lr=0.1, period=4, width=1, total_steps=16)"
    rows = [line.split() for line in lines[2:19]]
    assert [int(t) for t, _, _ in rows] == list(range(17))
    assert [float(lr) for _, _, lr in rows] == [0.1, 0.001, 0.001, 0.001] * 4 + [0.001]  # ends on its last step
    assert lines[-1] == f"wrote {png}"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0


def test_cli_schedule_alternating_from_spectrum(capsys):
    from clr_rl.cli import main

    spec = "alternating:mu=0.01,mu1=0.11,L1=0.9,L=1,total_steps=8"
    assert main(["schedule", spec, "--timesteps", "8", "--points", "9"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    s = parse_schedule(spec)
    assert [float(lr) for _, _, lr in rows] == pytest.approx(
        [s.small_step, s.large_step] * 4 + [s.large_step], rel=1e-5
    )
