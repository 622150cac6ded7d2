"""Statistics and verdicts against hand-computed values, and the report's scoring rules.

Pure statistics are checked on hand-computed matrices (rliable's definitions written out
with numpy/scipy). The report's rules (diverged runs, envs without a reference, balanced
seeds, per-arm RNG streams, costs, margin, default baseline) are checked on small batch
folders written here with known returns, so every expected number is computed by hand;
the end-to-end acceptance run with real training is in ``test_report.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clr_rl import stats
from clr_rl.analysis.analyse import analyse, to_json
from clr_rl.analysis.collect import collect
from clr_rl.analysis.report import report

CARTPOLE_RANDOM, CARTPOLE_REF = 23.68, 475.0  # envs/classic.toml
ACROBOT_RANDOM, ACROBOT_REF = -497.08, -100.0


# ============================================================================ statistics by hand


def test_aggregates_follow_rliable_definitions() -> None:
    m = np.array([[0.2, 1.5], [0.0, 0.9], [0.6, 3.0]])  # runs x envs
    assert float(stats.median(m)) == pytest.approx(1.0333, abs=1e-4)  # median of env means 0.2667, 1.8
    assert float(stats.median(m)) == pytest.approx(float(np.median(m.mean(axis=0))))
    assert float(stats.AGGREGATES["mean"](m)) == pytest.approx(6.2 / 6)
    assert float(stats.iqm(m)) == pytest.approx(np.mean([0.2, 0.6, 0.9, 1.5]))  # 6 values: trim 1.5 -> scipy
    assert float(stats.optimality_gap(m)) == pytest.approx(1 - np.minimum(m, 1).mean())
    odd = np.array([[1.0, 10.0, 4.0], [3.0, 0.0, 4.0]])  # env means 2, 5, 4 -> median 4
    assert float(stats.median(odd)) == 4.0
    with pytest.raises(ValueError, match="axis"):
        stats.median(np.stack([m, m]), axis=(0, 1))
    assert set(stats.AGGREGATES) <= set(stats.DEFINITIONS)
    assert "median over envs of each env's mean" in stats.DEFINITIONS["median"]


def test_auc_is_the_trapezoid_over_timesteps_covered() -> None:
    rows = [{"timesteps": 0.0, "mean_return": 10.0}, {"timesteps": 100.0, "mean_return": 30.0},
            {"timesteps": 300.0, "mean_return": 30.0}]
    assert stats.auc(rows) == pytest.approx((100 * 20 + 200 * 30) / 300)
    assert stats.auc(rows[:1]) == 10.0 and math.isnan(stats.auc([]))


def test_holm_levels_by_hand() -> None:
    levels = stats.holm_levels({"a": 0.001, "b": 0.02, "c": 0.03, "d": 0.5})
    assert levels == {"a": (0.05 / 4, True), "b": (0.05 / 3, False), "c": (0.05 / 2, False), "d": (0.05, False)}
    # step-down: every p under its level in order -> all rejected
    assert stats.holm_levels({"a": 0.001, "b": 0.015, "c": 0.024})["c"] == (0.05, True)


def test_permutation_pvalue_is_exact_for_a_full_separation() -> None:
    """5 runs each, one env, all of x above all of y: exact two-sided p = 2 / C(10, 5) = 2/252."""
    x, y = np.arange(5, 10, dtype=float)[:, None], np.arange(5, dtype=float)[:, None]
    p = stats.permutation_pvalue(x, y, reps=20000, rng=np.random.default_rng(0))
    assert p == pytest.approx(2 / 252, abs=0.002)
    # 3 runs each: the smallest possible p is 2/20 = 0.1, so 3 seeds on one env can never reach 0.05
    p3 = stats.permutation_pvalue(x[:3] + 10, y[:3], reps=5000, rng=np.random.default_rng(1))
    assert p3 == pytest.approx(0.1, abs=0.015)


def test_seeds_needed_by_resampling_at_larger_n() -> None:
    rng = np.random.default_rng(4)
    # fully separated arms: every resample at n+1 still separates -> n + 1
    assert stats.seeds_needed(np.array([[5.0], [6.0], [7.0]]), np.array([[1.0], [2.0], [3.0]]), level=0.05,
                              margin=0.1, rng=rng) == 4
    # two arms from one distribution: equivalence for 80% power needs (1.96 + 0.84) sd(P) < 0.1 - |P - 0.5|
    # with var(P) ~ 1 / (6 N) for continuous scores; here P = 0.51, N ~ 161 (ties in resampled data lower it).
    # (The old bound 35..110 was the N at which a typical batch just decides: ~50% power, the bug of issue 21.)
    x, y = rng.normal(size=(20, 1)), rng.normal(size=(20, 1))
    sd = (0.1 - abs(float(stats._poi(x, y)) - 0.5)) / (1.96 + 0.84)
    need = stats.seeds_needed(x, y, level=0.05, margin=0.1, rng=np.random.default_rng(0), draws=400)
    assert need is not None and 0.6 / (6 * sd**2) <= need <= 1.5 / (6 * sd**2), need
    # a difference that sits on the margin (P = 0.6 with margin 0.1) may need more than the cap
    assert stats.seeds_needed(x, y, level=0.05, margin=0.1, rng=np.random.default_rng(0), cap=25) is None


def _tests_for(x: np.ndarray, y: np.ndarray, seed: int, reps: int = 400) -> dict[str, Any]:
    est, samples = stats.poi_samples(x, y, reps=reps, rng=stats.rng_for(seed, "b"))
    p = stats.permutation_pvalue(x, y, reps=reps, rng=stats.rng_for(seed, "p"))
    return {"estimate": est, "samples": samples, "p_value": p}


def test_decide_four_outcomes_and_margin() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(8, 2))
    tests = {"up": _tests_for(base + 10, base, 1), "down": _tests_for(base - 10, base, 2),
             "same": _tests_for(base.copy(), base, 3), "few": {"skip": "only 2 seeds"}}
    d = stats.decide(tests, margin=0.1)
    assert d["up"].verdict == "BEATS" and d["down"].verdict == "WORSE"
    assert d["few"].verdict == "NO VERDICT" and d["few"].reason == "only 2 seeds"
    # identical data: P = 0.5 exactly, but 8 seeds give a CI wider than +-0.1: inconclusive, with a seed estimate
    assert d["same"].verdict == "INCONCLUSIVE" and "neither excludes 0.5" in d["same"].reason
    # 3 live arms: Holm levels 0.05/3 and 0.05/2 for the two rejected, 0.05 for the last
    assert sorted(v.level for v in d.values() if v.level) == pytest.approx([0.05 / 3, 0.05 / 2, 0.05])
    # a wide margin turns the identical arm EQUIVALENT
    assert stats.decide({"same": tests["same"]}, margin=0.45)["same"].verdict == "EQUIVALENT"
    for bad in (0.0, 0.5, -0.1):
        with pytest.raises(ValueError, match=f"margin={bad}"):
            stats.decide(tests, margin=bad)


def test_an_inconclusive_verdict_says_which_guard_held_it_back() -> None:
    """BEATS needs both guards: the bootstrap CI at the Holm level excluding 0.5 and the permutation test
    rejecting at that level. When only the CI does, the reason must not claim the CI includes 0.5."""
    samples = np.linspace(0.52, 0.98, 401)  # every quantile above 0.5
    one = stats.decide({"arm": {"estimate": 0.76, "samples": samples, "p_value": 0.019}})["arm"]
    assert one.verdict == "BEATS" and one.level == pytest.approx(0.05)
    three = stats.decide({"arm": {"estimate": 0.76, "samples": samples, "p_value": 0.019},
                          "b": {"estimate": 0.5, "samples": np.linspace(0.2, 0.8, 401), "p_value": 0.9},
                          "c": {"estimate": 0.5, "samples": np.linspace(0.2, 0.8, 401), "p_value": 0.8}})
    arm = three["arm"]  # Holm level 0.05 / 3 = 0.0167 < p 0.019: not rejected
    assert arm.verdict == "INCONCLUSIVE" and arm.ci[0] > 0.5
    assert arm.reason == ("the CI excludes 0.5 but the permutation test does not reject at the Holm level "
                          "(p 0.019 > 0.0167)")
    stopped = stats.decide({"a": {"estimate": 0.5, "samples": np.linspace(0.2, 0.8, 401), "p_value": 0.001},
                            "b": {"estimate": 0.76, "samples": samples, "p_value": 0.002}})["b"]
    assert stopped.verdict == "INCONCLUSIVE" and "step-down stopped" in stopped.reason


def test_calibration_no_spurious_verdicts_when_every_arm_equals_the_baseline() -> None:
    """300 simulated batches (4 arms vs a baseline, all from one distribution, 5 seeds x 2 envs):
    the share with any BEATS/WORSE stays <= 0.05 + 2.5 standard errors of simulation noise."""
    rng = np.random.default_rng(20261201)
    batches, hits = 300, 0
    for b in range(batches):
        base = rng.normal(size=(5, 2))
        tests = {f"arm{i}": _tests_for(rng.normal(size=(5, 2)), base, b * 10 + i, reps=300) for i in range(4)}
        hits += any(v.verdict in ("BEATS", "WORSE") for v in stats.decide(tests).values())
    tolerance = 2.5 * math.sqrt(0.05 * 0.95 / batches)
    assert hits / batches <= 0.05 + tolerance, hits


def test_percentile_bootstrap_alone_is_anti_conservative_at_five_seeds() -> None:
    """Why the permutation test guards the verdict: the 95% bootstrap CI excludes 0.5 too often."""
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(400):
        _, samples = stats.poi_samples(rng.normal(size=(5, 1)), rng.normal(size=(5, 1)), reps=300, rng=rng)
        lo, hi = np.quantile(samples, [0.025, 0.975])
        hits += lo > 0.5 or hi < 0.5
    assert hits / 400 > 0.06


def test_rng_streams_are_per_key() -> None:
    a = stats.rng_for(3, "aggregates", "clr").random(4)
    stats.rng_for(3, "aggregates", "other").random(100)  # another stream drawn in between changes nothing
    assert np.array_equal(a, stats.rng_for(3, "aggregates", "clr").random(4))
    assert not np.array_equal(a, stats.rng_for(4, "aggregates", "clr").random(4))


def test_non_finite_scores_are_refused_by_the_statistics() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        stats.bootstrap_ci(np.array([[1.0], [np.nan]]), stats.iqm, reps=10, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-finite"):
        stats.poi_samples(np.array([[1.0]]), np.array([[np.nan]]), reps=10, rng=np.random.default_rng(0))


# ============================================================================ batch folders with known returns


def write_batch(root: Path, finals: dict[tuple[str, str], list[float | None]], *, budget: int = 1000,
                spec: dict[str, Any] | None = None, baseline: str | None = "fixed-tuned",
                setup: list[dict[str, Any]] | None = None, overshoot: int = 0) -> Path:
    """A batch folder: run k of (env, arm) has evaluations (budget/2, final/2), (budget + overshoot, final).

    ``None`` = a diverged run (status ``diverged``, NaN evaluation); ``"nan"`` strings are not used.
    """
    runs = []
    for (env, arm), values in finals.items():
        for seed, final in enumerate(values):
            folder = f"runs/{env}/{arm}/seed{seed}"
            path = root / folder
            path.mkdir(parents=True)
            value = math.nan if final is None else final
            rows = [(budget // 2, value / 2), (budget + overshoot, value)]
            path.joinpath("evaluations.csv").write_text(
                "timesteps,mean_return,std_return,episodes,wall_seconds\n"
                + "".join(f"{t},{v},0.0,5,1.0\n" for t, v in rows))
            record = {"status": "diverged" if final is None else "finished", "timesteps_done": budget + overshoot,
                      "wall_seconds": 2.5, "final_eval": {"mean_return": value},
                      "config": {"algo": "ppo", "eval_every": budget // 2, "eval_episodes": 5}}
            if final is None:
                record["error"] = "non-finite loss at update 3"
            path.joinpath("run.json").write_text(json.dumps(record))
            runs.append({"folder": folder, "env_id": env, "arm": arm, "seed": seed, "timesteps": budget,
                         "schedule": "constant:lr=0.001", "lr_provenance": f"{arm} LR for {env}: test"})
    resolved: dict[str, Any] = {"name": "hand", "spec": spec or {}, "baseline": baseline, "runs": runs}
    if setup is not None:
        resolved["setup"] = setup
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.resolved.json").write_text(json.dumps(resolved))
    return root


def _analyse(out: Path, baseline: str = "fixed-tuned", seed: int = 0, reps: int = 200) -> dict[str, Any]:
    resolved, runs = collect(out)
    return to_json(analyse(out, resolved, runs, baseline=baseline, reps=reps, seed=seed))


def _norm(v: float, rnd: float = CARTPOLE_RANDOM, ref: float = CARTPOLE_REF) -> float:
    return (v - rnd) / (ref - rnd)


def test_diverged_runs_score_as_the_random_policy_everywhere(tmp_path: Path) -> None:
    finals: dict[tuple[str, str], list[float | None]] = {
        ("CartPole-v1", "fixed-tuned"): [100.0, 200.0, 300.0, 400.0],
        ("CartPole-v1", "clr"): [150.0, None, 350.0, 450.0],  # seed 1 diverged
    }
    out = write_batch(tmp_path / "b", finals)
    st = _analyse(out)
    a = st["per_env"]["CartPole-v1"]["arms"]["clr"]
    assert a["diverged"] == 1 and a["seeds_done"] == 4
    assert a["diverged_reasons"] == ["seed 1: non-finite loss at update 3"]
    scored = [150.0, CARTPOLE_RANDOM, 350.0, 450.0]
    assert a["final_return"]["per_seed"] == scored
    assert a["final_return"]["mean"] == pytest.approx(np.mean(scored))
    assert a["auc"]["per_seed"][1] == CARTPOLE_RANDOM  # AUC likewise
    assert a["auc"]["per_seed"][0] == pytest.approx((75.0 + 150.0) / 2)  # trapezoid of (500, 75), (1000, 150)
    agg = st["aggregates"]["clr"]
    normed = np.array([_norm(v) for v in scored])
    assert agg["mean"]["estimate"] == pytest.approx(normed.mean())
    assert agg["median"]["estimate"] == pytest.approx(normed.mean())  # one env: median of one env mean
    assert agg["iqm"]["estimate"] == pytest.approx(float(stats.iqm(normed[:, None])))
    assert st["sample_efficiency"]["clr"]["iqm"][-1] == pytest.approx(float(stats.iqm(normed[:, None])))
    # P(improvement) by hand with the diverged run at 23.68: pairs (x > y) over 4 x 4
    x, y = np.array(scored), np.array([100.0, 200.0, 300.0, 400.0])
    assert st["comparisons"]["clr"]["estimate"] == pytest.approx(float((x[:, None] > y[None, :]).mean()))
    # no NaN anywhere in the statistics (it would be written as null); only "threshold never reached" is null
    text = json.dumps({k: st[k] for k in ("aggregates", "per_env", "sample_efficiency", "comparisons")})
    assert text.count("null") == text.count('"timesteps_to_threshold_median": null')
    md = report_md(out)
    assert "4/4, diverged 1/4" in md and "non-finite loss at update 3" in md


def report_md(out: Path, **kwargs: Any) -> str:
    assert report(out, reps=200, **kwargs) == 0
    return (out / "report" / "report.md").read_text()


def test_finished_run_with_a_nan_final_return_counts_as_diverged(tmp_path: Path) -> None:
    finals: dict[tuple[str, str], list[float | None]] = {("CartPole-v1", "fixed-tuned"): [100.0, 200.0, 300.0],
                                                          ("CartPole-v1", "clr"): [150.0, 250.0, 350.0]}
    out = write_batch(tmp_path / "b", finals)
    run = out / "runs/CartPole-v1/fixed-tuned/seed2"
    run.joinpath("evaluations.csv").write_text("timesteps,mean_return,std_return,episodes,wall_seconds\n"
                                               "500,150.0,0,5,1\n1000,nan,0,5,1\n")
    st = _analyse(out)
    base = st["per_env"]["CartPole-v1"]["arms"]["fixed-tuned"]
    assert base["diverged"] == 1 and base["final_return"]["per_seed"] == [100.0, 200.0, CARTPOLE_RANDOM]
    assert base["diverged_reasons"] == ["seed 2: non-finite final return"]


def test_sample_efficiency_at_the_full_budget_is_the_final_evaluation(tmp_path: Path) -> None:
    """The last evaluation overshoots the budget (1040 of 1000): 100% is its value, not an interpolation."""
    finals: dict[tuple[str, str], list[float | None]] = {("CartPole-v1", "fixed-tuned"): [300.0, 400.0, 350.0]}
    out = write_batch(tmp_path / "b", finals, overshoot=40)
    st = _analyse(out)
    normed = np.array([_norm(v) for v in (300.0, 400.0, 350.0)])[:, None]
    eff = st["sample_efficiency"]["fixed-tuned"]["iqm"]
    assert eff[-1] == pytest.approx(float(stats.iqm(normed)))
    # at 50% the first evaluation (500 steps = 0.5 of the planned budget): final / 2
    half = np.array([_norm(v / 2) for v in (300.0, 400.0, 350.0)])[:, None]
    assert eff[10] == pytest.approx(float(stats.iqm(half)))


def test_removing_an_arm_does_not_move_another_arms_intervals(tmp_path: Path) -> None:
    base = [100.0, 220.0, 300.0, 410.0, 150.0]
    three = {("CartPole-v1", "fixed-tuned"): base, ("CartPole-v1", "clr"): [120.0, 260.0, 330.0, 380.0, 200.0],
             ("CartPole-v1", "other"): [50.0, 60.0, 70.0, 80.0, 90.0]}
    two = {k: v for k, v in three.items() if k[1] != "other"}
    s3 = _analyse(write_batch(tmp_path / "three", dict(three)), seed=7)
    s2 = _analyse(write_batch(tmp_path / "two", dict(two)), seed=7)
    for arm in ("clr", "fixed-tuned"):
        assert s3["aggregates"][arm] == s2["aggregates"][arm]
        assert s3["performance_profiles"].get(arm, {}).get("fraction") is not None
        assert s3["sample_efficiency"][arm] == s2["sample_efficiency"][arm]
    c3, c2 = s3["comparisons"]["clr"], s2["comparisons"]["clr"]
    assert (c3["estimate"], c3["ci_low"], c3["ci_high"], c3["p_value"]) == (
        c2["estimate"], c2["ci_low"], c2["ci_high"], c2["p_value"])
    # the Holm level depends on the family, and says so: 2 arms vs 1 arm compared
    assert c2["holm_level"] == 0.05 and c3["holm_level"] in (0.025, 0.05)


def test_balanced_by_seed_id(tmp_path: Path) -> None:
    finals: dict[tuple[str, str], list[float | None]] = {
        ("CartPole-v1", "fixed-tuned"): [100.0, 200.0, 300.0, 400.0],
        ("Acrobot-v1", "fixed-tuned"): [-400.0, -300.0, -200.0, -150.0],
        ("CartPole-v1", "clr"): [110.0, 210.0, 310.0, 410.0],
        ("Acrobot-v1", "clr"): [-390.0, -290.0, -190.0, -140.0]}
    out = write_batch(tmp_path / "b", finals)
    (out / "runs/CartPole-v1/clr/seed0/run.json").unlink()  # seed 0 not run yet in one env
    st = _analyse(out)
    assert st["aggregates"]["clr"]["seeds"] == [1, 2, 3] and st["aggregates"]["fixed-tuned"]["seeds"] == [0, 1, 2, 3]
    assert st["aggregates"]["clr"]["finished_runs_left_out"] == 1  # Acrobot seed 0
    m = np.array([[_norm(v), _norm(w, ACROBOT_RANDOM, ACROBOT_REF)]
                  for v, w in ((210.0, -290.0), (310.0, -190.0), (410.0, -140.0))])
    assert st["aggregates"]["clr"]["mean"]["estimate"] == pytest.approx(m.mean())
    assert st["aggregates"]["clr"]["median"]["estimate"] == pytest.approx(float(np.median(m.mean(axis=0))))
    assert st["comparisons"]["clr"]["seeds"] == [1, 2, 3]
    # clr is above the baseline on every seed id of both envs: P = mean over envs of pairs (x > y) on seeds 1..3
    assert st["comparisons"]["clr"]["estimate"] == pytest.approx(6 / 9)


def test_no_verdict_below_three_seeds_or_when_every_run_ties(tmp_path: Path) -> None:
    finals: dict[tuple[str, str], list[float | None]] = {("CartPole-v1", "fixed-tuned"): [500.0, 500.0],
                                                          ("CartPole-v1", "clr"): [10.0, 20.0]}
    st = _analyse(write_batch(tmp_path / "two", finals))
    assert st["comparisons"]["clr"]["verdict"] == "NO VERDICT"
    assert "only 2 seed(s)" in st["verdicts"]["clr"]
    ties: dict[tuple[str, str], list[float | None]] = {("CartPole-v1", "fixed-tuned"): [500.0] * 5,
                                                         ("CartPole-v1", "clr"): [500.0] * 5}
    st = _analyse(write_batch(tmp_path / "ties", ties))
    assert st["comparisons"]["clr"]["verdict"] == "NO VERDICT"
    assert "every run of both arms scored the same" in st["verdicts"]["clr"]


def test_env_without_a_reference_is_left_out_of_aggregates(tmp_path: Path) -> None:
    """FrozenLake-v1 is not in envs/: its random score is measured and cached; with no reference
    score it stays out of the cross-env aggregates; its tiny returns print with significant digits."""
    import gymnasium as gym

    finals: dict[tuple[str, str], list[float | None]] = {
        ("CartPole-v1", "fixed-tuned"): [100.0, 200.0, 300.0], ("CartPole-v1", "clr"): [150.0, 250.0, 350.0],
        ("FrozenLake-v1", "fixed-tuned"): [0.001, 0.002, 0.003], ("FrozenLake-v1", "clr"): [0.0012, 0.0013, 0.0011]}
    out = write_batch(tmp_path / "b", finals)
    st = _analyse(out)
    fl = st["per_env"]["FrozenLake-v1"]
    cached = json.loads((out / "random_scores.json").read_text())["FrozenLake-v1"]
    assert cached["episodes"] == 100 and cached["seed"] == 0 and cached["gymnasium"] == gym.__version__
    assert fl["random_score"] == cached["random_score"] and 0.0 <= fl["random_score"] < 0.1
    assert fl["reference_score"] is None and fl["in_aggregates"] is False
    assert st["aggregate_envs"] == ["CartPole-v1"]
    normed = np.array([_norm(v) for v in (150.0, 250.0, 350.0)])
    assert st["aggregates"]["clr"]["mean"]["estimate"] == pytest.approx(normed.mean())  # CartPole only
    # the cache is used: an edited cached value is what the next report reads
    cached["random_score"] = 0.5
    (out / "random_scores.json").write_text(json.dumps({"FrozenLake-v1": cached}))
    assert _analyse(out)["per_env"]["FrozenLake-v1"]["random_score"] == 0.5
    md = report_md(out)
    assert "left out of the cross-env aggregates" in md
    assert "0.002 ± 0.001" in md and "0.0012 ± 0.0001" in md and "0.00 ± 0.00" not in md


def test_spec_overrides_give_the_reference(tmp_path: Path) -> None:
    finals: dict[tuple[str, str], list[float | None]] = {("FrozenLake-v1", "fixed-tuned"): [0.2, 0.4, 0.6],
                                                          ("FrozenLake-v1", "clr"): [0.3, 0.5, 0.7]}
    spec = {"overrides": {"FrozenLake-v1": {"random_score": 0.0, "reference_score": 0.8}}}
    out = write_batch(tmp_path / "b", finals, spec=spec)
    st = _analyse(out)
    assert st["aggregate_envs"] == ["FrozenLake-v1"] and not (out / "random_scores.json").exists()
    assert st["aggregates"]["clr"]["mean"]["estimate"] == pytest.approx(np.mean([0.3, 0.5, 0.7]) / 0.8)
    assert st["per_env"]["FrozenLake-v1"]["reference_source"] == "spec [overrides] reference_score"


def test_margin_and_default_baseline(tmp_path: Path) -> None:
    finals: dict[tuple[str, str], list[float | None]] = {("CartPole-v1", "fixed-tuned"): [100.0, 200.0, 300.0],
                                                          ("CartPole-v1", "clr"): [150.0, 250.0, 350.0]}
    out = write_batch(tmp_path / "b", finals, baseline=None, spec={"report": {"margin": 0.3}})
    report_md(out)
    st = json.loads((out / "report" / "stats.json").read_text())
    assert st["baseline"] == "fixed-tuned" and st["margin"] == 0.3  # exact name; margin from the spec
    report_md(out, margin=0.2)
    assert json.loads((out / "report" / "stats.json").read_text())["margin"] == 0.2
    for bad in (0.5, 0.0, -1.0):
        with pytest.raises(ValueError, match=f"margin={bad}"):
            report(out, margin=bad)
    # no baseline key and no arm named exactly fixed-tuned: bad input (no substring guess)
    other = write_batch(tmp_path / "c", {("CartPole-v1", "untuned-clr"): [1.0, 2.0, 3.0],
                                         ("CartPole-v1", "fixed"): [1.0, 2.0, 3.0]}, baseline=None)
    with pytest.raises(ValueError, match=r"baseline: .*no arm named 'fixed-tuned'"):
        report(other)


def test_cost_table_and_the_answer(tmp_path: Path) -> None:
    finals: dict[tuple[str, str], list[float | None]] = {
        ("CartPole-v1", "fixed-tuned"): [100.0, 110.0, 120.0, 130.0, 140.0],
        ("CartPole-v1", "clr-range"): [400.0, 410.0, 420.0, 430.0, 440.0]}
    setup = [{"env": "CartPole-v1", "arm": "fixed-tuned", "method": "tune", "timesteps": 14_000,
              "wall_seconds": 70.0, "detail": "grid 1e-5:1e-2:7 x 2 seeds"},
             {"env": "CartPole-v1", "arm": "clr-range", "method": "lr_range", "timesteps": 1_000,
              "wall_seconds": 5.0, "detail": "single run"}]
    out = write_batch(tmp_path / "b", finals, setup=setup)
    md = report_md(out)
    st = json.loads((out / "report" / "stats.json").read_text())
    costs = {c["arm"]: c for c in st["costs"]}
    assert costs["clr-range"]["setup_ratio_vs_baseline"] == pytest.approx(1 / 14)
    assert costs["fixed-tuned"]["run_timesteps"] == 5000 and costs["fixed-tuned"]["run_wall_seconds"] == 12.5
    assert st["comparisons"]["clr-range"]["verdict"] == "BEATS"
    lines = md.splitlines()
    assert lines[2] == "## The answer" and lines[4] == st["answer"]
    assert st["answer"].startswith("Yes, on these envs: `clr-range` beat")
    assert "1/14 of the baseline's 14,000" in st["answer"] and "Caveats: 5 seeds" in st["answer"]
    row = "| CartPole-v1 | clr-range | lr_range | 1,000 | 5 | 5,000 | 12.5 | 1/14 | clr-range LR for CartPole-v1: test"
    assert row in md
