"""The tradeoff curve as a spec feature (issue 12): a ``[tradeoff]`` table makes ``clr-rl compare``
train one cosine-restarts curve per env into ``<out>/tradeoff/<env>/`` after the arms, and
``clr-rl report`` shows them. Real training at tiny budgets; the numbers in report.md and
stats.json are checked against the files ``clr_rl.tradeoff`` wrote (tradeoff.csv, gap.csv)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from clr_rl.compare.plan import tradeoff_request
from clr_rl.compare.setup import plan_setup, plan_tradeoffs
from clr_rl.compare.spec import load_spec
from clr_rl.phases.tune import TunedLR

ENV = "CartPole-v1"


def _spec(h: Any, tradeoff: str, *, name: str = "ts", extra: str = "") -> str:
    """One env, two arms, one seed (the arms are not what is tested), and a [tradeoff] table."""
    return h.tiny_spec(name, envs=(ENV,), seeds=1, timesteps=1024, extra=f"{extra}\n[tradeoff]\n{tradeoff}")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _fmt(x: str | float, sig: int = 4) -> str:
    """The report's number format for |x| < 10^sig: ``sig`` significant digits."""
    value = float(x)
    assert abs(value) < 10**sig
    return f"{value:.{sig}g}"


def test_compare_trains_the_curves_and_report_shows_them(tmp_path: Path, h: Any) -> None:
    (tmp_path / "s.toml").write_text(_spec(h, "cycles = 2\nseeds = 2\nvalidate = true\ntimesteps = 4096"))
    out = tmp_path / "out"
    dry = h.ok(h.run("compare", "s.toml", "--out", out, "--dry-run", cwd=tmp_path))
    assert (f"ts tradeoff: ppo on {ENV}: 2 seeds x one 2-cycle run of 4,224 timesteps (asked 4,096); budgets "
            "1,408 / 4,224; validate: + 2 x 2 separate runs; 6 runs, 19,712 timesteps") in dry.stdout
    assert not out.exists()

    h.ok(h.run("compare", "s.toml", "--out", out, "--workers", "2", cwd=tmp_path))
    folder = out / "tradeoff" / ENV
    for name in ("tradeoff.csv", "tradeoff.json", "tradeoff.png", "gap.csv", "max_lr.json"):
        assert (folder / name).is_file(), name
    record = json.loads((folder / "tradeoff.json").read_text())
    assert record["plan"]["budgets"] == [1408, 4224]  # c0 = round(4096/3 / 128) x 128 = 11 x 128
    assert record["params"]["seeds"] == 2 and record["params"]["validate"] is True
    # hyperparameters and eval episodes of the spec reached the runs
    assert record["params"]["overrides"] == {"n_steps": 32, "n_envs": 4, "batch_size": 64}
    assert record["params"]["eval_episodes"] == 2
    assert sorted(h.statuses(folder).values()) == ["finished"] * 6
    assert sorted(h.statuses(out).values()) == ["finished"] * 2  # the arms ran too

    h.ok(h.run("report", out, "--reps", "200", cwd=tmp_path))
    md = (out / "report" / "report.md").read_text()
    assert "## Tradeoff curves (Portes et al. 2022)" in md
    section = md.split("## Tradeoff curves (Portes et al. 2022)")[1]
    rows = _csv(folder / "tradeoff.csv")
    gaps = {int(g["budget"]): g for g in _csv(folder / "gap.csv")}
    assert [int(r["budget"]) for r in rows if r["approach"] == "single"] == [1408, 4224]
    for r in (r for r in rows if r["approach"] == "single"):
        b = int(r["budget"])
        sep = next(s for s in rows if s["approach"] == "separate" and int(s["budget"]) == b)
        g = gaps[b]
        line = (f"| {b:,} | {r['cycle']} | {r['seeds']} | {_fmt(r['mean_return'])} | "
                f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {_fmt(sep['mean_return'])} | "
                f"[{_fmt(sep['ci_low'])}, {_fmt(sep['ci_high'])}] | {_fmt(g['gap_normalised'], 3)} | "
                f"[{_fmt(g['ci_low_normalised'], 3)}, {_fmt(g['ci_high_normalised'], 3)}] |")
        assert line in section, (line, section)
    assert gaps[1408]["gap_normalised"] == "0.0"  # same seed, same LR at every update: identical by construction
    assert f"![tradeoff {ENV}](tradeoff_{ENV}.png)" in section
    assert (out / "report" / f"tradeoff_{ENV}.png").read_bytes() == (folder / "tradeoff.png").read_bytes()
    assert "max_lr 0.001 = the env's tuned fixed LR" in section  # agents/: PPO CartPole's 1e-3

    stats = json.loads((out / "report" / "stats.json").read_text())["tradeoff"][ENV]
    assert stats["budgets"] == [1408, 4224]
    assert len(stats["curve"]) == len(rows) == 4
    for mine, theirs in zip(stats["curve"], rows):
        assert (mine["approach"], mine["budget"]) == (theirs["approach"], int(theirs["budget"]))
        for key in ("mean_return", "ci_low", "ci_high", "mean_normalised"):
            assert mine[key] == pytest.approx(float(theirs[key]), rel=1e-9), key
    assert stats["gap"]["gap"] == pytest.approx([float(gaps[b]["gap_normalised"]) for b in (1408, 4224)], rel=1e-9)
    assert stats["compute"] == {"single_timesteps_per_seed": 4224, "separate_timesteps_per_seed": 5632,
                                "separate_over_single": pytest.approx(5632 / 4224)}

    before = {**h.mtimes(out), **h.mtimes(folder)}
    again = h.ok(h.run("compare", "s.toml", "--out", out, "--workers", "2", cwd=tmp_path))
    assert "tradeoff-ppo-CartPole-v1: 6 runs, 6 already complete, 0 to run" in again.stdout
    assert "ts: 2 runs, 2 already complete, 0 to run" in again.stdout
    assert {**h.mtimes(out), **h.mtimes(folder)} == before  # a rerun trains nothing


@pytest.mark.parametrize(("tradeoff", "extra", "parts"), [
    ("cycles = 1", "", ["tradeoff.cycles: 1 must be an integer >= 2"]),
    ("cycles = 3\nt_mult = 1", "", ["tradeoff.t_mult: 1 must be a number > 1"]),
    ("cycles = 3\nt_mult = 0.5", "", ["tradeoff.t_mult: 0.5 must be a number > 1"]),
    ("cycles = 3\nbudget = 5", "", ["tradeoff: unknown key 'budget'", "cycles"]),
    ("t_mult = 2", "", ["tradeoff.cycles: missing"]),
    ("cycles = 3\nmax_lr = -1e-3", "", ["tradeoff.max_lr: -0.001 must be a number > 0 or \"tuned\""]),
    ("cycles = 3\nmax_lr = \"tuned*3\"", "", ["tradeoff.max_lr: 'tuned*3'"]),
    ("cycles = 3\nmin_lr_fraction = 1.0", "", ["tradeoff.min_lr_fraction: 1.0 must be in [0, 1)"]),
    ("cycles = 3\nseeds = [3, 4]", "", ["tradeoff.seeds: [3, 4] must be a count or the list [0, 1, ..., n-1]"]),
    ("cycles = 3\nvalidate = \"yes\"", "", ["tradeoff.validate: 'yes' must be true or false"]),
    ("cycles = 3\ntimesteps = 0", "", ["tradeoff.timesteps: 0 must be a positive integer"]),
    ("cycles = 3", 'optimizer = "sgd"', ["tradeoff: the spec's top-level optimizer = 'sgd' cannot reach"]),
    ("cycles = 3", '[tune]\ngrid = "1e-4:1e-3:2"\nseeds = [7, 2]', ["tune.seeds: [7, 2] overlaps the tradeoff runs' "
                                                                    "seeds at [2]"]),
    # 256 timesteps in 3 cycles: the first cycle spans 37 timesteps, under two LR updates (2 x 128)
    ("cycles = 3\ntimesteps = 256", "", [f"tradeoff on {ENV}:", "fewer than 2 LR updates", "2 x 128 = 256"]),
])
def test_bad_tradeoff_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, h: Any, tradeoff: str, extra: str,
                                                            parts: list[str]) -> None:
    (tmp_path / "s.toml").write_text(_spec(h, tradeoff, extra=extra))
    out = tmp_path / "out"
    for args in ((), ("--dry-run",)):
        line = h.one_error_line(h.run("compare", "s.toml", "--out", out, *args, cwd=tmp_path))
        for part in parts:
            assert part in line, (part, line)
        assert not out.exists()


def test_tuned_max_lr_is_the_batchs_tune_value(tmp_path: Path, h: Any) -> None:
    """With [tune] and max_lr = "tuned", the setup phase tunes the env even when no arm says "tuned",
    and the tradeoff run starts each cycle at the tuned value; a number is used as given."""
    arms = '[arms.fixed]\nkind = "constant"\nlr = 3e-4\n'
    text = (h.tiny_spec("tt", envs=(ENV,), seeds=1, timesteps=1024, extra='[tune]\ngrid = "1e-4:1e-3:2"\n'
                        "[tradeoff]\ncycles = 2\ntimesteps = 4096\n")
            .split("[arms.fixed]")[0] + arms)
    (tmp_path / "s.toml").write_text(text)
    spec = load_spec(tmp_path / "s.toml")
    assert {r.env_id for r in plan_setup(spec).tune_runs} == {ENV}  # only the tradeoff needs it
    tuned = {("ppo", ENV): TunedLR("ppo", ENV, 2.5e-4, "auc", "log grid", 4096, (1000, 1001), (), 0)}
    kwargs, note = tradeoff_request(spec, ENV, tuned)
    assert kwargs["max_lr"] == 2.5e-4 and "tuned in this batch" in note
    assert kwargs["timesteps"] == 4096 and kwargs["seeds"] == 3 and kwargs["validate"] is False
    job = plan_tradeoffs(spec, tmp_path / "out", tuned)[0]
    assert job.plan.schedule.max_lr == 2.5e-4 and job.plan.schedule.min_lr == 0.0
    assert job.folder == tmp_path / "out" / "tradeoff" / ENV

    (tmp_path / "n.toml").write_text(text.replace("[tradeoff]\n", "[tradeoff]\nmax_lr = 5e-4\n"))
    spec = load_spec(tmp_path / "n.toml")
    assert plan_setup(spec).tune_runs == []  # nothing needs tuning now
    kwargs, note = tradeoff_request(spec, ENV)
    assert kwargs["max_lr"] == 5e-4 and note == "max_lr 0.0005 given in the spec's [tradeoff]"
