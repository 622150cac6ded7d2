"""The orchestration layer's contracts (issue 10) and the batch's setup phase (issue 9).

Regression tests for bugs of the earlier design: run ids that depended on the working
directory, runs left "running" by an exception in the model's constructor, bad input and
crashes sharing one exit status, several status vocabularies. Then the one source of truth for
run settings, and ``[tune]`` / ``[lr_range]`` run inside ``clr-rl compare``. Real training at
tiny budgets; files read back.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from clr_rl.compare.plan import plan
from clr_rl.compare.spec import load_spec
from clr_rl.errors import ConfigError
from clr_rl.run.config import RunConfig
from clr_rl.run.prepare import prepare
from clr_rl.run.record import RunRecord, Status
from clr_rl.run.train import train

TINY_HP = {"n_steps": 32, "n_envs": 4, "batch_size": 64}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------ identity


def test_run_ids_do_not_depend_on_the_working_directory(tmp_path: Path, h: Any) -> None:
    """The spec names a tune record by a relative path; loading it from three working directories
    (and by absolute path) gives the same run ids, and a rerun from elsewhere trains nothing."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "rec.json").write_text(json.dumps({"algo": "ppo", "env_id": "CartPole-v1", "value": 5e-4,
                                              "method": "log grid", "criterion": "auc"}))
    text = h.tiny_spec("ids", envs=("CartPole-v1",), seeds=1, timesteps=1024)
    (sub / "s.toml").write_text(text.replace('baseline = "fixed"', 'baseline = "fixed"\ntuned = ["rec.json"]'))
    ids = []
    for cwd, path in ((tmp_path, "sub/s.toml"), (sub, "s.toml"), (tmp_path / "..", str(sub / "s.toml"))):
        old = os.getcwd()
        os.chdir(cwd)
        try:
            ids.append(sorted(r.prepared.run_id() for r in plan(load_spec(path))))
        finally:
            os.chdir(old)
    assert ids[0] == ids[1] == ids[2]
    assert plan(load_spec(sub / "s.toml"))[0].prepared.schedule.lr == 5e-4  # the record's value was used

    out = tmp_path / "out"
    h.ok(h.run("compare", "sub/s.toml", "--out", out, "--workers", "2", cwd=tmp_path))
    again = h.ok(h.run("compare", "s.toml", "--out", out, "--workers", "2", cwd=sub))
    assert "ids: 2 runs, 2 already complete, 0 to run" in again.stdout


def test_identity_excludes_provenance_but_not_what_is_trained() -> None:
    base = RunConfig("ppo", "CartPole-v1", "3e-4", 1024, seed=0, overrides=dict(TINY_HP))
    same = [dataclasses.replace(base, arm="renamed"), dataclasses.replace(base, lr_provenance="from somewhere"),
            dataclasses.replace(base, threads=1), dataclasses.replace(base, device="cpu"),
            dataclasses.replace(base, overrides={**TINY_HP, "tuned_lr_source": "/some/path/rec.json"})]
    different = [dataclasses.replace(base, seed=1), dataclasses.replace(base, schedule="4e-4"),
                 dataclasses.replace(base, overrides={**TINY_HP, "gamma": 0.9}),
                 dataclasses.replace(base, eval_episodes=3), dataclasses.replace(base, lr_per_step=True)]
    run_id = prepare(base).run_id()
    assert all(prepare(c).run_id() == run_id for c in same)
    assert len({prepare(c).run_id() for c in different} | {run_id}) == len(different) + 1


# ------------------------------------------------------------------------ one source of truth for settings


def test_every_setting_with_a_flag_is_a_train_flag_and_round_trips(h: Any, tmp_path: Path) -> None:
    helptext = h.ok(h.run("train", "--help", cwd=tmp_path)).stdout
    settings = RunConfig.settings()
    for name, setting in settings.items():
        if setting.flag:
            assert setting.flag in helptext, name
    config = RunConfig("ppo", "CartPole-v1", "triangular:base_lr=1e-4,max_lr=1e-3,cycles=2", 2048, seed=3,
                       overrides={"n_steps": 64}, optimizer="sgd", eval_every=512, eval_episodes=2, arm="a",
                       threads=1, lr_per_step=True, cycle_momentum=(0.85, 0.95), lr_provenance="p")
    data = json.loads(json.dumps(config.to_dict()))  # plain JSON, as run.json stores it
    assert RunConfig.from_dict(data).to_dict() == config.to_dict()
    assert set(data) == set(settings)


def test_an_arm_setting_is_checked_by_the_same_rule_as_the_flag(h: Any, tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(h.tiny_spec("v", envs=("CartPole-v1",), seeds=1, extra_arms='vec_env = "gpu"\n'))
    line = h.one_error_line(h.run("compare", spec, "--out", tmp_path / "o", cwd=tmp_path))
    assert line.startswith(f"clr-rl: error: {spec}: arms.around.vec_env: vec_env='gpu' must be one of sb3, ale")
    bad = h.one_error_line(h.run("train", "--env", "CartPole-v1", "--schedule", "3e-4", "--timesteps", "512",
                                 "--vec-env", "ale", "--out", tmp_path / "t", cwd=tmp_path))
    assert "vec_env='ale'" in bad and "CartPole-v1" in bad
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()


# ------------------------------------------------------------------------ the run lifecycle


def test_an_exception_in_the_model_constructor_leaves_the_run_failed(tmp_path: Path) -> None:
    """SB3's PPO refuses gSDE with discrete actions in its constructor (a value every check before it lets
    through): the run is recorded failed (with the traceback), never left "running"."""
    prepared = prepare(RunConfig("ppo", "CartPole-v1", "3e-4", 512, overrides={**TINY_HP, "use_sde": True},
                                 eval_every=256, eval_episodes=1, threads=1))
    with pytest.raises(ValueError, match="gSDE"):
        train(prepared, tmp_path / "run")
    record = RunRecord.read(tmp_path / "run")
    assert record.status == Status.FAILED
    assert "gSDE" in record.error and "Traceback" in record.traceback
    assert record.run_id == prepared.run_id()


def test_a_crash_is_exit_1_with_its_traceback_not_bad_input(tmp_path: Path, h: Any) -> None:
    proc = h.run("train", "--env", "CartPole-v1", "--schedule", "3e-4", "--timesteps", "512", "--hp", "n_steps=32",
                 "--hp", "n_envs=4", "--hp", "use_sde=true", "--out", tmp_path / "r", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "crashed" in proc.stderr
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_a_diverging_run_is_recorded_diverged_and_exits_1(tmp_path: Path, h: Any, algo: str) -> None:
    """An LR of 1e30 makes the weights non-finite within a few updates. That is a result (diverged),
    not bad input: exit status 1 with one line, and run.json says why."""
    hp = ["--hp", "n_steps=32", "--hp", "n_envs=4"] if algo == "ppo" else ["--hp", "learning_starts=100"]
    proc = h.run("train", "--algo", algo, "--env", "CartPole-v1", "--schedule", "1e30", "--timesteps", "2048", *hp,
                 "--eval-every", "1024", "--eval-episodes", "1", "--no-progress", "--out", tmp_path / "r",
                 cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("clr-rl: the run diverged:")
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["status"] == "diverged"
    assert "non-finite" in record["error"] or "nan" in record["error"].lower()


def test_statuses_are_one_vocabulary_in_run_json_summary_and_status(tmp_path: Path, h: Any) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(h.tiny_spec("vocab", envs=("CartPole-v1",), seeds=1, timesteps=1024))
    out = tmp_path / "out"
    h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    rows = _read_csv(out / "summary.csv")
    for row in rows:
        assert row["status"] == json.loads((out / row["folder"] / "run.json").read_text())["status"] == "finished"
    status = h.ok(h.run("status", out, cwd=tmp_path)).stdout
    assert "finished 2" in status and "not started 0" in status
    assert {s.value for s in Status} >= {r["status"] for r in rows}


# ------------------------------------------------------------------------ [tune] and [lr_range] in a batch

TUNE = """
[tune]
grid = "1e-4:1e-2:3"
seeds = [100]
criterion = "final"
[lr_range]
method = "single"
timesteps = 4096
"""
ARMS = """
[arms.fixed]
kind = "constant"
lr = "tuned"
[arms.from-range]
kind = "triangular"
base_lr = "range"
max_lr = "range"
cycles = 2
"""


def _setup_spec(h: Any, tmp_path: Path, extra: str = TUNE) -> Path:
    text = h.tiny_spec("setup", envs=("CartPole-v1",), seeds=2, timesteps=1024, extra=extra)
    text = text[: text.index("[arms.fixed]")] + ARMS
    spec = tmp_path / "setup.toml"
    spec.write_text(text)
    return spec


def test_tune_and_range_test_run_inside_compare_and_a_rerun_trains_nothing(tmp_path: Path, h: Any) -> None:
    spec = _setup_spec(h, tmp_path)
    out = tmp_path / "out"
    first = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    assert "setup-tune: 3 runs, 0 already complete, 3 to run" in first.stdout
    assert first.stdout.startswith("setup: whole batch (setup phase, then arms) about ")
    tuned = json.loads((out / "tune" / "CartPole-v1" / "tuned_lr.json").read_text())
    finals = {}  # the tuning runs live in tune/<env>/lr<value>/seed<k>/: the grid's 3, and any point added
    for path in (out / "tune" / "CartPole-v1").glob("lr*/seed100/run.json"):  # past an edge the best sat at
        finals[float(path.parent.parent.name[2:])] = json.loads(path.read_text())["final_eval"]["mean_return"]
    assert {1e-4, 1e-3, 1e-2} <= set(finals) and [row["lr"] for row in tuned["tried"]] == sorted(finals)
    assert tuned["value"] == max(finals, key=lambda lr: finals[lr])  # criterion "final", one seed
    assert min(finals) < tuned["value"] < max(finals)  # never a grid edge: extended past it first
    tune_steps = len(finals) * 1024
    assert tuned["cost_timesteps"] == tune_steps
    rng = json.loads((out / "lr_range" / "CartPole-v1" / "lr_range.json").read_text())

    rows = {r["arm"]: r for r in _read_csv(out / "summary.csv")}
    assert rows["fixed"]["schedule"] == f"constant:lr={tuned['value']:g}"
    assert "tuned in this batch: log grid 0.0001:0.01:3" in rows["fixed"]["lr_provenance"]
    assert rows["from-range"]["schedule"].startswith(f"triangular:base_lr={rng['base_lr']:g},max_lr={rng['max_lr']:g}")
    setup = {s["arm"]: s for s in json.loads((out / "spec.resolved.json").read_text())["setup"]}
    assert (setup["fixed"]["method"], setup["fixed"]["timesteps"]) == ("tune", tune_steps)
    assert (setup["from-range"]["method"], setup["from-range"]["timesteps"]) == ("lr_range", rng["cost_timesteps"])

    dry = h.ok(h.run("compare", spec, "--out", out, "--dry-run", cwd=tmp_path)).stdout  # plans the arms it ran
    assert "setup: 4 runs (1 envs x 2 arms x 2 seeds), 0 to run" in dry and "(done)" in dry
    assert dry.strip().splitlines()[-1].endswith("whole batch (setup phase, then arms) about 0.0 min with 2 workers")
    before = h.mtimes(out)
    again = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    assert "setup: 4 runs, 4 already complete, 0 to run" in again.stdout
    assert h.mtimes(out) == before
    assert json.loads((out / "lr_range" / "CartPole-v1" / "lr_range.json").read_text()) == rng

    partial = tmp_path / "partial"  # stopped after its tuning, before the range test: the dry-run plans from there
    shutil.copytree(out, partial)
    shutil.rmtree(partial / "lr_range")
    shutil.rmtree(partial / "runs" / "CartPole-v1" / "from-range")
    dry = h.ok(h.run("compare", spec, "--out", partial, "--dry-run", cwd=tmp_path)).stdout
    states = [[*line.split()[2:4], line.split()[-1]] for line in dry.splitlines()
              if line.startswith("CartPole-v1 ") and not line.split()[2].startswith("lr")]
    assert states == [["fixed", "0", "finished"], ["fixed", "1", "finished"],
                      ["from-range", "0", "not_started"], ["from-range", "1", "not_started"]], dry
    wider = tmp_path / "wider.toml"  # the finished batch with an env added: only the new env's setup and arms remain
    wider.write_text(spec.read_text().replace('envs = ["CartPole-v1"]', 'envs = ["CartPole-v1", "Acrobot-v1"]'))
    dry = h.ok(h.run("compare", wider, "--out", out, "--dry-run", cwd=tmp_path)).stdout
    arms = [line.split() for line in dry.splitlines() if line.split()[:1] in (["CartPole-v1"], ["Acrobot-v1"])
            and not line.split()[2].startswith("lr")]
    assert {(a[0], a[-1]) for a in arms} == {("CartPole-v1", "finished"), ("Acrobot-v1", "not_started")}, dry
    assert len(arms) == 8 and "setup-tune" not in dry

    h.ok(h.run("report", out, "--reps", "50", cwd=tmp_path))
    md = (out / "report" / "report.md").read_text()
    assert f"{tuned['value']:g}" in md and "log grid 0.0001:0.01:3" in md
    line = h.one_error_line(h.run("report", out, "--margin", "0.7", cwd=tmp_path))
    assert "margin=0.7" in line and "(0, 0.5)" in line


SWEEP = """
[lr_range]
method = "sweep"
grid = "1e-4:1e-2:3"
seeds = 2
timesteps = 1024
"""


def test_a_range_sweep_in_a_batch_uses_seeds_apart_from_the_evaluation_seeds_and_all_workers(
        tmp_path: Path, h: Any) -> None:
    spec = _setup_spec(h, tmp_path, SWEEP)
    spec.write_text(spec.read_text().replace('lr = "tuned"', "lr = 1e-3"))
    out = tmp_path / "out"
    dry = h.ok(h.run("compare", spec, "--out", out, "--dry-run", "--workers", "2", cwd=tmp_path)).stdout
    assert "LR range test (sweep) for ppo on CartPole-v1: 1,024 timesteps x 2 seeds x the grid, est" in dry
    assert "s on 2 workers, one test at a time" in dry
    h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    folder = out / "lr_range" / "CartPole-v1"
    seeds = {json.loads(p.read_text())["config"]["seed"] for p in folder.glob("runs/*/*/*/run.json")}
    assert seeds == {1001, 1002}  # evaluation seeds are 0 and 1: the range's information comes from other seeds
    result = json.loads((folder / "lr_range.json").read_text())
    assert [row["lr"] for row in result["scores"]] == [1e-4, 1e-3, 1e-2]
    assert all(len(row["per_seed"]) == 2 for row in result["scores"])
    assert (result["budget"], result["exploration_fraction"]) == (1024, None)  # the arms' budget; PPO: as is
    rows = {r["arm"]: r for r in _read_csv(out / "summary.csv")}
    assert rows["from-range"]["schedule"].startswith(
        f"triangular:base_lr={result['base_lr']:g},max_lr={result['max_lr']:g}")


def test_a_dqn_single_run_range_test_is_flagged_before_anything_runs(tmp_path: Path, h: Any) -> None:
    spec = _setup_spec(h, tmp_path, TUNE.split("[lr_range]")[0] + "[lr_range]\nmethod = \"single\"\n")
    text = spec.read_text().replace('algo = "ppo"', 'algo = "dqn"').split("[hyperparams]")[0] + ARMS
    spec.write_text(text.replace("timesteps = 1024", "timesteps = 8192"))
    proc = h.ok(h.run("compare", spec, "--out", tmp_path / "out", "--dry-run", cwd=tmp_path))
    assert "lr_range on CartPole-v1: warning: the single-run range test is not validated for DQN" in proc.stderr
    assert "use method sweep for DQN" in proc.stderr


@pytest.mark.parametrize(("extra", "field", "needle"), [
    (TUNE.replace("seeds = [100]", "seeds = [1, 100]"), "tune.seeds", "overlaps the evaluation seeds at [1]"),
    (TUNE.replace('grid = "1e-4:1e-2:3"', 'grid = "1e-4:1e-2"'), "tune", "must look like lo:hi:n"),
    (TUNE.replace('criterion = "final"', 'criterion = "best"'), "tune.criterion", "'best' must be one of auc, final"),
    (TUNE.split("[lr_range]")[0], "arms.from-range", "no [lr_range] table"),
    (TUNE + "[report]\nmargin = 0.5\n", "report.margin", "must be in (0, 0.5)"),
    (TUNE.replace('method = "single"', 'method = "fast"'), "lr_range.method", "'fast' must be single or sweep"),
    (TUNE.replace("timesteps = 4096", "timesteps = 256\npoints = 1000"), "lr_range on CartPole-v1", "needs"),
])
def test_setup_phase_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, h: Any, extra: str,
                                                                       field: str, needle: str) -> None:
    spec = _setup_spec(h, tmp_path, extra)
    out = tmp_path / "out"
    line = h.one_error_line(h.run("compare", spec, "--out", out, cwd=tmp_path))
    assert line.startswith(f"clr-rl: error: {spec}: {field}"), line
    assert needle in line, line
    assert not out.exists()


def test_config_error_is_a_value_error_for_python_callers() -> None:
    with pytest.raises(ValueError, match=r"timesteps=0 must be an integer >= 1"):
        prepare(RunConfig("ppo", "CartPole-v1", "3e-4", 0))
    assert issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------------ calibrated time estimates


def test_progress_eta_weighs_each_run_by_its_estimate_not_by_its_timesteps(tmp_path: Path, h: Any) -> None:
    import time

    from clr_rl.compare.plan import plan
    from clr_rl.compare.spec import load_spec
    from clr_rl.execute.summary import _progress_line

    spec = tmp_path / "eta.toml"
    spec.write_text(h.tiny_spec("eta", seeds=1))  # CartPole and Acrobot, 2 arms, 1 seed, 1,024 steps each
    runs = plan(load_spec(spec))
    est = {r.folder: 10.0 if r.env_id == "CartPole-v1" else 40.0 for r in runs}  # Acrobot 4x slower per step
    out = tmp_path / "out"
    for r in runs:  # CartPole's runs are done, Acrobot's halfway
        (out / r.folder).mkdir(parents=True)
        done = 1024 if r.env_id == "CartPole-v1" else 512
        (out / r.folder / "evaluations.csv").write_text(
            f"timesteps,mean_return,std_return,episodes,wall_seconds\n0,1.0,0.0,2,0.1\n{done},2.0,0.0,2,1.0\n")
    line = _progress_line(out, runs, time.time() - 30.0, {"steps": 0, "work": 0.0}, est)
    assert (line["steps"], line["total"], line["left"]) == (3 * 1024, 4 * 1024, 4)
    # 60 estimated seconds of work done in 30 s: the 40 left take 20 s; by timesteps (3,072 of 4,096 in 30 s) 10 s
    assert line["work"] == pytest.approx(60.0) and line["eta"] == pytest.approx(20.0, rel=0.02)
    assert line["rate"] == pytest.approx(3 * 1024 / 30.0, rel=0.02)



def test_dry_run_estimates_the_whole_batch_from_cached_calibrations(tmp_path: Path, h: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from clr_rl.compare.plan import plan
    from clr_rl.compare.setup import plan_setup
    from clr_rl.compare.spec import load_spec
    from clr_rl.run.speed import speed_key

    spec = _setup_spec(h, tmp_path)  # 3 tuning runs, one single-run range test of 4,096 steps, 2 arms x 2 seeds
    loaded = load_spec(spec)
    keys = {speed_key(r.prepared) for r in plan_setup(loaded).tune_runs + plan(loaded)}
    assert len(keys) == 1  # one configuration: the LR does not change the speed
    cache = tmp_path / "xdg" / "clr-rl" / "speeds.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({k: {"learning_starts": 0.0, "collect_steps_per_s": 10.0, "train_steps_per_s": 10.0,
                                     "eval_steps_per_s": 1000.0, "eval_episode_steps": 500.0} for k in keys}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = cache.stat().st_mtime_ns
    out = tmp_path / "never"
    dry = h.ok(h.run("compare", spec, "--out", out, "--dry-run", "--workers", "2", cwd=tmp_path)).stdout
    assert "calibrating" not in dry and cache.stat().st_mtime_ns == before and not out.exists()  # read, not measured
    # per run: 2 s of overhead + 1,024 steps at 10/s + (1024 // 512 + 2) evaluations x 2 episodes x 500 steps at 1000/s
    run_s = 2 + 1024 / 10 + 4 * 2 * 500 / 1000
    rows = [line.split() for line in dry.splitlines() if line.startswith("CartPole-v1")]
    assert len(rows) == 3 + 4 and all(cells[5] == f"{run_s:.0f}" for cells in rows)
    range_s = 2 + 4096 / 10  # training only: a single range test evaluates nothing
    assert f"4,096 timesteps, est {range_s:,.0f} s in the driver" in dry
    assert dry.count("speeds calibrated on this machine, 1 thread per run") == 2
    # tuning: 3 runs on 2 workers (the longer worker runs two), the range test alone, then 4 arm runs on 2 workers
    minutes = (2 * run_s + range_s + 2 * run_s) / 60
    last = dry.strip().splitlines()[-1]
    assert last == f"setup: whole batch (setup phase, then arms) about {minutes:.1f} min with 2 workers"



def test_estimate_uses_the_calibrated_speeds_of_the_runs_configuration(tmp_path: Path) -> None:
    from clr_rl.execute.estimates import calibrate, estimate
    from clr_rl.execute.planned import PlannedRun
    from clr_rl.run.speed import speed_key

    prepared = prepare(RunConfig("dqn", "CartPole-v1", "1e-3", 3000, overrides={"learning_starts": 1000},
                                 eval_every=1000, eval_episodes=2, threads=1))
    run = PlannedRun("CartPole-v1", "a", 0, "runs/a", prepared)
    cache = tmp_path / "speeds.json"
    speeds = calibrate([run, run], cache)  # one configuration: measured once
    measured = speeds[speed_key(prepared)]
    assert json.loads(cache.read_text()) == speeds
    assert measured["learning_starts"] == 1000 and measured["eval_episode_steps"] == 500  # CartPole's time limit
    assert all(measured[k] > 0 for k in ("collect_steps_per_s", "train_steps_per_s", "eval_steps_per_s"))
    mtime = cache.stat().st_mtime_ns
    assert calibrate([run], cache) == speeds and cache.stat().st_mtime_ns == mtime  # cached: not measured again

    fake = {speed_key(prepared): {"learning_starts": 1000.0, "collect_steps_per_s": 2000.0,
                                  "train_steps_per_s": 500.0, "eval_steps_per_s": 1000.0,
                                  "eval_episode_steps": 500.0}}
    seconds, _ = estimate(run, fake)
    evals = 3000 // 1000 + 2
    assert seconds == pytest.approx(2.0 + 1000 / 2000 + 2000 / 500 + evals * 2 * 500 / 1000)
    renamed = PlannedRun("CartPole-v1", "b", 1, "runs/b", prepare(dataclasses.replace(prepared.config, seed=1,
                                                                                      schedule="2e-3", arm="b")))
    assert estimate(renamed, fake)[0] == pytest.approx(seconds)  # same configuration, same speed
