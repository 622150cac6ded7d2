"""``[sequential]`` batches through ``clr-rl compare`` and ``clr-rl report``: bad designs refused before
anything is written, a never-learning arm decided WORSE at the first look and given no more seeds,
a look interrupted mid-way resumed to the same decisions, and a finished batch that trains nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

BASE = """\
name = "seq"
algo = "ppo"
timesteps = 8192
envs = ["CartPole-v1"]
baseline = "fixed"
[eval]
every = 8192
episodes = 10
[hyperparams]
n_steps = 32
n_envs = 4
batch_size = 64
[arms.fixed]
kind = "constant"
lr = 3e-3
[arms.dead]
kind = "constant"
lr = 1e-7
"""

BAD = [
    ("max-below-first", "seeds = 5\n", "max_seeds = 3\n", ["sequential", "max_seeds=3", "first look's seeds=5"]),
    ("step-zero", "seeds = 5\n", "max_seeds = 10\nstep = 0\n", ["sequential.step", "0", ">= 1"]),
    ("alpha-one", "seeds = 5\n", "max_seeds = 10\nalpha = 1.0\n", ["alpha=1.0", "(0, 1)"]),
    ("unknown-boundaries", "seeds = 5\n", "max_seeds = 10\nboundaries = \"haybittle\"\n", ["boundaries='haybittle'"]),
    ("levels-wrong-length", "seeds = 5\n", "max_seeds = 10\nboundaries = [0.01, 0.01, 0.01]\n",
     ["boundaries=[0.01, 0.01, 0.01]", "one level per look"]),
    ("levels-above-alpha", "seeds = 5\n", "max_seeds = 10\nboundaries = [0.04, 0.03]\n",
     ["boundaries=[0.04, 0.03]", "at most alpha=0.05"]),
    ("seed-list-not-0-n", "seeds = [3, 4, 5]\n", "max_seeds = 10\n", ["seeds", "[3, 4, 5]", "0..n-1"]),
    ("no-max-seeds", "seeds = 5\n", "step = 5\n", ["sequential", "max_seeds is required"]),
    ("unknown-key", "seeds = 5\n", "max_seeds = 10\nlooks = 3\n", ["sequential", "looks"]),
]


@pytest.mark.parametrize(("top", "table", "parts"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_sequential_design_is_one_line_and_writes_nothing(tmp_path: Path, h: Any, top: str, table: str,
                                                                 parts: list[str]) -> None:
    spec = tmp_path / "seq.toml"
    spec.write_text(top + BASE + "[sequential]\n" + table)
    line = h.one_error_line(h.run("compare", spec, "--out", tmp_path / "out", cwd=tmp_path))
    assert line.startswith("clr-rl: error: ") and str(spec) in line
    for part in parts:
        assert part in line, (part, line)
    assert not (tmp_path / "out").exists()


def test_sequential_needs_a_baseline(tmp_path: Path, h: Any) -> None:
    spec = tmp_path / "seq.toml"
    spec.write_text("seeds = 5\n" + BASE.replace('baseline = "fixed"\n', "") + "[sequential]\nmax_seeds = 10\n")
    assert "needs a baseline" in h.one_error_line(h.run("compare", spec, "--out", tmp_path / "out", cwd=tmp_path))


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, h: Any) -> tuple[Path, Path, Any]:
    """One env, looks at 6 and 12 seeds (linear spending: level 0.025 at the first look, where a perfect
    separation of 6 vs 6 seeds has permutation p 2/924): `dead` (LR 1e-7) never learns. (Its deterministic
    evaluation can still score well on CartPole: the initial network of seed 0 balances 234 steps.)"""
    root = tmp_path_factory.mktemp("seqbatch")
    spec = root / "seq.toml"
    spec.write_text("seeds = 6\n" + BASE + "[sequential]\nmax_seeds = 12\nstep = 6\n")
    proc = h.ok(h.run("compare", spec, "--out", root / "out", "--workers", "2", cwd=root, timeout=900))
    return spec, root / "out", proc


def _looks(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "sequential.json").read_text())["looks"]


def test_a_never_learning_arm_is_worse_at_the_first_look_and_gets_no_more_seeds(batch: tuple[Path, Path, Any],
                                                                                  h: Any) -> None:
    _, out, proc = batch
    looks = _looks(out)
    assert len(looks) == 1  # every arm decided at look 1: the batch stops there
    dead = looks[0]["decisions"]["dead"]
    assert dead["verdict"] == "WORSE" and dead["seeds"] == 6 and dead["estimate"] < 0.1, dead
    # the earliest look the boundaries allow: linear spending puts half of the level at look 1 of 2
    assert dead["level"] == pytest.approx(0.05 / 2)
    assert sorted(h.run_folders(out)) == sorted(f"runs/CartPole-v1/{arm}/seed{k}" for arm in ("fixed", "dead")
                                                for k in range(6))  # no seed past the deciding look
    assert "look 1/2 at 6 seeds per env" in proc.stdout and "dead WORSE at 6 seeds" in proc.stdout


def test_the_report_shows_the_looks_and_the_compute_saved(batch: tuple[Path, Path, Any], h: Any) -> None:
    _, out, _ = batch
    h.ok(h.run("report", out, cwd=out.parent, timeout=600))
    stats = json.loads((out / "report" / "stats.json").read_text())
    seq = stats["sequential"]
    assert seq["arms"]["dead"]["verdict"] == "WORSE" and seq["arms"]["dead"]["decided_at_look"] == 1
    assert seq["runs_used"] == 12 and seq["runs_fixed_design"] == 24
    assert seq["compute_saved"] == pytest.approx(0.5)
    assert stats["comparisons"]["dead"]["verdict"] == "WORSE"
    md = (out / "report" / "report.md").read_text()
    assert "## Sequential decisions" in md and "Decided sequentially: looks at [6, 12] seeds per env" in md


def test_a_finished_batch_trains_nothing_and_a_look_cut_short_resumes_to_the_same_decisions(
        batch: tuple[Path, Path, Any], h: Any) -> None:
    spec, out, _ = batch
    before, touched = _looks(out), h.mtimes(out)
    again = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=out.parent, timeout=600))
    assert "to run" not in again.stdout and "dead WORSE at 6 seeds" in again.stdout
    assert _looks(out) == before and h.mtimes(out) == touched  # nothing trained, nothing rewritten
    # as after a kill -9 during look 1: its decision unrecorded and two of its runs never written
    data = json.loads((out / "sequential.json").read_text())
    data["looks"] = []
    (out / "sequential.json").write_text(json.dumps(data))
    for folder in ("runs/CartPole-v1/fixed/seed5", "runs/CartPole-v1/dead/seed2"):
        shutil.rmtree(out / folder)
    resumed = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=out.parent, timeout=600))
    assert " 2 to run" in resumed.stdout
    assert _looks(out) == before


def test_looks_decided_under_another_statistic_are_not_resumed(batch: tuple[Path, Path, Any], h: Any) -> None:
    """A sequential.json from before the studentized statistic (no "statistic" key) or with another one: the
    rerun refuses in one line and rewrites nothing, since its recorded decisions followed another rule."""
    spec, out, _ = batch
    original = (out / "sequential.json").read_text()
    for statistic in (None, "plain-p"):
        data = json.loads(original)
        data.pop("statistic")
        if statistic:
            data["statistic"] = statistic
        (out / "sequential.json").write_text(json.dumps(data))
        touched = h.mtimes(out)
        line = h.one_error_line(h.run("compare", spec, "--out", out, cwd=out.parent))
        assert "decided with the statistic 'plain-p'" in line and "studentized-mann-whitney" in line, line
        assert h.mtimes(out) == touched
    (out / "sequential.json").write_text(original)
