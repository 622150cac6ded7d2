"""Per-gradient-step LRs, momentum cycling, ``clr-rl tune`` and ``clr-rl lr-range``.

Oracles, all independent of the code under test:

* the LR of every optimizer step is recorded by our own ``register_step_post_hook`` and
  compared with the schedule evaluated at the interpolated timestep
  ``T + k/K * U`` (``K`` gradient steps planned per update, ``U`` timesteps between
  updates, both derived here from the hyperparameters), and with the LR SB3 itself
  set at the start of the update (a spy on ``_update_learning_rate``);
* TensorBoard scalars are read back with ``EventAccumulator`` (float32, ``rel=1e-6``);
* torch's own ``CyclicLR`` shows what silent momentum cycling looks like;
* tune / lr-range records are recomputed from the run folders' ``run.json`` files,
  and the documented suggestion rules are re-implemented here and checked on
  hand-computed curves.

Budgets are tiny (PPO CartPole-v1, ``n_steps=32 x n_envs=4`` so an update every 128
steps, 1024-step runs, one evaluation of 2 episodes at the end). Commands whose process
start-up is not the point run through ``clr_rl.cli.main`` in this process; the file takes
about 40 s on two idle cores.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from clr_rl import parse_schedule
from clr_rl.cli import main
from clr_rl.phases.lr_sweep import suggest_from_sweep
from clr_rl.run.callbacks import MOMENTUM_TAG, install_step_hook
from clr_rl.run.config import RunConfig
from clr_rl.run.prepare import prepare
from clr_rl.run.tblog import LR_STEP_TAG, LR_TAG
from clr_rl.schedules import Exponential, Triangular, Triangular2

REL = 1e-6  # TensorBoard stores scalars as float32
ENV = "CartPole-v1"
TINY_HP = ["--hp", "n_steps=32", "--hp", "n_envs=4", "--hp", "batch_size=128"]  # U = 128, K = 20 x 1
TINY_EVAL = ["--eval-every", "1024", "--eval-episodes", "2", "--device", "cpu"]


# ----------------------------------------------------------------- helpers


def cli() -> list[str]:
    script = Path(sys.executable).parent / "clr-rl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "clr_rl.cli"]


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*cli(), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The same command line, in this process (no interpreter start-up: the file stays fast)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess([str(a) for a in args], rc, captured.out, captured.err)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    if tag not in ea.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def build(config: RunConfig, *, hook: bool = True) -> tuple[Any, Any]:
    """Model built through the library path (prepare -> make_env -> build_model [-> install_step_hook])."""
    import torch

    from clr_rl.run.agents import build_model
    from clr_rl.run.envs import make_env

    torch.set_num_threads(1)
    prepared = prepare(config)
    agent = prepared.agent
    env = make_env(config.env_id, n_envs=agent.n_envs, seed=config.seed, normalize=agent.normalize,
                   gamma=float(agent.hyperparams.get("gamma", 0.99)))
    model = build_model(agent, env, prepared.schedule, seed=config.seed, device="cpu", optimizer=config.optimizer)
    if hook:
        install_step_hook(model, prepared)
    return model, prepared


class StepLog:
    """Our own post-step hook: (update timestep, lr, momentum-or-beta1) of EVERY optimizer step,
    plus a spy recording the LR SB3 itself set at the start of each update."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.steps: list[tuple[int, float, float | None]] = []
        self.sb3: dict[int, float] = {}
        model.policy.optimizer.register_step_post_hook(self._after_step)
        original = model._update_learning_rate

        def spy(optimizers: Any) -> None:
            original(optimizers)
            self.sb3[model.num_timesteps] = model.policy.optimizer.param_groups[0]["lr"]

        model._update_learning_rate = spy

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        group = optimizer.param_groups[0]
        assert all(g["lr"] == group["lr"] for g in optimizer.param_groups)
        momentum = group["betas"][0] if "betas" in group else group.get("momentum")
        self.steps.append((self.model.num_timesteps, group["lr"], momentum))

    def by_update(self) -> dict[int, list[tuple[float, float | None]]]:
        out: dict[int, list[tuple[float, float | None]]] = defaultdict(list)
        for t, lr, m in self.steps:
            out[t].append((lr, m))
        return dict(out)


def per_step_oracle(schedule: Any, t_update: int, k: int, k_total: int, every: int, total: int) -> float:
    return schedule(1 - (t_update + k / k_total * every) / total)


# ------------------------------------------- 1. per-gradient-step LR (PPO)


PPO_TOTAL = 1024
PPO_HP = {"n_steps": 32, "n_envs": 4, "batch_size": 64, "n_epochs": 4}
PPO_U = 32 * 4
PPO_K = 4 * math.ceil(PPO_U / 64)  # n_epochs x minibatches = 8
SCHED = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2)


def test_ppo_lr_per_step_interpolates_every_gradient_step() -> None:
    config = RunConfig("ppo", ENV, SCHED, PPO_TOTAL, device="cpu", overrides=PPO_HP, lr_per_step=True)
    model, _ = build(config)
    log = StepLog(model)
    model.learn(PPO_TOTAL)

    updates = log.by_update()
    assert sorted(updates) == list(range(PPO_U, PPO_TOTAL + 1, PPO_U))  # SB3 trains after each rollout
    assert sorted(log.sb3) == sorted(updates)
    for t, steps in updates.items():
        assert len(steps) == PPO_K == 8, f"update at {t}"
        for k, (lr, _) in enumerate(steps):
            assert lr == pytest.approx(per_step_oracle(SCHED, t, k, PPO_K, PPO_U, PPO_TOTAL), rel=1e-9), (t, k)
        assert steps[0][0] == log.sb3[t]  # the first step uses exactly SB3's per-update LR
        assert log.sb3[t] == pytest.approx(SCHED(1 - t / PPO_TOTAL), rel=1e-12)
    # The LR really moves inside an update: rising towards the peak at 256, falling after it.
    lrs = [lr for lr, _ in updates[128]]
    assert lrs == sorted(lrs) and lrs[-1] > lrs[0] * 1.5
    lrs = [lr for lr, _ in updates[384]]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]


def test_ppo_lr_per_step_with_target_kl_early_stop_keeps_the_formula() -> None:
    config = RunConfig("ppo", ENV, SCHED, PPO_TOTAL, device="cpu", overrides={**PPO_HP, "target_kl": 1e-4},
                       lr_per_step=True)
    model, _ = build(config)
    log = StepLog(model)
    model.learn(PPO_TOTAL)

    updates = log.by_update()
    assert sorted(updates) == list(range(PPO_U, PPO_TOTAL + 1, PPO_U))
    counts = [len(s) for s in updates.values()]
    assert all(1 <= n <= PPO_K for n in counts)
    assert min(counts) < PPO_K, f"target_kl=1e-4 never stopped PPO early: {counts}"
    for t, steps in updates.items():
        # Whatever prefix of the K planned steps ran follows the formula, then the next update
        # restarts at its own timestep (no carry-over of the step counter).
        for k, (lr, _) in enumerate(steps):
            assert lr == pytest.approx(per_step_oracle(SCHED, t, k, PPO_K, PPO_U, PPO_TOTAL), rel=1e-9), (t, k)
        assert steps[0][0] == log.sb3[t]


# ------------------------------------------- 2. per-gradient-step LR (DQN)


def test_dqn_lr_per_step_interpolates_over_gradient_steps() -> None:
    total, train_freq, gradient_steps, learning_starts = 600, 4, 2, 200
    config = RunConfig("dqn", ENV, SCHED, total, device="cpu", lr_per_step=True,
                       overrides={"train_freq": train_freq, "gradient_steps": gradient_steps,
                                  "learning_starts": learning_starts, "buffer_size": 1000, "batch_size": 32,
                                  "target_update_interval": 100})
    model, prepared = build(config)
    assert prepared.agent.n_envs == 1
    log = StepLog(model)
    model.learn(total)

    every = train_freq * prepared.agent.n_envs
    updates = log.by_update()
    assert sorted(updates) == [t for t in range(every, total + 1, every) if t > learning_starts]
    for t, steps in updates.items():
        assert len(steps) == gradient_steps
        for k, (lr, _) in enumerate(steps):
            assert lr == pytest.approx(per_step_oracle(SCHED, t, k, gradient_steps, every, total), rel=1e-9), (t, k)
        assert steps[0][0] == log.sb3[t]
    assert updates[300][1][0] == pytest.approx(SCHED(1 - 302 / total), rel=1e-9)  # halfway to the next update


# ------------------------------------------- 3. default: SB3's per-update LR


def test_default_keeps_one_lr_per_update() -> None:
    config = RunConfig("ppo", ENV, SCHED, PPO_TOTAL, device="cpu", overrides=PPO_HP)
    model, _ = build(config, hook=False)  # what train() does without lr_per_step / cycle_momentum
    log = StepLog(model)
    model.learn(PPO_TOTAL)
    for t, steps in log.by_update().items():
        assert len(steps) == PPO_K
        assert {lr for lr, _ in steps} == {log.sb3[t]}, f"update at {t}"
        assert log.sb3[t] == pytest.approx(SCHED(1 - t / PPO_TOTAL), rel=1e-12)


# ------------------------------------------- 4. through the CLI: train --lr-per-step


def test_cli_train_lr_per_step_tensorboard_tag(tmp_path: Path) -> None:
    out = tmp_path / "run"
    spec = "triangular:base_lr=1e-4,max_lr=1e-3,cycles=2"
    ok(run_cli("train", "--env", ENV, "--schedule", spec, "--timesteps", "1024", "--lr-per-step", *TINY_HP,
               *TINY_EVAL, "--threads", "1", "--no-progress", "--out", out))
    schedule = parse_schedule(spec)
    points = scalars(out, LR_STEP_TAG)
    # Zoo CartPole: n_epochs=20, one minibatch of 128 -> K=20 steps per 128-step update; the tag is
    # written at the steps that land on whole timesteps: k = 0, 5, 10, 15 -> T, T+32, T+64, T+96.
    expected = [t + d for t in range(128, 1025, 128) for d in (0, 32, 64, 96)]
    assert [s for s, _ in points] == expected
    for step, value in points:
        assert value == pytest.approx(schedule(1 - step / 1024), rel=REL), step
    assert json.loads((out / "run.json").read_text())["config"]["lr_per_step"] is True


class FakeWriter:
    def __init__(self) -> None:
        self.points: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.points[tag].append((step, value))


def test_lr_per_step_tag_lands_on_exact_timesteps_when_k_over_k_is_not_dyadic() -> None:
    """U=90, K=10: every step lands on a whole timestep T + 9k, and each is logged there exactly
    (7/10 * 90 alone is 62.99999999999999 in floating point; T + that must still read T + 63)."""
    total = 900
    config = RunConfig("ppo", ENV, SCHED, total, device="cpu", lr_per_step=True,
                       overrides={"n_steps": 45, "n_envs": 2, "batch_size": 90, "n_epochs": 10})
    model, prepared = build(config, hook=False)
    writer = FakeWriter()
    install_step_hook(model, prepared, writer=writer)
    model.learn(total)
    points = writer.points[LR_STEP_TAG]
    assert [s for s, _ in points] == [t + 9 * k for t in range(90, total + 1, 90) for k in range(10)]
    for step, value in points:
        assert type(step) is int
        assert value == pytest.approx(SCHED(1 - step / total), rel=1e-9), step


# ------------------------------------------- 5. momentum cycling


def test_cli_sgd_cycle_momentum_follows_the_lr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stable_baselines3 import PPO

    out = tmp_path / "sgd"
    spec = "triangular:base_lr=1e-3,max_lr=1e-2,cycles=1"
    ok(run_main(capsys, "train", "--env", ENV, "--schedule", spec, "--timesteps", "1024", "--optimizer", "sgd",
                "--cycle-momentum", "0.85,0.95", *TINY_HP, *TINY_EVAL, "--threads", "1", "--no-progress",
                "--out", out))
    schedule = parse_schedule(spec)
    momentum = scalars(out, MOMENTUM_TAG)
    lrs = dict(scalars(out, LR_TAG))
    assert [s for s, _ in momentum] == list(range(128, 1025, 128)) == sorted(lrs)
    for step, m in momentum:
        lr = schedule(1 - step / 1024)
        assert lrs[step] == pytest.approx(lr, rel=REL)
        w = (lr - 1e-3) / (1e-2 - 1e-3)
        assert m == pytest.approx(0.95 - 0.10 * w, rel=REL), step
    at = dict(momentum)
    assert lrs[512] == pytest.approx(1e-2, rel=REL) and at[512] == pytest.approx(0.85, rel=REL)  # at max_lr
    assert lrs[1024] == pytest.approx(1e-3, rel=REL) and at[1024] == pytest.approx(0.95, rel=REL)  # at base_lr
    model = PPO.load(out / "model.zip", device="cpu")
    group = model.policy.optimizer.param_groups[0]
    assert type(model.policy.optimizer).__name__ == "SGD"
    assert group["momentum"] == pytest.approx(0.95)  # the last update ran at base_lr
    assert json.loads((out / "run.json").read_text())["config"]["cycle_momentum"] == [0.85, 0.95]


def test_adam_beta1_is_left_alone_unless_asked_and_cycles_when_asked() -> None:
    import torch

    # Ours, without cycle_momentum: the hook changes the LR at every step but never beta1.
    model, _ = build(RunConfig("ppo", ENV, SCHED, PPO_TOTAL, device="cpu", overrides=PPO_HP, lr_per_step=True))
    log = StepLog(model)
    model.learn(PPO_TOTAL)
    assert len({lr for _, lr, _ in log.steps}) > 10  # many distinct LRs...
    assert {b1 for _, _, b1 in log.steps} == {0.9}
    assert model.policy.optimizer.param_groups[0]["betas"] == (0.9, 0.999)

    # Ours, with cycle_momentum: beta1 = high - (high - low) * w at every step, w from that step's LR.
    model, _ = build(RunConfig("ppo", ENV, SCHED, PPO_TOTAL, device="cpu", overrides=PPO_HP, lr_per_step=True,
                               cycle_momentum=(0.85, 0.95)))
    log = StepLog(model)
    model.learn(PPO_TOTAL)
    for _, lr, b1 in log.steps:
        assert b1 == pytest.approx(0.95 - 0.10 * (lr - 1e-4) / (1e-3 - 1e-4), rel=1e-9)
    beta1 = [float(b1) for _, _, b1 in log.steps if b1 is not None]
    assert len(beta1) == len(log.steps)
    assert min(beta1) == pytest.approx(0.85, abs=1e-3) and max(beta1) == pytest.approx(0.95, abs=1e-3)
    assert model.policy.optimizer.param_groups[0]["betas"][1] == 0.999  # beta2 untouched

    # cycle_momentum without lr_per_step: SB3's one LR per update, and one beta1 per update to match.
    model, _ = build(RunConfig("ppo", ENV, SCHED, PPO_TOTAL, device="cpu", overrides=PPO_HP,
                               cycle_momentum=(0.85, 0.95)))
    log = StepLog(model)
    model.learn(PPO_TOTAL)
    for t, steps in log.by_update().items():
        assert len(steps) == PPO_K
        w = (SCHED(1 - t / PPO_TOTAL) - 1e-4) / (1e-3 - 1e-4)
        assert {lr for lr, _ in steps} == {log.sb3[t]}
        assert [b1 for _, b1 in steps] == pytest.approx([0.95 - 0.10 * w] * PPO_K, rel=1e-9)

    # Contrast: torch 2.13's CyclicLR on Adam (default cycle_momentum=True) does not raise; it
    # silently cycles beta1 between max_momentum=0.9 (at base_lr) and base_momentum=0.8 (at max_lr).
    params = [torch.nn.Parameter(torch.zeros(2))]
    adam = torch.optim.Adam(params, lr=1e-4)
    clr = torch.optim.lr_scheduler.CyclicLR(adam, base_lr=1e-4, max_lr=1e-3, step_size_up=2)
    seen = []
    for _ in range(4):
        adam.step()
        clr.step()
        seen.append((adam.param_groups[0]["lr"], adam.param_groups[0]["betas"][0]))
    assert [round(lr, 8) for lr, _ in seen] == [5.5e-4, 1e-3, 5.5e-4, 1e-4]
    assert [round(b, 8) for _, b in seen] == [0.85, 0.8, 0.85, 0.9]
    adam = torch.optim.Adam(params, lr=1e-4)
    clr = torch.optim.lr_scheduler.CyclicLR(adam, base_lr=1e-4, max_lr=1e-3, step_size_up=2, cycle_momentum=False)
    for _ in range(4):
        adam.step()
        clr.step()
        assert adam.param_groups[0]["betas"][0] == 0.9


@pytest.mark.parametrize("value", ["0.95,0.85", "1.2,1.5", "abc"])
def test_bad_cycle_momentum_exits_2_with_one_line(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    out = tmp_path / "run"
    rc = main(["train", "--env", ENV, "--schedule", "1e-3", "--timesteps", "1024", "--optimizer", "sgd",
               "--cycle-momentum", value, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("clr-rl: error: ")
    assert "cycle_momentum" in err.replace("-", "_")
    assert not out.exists()


# ------------------------------------------- 6. clr-rl tune


TUNE_ARGS = ["--env", ENV, "--timesteps", "1024", *TINY_HP, *TINY_EVAL, "--workers", "2"]


def _run_records(out: Path) -> dict[tuple[float, int], dict[str, Any]]:
    """(lr, seed) -> run.json of every run folder of a sweep."""
    records = {}
    for path in sorted((out / "runs" / ENV).glob("lr*/seed*/run.json")):
        record = json.loads(path.read_text())
        lr = parse_schedule(record["config"]["schedule"])(0.5)
        records[(lr, record["config"]["seed"])] = record
    return records


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("tune") / "grid"
    proc = ok(run_cli("tune", *TUNE_ARGS, "--grid", "1e-4:1e-2:3", "--seeds", "2", "--out", out))
    return out, proc


def test_tune_grid_record_is_recomputable_from_the_run_folders(tuned: tuple[Path, Any]) -> None:
    out, proc = tuned
    record = json.loads((out / "tuned_lr.json").read_text())
    runs = _run_records(out)
    assert sorted(runs) == [(lr, s) for lr in (1e-4, 1e-3, 1e-2) for s in (0, 1)]
    assert all(r["status"] == "finished" for r in runs.values())
    assert [row["lr"] for row in record["tried"]] == [1e-4, 1e-3, 1e-2]
    means = {}
    for row in record["tried"]:
        per_seed = [runs[(row["lr"], s)]["auc"] for s in (0, 1)]
        assert row["per_seed"] == per_seed
        means[row["lr"]] = sum(per_seed) / 2
        assert row["score_mean"] == pytest.approx(means[row["lr"]])
    assert record["value"] == max(means, key=lambda lr: means[lr])
    assert record["cost_timesteps"] == sum(r["timesteps_done"] for r in runs.values()) == 6 * 1024
    assert (record["algo"], record["env_id"], record["criterion"], record["seeds"]) == ("ppo", ENV, "auc", [0, 1])
    assert "1e-4:1e-2:3" in record["method"]
    assert {"clr_rl", "torch", "stable_baselines3", "gymnasium", "python"} <= set(record["versions"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["date"])
    assert f"tuned fixed LR for ppo on {ENV}: {record['value']:g}" in proc.stdout


def test_tune_rerun_trains_nothing_and_gives_the_same_record(tuned: tuple[Path, Any],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = tuned
    run_files = out / "runs" / ENV  # (runs/ itself holds TensorBoard's layout file, rewritten each time)
    before = {p: p.stat().st_mtime_ns for p in run_files.glob("**/*") if p.is_file()}
    assert len(before) >= 6 * 4  # run.json, evaluations.csv, model.zip, events per run
    value = json.loads((out / "tuned_lr.json").read_text())
    proc = ok(run_main(capsys, "tune", *TUNE_ARGS, "--grid", "1e-4:1e-2:3", "--seeds", "2", "--out", out))
    assert "6 runs, 6 already complete" in proc.stdout
    after = {p: p.stat().st_mtime_ns for p in run_files.glob("**/*") if p.is_file()}
    assert after == before
    again = json.loads((out / "tuned_lr.json").read_text())
    assert {k: v for k, v in again.items() if k != "date"} == {k: v for k, v in value.items() if k != "date"}


def test_tune_with_optuna_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import clr_rl.execute.batch
    import clr_rl.execute.worker

    # Each trial trains one run; train it in this process rather than in a fresh spawn pool per trial
    # (the pool itself is exercised by the grid above), which saves an interpreter start-up per trial.
    monkeypatch.setattr(clr_rl.execute.batch, "_run_local",
                        lambda tasks, workers, report: [clr_rl.execute.worker.run_task(t) for t in tasks])
    out = tmp_path / "tpe"
    proc = ok(run_main(capsys, "tune", *TUNE_ARGS, "--trials", "3", "--seeds", "1", "--range", "1e-4:1e-2",
                       "--out", out))
    assert "Optuna TPE" in proc.stdout
    record = json.loads((out / "tuned_lr.json").read_text())
    assert "TPE" in record["method"]
    runs = _run_records(out)
    tried = [row["lr"] for row in record["tried"]]
    assert 1 <= len(tried) <= 3 and sorted(tried) == sorted(lr for lr, _ in runs)
    assert all(1e-4 <= lr <= 1e-2 for lr in tried)
    assert record["value"] in tried
    means = {lr: runs[(lr, 0)]["auc"] for lr in tried}
    assert record["value"] == max(means, key=lambda lr: means[lr])
    assert record["cost_timesteps"] == sum(r["timesteps_done"] for r in runs.values()) == 1024 * len(tried)


# ------------------------------------------- 7. tuned records in specs


def _tuned_spec(path: Path, record: Path, *, name: str = "uses-tuned") -> Path:
    path.write_text(f"""\
name = "{name}"
algo = "ppo"
seeds = 1
timesteps = 1024
envs = ["{ENV}"]
baseline = "fixed"
tuned = ["{record}"]
[eval]
every = 1024
episodes = 2
[hyperparams]
n_steps = 32
n_envs = 4
batch_size = 128
[arms.fixed]
kind = "constant"
lr = "tuned"
[arms.half]
kind = "constant"
lr = "tuned/2"
""")
    return path


def test_spec_uses_the_tune_record(tuned: tuple[Path, Any], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from clr_rl.compare.plan import plan
    from clr_rl.compare.spec import load_spec

    tune_out, _ = tuned
    record_path = tune_out / "tuned_lr.json"
    record = json.loads(record_path.read_text())
    spec = _tuned_spec(tmp_path / "spec.toml", record_path)
    runs = {r.arm: r.prepared for r in plan(load_spec(spec))}
    assert runs["fixed"].schedule(0.3) == record["value"]
    assert runs["half"].schedule(0.3) == pytest.approx(record["value"] / 2, rel=1e-12)
    for prepared in runs.values():
        agent = prepared.resolved()["agent"]
        assert agent["tuned_lr"] == record["value"]
        assert str(record_path) in agent["tuned_lr_source"] and "log grid" in agent["tuned_lr_source"]
        assert agent["tuned_lr_cost_timesteps"] == record["cost_timesteps"]

    assert main(["compare", str(spec), "--dry-run", "--out", str(tmp_path / "batch")]) == 0
    printed = capsys.readouterr().out
    assert "2 runs (1 envs x 2 arms x 1 seeds), 2 to run" in printed and "fixed" in printed and "half" in printed
    assert not (tmp_path / "batch").exists()

    # A tiny real batch, then the report's provenance table shows the tuning cost.
    batch = tmp_path / "batch"
    ok(run_cli("compare", spec, "--out", batch, "--workers", "2"))
    run = json.loads((batch / "runs" / ENV / "fixed" / "seed0" / "run.json").read_text())
    assert run["config"]["schedule"] == str(parse_schedule(record["value"]))
    assert run["config"]["agent"]["tuned_lr_cost_timesteps"] == record["cost_timesteps"]
    ok(run_main(capsys, "report", batch, "--reps", "200"))
    report = (batch / "report" / "report.md").read_text()
    assert f"{record['cost_timesteps']:,} timesteps" in report and "log grid" in report
    assert str(record_path) in report


def test_spec_with_a_missing_tune_record_exits_2_naming_tuned(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    spec = _tuned_spec(tmp_path / "spec.toml", tmp_path / "nowhere" / "tuned_lr.json")
    assert main(["compare", str(spec), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("clr-rl: error: ")
    assert ": tuned: " in err and "no such tune record" in err


# ------------------------------------------- 8. lr-range by sweep


def smith_oracle(scores: dict[float, float]) -> tuple[float, float]:
    """The rule as documented in suggest_from_sweep, written out again independently."""
    lrs = sorted(scores)
    top = max(scores.values())
    best_lr = min(lr for lr in lrs if scores[lr] == top)
    low, worst = scores[lrs[0]], min(scores.values())
    base = min(lr for lr in lrs if scores[lr] >= low + 0.25 * (top - low))
    max_lr = max(lr for lr in lrs if lr >= best_lr and scores[lr] >= top - 0.10 * (top - worst))
    if base >= max_lr:
        base = float(f"{max_lr / 4:.3g}")
    return base, max_lr


@pytest.mark.parametrize(("scores", "expected"), [
    # rising then falling: low end 0, best 80 at 1e-3 -> base needs >= 20 (1e-4); the worst is -10, so
    # max_lr needs >= 80 - 9 = 71 at or above 1e-3 -> 3e-3 (75) but not 1e-2 (40).
    ({1e-5: 0.0, 1e-4: 20.0, 3e-4: 60.0, 1e-3: 80.0, 3e-3: 75.0, 1e-2: 40.0, 3e-2: -10.0}, (1e-4, 3e-3)),
    # monotone rising: base needs >= 10 + 0.25 * 30 = 17.5 -> 1e-4; the best is the last LR.
    ({1e-5: 10.0, 1e-4: 20.0, 1e-3: 30.0, 1e-2: 40.0}, (1e-4, 1e-2)),
    # monotone falling: base and max meet at the smallest LR -> base = max / 4.
    ({1e-5: 100.0, 1e-4: 50.0, 1e-3: 10.0}, (2.5e-6, 1e-5)),
    # flat: every LR is "best" and within 10% -> the whole range (they do not meet).
    ({1e-4: 5.0, 1e-3: 5.0, 1e-2: 5.0}, (1e-4, 1e-2)),
    # a single good LR in the middle: base and max meet at it -> base = 1e-3 / 4.
    ({1e-4: 0.0, 1e-3: 100.0, 1e-2: 0.0}, (2.5e-4, 1e-3)),
])
def test_suggest_from_sweep_hand_computed(scores: dict[float, float], expected: tuple[float, float]) -> None:
    base, max_lr, how = suggest_from_sweep(scores)
    assert (base, max_lr) == pytest.approx(expected, rel=1e-12)
    assert smith_oracle(scores) == pytest.approx(expected, rel=1e-12)
    assert base < max_lr
    assert ("max_lr / 4" in how) == (expected[0] == pytest.approx(expected[1] / 4))


def test_lr_range_sweep_reuses_the_tune_runs_and_suggests_a_schedule(
        tuned: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    tune_out, _ = tuned
    out = tmp_path / "sweep"
    shutil.copytree(tune_out / "runs", out / "runs")  # the same runs as tune: nothing to retrain
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("**/run.json")}
    proc = ok(run_main(capsys, "lr-range", "--method", "sweep", *TUNE_ARGS, "--grid", "1e-4:1e-2:3", "--seeds", "2",
                       "--out", out))
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("**/run.json")} == before
    lines = [line for line in proc.stdout.splitlines() if line.startswith("suggested: ")]
    assert len(lines) == 1 and lines[0].startswith("suggested: triangular2:")
    schedule = parse_schedule(lines[0].removeprefix("suggested: "))
    assert isinstance(schedule, Triangular2)
    assert 0 < schedule.base_lr < schedule.max_lr

    result = json.loads((out / "lr_range.json").read_text())
    runs = _run_records(out)
    means = {}
    for row in result["scores"]:
        assert row["per_seed"] == [runs[(row["lr"], s)]["auc"] for s in (0, 1)]
        means[row["lr"]] = sum(row["per_seed"]) / 2
        assert row["mean"] == pytest.approx(means[row["lr"]])
    assert sorted(means) == [1e-4, 1e-3, 1e-2]
    tune_record = json.loads((tune_out / "tuned_lr.json").read_text())
    assert {r["lr"]: r["per_seed"] for r in tune_record["tried"]} == {r["lr"]: r["per_seed"] for r in result["scores"]}
    assert (result["base_lr"], result["max_lr"]) == pytest.approx(smith_oracle(means), rel=1e-12)
    assert (schedule.base_lr, schedule.max_lr) == pytest.approx((result["base_lr"], result["max_lr"]), rel=1e-12)
    assert result["suggested_schedule"] == lines[0].removeprefix("suggested: ")
    assert result["cost_timesteps"] == 6 * 1024
    with Image.open(out / "lr_range.png") as img:
        img.verify()
    with Image.open(out / "lr_range.png") as img:
        assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 200


# ------------------------------------------- 9. lr-range in a single run (issue 15: resolution)


def sustained_start(values: list[float], limit: float) -> int | None:
    """Documented rule, re-implemented: the running median of 3 confirms a crossing (a non-finite
    value or one above 10 x limit confirms at once); it starts after the last value inside that
    window that is not over."""
    over = [not math.isfinite(v) or v > limit for v in values]
    for i, v in enumerate(values):
        window = values[max(0, i - 2): i + 1]
        med = sorted(math.inf if math.isnan(x) else x for x in window)[1] if len(window) == 3 else -math.inf
        if not math.isfinite(v) or v > 10 * limit or med > limit:
            start = i - len(window) + 1
            return max([start] + [j + 1 for j in range(start, i + 1) if not over[j]])
    return None


@pytest.mark.parametrize(("values", "expected"), [
    # a steady rise: over from index 3 on; the median of [2, 3, 4] confirms it at 4; it starts at 3.
    ([0.01, 0.02, 0.04, 0.06, 0.08, 0.1], 3),
    # an isolated spike (index 1) is never confirmed; the later rise starts at 5.
    ([0.01, 0.2, 0.01, 0.02, 0.03, 0.06, 0.07], 5),
    # spike at 3 next to the rise: the window [3, 4, 5] confirms, but 4 is below, so the crossing starts at 5.
    ([0.01, 0.01, 0.01, 0.2, 0.01, 0.06, 0.07], 5),
    # over from the first value: confirmed at the first full window, starts at 0.
    ([0.1, 0.2, 0.3], 0),
    # a NaN confirms at once, even after healthy values.
    ([0.01, 0.01, float("nan")], 2),
    # +inf is over like NaN.
    ([0.01, 0.02, 0.03, float("inf"), 0.01], 3),
    # never confirmed: two isolated spikes three apart.
    ([0.01, 0.2, 0.01, 0.01, 0.2, 0.01], None),
    # exactly at the limit is not over.
    ([0.05, 0.05, 0.05, 0.05], None),
    # after a crossing the policy collapses and KL returns to 0: the first crossing counts.
    ([0.01, 0.02, 0.3, 11.6, 0.0, 0.0], 2),
    # CartPole at high LRs: catastrophic jumps (> 10 x limit) between collapsed, motionless points.
    ([0.01, 0.02, 0.01, 2.27, 0.0, 0.0, 0.64], 3),
    # exactly 10 x limit is not a spike; 0.5001 is.
    ([0.01, 0.01, 0.5, 0.01, 0.01], None),
    ([0.01, 0.01, 0.5001, 0.01, 0.01], 2),
])
def test_first_unhealthy_on_hand_made_series(values: list[float], expected: int | None) -> None:
    from clr_rl.phases.lr_single import first_unhealthy

    assert first_unhealthy(values, 0.05) == expected
    assert sustained_start(values, 0.05) == expected


@pytest.mark.parametrize(("losses", "expected"), [
    # medians from index 2: 1, 1, 1, 5 (> 4 x 1) -> index 5.
    ([1.0, 1.0, 1.0, 1.0, 5.0, 5.0], 5),
    # a single spike is absorbed by the median.
    ([1.0, 1.0, 1.0, 9.0, 1.0, 1.0], None),
    # the lowest median falls to 0.5 at index 4, so 2.1 (> 2.0) fires at index 7.
    ([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 2.1, 2.1], 7),
    # a NaN: the median of [1, NaN] is its upper value (NaN counts as +inf) -> index 1.
    ([1.0, float("nan"), float("nan")], 1),
])
def test_td_loss_rule_on_hand_made_series(losses: list[float], expected: int | None) -> None:
    from clr_rl.phases.lr_single import td_loss_unhealthy

    assert td_loss_unhealthy(losses, 4.0) == expected


@pytest.mark.parametrize(("timesteps", "update", "k", "expected"), [
    # Pendulum-v1 (Zoo: 4 envs x 1024 steps, 10 epochs x 4096/64 minibatches = 640 steps): 30,000 -> 8 updates,
    # 5,120 steps; the largest divisor g of 640 with 5,120 / g >= 24 is 160 (213 is not a divisor) -> 32 points.
    (30000, 4096, 640, (8, 32768, 160, 32)),
    # CartPole-v1 (Zoo: 8 x 32 = 256 per update, 20 epochs x 1 minibatch): 8,000 -> 32 updates >= 24 -> per update.
    (8000, 256, 20, (32, 8192, 20, 32)),
    # one Pendulum update only: 640 / g >= 24 -> g = 20 (divisors 16, 20, 32 ...) -> 32 points.
    (4096, 4096, 640, (1, 4096, 20, 32)),
    # 23 updates of one step: 23 x 1 < 24 cannot happen per update; 2 steps per update -> 46 >= 24, g = 1.
    (5888, 256, 2, (23, 5888, 1, 46)),
])
def test_ppo_resolution_arithmetic(timesteps: int, update: int, k: int, expected: tuple[int, int, int, int]) -> None:
    from clr_rl.phases.lr_resolution import ppo_resolution

    r = ppo_resolution(timesteps, update_timesteps=update, steps_per_update=k, start_lr=1e-6, end_lr=1e-1)
    assert (r.updates, r.timesteps, r.steps_per_point, r.points) == expected
    assert r.points >= 24 and r.timesteps >= timesteps > r.timesteps - update
    # neighbouring points are g steps apart on a ramp of S - 1 geometric steps from 1e-6 to 1e-1
    s_total = r.updates * k
    assert r.ratio == pytest.approx(1e5 ** (r.steps_per_point / (s_total - 1)), rel=1e-12)


@pytest.mark.parametrize(("timesteps", "update", "k", "points", "needed"), [
    # 1 update x 20 steps = 20 < 24: two updates are needed, i.e. more than 256 timesteps.
    (256, 256, 20, 24, 257),
    # CartPole with n_epochs=1 (K = 1): 23 updates = 23 points; 24 updates need > 23 x 256 timesteps.
    (5888, 256, 1, 24, 5889),
    # --points 100 with K = 20: 5 updates -> > 4 x 256.
    (1000, 256, 20, 100, 1025),
])
def test_ppo_resolution_refuses_with_the_budget_needed(timesteps: int, update: int, k: int, points: int,
                                                      needed: int) -> None:
    from clr_rl.phases.lr_resolution import ppo_resolution

    with pytest.raises(ValueError, match=rf"--timesteps={timesteps} .* needs --timesteps >= {needed}$"):
        ppo_resolution(timesteps, update_timesteps=update, steps_per_update=k, start_lr=1e-6, end_lr=1e-1,
                       points=points)
    ok_ = ppo_resolution(needed, update_timesteps=update, steps_per_update=k, start_lr=1e-6, end_lr=1e-1,
                         points=points)
    assert ok_.points >= points


def test_acceptance_pendulum_30000_measures_at_least_24_points() -> None:
    """`clr-rl lr-range --algo ppo --env Pendulum-v1 --method single --timesteps 30000`: the Zoo's 4 x 1024
    rollout and 10 epochs x 64 minibatches give 8 updates = 5,120 gradient steps -> 32 points of 160 steps
    (the per-update test measured 8). The full run is committed in results/reference/lr-range-resolution/."""
    from clr_rl.errors import ConfigError
    from clr_rl.phases.lr_single import single_resolution

    r = single_resolution("ppo", "Pendulum-v1", 30000)
    assert (r.updates, r.steps_per_update, r.steps_per_point, r.points, r.timesteps) == (8, 640, 160, 32, 32768)
    assert r.ratio == pytest.approx(1e5 ** (160 / 5119), rel=1e-12)
    assert single_resolution("ppo", "Pendulum-v1", 30000, points=100).steps_per_point == 40  # 5120 / 40 = 128
    with pytest.raises(ConfigError, match=r"needs --timesteps >= 36865$"):  # 6400 points need 10 updates
        single_resolution("ppo", "Pendulum-v1", 30000, points=6400)


def test_dqn_resolution_arithmetic_and_refusal() -> None:
    from clr_rl.phases.lr_resolution import dqn_resolution

    # train() at 104, 108, ..., 1000 (multiples of 4 above learning_starts=100): 225 calls
    r = dqn_resolution(1000, update_timesteps=4, learning_starts=100, start_lr=1e-5, end_lr=1e-1)
    assert (r.points, r.timesteps) == (225, 1000)
    assert r.ratio == pytest.approx(1e4 ** (4 / 1000), rel=1e-12)
    # Zoo CartPole DQN: train_freq 256, learning_starts 1000 -> calls at 1024, 1280, ...; 24 calls end at 6912
    with pytest.raises(ValueError, match=r"--timesteps=5000 gives 17 DQN train\(\) calls .* needs --timesteps >= 6657"):
        dqn_resolution(5000, update_timesteps=256, learning_starts=1000, start_lr=1e-5, end_lr=1e-1)
    assert dqn_resolution(6657, update_timesteps=256, learning_starts=1000, start_lr=1e-5, end_lr=1e-1).points == 24
    assert dqn_resolution(6656, update_timesteps=256, learning_starts=1000, start_lr=1e-5, end_lr=1e-1,
                          points=23).points == 23


def check_single_result(result: dict[str, Any], *, start: float, end: float, updates: int, k_total: int,
                        g: int, update_timesteps: int) -> None:
    """Every number of a PPO single-run result against the documented arithmetic and rules."""
    rows = result["points"]
    s_total = updates * k_total
    assert len(rows) == s_total // g >= 24
    assert result["resolution"]["points"] == len(rows)
    ramp = Exponential(start, end)
    for i, r in enumerate(rows):
        assert r["steps"] == g
        assert r["update"] == i * g // k_total
        assert r["timesteps"] == (r["update"] + 1) * update_timesteps  # the update trains after its rollout
        # the point's LR is the ramp at its last gradient step: step (i + 1) g - 1 of S - 1
        assert r["lr"] == pytest.approx(ramp(1 - ((i + 1) * g - 1) / (s_total - 1)), rel=1e-9)
        assert r["lr_first"] == pytest.approx(ramp(1 - (i * g) / (s_total - 1)), rel=1e-9)
        assert r["kl_per_update"] == pytest.approx(r["kl"] * k_total / g, rel=1e-12)
        assert r["kl"] >= -1e-7 and 0.0 <= r["clip_fraction"] <= 1.0
    assert rows[0]["lr_first"] == pytest.approx(start, rel=1e-9) and rows[-1]["lr"] == pytest.approx(end, rel=1e-9)
    ratio = (end / start) ** (g / (s_total - 1))
    assert [b["lr"] / a["lr"] for a, b in zip(rows, rows[1:])] == pytest.approx([ratio] * (len(rows) - 1), rel=1e-9)
    assert result["resolution"]["lr_ratio_between_points"] == pytest.approx(ratio, rel=1e-12)

    first = sustained_start([r["kl_per_update"] for r in rows], 0.05)
    if first is None:
        at = len(rows) - 1
        assert result["resolution"]["max_lr_bracket"] == [rows[at]["lr"], None]
    else:
        at = max(first - 1, 0)
        assert f"first unhealthy point at lr={rows[first]['lr']:.3g}" in result["rule"]
        assert result["resolution"]["max_lr_bracket"] == pytest.approx([rows[at]["lr"], rows[at + 1]["lr"]])
        assert f"(x{ratio:.6g})" in result["resolution"]["max_lr_could_move"]
    assert result["max_lr"] == float(f"{rows[at]['lr']:.3g}")
    assert result["base_lr"] == float(f"{result['max_lr'] / 4:.3g}")
    assert result["cost_timesteps"] == updates * update_timesteps


def test_lr_range_single_ppo_cartpole_per_update(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    out = tmp_path / "single"
    # Zoo CartPole hyperparameters: n_envs=8 x n_steps=32 -> an update every 256 steps, 20 epochs x 1 minibatch;
    # 8,000 -> 32 updates = 32 points, one per update.
    proc = ok(run_main(capsys, "lr-range", "--method", "single", "--env", ENV, "--timesteps", "8000",
                       "--range", "1e-6:1e-1", "--device", "cpu", "--out", out))
    assert "8,192 timesteps (32 updates of 256; --timesteps 8,000 rounded up to whole updates), 32 LR points" \
        in proc.stdout.splitlines()[0]  # the cost, printed before training
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("suggested: ")]
    schedule = parse_schedule(line.removeprefix("suggested: "))
    assert isinstance(schedule, Triangular2)
    result = json.loads((out / "lr_range.json").read_text())
    check_single_result(result, start=1e-6, end=1e-1, updates=32, k_total=20, g=20, update_timesteps=256)
    assert (schedule.base_lr, schedule.max_lr) == (result["base_lr"], result["max_lr"])
    assert "running median of 3 points or by one point above 10 x 0.05" in result["rule"]
    with Image.open(out / "lr_range.png") as img:
        assert img.format == "PNG"


def test_lr_range_single_ppo_pendulum_measures_within_updates(tmp_path: Path) -> None:
    """Pendulum's Zoo update is 4 x 1024 = 4,096 timesteps; one update of 640 gradient steps still gives
    32 points of 20 steps each (the per-update test had 1)."""
    from clr_rl.phases.lr_single import lr_range_single

    result = lr_range_single(algo="ppo", env_id="Pendulum-v1", timesteps=4096, out=tmp_path / "p", device="cpu")
    check_single_result(result, start=1e-6, end=1e-1, updates=1, k_total=640, g=20, update_timesteps=4096)
    assert result["resolution"]["grain"] == "one point per 20 of the 640 gradient steps of an update"
    # the LR ramp really reached the optimizer: tiny LRs barely move the policy, the largest move it
    rows = result["points"]
    assert rows[0]["kl"] < 1e-6 < max(r["kl"] for r in rows[-8:])


def test_lr_range_single_refuses_a_budget_below_the_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    # n_epochs=1 and batch 256 = rollout: one gradient step per update; 23 updates < 24 points
    rc = main(["lr-range", "--method", "single", "--env", ENV, "--timesteps", "5888", "--hp", "n_epochs=1",
               "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("clr-rl: error: --timesteps=5888 gives 23 update(s) x 1 gradient steps = 23 LR points")
    assert err.rstrip().endswith("needs --timesteps >= 5889") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_lr_range_single_dqn_reports_td_loss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dqn"
    total = 1000
    hp = ["learning_starts=100", "train_freq=4", "gradient_steps=1", "buffer_size=2000", "batch_size=32",
          "target_update_interval=100"]
    proc = ok(run_main(capsys, "lr-range", "--method", "single", "--algo", "dqn", "--env", ENV, "--timesteps",
                       str(total), *[x for h in hp for x in ("--hp", h)], "--range", "1e-5:1e-1", "--device", "cpu",
                       "--out", out))
    assert any(x.startswith("suggested: ") for x in proc.stdout.splitlines())
    result = json.loads((out / "lr_range.json").read_text())
    rows = result["points"]
    assert [r["timesteps"] for r in rows] == list(range(104, total + 1, 4))  # one point per train() call
    assert result["resolution"]["points"] == 225
    assert all(math.isfinite(r["loss"]) and r["loss"] >= 0 for r in rows)
    ramp = Exponential(1e-5, 1e-1)
    for r in rows:
        assert r["lr"] == pytest.approx(ramp(1 - r["timesteps"] / total), rel=1e-9)
    assert "TD loss" in result["rule"]
    # Documented rule: running median of 3 above 4x the lowest running median so far.
    losses = [r["loss"] for r in rows]
    medians = [sorted(losses[i - 2: i + 1])[1] for i in range(2, len(losses))]
    first = next((i + 2 for i, m in enumerate(medians) if i > 0 and m > 4 * min(medians[:i])), None)
    expected_max = rows[max(first - 1, 0)]["lr"] if first is not None else rows[-1]["lr"]
    assert result["max_lr"] == float(f"{expected_max:.3g}")
    assert result["base_lr"] == float(f"{result['max_lr'] / 4:.3g}")


# ------------------------------------------- 10. bad arguments


@pytest.mark.parametrize(("args", "needle"), [
    (["tune", "--grid", "1e-2:1e-4:3"], "--grid"),
    (["tune", "--grid", "abc"], "--grid"),
    (["tune", "--grid", "1e-4:1e-2:1"], "--grid"),
    (["tune", "--grid", "1e-4:1e-2:3", "--trials", "3"], "exactly one"),
    (["tune"], "exactly one"),
    (["tune", "--grid", "1e-4:1e-2:3", "--timesteps", "0"], "--timesteps"),
    (["tune", "--grid", "1e-4:1e-2:3", "--seeds", "0"], "--seeds"),
    (["tune", "--trials", "0"], "--trials"),
    (["tune", "--grid", "1e-4:1e-2:3", "--env", "CartPol-v1"], "CartPole-v1"),
    (["lr-range", "--method", "single", "--range", "1e-1:1e-6"], "--range"),
    (["lr-range", "--method", "sweep", "--grid", "1e-2:1e-4:3"], "--grid"),
    (["lr-range", "--method", "sweep", "--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
    (["lr-range", "--method", "single", "--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
    (["lr-range", "--method", "sweep", "--algo", "dqn", "--budget", "0"], "--budget=0 must be >= 1"),
])
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    defaults = {"--env": ENV, "--timesteps": "1024", "--out": str(out)}
    argv = args + [x for k, v in defaults.items() if k not in args for x in (k, v)]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("clr-rl: error: "), err
    assert needle in err
    assert not out.exists()  # nothing written


def test_bad_arguments_through_the_console_script(tmp_path: Path) -> None:
    proc = run_cli("tune", "--env", ENV, "--timesteps", "1024", "--grid", "1e-2:1e-4:3", "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("clr-rl: error: --grid=")
    assert not (tmp_path / "o").exists()


def _epsilon_curve(timesteps: int, overrides: dict[str, Any], at: list[int]) -> list[float]:
    """SB3's own exploration schedule of a DQN run of ``timesteps`` on CartPole-v1, at timesteps ``at``."""
    from clr_rl.run.agents import build_model
    from clr_rl.run.envs import make_env

    schedule = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=1)
    prepared = prepare(RunConfig(algo="dqn", env_id="CartPole-v1", schedule=schedule, timesteps=timesteps,
                                 overrides=overrides))
    env = make_env("CartPole-v1", n_envs=1, seed=0, normalize=False)
    model = build_model(prepared.agent, env, prepared.schedule, seed=0, device="cpu")
    try:
        return [float(model.exploration_schedule(1 - n / timesteps)) for n in at]
    finally:
        env.close()


def test_a_short_dqn_sweep_run_explores_as_the_start_of_the_full_budget_run() -> None:
    from clr_rl.phases.lr_sweep import explore_as_budget

    overrides = explore_as_budget("dqn", "CartPole-v1", 10_000, 50_000, {})
    assert overrides == {"exploration_fraction": pytest.approx(0.16 * 5)}  # agents/dqn.toml: 0.16 on CartPole-v1
    at = [0, 2_000, 4_000, 7_999, 9_999]
    full = _epsilon_curve(50_000, {}, at)
    assert full[0] == pytest.approx(1.0) and full[-1] < full[0]
    assert _epsilon_curve(10_000, overrides, at) == pytest.approx(full, rel=1e-12)
    assert _epsilon_curve(10_000, {}, at) != pytest.approx(full, rel=1e-3)  # the unscaled short run explores less
    assert explore_as_budget("ppo", "CartPole-v1", 10_000, 50_000, {"n_steps": 64}) == {"n_steps": 64}


def test_lr_range_sweep_with_a_budget_records_the_scaled_exploration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dqn-sweep"
    ok(run_main(capsys, "lr-range", "--method", "sweep", "--algo", "dqn", "--env", "CartPole-v1", "--timesteps",
                "1100", "--budget", "2200", "--grid", "1e-4:1e-3:2", "--seeds", "1", "--workers", "2", "--out", out))
    result = json.loads((out / "lr_range.json").read_text())
    assert (result["budget"], result["exploration_fraction"]) == (2200, pytest.approx(0.32))
    configs = [json.loads(p.read_text())["config"] for p in out.glob("runs/*/*/*/run.json")]
    assert len(configs) == 2 and all(c["overrides"] == {"exploration_fraction": 0.32} for c in configs)
