"""The layered package (issue 20): the import-linter contract holds and catches an upward import, one
options object reaches every phase (a batch's LR range sweep and tradeoff runs execute as Ray tasks
on --backend ray, and --retry-failed retries a failed sweep run), and ``clr-rl tune`` and a spec's
``[tune]`` pick their LR by one rule from the same runs, a diverged run among them."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT)], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def test_the_layers_contract_holds_and_fails_on_an_upward_import(tmp_path: Path) -> None:
    kept = _lint(ROOT)
    assert kept.returncode == 0 and "1 kept, 0 broken" in kept.stdout, kept.stdout + kept.stderr
    copy = tmp_path / "proj"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy)
    shutil.copytree(ROOT / "clr_rl", copy / "clr_rl", ignore=shutil.ignore_patterns("__pycache__", "_data"))
    record = copy / "clr_rl" / "run" / "record.py"  # the run layer reaching up into the analysis layer
    record.write_text(record.read_text() + "\nfrom clr_rl.analysis import report as _upward  # noqa\n")
    broken = _lint(copy)
    assert broken.returncode == 1 and "BROKEN" in broken.stdout
    assert "clr_rl.run is not allowed to import clr_rl.analysis" in broken.stdout


RAY_SPEC = """\
name = "ray-phases"
algo = "ppo"
seeds = 1
timesteps = 1024
envs = ["CartPole-v1"]
baseline = "fixed"
[eval]
every = 512
episodes = 2
[hyperparams]
n_steps = 32
n_envs = 4
batch_size = 64
[lr_range]
method = "sweep"
grid = "1e-4:1e-2:2"
seeds = 1
timesteps = 512
[tradeoff]
cycles = 2
seeds = 1
max_lr = 1e-3
timesteps = 1024
[arms.fixed]
kind = "constant"
lr = 1e-3
[arms.from-range]
kind = "triangular"
base_lr = "range"
max_lr = "range"
cycles = 2
"""


def _executors(folder: Path) -> dict[str, str]:
    return {str(p.parent.relative_to(folder)): json.loads(p.read_text()).get("executor", {}).get("backend", "?")
            for p in folder.rglob("run.json")}


def test_a_batchs_range_sweep_and_tradeoff_run_as_ray_tasks_and_retry_failed_reaches_the_sweep(
        tmp_path: Path, h: Any) -> None:
    pytest.importorskip("ray")
    spec = tmp_path / "ray.toml"
    spec.write_text(RAY_SPEC)
    out = tmp_path / "out"
    h.ok(h.run("compare", spec, "--out", out, "--backend", "ray", "--workers", "2", cwd=tmp_path, timeout=900))
    sweep, curve = out / "lr_range" / "CartPole-v1", out / "tradeoff" / "CartPole-v1"
    for folder, n in ((sweep, 2), (curve, 1), (out / "runs", 2)):
        executed = _executors(folder)
        assert len(executed) == n and set(executed.values()) == {"ray"}, (folder, executed)
    # a sweep run that failed (its test had no result yet) is retried by --retry-failed, on Ray too
    (failed,) = [p for p in sweep.rglob("run.json") if "lr0.01" in str(p)]
    record = json.loads(failed.read_text())
    failed.write_text(json.dumps({**record, "status": "failed", "error": "RuntimeError: injected"}))
    (sweep / "lr_range.json").unlink()
    h.ok(h.run("compare", spec, "--out", out, "--backend", "ray", "--workers", "2", "--retry-failed", cwd=tmp_path,
               timeout=900))
    assert json.loads(failed.read_text())["status"] == "finished"
    assert json.loads(failed.read_text())["executor"]["backend"] == "ray"
    assert (sweep / "lr_range.json").is_file()


def _oracle(folder: Path) -> dict[float, list[float]]:
    """LR -> per-seed scores read straight from the run folders: final return, -inf for a diverged run."""
    scores: dict[float, list[float]] = {}
    for path in sorted(folder.glob("lr*/seed*/run.json"), key=lambda p: int(p.parent.name[4:])):
        record = json.loads(path.read_text())
        value = -math.inf if record["status"] == "diverged" else record["final_eval"]["mean_return"]
        scores.setdefault(float(path.parent.parent.name[2:]), []).append(value)
    return scores


def test_clr_rl_tune_and_a_specs_tune_pick_the_same_lr_from_the_same_runs(tmp_path: Path, h: Any) -> None:
    """Both score the runs by one rule (clr_rl.phases.tune.lr_scores): the same seeds, budget and grid train the
    same runs in both, and an LR of 1e30 (or 3.16e13) makes PPO's parameters non-finite: diverged, -inf."""
    hp = ["--hp", "n_steps=32", "--hp", "n_envs=4", "--hp", "batch_size=64"]
    cli_out = tmp_path / "cli"
    h.ok(h.run("tune", "--algo", "ppo", "--env", "CartPole-v1", "--timesteps", "1024", "--seeds", "2", "--grid",
               "1e-3:1e30:3", "--criterion", "final", "--eval-every", "512", "--eval-episodes", "2", *hp, "--out",
               cli_out, cwd=tmp_path, timeout=600))
    cli = json.loads((cli_out / "tuned_lr.json").read_text())
    grid = _oracle(cli_out / "runs" / "CartPole-v1")
    assert {row["lr"]: row["per_seed"] for row in cli["tried"]} == grid and len(grid) == 3
    assert grid[1e30] == [-math.inf, -math.inf]  # diverged, and counted: never the best
    means = {lr: sum(v) / len(v) for lr, v in grid.items()}
    assert cli["value"] == max(means, key=lambda lr: means[lr]) == 1e-3
    spec = tmp_path / "t.toml"
    spec.write_text(h.tiny_spec("tune-rule", envs=("CartPole-v1",), seeds=1,
                                extra='[tune]\ngrid = "1e-3:1e30:3"\nseeds = [0, 1]\ncriterion = "final"')
                    .replace("seeds = 1\n", "seeds = [5]\n", 1))
    out = tmp_path / "batch"
    proc = h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path, timeout=900)
    batch_runs = _oracle(out / "tune" / "CartPole-v1")
    assert {lr: batch_runs[lr] for lr in grid} == grid  # the same runs, the same scores
    if proc.returncode == 0:  # the batch extended the grid past its bottom edge and picked inside it
        batch = json.loads((out / "tune" / "CartPole-v1" / "tuned_lr.json").read_text())
        assert {row["lr"]: row["per_seed"] for row in batch["tried"]} == batch_runs
        assert batch["criterion_rule"] == cli["criterion_rule"] and "extended to" in batch["method"]
    else:  # or it stopped before the arms, naming the range to widen
        line = h.one_error_line(proc)
        assert "still the bottom of the grid" in line and "widen the grid" in line
        assert not (out / "runs").exists()
