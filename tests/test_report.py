"""``clr-rl report`` and ``clr-rl tensorboard``: the statistics, the report and the event files.

The statistics are checked against hand-computed matrices and independent oracles
(scipy's ``trim_mean``, ``mannwhitneyu``, ``t.interval``, ``bootstrap``). The report is
built from one tiny real batch (CartPole-v1 and Acrobot-v1 x 2 arms x 3 seeds at 1024
steps, trained once for the module) and read back the way a user would: ``report.md``'s
tables and verdicts, ``stats.json`` against the run folders' ``run.json`` and the
normalisation scores in ``envs/classic.toml``, the PNGs opened with matplotlib, the
HParams and custom-scalars layout read back with TensorBoard's ``EventAccumulator``,
and a real TensorBoard server asked for its runs over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clr_rl import stats

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).with_name("clr-rl")  # the installed console script
CLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "clr_rl.cli"]
PPO_TOML = tomllib.loads((ROOT / "agents" / "ppo.toml").read_text())
CLASSIC_TOML = tomllib.loads((ROOT / "envs" / "classic.toml").read_text())
ENVS = ("CartPole-v1", "Acrobot-v1")
ARMS = ("fixed", "around")
SEEDS = (0, 1, 2)



def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _ok(proc: subprocess.CompletedProcess[str], status: int = 0) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == status, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2 and exactly one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("clr-rl: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


# ============================================================================ statistics, by hand


def test_iqm_of_a_known_matrix() -> None:
    from scipy.stats import trim_mean

    # 8 values; sorted 0, 1, 2, 3, 4, 5, 6, 100: the middle 50% is 2, 3, 4, 5 -> 3.5
    matrix = np.array([[5.0, 0.0], [100.0, 3.0], [1.0, 6.0], [4.0, 2.0]])
    assert float(stats.iqm(matrix)) == 3.5
    assert float(trim_mean(matrix.reshape(-1), 0.25)) == 3.5
    # 12 values (3 runs x 4 envs): trim 3 from each end -> mean of the middle 6
    rng = np.random.default_rng(7)
    m12 = rng.normal(size=(3, 4))
    middle = np.sort(m12.reshape(-1))[3:9]
    assert float(stats.iqm(m12)) == pytest.approx(middle.mean(), rel=1e-12)
    # stacked bootstrap samples: axis=(1, 2) pools runs and envs, one IQM per sample
    stack = np.stack([matrix, matrix + 10.0, 2 * matrix])
    np.testing.assert_allclose(stats.iqm(stack, axis=(1, 2)), [3.5, 13.5, 7.0])


def test_median_mean_and_optimality_gap_of_a_known_matrix() -> None:
    # values 0, 0.2, 0.6, 0.9, 1.5, 3.0
    matrix = np.array([[0.2, 1.5], [0.0, 0.9], [0.6, 3.0]])
    agg = stats.AGGREGATES
    # rliable's median: median over envs of each env's mean (0.8/3 and 5.4/3) -> 3.1/3 = 1.0333,
    # not the median of all six values (0.75)
    assert float(agg["median"](matrix)) == pytest.approx(3.1 / 3)
    np.testing.assert_allclose(agg["median"](np.stack([matrix, matrix + 1]), axis=(1, 2)), [3.1 / 3, 6.1 / 3])
    # three envs: env means 1, 5, 2 -> median 2 (the median of all values would be 2.5)
    assert float(agg["median"](np.array([[0.0, 4.0, 2.0], [2.0, 6.0, 2.0]]))) == pytest.approx(2.0)
    assert float(agg["mean"](matrix)) == pytest.approx(6.2 / 6)
    # gap below 1: 1-0.2, 1-0, 1-0.6, 1-0.9, 0, 0 -> 2.3 / 6
    assert float(agg["optimality_gap"](matrix)) == pytest.approx(2.3 / 6)
    # gap below 2: 1.8 + 2 + 1.4 + 1.1 + 0.5 + 0 = 6.8
    assert float(stats.optimality_gap(matrix, gamma=2.0)) == pytest.approx(6.8 / 6)
    np.testing.assert_allclose(agg["optimality_gap"](np.stack([matrix, matrix + 1]), axis=(1, 2)),
                               [2.3 / 6, 0.0])
    assert set(agg) == {"iqm", "median", "mean", "optimality_gap"}


def test_normalize_and_performance_profile_by_hand() -> None:
    # CartPole: random 23.68, reference 475 -> 249.34 is exactly half way
    assert float(stats.normalize(249.34, 23.68, 475.0)) == pytest.approx(0.5)
    # Acrobot rewards are negative: reference -100 is 1, random -497.08 is 0
    np.testing.assert_allclose(stats.normalize([-497.08, -100.0], -497.08, -100.0), [0.0, 1.0])
    matrix = np.array([[0.2, 1.5], [0.0, 0.9]])
    point, lo, hi = stats.performance_profile(matrix, np.array([-0.1, 0.0, 0.5, 1.0, 2.0]), reps=200,
                                              rng=np.random.default_rng(0))
    np.testing.assert_allclose(point, [1.0, 0.75, 0.5, 0.25, 0.0])  # strictly greater than tau
    assert np.all(lo <= point + 1e-12) and np.all(point <= hi + 1e-12)


def test_probability_of_improvement_by_hand() -> None:
    rng = np.random.default_rng(0)
    # pairs: 2>1 -> 1, 2=2 -> 0.5, 3>1 -> 1, 3>2 -> 1: 3.5 / 4
    p, lo, hi = stats.probability_of_improvement(np.array([[2.0], [3.0]]), np.array([[1.0], [2.0]]), reps=500,
                                                 rng=rng)
    assert p == 0.875
    assert 0.0 <= lo <= hi <= 1.0
    # all ties: 0.5
    assert stats.probability_of_improvement(np.ones((3, 1)), np.ones((4, 1)), reps=50, rng=rng)[0] == 0.5
    # Y always better: 0
    assert stats.probability_of_improvement(np.zeros((2, 1)), np.ones((2, 1)), reps=50, rng=rng)[0] == 0.0
    # two envs, averaged: env A as above (0.875); env B X=[0,1], Y=[1,2]: only 1=1 counts 0.5 -> 0.125
    x = np.array([[2.0, 0.0], [3.0, 1.0]])
    y = np.array([[1.0, 1.0], [2.0, 2.0]])
    assert stats.probability_of_improvement(x, y, reps=50, rng=rng)[0] == pytest.approx((0.875 + 0.125) / 2)


def test_probability_of_improvement_equals_mann_whitney_per_env() -> None:
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(11)
    x = rng.integers(0, 4, size=(5, 2)).astype(float)  # small integers: many ties
    y = rng.integers(0, 4, size=(7, 2)).astype(float)  # run counts may differ between arms
    expected = np.mean([mannwhitneyu(x[:, j], y[:, j], method="asymptotic").statistic / (5 * 7) for j in range(2)])
    p, lo, hi = stats.probability_of_improvement(x, y, reps=1000, rng=np.random.default_rng(0))
    assert p == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= lo <= p <= hi <= 1.0


def test_bootstrap_ci_contains_the_true_mean_and_is_reproducible() -> None:
    rng = np.random.default_rng(2024)
    matrix = rng.normal(0.0, 1.0, size=(200, 2))  # 200 runs per env, true mean 0
    point, lo, hi = stats.bootstrap_ci(matrix, stats.AGGREGATES["mean"], reps=2000, rng=np.random.default_rng(5))
    assert point == pytest.approx(matrix.mean())
    assert lo < 0.0 < hi
    # half-width about 1.96 / sqrt(400) = 0.098
    assert 0.07 < (hi - lo) / 2 < 0.13
    again = stats.bootstrap_ci(matrix, stats.AGGREGATES["mean"], reps=2000, rng=np.random.default_rng(5))
    assert again == (point, lo, hi)
    other = stats.bootstrap_ci(matrix, stats.AGGREGATES["mean"], reps=2000, rng=np.random.default_rng(6))
    assert other[0] == point and other[1:] != (lo, hi)  # same estimate, another Monte Carlo CI


def test_bootstrap_ci_agrees_with_scipy_bootstrap() -> None:
    """Two envs resampled independently = scipy's bootstrap over two samples (percentile method)."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(3)
    matrix = np.column_stack([rng.normal(0.0, 1.0, 60), rng.exponential(2.0, 60)])

    def pooled_mean(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(np.concatenate([a, b], axis=axis), axis=axis)

    ref = bootstrap((matrix[:, 0], matrix[:, 1]), pooled_mean, n_resamples=20000, method="percentile",
                    vectorized=True, rng=np.random.default_rng(1)).confidence_interval
    point, lo, hi = stats.bootstrap_ci(matrix, stats.AGGREGATES["mean"], reps=20000, rng=np.random.default_rng(2))
    assert point == pytest.approx(matrix.mean())
    assert lo == pytest.approx(ref.low, abs=0.02)
    assert hi == pytest.approx(ref.high, abs=0.02)


def test_stratified_resampling_stays_within_each_env() -> None:
    rng = np.random.default_rng(0)
    matrix = np.column_stack([rng.uniform(0, 1, 6), rng.uniform(10, 11, 6), rng.uniform(100, 101, 6)])
    samples = stats._resample(matrix, 500, np.random.default_rng(1))
    assert samples.shape == (500, 6, 3)
    for j in range(3):
        # every resampled value of env j is one of env j's runs, so its mean stays in env j's range
        assert np.isin(samples[:, :, j], matrix[:, j]).all()
        means = samples[:, :, j].mean(axis=1)
        assert matrix[:, j].min() <= means.min() and means.max() <= matrix[:, j].max()
    # a real resample: draws with replacement, not the original order every time
    assert any(len(np.unique(samples[k, :, 0])) < 6 for k in range(500))
    assert not all(np.array_equal(samples[k], matrix) for k in range(500))
    # envs are drawn independently: the row chosen in env 0 does not fix the row chosen in env 1
    rows0 = np.searchsorted(np.sort(matrix[:, 0]), samples[:, :, 0])
    rows1 = np.searchsorted(np.sort(matrix[:, 1]), samples[:, :, 1])
    assert (rows0 != rows1).mean() > 0.5


def test_mean_ci_t_against_scipy_t_interval() -> None:
    from scipy import stats as sps

    x = np.array([3.0, 7.5, 4.25, 9.0, 1.0])
    mean, std, lo, hi = stats.mean_ci_t(x)
    ref = sps.t.interval(0.95, df=len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert mean == pytest.approx(x.mean())
    assert std == pytest.approx(x.std(ddof=1))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)
    ref90 = sps.t.interval(0.9, df=len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert stats.mean_ci_t(x, confidence=0.9)[2:] == pytest.approx(ref90, rel=1e-12)
    one = stats.mean_ci_t([4.0])
    assert one[0] == 4.0 and all(np.isnan(v) for v in one[1:])


# ============================================================================ a real tiny batch


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, h: Any) -> Path:
    """2 envs x 2 arms x 3 seeds at 1024 steps, trained once for this module."""
    root = tmp_path_factory.mktemp("report")
    (root / "spec.toml").write_text(h.tiny_spec("tiny_report", envs=ENVS, seeds=len(SEEDS)))
    out = root / "out"
    _ok(_run("compare", root / "spec.toml", "--out", out, "--workers", "2", cwd=root))
    return out


@pytest.fixture(scope="module")
def built(batch: Path) -> dict[str, Any]:
    """``clr-rl report DIR --seed 3`` on the batch (the report a user would read)."""
    proc = _ok(_run("report", batch, "--seed", "3", cwd=batch.parent))
    dest = batch / "report"
    return {"proc": proc, "stats_bytes": (dest / "stats.json").read_bytes(), "md": (dest / "report.md").read_text(),
            "stats": json.loads((dest / "stats.json").read_text())}


def _records(batch: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(e, a, s): json.loads((batch / "runs" / e / a / f"seed{s}" / "run.json").read_text())
            for e in ENVS for a in ARMS for s in SEEDS}


def _section(md: str, heading: str) -> str:
    """Text of the section under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = md.splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= level), len(lines))
    return "\n".join(lines[start + 1:end])


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """The first markdown table in ``text``: header and rows of stripped cells."""
    all_lines = text.splitlines()
    first = next(i for i, ln in enumerate(all_lines) if ln.startswith("|"))
    lines = []
    for ln in all_lines[first:]:
        if not ln.startswith("|"):
            break
        lines.append(ln)
    assert len(lines) >= 2 and set(lines[1]) <= set("|-"), text
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return cells[0], cells[2:]


def test_report_files_and_figures(batch: Path, built: dict[str, Any]) -> None:
    import matplotlib.image as mpimg

    dest = batch / "report"
    pngs = sorted(p.name for p in dest.glob("*.png"))
    assert {"aggregates.png", "improvement.png", "profiles.png", "efficiency.png"} <= set(pngs)
    assert len([p for p in pngs if p.startswith("curves_")]) == len(ENVS)
    for name in pngs:
        img = mpimg.imread(dest / name)
        assert img.shape[0] >= 200 and img.shape[1] >= 400, (name, img.shape)
        assert float(img[..., :3].std()) > 0.01, f"{name} is blank"
    # every image report.md links to exists, and every PNG is linked
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", built["md"])
    assert sorted(linked) == pngs
    assert "wrote" in built["proc"].stdout and "12/12 runs complete; baseline fixed" in built["proc"].stdout


def test_report_per_env_tables_match_stats_and_run_folders(batch: Path, built: dict[str, Any]) -> None:
    from scipy import stats as sps

    md, st = built["md"], built["stats"]
    records = _records(batch)
    assert st["envs"] == list(ENVS) and st["arms"] == list(ARMS) and st["baseline"] == "fixed"
    assert st["missing"] == []
    for env in ENVS:
        header, rows = _table(_section(md, f"### {env}"))
        assert header[:4] == ["arm", "schedule", "seeds", "final return mean ± std"]
        assert [r[0] for r in rows] == list(ARMS)  # one row per arm
        for row in rows:
            arm = row[0]
            a = st["per_env"][env]["arms"][arm]
            finals = [records[env, arm, s]["final_eval"]["mean_return"] for s in SEEDS]
            assert a["final_return"]["per_seed"] == finals  # same order as the seeds
            assert a["seeds_done"] == a["seeds_planned"] == 3
            assert row[1] == f"`{records[env, arm, 0]['config']['schedule']}`"
            assert row[2] == "3/3"
            assert row[3] == f"{np.mean(finals):.4g} ± {np.std(finals, ddof=1):.4g}"  # 4 significant digits
            assert a["final_return"]["mean"] == pytest.approx(np.mean(finals))
            if np.std(finals) > 0:
                lo, hi = sps.t.interval(0.95, df=2, loc=np.mean(finals), scale=sps.sem(finals))
                assert a["final_return"]["ci95"] == pytest.approx([lo, hi], rel=1e-9)
            # AUC per seed: a trapezoid over evaluations.csv computed here, and run.json's auc
            aucs = []
            for s in SEEDS:
                lines = (batch / "runs" / env / arm / f"seed{s}" / "evaluations.csv").read_text().splitlines()[1:]
                t, y = zip(*((float(ln.split(",")[0]), float(ln.split(",")[1])) for ln in lines))
                aucs.append(float(np.trapezoid(y, t) / (t[-1] - t[0])))
                assert y[-1] == finals[s]
            assert a["auc"]["per_seed"] == pytest.approx(aucs, rel=1e-9)
            assert a["auc"]["per_seed"] == pytest.approx([records[env, arm, s]["auc"] for s in SEEDS], rel=1e-9)
        ref = CLASSIC_TOML["env"][env]
        e = st["per_env"][env]
        assert (e["random_score"], e["reference_score"]) == (ref["random_score"], ref["reference_score"])


def test_report_aggregates_and_improvement_recomputed_from_run_folders(batch: Path, built: dict[str, Any]) -> None:
    from scipy.stats import mannwhitneyu, trim_mean

    st = built["stats"]
    records = _records(batch)

    def normalised(arm: str) -> np.ndarray:  # (seeds, envs), from run.json and envs/classic.toml
        cols = []
        for env in ENVS:
            ref = CLASSIC_TOML["env"][env]
            finals = np.array([records[env, arm, s]["final_eval"]["mean_return"] for s in SEEDS])
            cols.append((finals - ref["random_score"]) / (ref["reference_score"] - ref["random_score"]))
        return np.column_stack(cols)

    for arm in ARMS:
        m = normalised(arm)
        agg = st["aggregates"][arm]
        assert agg["runs_per_env"] == 3
        assert agg["iqm"]["estimate"] == pytest.approx(float(stats.iqm(m)), rel=1e-9)
        assert agg["iqm"]["estimate"] == pytest.approx(float(trim_mean(m.reshape(-1), 0.25)), rel=1e-9)
        assert agg["median"]["estimate"] == pytest.approx(float(np.median(m.mean(axis=0))), rel=1e-9, abs=1e-12)
        assert agg["seeds"] == list(SEEDS)
        assert agg["mean"]["estimate"] == pytest.approx(float(m.mean()), rel=1e-9, abs=1e-12)
        assert agg["optimality_gap"]["estimate"] == pytest.approx(float(np.maximum(1 - m, 0).mean()), rel=1e-9)
        for name in ("iqm", "median", "mean", "optimality_gap"):
            assert agg[name]["ci_low"] <= agg[name]["ci_high"]
    x, y = normalised("around"), normalised("fixed")
    expected = np.mean([mannwhitneyu(x[:, j], y[:, j], method="asymptotic").statistic / 9 for j in range(2)])
    poi = st["comparisons"]["around"]
    assert poi["estimate"] == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= poi["ci_low"] <= poi["ci_high"] <= 1.0
    # the aggregates table in report.md shows the same numbers
    header, rows = _table(_section(built["md"], "## Aggregates over envs (normalised final return)"))
    assert header == ["arm", "IQM", "median", "mean", "optimality gap", "runs/env", "seeds entered"]
    by_arm = {r[0]: r for r in rows}
    assert sorted(by_arm) == sorted(ARMS)
    for arm in ARMS:
        a = st["aggregates"][arm]["iqm"]
        assert by_arm[arm][1] == f"{a['estimate']:.3g} [{a['ci_low']:.3g}, {a['ci_high']:.3g}]"
        assert by_arm[arm][5] == "3" and by_arm[arm][6] == "0, 1, 2"


def test_report_verdicts_and_baseline_provenance(built: dict[str, Any]) -> None:
    md, st = built["md"], built["stats"]
    verdicts = [ln for ln in _section(md, "## Verdict against the baseline").splitlines() if ln.startswith("- ")]
    assert len(verdicts) == len(ARMS) - 1  # one per non-baseline arm
    line = verdicts[0]
    c = st["comparisons"]["around"]
    # 1 arm compared: Holm leaves the level at 0.05; the verdict is one of the four outcomes
    assert c["holm_level"] == 0.05 and c["seeds"] == list(SEEDS)
    assert c["verdict"] in ("BEATS", "WORSE", "EQUIVALENT", "INCONCLUSIVE")
    lo, hi = c["decision_ci"]
    if c["verdict"] == "BEATS":
        assert lo > 0.5 and c["p_value"] <= 0.05
    elif c["verdict"] == "WORSE":
        assert hi < 0.5 and c["p_value"] <= 0.05
    elif c["verdict"] == "EQUIVALENT":
        assert 0.4 <= lo and hi <= 0.6
    assert line.startswith(f"- around {c['verdict']} against fixed: P(improvement) {c['estimate']:.2f}, "
                           f"95% CI [{lo:.2f}, {hi:.2f}] at the Holm-adjusted level 0.05"), line
    assert "correction: Holm (step-down)" in md
    assert line[2:] == st["verdicts"]["around"]
    assert f"  {st['verdicts']['around']}" in built["proc"].stdout.splitlines()
    # provenance: the tuned LR of each env, as agents/ppo.toml states it
    header, rows = _table(_section(md, "### Baseline provenance and tuning cost"))
    assert header == ["env", "tuned fixed LR", "provenance", "tuning cost"]
    assert [r[0] for r in rows] == list(ENVS)
    for env, lr, source, cost in rows:
        assert float(lr) == float(PPO_TOML["env"][env]["tuned_lr"])
        assert source == PPO_TOML["env"][env]["tuned_lr_source"]
        assert cost.startswith("not measured here")


def test_report_is_reproducible_for_a_seed(batch: Path, built: dict[str, Any]) -> None:
    """Same seed: byte-identical stats.json (and report.md). Another seed: same point estimates.

    With 3 seeds per env the bootstrap distribution of the aggregates is discrete (each
    percentile bound is one of few resampled values), so seed 3 and seed 4 may give the
    same aggregate CIs; the performance-profile and sample-efficiency bands, over many
    interpolated points, do move with the seed, and that is asserted.
    """
    from clr_rl.analysis.analyse import compute_stats
    from clr_rl.analysis.collect import collect

    _ok(_run("report", batch, "--seed", "3", cwd=batch.parent))
    assert (batch / "report" / "stats.json").read_bytes() == built["stats_bytes"]
    assert (batch / "report" / "report.md").read_text() == built["md"]
    resolved, runs = collect(batch)
    s3 = compute_stats(resolved, runs, baseline="fixed", reps=2000, seed=3, out=batch)
    assert (json.dumps(s3, indent=2, sort_keys=True) + "\n").encode() == built["stats_bytes"]
    s4 = compute_stats(resolved, runs, baseline="fixed", reps=2000, seed=4, out=batch)
    assert s4["bootstrap"]["seed"] == 4
    assert s4["per_env"] == s3["per_env"]  # Student-t over seeds: no randomness
    for arm in ARMS:
        for name in ("iqm", "median", "mean", "optimality_gap"):
            assert s4["aggregates"][arm][name]["estimate"] == s3["aggregates"][arm][name]["estimate"]
        assert s4["performance_profiles"][arm]["fraction"] == s3["performance_profiles"][arm]["fraction"]
        assert s4["sample_efficiency"][arm]["iqm"] == s3["sample_efficiency"][arm]["iqm"]
    assert s4["comparisons"]["around"]["estimate"] == s3["comparisons"]["around"]["estimate"]
    bands = [(s[k][arm]["ci_low"], s[k][arm]["ci_high"]) for s in (s3, s4) for arm in ARMS
             for k in ("performance_profiles", "sample_efficiency")]
    assert bands[: len(bands) // 2] != bands[len(bands) // 2:]


def test_report_with_missing_and_failed_runs(batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clr_rl.analysis.report import report

    copy = tmp_path / "partial"
    shutil.copytree(batch, copy, ignore=shutil.ignore_patterns("report"))
    (copy / "runs" / "Acrobot-v1" / "around" / "seed1" / "run.json").unlink()  # a run not finished yet
    failed = copy / "runs" / "CartPole-v1" / "fixed" / "seed2" / "run.json"
    run_id = json.loads(failed.read_text())["run_id"]
    # what batch._mark_dead writes for a worker that died: no config in the record
    failed.write_text(json.dumps({"run_id": run_id, "status": "failed",
                                  "error": "the worker process died (killed, or out of memory)"}))
    assert report(copy, seed=3, reps=200) == 0
    out = capsys.readouterr().out
    assert "10/12 runs complete; baseline fixed" in out
    st = json.loads((copy / "report" / "stats.json").read_text())
    md = (copy / "report" / "report.md").read_text()
    assert st["missing"] == [{"folder": "runs/CartPole-v1/fixed/seed2", "status": "failed"},
                             {"folder": "runs/Acrobot-v1/around/seed1", "status": "not_started"}]
    missing = _section(md, "## Missing runs")
    assert "2 planned run(s) are not complete" in missing
    assert "- runs/CartPole-v1/fixed/seed2: failed" in missing
    assert "- runs/Acrobot-v1/around/seed1: not_started" in missing
    records = _records(batch)
    for env, arm, gone in (("CartPole-v1", "fixed", 2), ("Acrobot-v1", "around", 1)):
        a = st["per_env"][env]["arms"][arm]
        assert (a["seeds_done"], a["seeds_planned"]) == (2, 3)
        assert a["final_return"]["per_seed"] == [records[env, arm, s]["final_eval"]["mean_return"]
                                                 for s in SEEDS if s != gone]
        _, rows = _table(_section(md, f"### {env}"))
        assert {r[0]: r[2] for r in rows}[arm] == "2/3"
    # balanced by seed id: each arm's aggregates use the seeds complete in every env
    assert st["aggregates"]["fixed"]["seeds"] == [0, 1] and st["aggregates"]["around"]["seeds"] == [0, 2]
    for arm in ARMS:
        assert st["aggregates"][arm]["runs_per_env"] == 2
    # the comparison uses the seeds complete in every env for both arms: only seed 0 -> no verdict
    assert st["comparisons"]["around"]["seeds"] == [0]
    assert st["comparisons"]["around"]["verdict"] == "NO VERDICT"
    assert st["per_env"]["CartPole-v1"]["arms"]["around"]["seeds_done"] == 3
    assert set(st["verdicts"]) == {"around"}
    # the baseline provenance still comes from a finished run's record
    _, rows = _table(_section(md, "### Baseline provenance and tuning cost"))
    assert [float(r[1]) for r in rows] == [float(PPO_TOML["env"][e]["tuned_lr"]) for e in ENVS]


def test_report_with_an_arm_that_has_no_finished_run_in_an_env(batch: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from clr_rl.analysis.report import report

    copy = tmp_path / "early"
    shutil.copytree(batch, copy, ignore=shutil.ignore_patterns("report"))
    for s in SEEDS:
        (copy / "runs" / "Acrobot-v1" / "around" / f"seed{s}" / "run.json").unlink()
    assert report(copy, seed=0, reps=100) == 0
    capsys.readouterr()
    st = json.loads((copy / "report" / "stats.json").read_text())
    md = (copy / "report" / "report.md").read_text()
    assert st["aggregates"]["around"] is None
    text = ("around: NO VERDICT against fixed: only 0 seed(s) complete in every env for both arms; "
            "a verdict needs at least 3")
    assert st["verdicts"]["around"] == text
    assert f"- {text}" in md
    _, rows = _table(_section(md, "### Acrobot-v1"))
    around = {r[0]: r for r in rows}["around"]
    assert around[2] == "0/3" and around[3] == "n/a ± n/a"


def test_report_bad_input_exits_2(batch: Path, tmp_path: Path) -> None:
    _one_line_error(_run("report", batch, "--baseline", "nope", cwd=tmp_path), "baseline='nope'", "fixed, around")
    (tmp_path / "not_a_batch").mkdir()
    _one_line_error(_run("report", tmp_path / "not_a_batch", cwd=tmp_path), "not a batch folder")
    _one_line_error(_run("report", batch, "--reps", "5", cwd=tmp_path), "reps=5")


# ============================================================================ TensorBoard


def _event_dirs(runs: Path) -> set[str]:
    return {str(p.parent.relative_to(runs)) for p in runs.rglob("events.out.tfevents.*")}


def _accumulator(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_run_names_hparams_and_layout(batch: Path) -> None:
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    runs = batch / "runs"
    expected = {f"{e}/{a}/seed{s}" for e in ENVS for a in ARMS for s in SEEDS}
    dirs = _event_dirs(runs)
    assert expected <= dirs and "." not in dirs and f"arms/{ARMS[0]}" in dirs and "_layout" not in dirs
    records = _records(batch)
    tags_by_env: dict[str, set[str]] = {e: set() for e in ENVS}
    for name in sorted(expected):
        env, arm, seed_dir = name.split("/")
        seed = int(seed_dir.removeprefix("seed"))
        record = records[env, arm, seed]
        acc = _accumulator(runs / name)
        content = acc.PluginTagToContent("hparams")
        start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
        hp = {k: v.string_value if v.HasField("string_value") else v.number_value for k, v in start.hparams.items()}
        assert (hp["arm"], hp["env"], hp["seed"], hp["algo"]) == (arm, env, seed, "ppo")
        assert hp["schedule_kind"] == record["config"]["schedule_kind"]
        assert hp["schedule"] == record["config"]["schedule"]
        params = record["config"]["schedule_params"]
        assert {k for k in hp if k.startswith("lr.")} == {f"lr.{k}" for k in params}
        for key, value in params.items():
            assert hp[f"lr.{key}"] == pytest.approx(value)
        # the metrics themselves, and the per-env tags that feed the layout
        final = acc.Scalars("eval/final_return")
        assert [e.value for e in final] == pytest.approx([record["final_eval"]["mean_return"]])
        assert [e.value for e in acc.Scalars("eval/auc")] == pytest.approx([record["auc"]], rel=1e-6)
        scalars = set(acc.Tags()["scalars"])
        ret, lr = f"env/{env}/eval_return", f"env/{env}/lr"
        assert {ret, lr} <= scalars
        assert [(e.step, e.value) for e in acc.Scalars(ret)] == [(e.step, e.value)
                                                                 for e in acc.Scalars("eval/mean_return")]
        assert [(e.step, e.value) for e in acc.Scalars(lr)] == [(e.step, e.value)
                                                                for e in acc.Scalars("train/lr_applied")]
        tags_by_env[env] |= {t for t in scalars if t.startswith("env/")}
    # the custom-scalars layout lives in the first arm's run (no run "."): its charts are checked in test_tensorboard.py
    assert not list(runs.glob("events.out.tfevents.*"))
    # the HParams experiment (columns and metrics) is written once, with the layout
    content = _accumulator(runs / "arms" / ARMS[0]).PluginTagToContent("hparams")
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {"eval/final_return", "eval/auc"} <= {m.name.tag for m in experiment.metric_infos}
    assert {"arm", "env", "seed", "algo", "schedule_kind"} <= {h.name for h in experiment.hparam_infos}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.loads(resp.read())


def test_tensorboard_command_serves_the_runs(batch: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    stdout = tmp_path / "tb.out"
    with open(stdout, "w") as fh:
        proc = subprocess.Popen([*CLI, "tensorboard", str(batch), "--port", str(port)], stdout=fh,
                                stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    expected = {f"{e}/{a}/seed{s}" for e in ENVS for a in ARMS for s in SEEDS}
    names: list[str] = []
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not expected <= set(names):
            assert proc.poll() is None, f"clr-rl tensorboard exited with {proc.returncode}"
            try:
                names = _get_json(f"http://localhost:{port}/data/runs")
            except OSError:
                pass
            time.sleep(0.5)
        assert expected <= set(names), names
        assert "." not in names
        # SIGTERM (like Ctrl-C) stops clr-rl tensorboard and the TensorBoard it started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        time.sleep(0.5)
        with pytest.raises(OSError):
            _get_json(f"http://localhost:{port}/data/runs")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in the session this test started
        except ProcessLookupError:
            pass
    assert f"http://localhost:{port}/" in stdout.read_text()


def test_tensorboard_bad_input_exits_2(tmp_path: Path) -> None:
    _one_line_error(_run("tensorboard", tmp_path / "nope", cwd=tmp_path), "is not a folder")
    (tmp_path / "file.txt").write_text("x")
    _one_line_error(_run("tensorboard", tmp_path / "file.txt", cwd=tmp_path), "is not a folder")
    _one_line_error(_run("tensorboard", tmp_path, "--port", "70000", cwd=tmp_path), "--port=70000")


# ============================================================================ acceptance: verdicts on real training

ACCEPT_SPEC = """\
name = "acceptance"
algo = "ppo"
seeds = 5
timesteps = 12288
envs = ["CartPole-v1"]
baseline = "fixed-tuned"
[eval]
every = 4096
episodes = 5
[arms.fixed-tuned]
kind = "constant"
lr = "tuned"
[arms.same-as-baseline]
kind = "constant"
lr = "tuned"
[arms.cannot-learn]
kind = "constant"
lr = 1e-7
"""


def test_acceptance_identical_arm_is_never_significant_and_a_dead_lr_is_worse(tmp_path: Path) -> None:
    """CartPole-v1, 5 seeds, 4096 steps: an arm identical to the baseline under another name is
    EQUIVALENT or INCONCLUSIVE; an arm at LR 1e-7 is WORSE; report.md names the correction."""
    from clr_rl.analysis.report import report
    from clr_rl.compare.driver import compare

    spec = tmp_path / "spec.toml"
    spec.write_text(ACCEPT_SPEC)
    out = tmp_path / "out"
    assert compare(spec, out=out, workers=2) == 0
    assert report(out, reps=1000, seed=0) == 0
    st = json.loads((out / "report" / "stats.json").read_text())
    md = (out / "report" / "report.md").read_text()
    same, dead = st["comparisons"]["same-as-baseline"], st["comparisons"]["cannot-learn"]
    assert same["verdict"] in ("EQUIVALENT", "INCONCLUSIVE"), same
    assert dead["verdict"] == "WORSE", dead
    assert dead["estimate"] < 0.5 and dead["decision_ci"][1] < 0.5
    # Holm over the 2 arms: the smaller p-value is tested at 0.025, the other at 0.05
    assert sorted([same["holm_level"], dead["holm_level"]]) == [0.025, 0.05]
    assert "Holm" in md and "adjusted level per arm" in md
    assert md.splitlines()[2] == "## The answer"
