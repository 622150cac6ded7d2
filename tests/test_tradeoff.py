"""``clr_rl.tradeoff``: the return-vs-budget curve from one run of cosine restarts (Portes et al. 2022).

Oracles, independent of the code under test:

* torch's ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`` stepped once per LR update
  gives the LR SB3 applies at every update of the planned run, and restarts exactly at the
  planned budgets (cycle lengths and budgets are also computed by hand here);
* the curve in ``tradeoff.csv`` is recomputed from each run folder's ``evaluations.csv``
  (read with the ``csv`` module), with a Student-t interval from ``scipy.stats.t``;
* the first budget's separate run shares seed and LR sequence with the single run up to
  that budget, so the two policies, hence their returns, must be identical;
* the normalised gap uses CartPole-v1's random (23.68) and reference (475) scores.

Training is tiny: PPO CartPole-v1 with ``n_steps=32 x n_envs=8`` (an LR update every 256
steps), 2 cycles over 1,536 steps, 2 seeds, 2 evaluation episodes (about 15 s on 2 cores).
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from clr_rl.phases.tradeoff import gap_stats, plan_tradeoff, tradeoff

ENV = "CartPole-v1"
TINY = {"n_steps": 32, "n_envs": 8}  # U = 256
RANDOM, REFERENCE = 23.68, 475.0  # envs/classic.toml


def torch_lrs(t0: int, t_mult: int, eta_min: float, max_lr: float, n: int) -> list[float]:
    """LR of updates 0..n-1 from torch's SGDR, stepped once per update."""
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=max_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=t_mult, eta_min=eta_min)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


# ------------------------------------------------------------------ planning


@pytest.mark.parametrize(("timesteps", "cycles", "t_mult", "c0_updates", "budgets"), [
    # 32768 * (2-1)/(2^4-1) = 2184.5 = 8.53 updates -> 9 updates = 2304; T = 15 * 2304
    (32768, 4, 2, 9, (2304, 6912, 16128, 34560)),
    # 20000 * 2/26 = 1538.5 = 6.01 updates -> 6 = 1536; T = 13 * 1536
    (20000, 3, 3, 6, (1536, 6144, 19968)),
])
def test_plan_matches_torch_sgdr(timesteps: int, cycles: int, t_mult: int, c0_updates: int,
                                 budgets: tuple[int, ...]) -> None:
    plan = plan_tradeoff("ppo", ENV, timesteps, cycles, t_mult=t_mult, overrides=TINY)
    u = 256
    assert plan.update_every == u
    assert plan.first_cycle_timesteps == c0_updates * u
    assert plan.budgets == budgets
    assert plan.timesteps == budgets[-1]
    assert plan.eval_every == c0_updates * u  # every budget is a multiple of the first cycle
    assert plan.schedule.max_lr == 1e-3 and plan.schedule.min_lr == 0.0  # CartPole's tuned LR (agents/ppo.toml)
    n = plan.timesteps // u
    expected = torch_lrs(c0_updates, t_mult, 0.0, 1e-3, n + 1)
    # SB3 applies schedule(1 - t/T) at the update made at timestep t (t = i U)
    ours = [plan.schedule(1 - i * u / plan.timesteps) for i in range(n)]
    assert ours == pytest.approx(expected[:n], rel=1e-9, abs=1e-15)
    restarts = [i * u for i in range(1, n + 1) if expected[i] == pytest.approx(1e-3) and expected[i - 1] < 1e-3]
    assert tuple(restarts) == budgets  # torch restarts (and would restart again at T) exactly at the budgets
    assert plan.schedule(0.0) == 0.0  # the run itself ends at the trough
    assert plan.compute() == {"single_timesteps_per_seed": budgets[-1],
                              "separate_timesteps_per_seed": sum(budgets),
                              "separate_over_single": sum(budgets) / budgets[-1]}


def test_plan_fractional_t_mult_rounds_budgets_up_to_the_next_update() -> None:
    plan = plan_tradeoff("ppo", ENV, 32768, 3, t_mult=1.5, min_lr_fraction=0.1, max_lr=2e-3, overrides=TINY)
    c0 = 32768 * 0.5 / (1.5**3 - 1)  # 6898.5
    assert plan.timesteps == 32768
    assert plan.first_cycle_timesteps == pytest.approx(c0)
    assert plan.cycle_ends == pytest.approx((c0, c0 * 2.5, 32768.0))
    # first update boundary at or after each trough: 27 x 256 = 6912 >= 6898.5; 68 x 256 = 17408 >= 17246.3
    assert plan.budgets == (6912, 17408, 32768)
    assert plan.eval_every == 256  # gcd(27, 68, 128) updates
    assert (plan.schedule.min_lr, plan.schedule.max_lr) == (pytest.approx(2e-4), 2e-3)
    for b in plan.budgets[:-1]:  # the update before the budget is the cycle's last one; the next restarts
        assert plan.schedule(1 - (b - 256) / 32768) < 0.25 * 2e-3 < plan.schedule(1 - b / 32768)
    assert "given by the user" in plan.lr_provenance and "0.1 x max_lr" in plan.lr_provenance


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"cycles": 1}, ["cycles=1", ">= 2"]),
    ({"cycles": 3.0}, ["cycles=3.0", "integer"]),
    ({"t_mult": 1.0}, ["t_mult=1.0", "> 1"]),
    ({"t_mult": 0.5}, ["t_mult=0.5", "> 1"]),
    # 4096 / 15 = 273 timesteps < 2 updates of 256
    ({"timesteps": 4096}, ["first cycle", "273 timesteps", "2 x 256 = 512", "n_steps=32 x n_envs=8"]),
    ({"min_lr_fraction": 1.0}, ["min_lr_fraction=1.0", "[0, 1)"]),
    ({"max_lr": -1e-3}, ["max_lr=-0.001", "> 0"]),
    ({"max_lr": "best"}, ["max_lr='best'", "'tuned'"]),
    ({"algo": "a2c"}, ["algo='a2c'", "ppo or dqn"]),
])
def test_bad_input_names_field_value_and_rule(kwargs: dict[str, Any], words: list[str]) -> None:
    args: dict[str, Any] = {"algo": "ppo", "env_id": ENV, "timesteps": 32768, "cycles": 4, "overrides": TINY}
    args.update(kwargs)
    algo, env_id, timesteps, cycles = (args.pop(k) for k in ("algo", "env_id", "timesteps", "cycles"))
    with pytest.raises(ValueError) as err:
        plan_tradeoff(algo, env_id, timesteps, cycles, **args)
    for word in words:
        assert word in str(err.value)


def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for kwargs, word in (({"seeds": 0}, "seeds=0"), ({"cycles": 1}, "cycles=1"),
                         ({"eval_episodes": 0}, "eval_episodes=0"), ({"workers": 0}, "workers=0")):
        args: dict[str, Any] = {"algo": "ppo", "env_id": ENV, "timesteps": 1536, "cycles": 2, "out": out,
                                "overrides": TINY, **kwargs}
        with pytest.raises(ValueError, match=word):
            tradeoff(**args)
    assert not out.exists()


def test_gap_stats_hand_computed() -> None:
    # every seed has the same differences: the bootstrap cannot move, so each CI is the point
    single = [[0.5, 0.4, 0.9], [0.6, 0.3, 0.7], [0.7, 0.2, 0.8]]
    separate = [[0.4, 0.6, 0.9], [0.5, 0.5, 0.7], [0.6, 0.4, 0.8]]
    r = gap_stats(single, separate, reps=500, seed=1)
    assert r["gap"] == pytest.approx([0.1, -0.2, 0.0])
    assert r["ci_low"] == pytest.approx(r["gap"]) and r["ci_high"] == pytest.approx(r["gap"])
    assert r["mean_abs_gap"]["estimate"] == pytest.approx(0.1)  # (0.1 + 0.2 + 0) / 3
    assert r["mean_gap"]["estimate"] == pytest.approx(-0.1 / 3)
    assert r["mean_abs_gap_after_first"]["estimate"] == pytest.approx(0.1)  # (0.2 + 0) / 2
    assert r["noise_floor"] == pytest.approx(0.0, abs=1e-12)  # no spread over seeds: no noise
    # noisy differences: the CI brackets the estimate, and the seed makes it reproducible
    noisy = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.2], [0.9, 0.1]]
    zeros = [[0.0, 0.0]] * 4
    a, b, c = (gap_stats(noisy, zeros, reps=2000, seed=s) for s in (7, 7, 8))
    assert a == b and a != c
    m = a["mean_abs_gap"]
    assert m["estimate"] == pytest.approx((0.6 + 0.325) / 2)
    assert m["ci_low"] <= m["estimate"] <= m["ci_high"]
    # sd of (1, 0, .5, .9) = 0.4546, of (0, 1, .2, .1) = 0.4573 (ddof 1): sqrt(2/pi) sd / 2, averaged
    assert a["noise_floor"] == pytest.approx(math.sqrt(2 / math.pi) * (0.45460606 + 0.45734742) / 2 / 2, rel=1e-6)
    with pytest.raises(ValueError, match="of one shape"):
        gap_stats([[1.0, 2.0]], [[1.0]], reps=100, seed=0)


# ------------------------------------------------------------------ training


def _evaluations(path: Path) -> dict[int, float]:
    with open(path) as fh:
        return {int(float(r["timesteps"])): float(r["mean_return"]) for r in csv.DictReader(fh)}


def _t_interval(values: list[float]) -> tuple[float, float, float]:
    from scipy.stats import t

    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def test_tradeoff_validate_tiny_cartpole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tradeoff"
    result = tradeoff(algo="ppo", env_id=ENV, timesteps=1536, cycles=2, out=out, seeds=2, workers=2, validate=True,
                      eval_episodes=2, overrides=TINY, device="cpu", reps=500)
    printed = capsys.readouterr().out
    assert result["plan"]["budgets"] == [512, 1536] and result["exit_status"] == 0 and result["left_out"] == []
    runs = out / "runs" / ENV
    assert sorted(p.name for p in runs.iterdir()) == ["anneal1536", "anneal512", "restarts"]

    # every evaluation sits exactly on its budget: the single run at each multiple of the first cycle
    single = [_evaluations(runs / "restarts" / f"seed{s}" / "evaluations.csv") for s in (0, 1)]
    assert all(sorted(ev) == [0, 512, 1024, 1536] for ev in single)
    separate = {b: [_evaluations(runs / f"anneal{b}" / f"seed{s}" / "evaluations.csv") for s in (0, 1)]
                for b in (512, 1536)}
    assert all(sorted(ev) == [0, b] for b, evs in separate.items() for ev in evs)
    for s in (0, 1):  # the schedules the separate runs really used: one cosine over their budget
        cfg = json.loads((runs / "anneal512" / f"seed{s}" / "run.json").read_text())["config"]
        assert cfg["schedule"] == "cosine_restarts:min_lr=0,max_lr=0.001,cycles=1"
        assert cfg["timesteps"] == 512

    # tradeoff.csv against the run folders
    with open(out / "tradeoff.csv") as fh:
        rows = {(r["approach"], int(r["budget"])): r for r in csv.DictReader(fh)}
    assert sorted(rows) == [("separate", 512), ("separate", 1536), ("single", 512), ("single", 1536)]
    values: dict[tuple[str, int], list[float]] = {}
    for b in (512, 1536):
        values["single", b] = [ev[b] for ev in single]
        values["separate", b] = [ev[b] for ev in separate[b]]
    for key, vals in values.items():
        row = rows[key]
        mean, lo, hi = _t_interval(vals)
        assert float(row["mean_return"]) == pytest.approx(mean)
        if vals[0] != vals[1]:
            assert (float(row["ci_low"]), float(row["ci_high"])) == (pytest.approx(lo), pytest.approx(hi))
        assert float(row["mean_normalised"]) == pytest.approx((mean - RANDOM) / (REFERENCE - RANDOM))
        assert int(row["seeds"]) == 2 and row["eval_timesteps"] == str(key[1])

    # same seed and the same LR at every update up to the first budget: the same policy
    assert values["single", 512] == values["separate", 512]
    with open(out / "gap.csv") as fh:
        gaps = list(csv.DictReader(fh))
    assert float(gaps[0]["gap_normalised"]) == 0.0 and gaps[0]["identical_by_construction"] == "True"
    expected = (sum(values["single", 1536]) - sum(values["separate", 1536])) / 2 / (REFERENCE - RANDOM)
    assert float(gaps[1]["gap_normalised"]) == pytest.approx(expected)
    g = result["gap"]
    assert g["mean_abs_gap"]["estimate"] == pytest.approx(abs(expected) / 2)
    assert g["mean_abs_gap_after_first"]["estimate"] == pytest.approx(abs(expected))

    c = result["compute"]
    assert (c["single_timesteps_per_seed"], c["separate_timesteps_per_seed"]) == (1536, 2048)
    assert c["separate_over_single"] == pytest.approx(4 / 3)
    assert "separate runs 2,048 (1.33x the single run)" in printed
    saved = json.loads((out / "tradeoff.json").read_text())
    assert saved["plan"]["schedule"] == "cosine_restarts:min_lr=0,max_lr=0.001,cycles=2,t_mult=2"
    assert "tuned fixed LR" in saved["plan"]["lr_provenance"]

    import matplotlib.image

    image = matplotlib.image.imread(out / "tradeoff.png")
    assert image.shape[0] > 500 and image.shape[1] > 500

    # the same call again resumes: nothing is retrained, the numbers are the same
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/seed*/run.json")}
    again = tradeoff(algo="ppo", env_id=ENV, timesteps=1536, cycles=2, out=out, seeds=2, workers=2, validate=True,
                     eval_episodes=2, overrides=TINY, device="cpu", reps=500)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["curve"] == result["curve"] and again["gap"] == result["gap"]


@pytest.mark.skipif(os.environ.get("CLR_RL_SLOW") != "1", reason="acceptance size (CLR_RL_SLOW=1): about 1-2 min")
def test_acceptance_cartpole_32768_4_cycles(tmp_path: Path) -> None:
    result = tradeoff(algo="ppo", env_id=ENV, timesteps=32768, cycles=4, out=tmp_path / "t", device="cpu")
    assert len([r for r in result["curve"] if r["approach"] == "single"]) == 4
    assert (tmp_path / "t" / "tradeoff.png").stat().st_size > 10_000
