"""End-to-end tests of ``clr-rl compare`` / ``clr-rl status`` through the real command line.

Tiny budgets (1-4k steps, n_steps=32 x n_envs=4 so SB3 sets the LR every 128 steps,
evaluation every 512 steps with 2 episodes) keep the whole file near a minute on 2 cores.
What the user would look at is checked against independent sources: the LRs that
TensorBoard recorded against torch's CyclicLR, AUCs against a trapezoid computed here,
the tuned LRs against agents/ppo.toml read with tomllib, the summary against the run folders.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).with_name("clr-rl")  # the installed console script
CLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "clr_rl.cli"]
PPO_TOML = tomllib.loads((ROOT / "agents" / "ppo.toml").read_text())
EVAL_COLUMNS = ["timesteps", "mean_return", "std_return", "episodes", "wall_seconds"]


def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _ok(proc: subprocess.CompletedProcess[str], status: int = 0) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == status, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr or status == 1
    return proc


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _evaluations(path: Path) -> list[dict[str, float]]:
    """Parse evaluations.csv strictly: the exact header, every field a number."""
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(EVAL_COLUMNS), lines[0]
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        assert len(cells) == len(EVAL_COLUMNS), f"torn row {line!r} in {path}"
        rows.append(dict(zip(EVAL_COLUMNS, map(float, cells))))
    ts = [r["timesteps"] for r in rows]
    assert all(a < b for a, b in zip(ts, ts[1:])), f"timesteps not strictly increasing in {path}: {ts}"
    return rows


def _trapezoid_auc(rows: list[dict[str, float]]) -> float:
    t = [r["timesteps"] for r in rows]
    y = [r["mean_return"] for r in rows]
    area = sum((t[i + 1] - t[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(t) - 1))
    return area / (t[-1] - t[0])


def _scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _cyclic_oracle(base_lr: float, max_lr: float, updates: int, step_size_up: int) -> list[float]:
    """torch's CyclicLR (triangular, no momentum cycling): the LR of updates 1..updates."""
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up,
                                              mode="triangular", cycle_momentum=False)
    out = []
    for _ in range(updates):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def _tuned(env_id: str) -> float:
    return float(PPO_TOML["env"][env_id]["tuned_lr"])


def _mtimes(out: Path, names: tuple[str, ...] = ("run.json", "model.zip")) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for n in names for p in (out / "runs").rglob(n)}


def _run_folders(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in (out / "runs").glob("*/*/*") if p.is_dir())


# ----------------------------------------------------------------------------- a finished batch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, h: Any) -> dict[str, Any]:
    """A 2 env x 2 arm x 2 seed batch at 1024 steps, trained once for the tests below."""
    root = tmp_path_factory.mktemp("tiny")
    spec = root / "tiny.toml"
    spec.write_text(h.tiny_spec("tiny"))
    out = root / "out"
    proc = _ok(_run("compare", spec, "--out", out, "--workers", "2", cwd=root))
    return {"root": root, "spec": spec, "out": out, "proc": proc}


def test_batch_summary_matches_run_folders(tiny: dict[str, Any]) -> None:
    out: Path = tiny["out"]
    assert "tiny: 8 runs, 0 already complete, 8 to run, 2 local workers" in tiny["proc"].stdout
    assert (out / "spec.toml").read_text() == tiny["spec"].read_text()
    rows = _read_csv(out / "summary.csv")
    from clr_rl.execute.summary import SUMMARY_COLUMNS

    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    keys = [(r["env"], r["arm"], r["seed"]) for r in rows]
    assert len(rows) == 8 and set(keys) == {(e, a, s) for e in ("CartPole-v1", "Acrobot-v1")
                                             for a in ("fixed", "around") for s in ("0", "1")}
    resolved = json.loads((out / "spec.resolved.json").read_text())
    assert len(resolved["runs"]) == 8
    resolved_ids = {r["folder"]: r["run_id"] for r in resolved["runs"]}
    assert _run_folders(out) == sorted(resolved_ids)
    for row in rows:
        folder = out / row["folder"]
        assert row["folder"] == f"runs/{row['env']}/{row['arm']}/seed{row['seed']}"
        record = json.loads((folder / "run.json").read_text())
        evals = _evaluations(folder / "evaluations.csv")
        assert [r["timesteps"] for r in evals] == [0, 512, 1024]
        assert all(r["episodes"] == 2 for r in evals)
        assert row["status"] == "finished" and record["status"] == "finished" and row["algo"] == "ppo"
        assert row["run_id"] == record["run_id"] == resolved_ids[row["folder"]]
        assert float(row["final_return"]) == record["final_eval"]["mean_return"] == evals[-1]["mean_return"]
        assert float(row["auc"]) == record["auc"] == pytest.approx(_trapezoid_auc(evals), rel=1e-12)
        assert int(row["timesteps"]) == record["timesteps_done"] == 1024
        assert (folder / "model.zip").is_file() and not (folder / "checkpoint").exists()
        # what TensorBoard shows is what the CSV says
        assert _scalars(folder, "eval/mean_return") == [(int(r["timesteps"]), pytest.approx(r["mean_return"]))
                                                         for r in evals]
        # the schedule, resolved with the env's tuned LR from agents/ppo.toml
        cfg = record["config"]
        tuned = _tuned(row["env"])
        assert cfg["agent"]["tuned_lr"] == tuned and cfg["seed"] == int(row["seed"])
        assert (cfg["agent"]["n_envs"], cfg["agent"]["hyperparams"]["n_steps"]) == (4, 32)
        lrs = [v for _, v in _scalars(folder, "train/lr_applied")]
        assert [s for s, _ in _scalars(folder, "train/lr_applied")] == list(range(128, 1025, 128))
        if row["arm"] == "fixed":
            assert cfg["schedule_kind"] == "constant" and cfg["schedule_params"]["lr"] == pytest.approx(tuned)
            assert lrs == pytest.approx([tuned] * 8, rel=1e-6)
        else:
            p = cfg["schedule_params"]
            assert cfg["schedule_kind"] == "triangular" and p["cycles"] == 2
            assert p["base_lr"] == pytest.approx(tuned / 3, rel=1e-9) and p["max_lr"] == pytest.approx(tuned * 3)
            # 2 cycles over 8 updates: a rise or fall of 2 updates, as torch's CyclicLR(step_size_up=2)
            assert lrs == pytest.approx(_cyclic_oracle(tuned / 3, tuned * 3, 8, 2), rel=1e-6)
    cartpole = json.loads((out / "runs/CartPole-v1/around/seed0/run.json").read_text())["config"]
    assert cartpole["schedule_params"]["base_lr"] == pytest.approx(0.000333333333333)

    status = _ok(_run("status", out, cwd=tiny["root"]))
    assert ("tiny: 8 runs: not started 0, running 0, finished 8, interrupted 0, failed 0, diverged 0 | "
            "8,192/8,192 steps (100%)") in status.stdout


def test_rerun_retrains_nothing(tiny: dict[str, Any]) -> None:
    out: Path = tiny["out"]
    before = _mtimes(out, ("run.json", "model.zip", "evaluations.csv"))
    assert len(before) == 24
    proc = _ok(_run("compare", tiny["spec"], "--out", out, "--workers", "2", cwd=tiny["root"]))
    assert "tiny: 8 runs, 8 already complete, 0 to run" in proc.stdout
    assert _mtimes(out, ("run.json", "model.zip", "evaluations.csv")) == before
    assert len(_read_csv(out / "summary.csv")) == 8


def test_dry_run_lists_runs_and_writes_nothing(tiny: dict[str, Any], tmp_path: Path) -> None:
    from clr_rl.compare.plan import plan
    from clr_rl.compare.spec import load_spec
    from clr_rl.execute.estimates import estimate

    runs = plan(load_spec(tiny["spec"]))
    out = tmp_path / "never"
    proc = _ok(_run("compare", tiny["spec"], "--out", out, "--dry-run", "--workers", "2", cwd=tmp_path))
    assert not out.exists() and list(tmp_path.iterdir()) == []
    lines = proc.stdout.splitlines()
    assert lines[0] == f"tiny: 8 runs (2 envs x 2 arms x 2 seeds), 8 to run -> {out}"
    table = [line.split() for line in lines[2:10]]
    assert len(table) == 8
    for r, cells in zip(runs, table):
        seconds, gb = estimate(r)
        assert 0 < seconds < 60 and 0.3 < gb < 1  # a 1024-step CartPole/Acrobot run: about a second, ~0.45 GB
        assert cells == [r.env_id, "ppo", r.arm, str(r.seed), "1,024", f"{seconds:.0f}", f"{gb:.2f}", "not_started"]
    assert lines[10].startswith("estimated: ") and "with 2 workers" in lines[10]

    # over the finished batch: every run is "finished", and nothing there changes
    before = _mtimes(tiny["out"], ("run.json", "model.zip", "summary.csv"))
    proc = _ok(_run("compare", tiny["spec"], "--out", tiny["out"], "--dry-run", cwd=tmp_path))
    assert "0 to run" in proc.stdout.splitlines()[0]
    assert [line.split()[-1] for line in proc.stdout.splitlines()[2:10]] == ["finished"] * 8
    assert _mtimes(tiny["out"], ("run.json", "model.zip", "summary.csv")) == before


def test_ray_backend_matches_local(tiny: dict[str, Any], tmp_path: Path, h: Any) -> None:
    pytest.importorskip("ray")
    spec = tmp_path / "ray.toml"
    spec.write_text(h.tiny_spec("tiny-ray", envs=("CartPole-v1",), seeds=1))
    out = tmp_path / "out"
    proc = _ok(_run("compare", spec, "--out", out, "--workers", "2", "--backend", "ray", cwd=tmp_path))
    assert "tiny-ray: 2 runs, 0 already complete, 2 to run, 2 ray workers" in proc.stdout
    assert _run_folders(out) == ["runs/CartPole-v1/around/seed0", "runs/CartPole-v1/fixed/seed0"]
    ray_rows = {r["folder"]: r for r in _read_csv(out / "summary.csv")}
    local_rows = {r["folder"]: r for r in _read_csv(tiny["out"] / "summary.csv")}
    assert len(ray_rows) == 2
    for folder, row in ray_rows.items():
        local = local_rows[folder]
        # same resolved config -> same id; same seed, one thread -> the same numbers as the local pool
        for col in ("env", "algo", "arm", "seed", "status", "run_id", "timesteps", "final_return", "auc"):
            assert row[col] == local[col], (folder, col)
        ray_evals = _evaluations(out / folder / "evaluations.csv")
        local_evals = _evaluations(tiny["out"] / folder / "evaluations.csv")
        assert [(r["timesteps"], r["mean_return"]) for r in ray_evals] == [
            (r["timesteps"], r["mean_return"]) for r in local_evals]
        assert (out / folder / "model.zip").is_file()
    before = _mtimes(out)
    proc = _ok(_run("compare", spec, "--out", out, "--workers", "2", "--backend", "ray", cwd=tmp_path))
    assert "2 runs, 2 already complete, 0 to run" in proc.stdout
    assert _mtimes(out) == before


# ----------------------------------------------------------------------------- failures


def test_crashing_arm_is_isolated_and_retried(tmp_path: Path, h: Any) -> None:
    # It passes validation (every value has its type and range): SB3's PPO refuses gSDE with discrete actions
    # only when it builds the model. (The values that used to fail later, batch_size = 1 and max_grad_norm =
    # "nope", are refused before any run now: tests/test_bad_input.py.)
    arms = ('[arms.broken-init]\nkind = "constant"\nlr = "tuned"\n'
            '[arms.broken-init.hyperparams]\nuse_sde = true\n')
    spec = tmp_path / "crash.toml"
    spec.write_text(h.tiny_spec("crash", envs=("CartPole-v1",), seeds=1, extra_arms=arms))
    out = tmp_path / "out"
    proc = _ok(_run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path), status=1)
    rows = {r["arm"]: r for r in _read_csv(out / "summary.csv")}
    assert {a: r["status"] for a, r in rows.items()} == {
        "fixed": "finished", "around": "finished", "broken-init": "failed"}
    assert "FAILED runs/CartPole-v1/broken-init/seed0: ValueError: " in proc.stdout
    assert "1 run(s) failed" in proc.stdout and "--retry-failed" in proc.stdout
    resolved = {r["folder"]: r["run_id"] for r in json.loads((out / "spec.resolved.json").read_text())["runs"]}
    init = json.loads((out / "runs/CartPole-v1/broken-init/seed0/run.json").read_text())
    assert init["status"] == "failed" and init["run_id"] == resolved["runs/CartPole-v1/broken-init/seed0"]
    assert "Traceback (most recent call last)" in init["traceback"] and "gSDE" in init["traceback"]
    assert "PPO(" in init["traceback"] or "ppo.py" in init["traceback"]
    # the good runs are complete
    for arm in ("fixed", "around"):
        evals = _evaluations(out / f"runs/CartPole-v1/{arm}/seed0/evaluations.csv")
        assert [r["timesteps"] for r in evals] == [0, 512, 1024]
        assert float(rows[arm]["final_return"]) == evals[-1]["mean_return"]

    good = {k: v for k, v in _mtimes(out).items() if "broken" not in k}
    failed_before = {k: v for k, v in _mtimes(out).items() if "broken" in k}
    assert len(good) == 4 and len(failed_before) == 1  # no model.zip for failed runs
    proc = _ok(_run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path), status=1)
    # failed runs stay failed without --retry-failed
    assert "crash: 3 runs, 2 already complete, 1 failed (rerun them with --retry-failed), 0 to run" in proc.stdout
    assert _mtimes(out) == {**good, **failed_before}

    proc = _ok(_run("compare", spec, "--out", out, "--workers", "2", "--retry-failed", cwd=tmp_path), status=1)
    assert "3 runs, 2 already complete, 1 to run" in proc.stdout
    after = _mtimes(out)
    assert {k: v for k, v in after.items() if "broken" not in k} == good
    for key, mtime in failed_before.items():
        assert after[key] > mtime  # rerun, and failed again
    assert json.loads((out / "runs/CartPole-v1/broken-init/seed0/run.json").read_text())["status"] == "failed"
    assert _run_folders(out) == sorted(f"runs/CartPole-v1/{a}/seed0"
                                       for a in ("fixed", "around", "broken-init"))


def test_memory_estimate_and_refusal(tmp_path: Path) -> None:
    from clr_rl.compare.plan import plan
    from clr_rl.compare.spec import load_spec
    from clr_rl.execute.estimates import estimate

    pytest.importorskip("ale_py")
    spec = tmp_path / "pong.toml"
    spec.write_text('name = "pong"\nalgo = "dqn"\nseeds = 2\ntimesteps = 2_000_000\nenvs = ["PongNoFrameskip-v4"]\n'
                    '[hyperparams]\nbuffer_size = 1_000_000\n[arms.fixed]\nkind = "constant"\nlr = "tuned"\n')
    runs = plan(load_spec(spec))
    assert len(runs) == 2 and runs[0].prepared.agent.hyperparams["buffer_size"] == 1_000_000
    _, gb = estimate(runs[0])
    _, gb_10k = estimate(dataclasses.replace(runs[0], prepared=_with_buffer(runs[0].prepared, 10_000)))
    # FACTS.md: a 10k-transition Atari replay buffer (84x84x4 uint8 obs and next_obs) takes ~0.56 GB,
    # so 1M transitions take 99 x 0.56 GB more than 10k, on top of one worker process (~0.45 GB)
    assert (gb - gb_10k) / 99 == pytest.approx(0.56, abs=0.01)
    assert gb_10k == pytest.approx(0.56 + 0.45, abs=0.05)

    out = tmp_path / "out"
    proc = _run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("clr-rl:")]
    noise = [line for line in proc.stderr.splitlines()
             if not line.startswith("clr-rl:") and not line.startswith(("A.L.E:", "[Powered by Stella]"))]
    assert len(errors) == 1 and noise == [], proc.stderr
    assert errors[0].startswith("clr-rl: error: memory: 2 workers need about ")
    assert f"{2 * gb:.1f} GB" in errors[0] and "buffer_size" in errors[0] and "available" in errors[0]
    assert not out.exists()


def _with_buffer(prepared: Any, buffer_size: int) -> Any:
    agent = dataclasses.replace(prepared.agent, hyperparams={**prepared.agent.hyperparams,
                                                             "buffer_size": buffer_size})
    return dataclasses.replace(prepared, agent=agent)


# ----------------------------------------------------------------------------- kill -9 and resume


def test_kill_9_then_rerun_resumes(tmp_path: Path, h: Any) -> None:
    timesteps = 4096
    spec = tmp_path / "kill.toml"
    spec.write_text(h.tiny_spec("kill", timesteps=timesteps))
    out = tmp_path / "out"
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen([*CLI, "compare", str(spec), "--out", str(out), "--workers", "2"], cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 120
    try:
        while True:
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.time() < deadline, "no moment with 2 finished runs and one in progress"
            states = h.statuses(out) if (out / "runs").is_dir() else {}
            done = [f for f, s in states.items() if s == "finished"]
            running = [f for f, s in states.items() if s == "running"]
            with_checkpoint = [f for f in running if (out / f / "checkpoint" / "state.json").is_file()]
            if len(done) >= 2 and with_checkpoint:
                break
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
    time.sleep(0.5)  # let the killed pool workers go
    states = h.statuses(out)
    finished_before = sorted(f for f, s in states.items() if s == "finished")
    assert len(finished_before) >= 2 and len(finished_before) < 8
    kept = {k: v for k, v in _mtimes(out).items() if k.rsplit("/", 1)[0] in finished_before}
    assert len(kept) == 2 * len(finished_before)
    checkpoints = {f: json.loads((out / f / "checkpoint" / "state.json").read_text())["timesteps"]
                   for f, s in states.items() if s != "finished" and (out / f / "checkpoint" / "state.json").is_file()}
    assert checkpoints and all(0 < t < timesteps for t in checkpoints.values())
    # a kill between "checkpoint.tmp -> checkpoint" and removing checkpoint.old leaves both behind
    for folder in checkpoints:
        (out / folder / "checkpoint.old").mkdir(exist_ok=True)
        (out / folder / "checkpoint.old" / "model.zip").write_bytes(b"stale")

    rerun = _ok(_run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    assert f"kill: 8 runs, {len(finished_before)} already complete, {8 - len(finished_before)} to run" in rerun.stdout
    expected = sorted(f"runs/{e}/{a}/seed{s}" for e in ("CartPole-v1", "Acrobot-v1")
                      for a in ("fixed", "around") for s in (0, 1))
    assert _run_folders(out) == expected
    after = _mtimes(out)
    assert {k: after[k] for k in kept} == kept  # finished before the kill: not retrained
    rows = {r["folder"]: r for r in _read_csv(out / "summary.csv")}
    assert sorted(rows) == expected
    for folder in expected:
        record = json.loads((out / folder / "run.json").read_text())
        assert record["status"] == "finished" and rows[folder]["status"] == "finished"
        evals = _evaluations(out / folder / "evaluations.csv")
        assert [r["timesteps"] for r in evals] == list(range(0, timesteps + 1, 512))
        assert record["final_eval"]["mean_return"] == evals[-1]["mean_return"] == float(rows[folder]["final_return"])
        assert record["auc"] == pytest.approx(_trapezoid_auc(evals), rel=1e-12)
        assert (out / folder / "model.zip").is_file()
        if folder not in finished_before:  # (a kill between run.json and removing the checkpoint may leave one)
            assert not (out / folder / "checkpoint").exists() and not (out / folder / "checkpoint.old").exists()
        if folder in checkpoints:  # resumed from its checkpoint, towards the same budget
            assert record["resumed_from"] == checkpoints[folder]
        else:
            assert "resumed_from" not in record
        # one LR value per update, none written twice by the killed and the resumed process
        steps = [s for s, _ in _scalars(out / folder, "train/lr_applied")]
        assert steps == list(range(128, timesteps + 1, 128)), folder
    status = _ok(_run("status", out, cwd=tmp_path))
    assert "finished 8, interrupted 0, failed 0" in status.stdout


def test_ray_backend_without_ray_says_how_to_install(tmp_path: Path, h: Any) -> None:
    """Ray is an optional extra: where it cannot be imported, --backend ray exits 2 with the pip line."""
    spec = tmp_path / "s.toml"
    spec.write_text(h.tiny_spec("noray", envs=("CartPole-v1",), seeds=1))
    code = ("import sys; sys.modules['ray'] = None  # as if the extra were not installed\n"
            "from clr_rl.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "compare", str(spec), "--out", str(tmp_path / "out"),
                           "--backend", "ray"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "clr-rl: error: --backend ray needs Ray: pip install 'clr-rl[ray]' (or pip install 'ray[default]')"]
    assert not (tmp_path / "out").exists()
