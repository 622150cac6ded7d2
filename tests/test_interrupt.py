"""Ctrl-C of a batch (local pool) and an interrupted Ray batch, then resume.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group: the driver and its
pool workers. Queued runs must not start, running ones stop at a rollout boundary with a
checkpoint, and the same command afterwards finishes the batch without retraining anything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest


def _start(h: Any, spec: Path, out: Path, cwd: Path, *extra: str) -> subprocess.Popen[str]:
    return h.start("compare", spec, "--out", out, "--workers", "2", *extra, cwd=cwd)


def _wait_for(h: Any, out: Path, proc: subprocess.Popen[str], finished: int, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        assert time.time() < deadline, "the batch never reached the state to interrupt"
        states = h.statuses(out) if (out / "runs").is_dir() else {}
        done = sum(1 for s in states.values() if s == "finished")
        running = [f for f, s in states.items() if s == "running"]
        if done >= finished and any(_early_checkpoint(out / f) for f in running):
            return
        time.sleep(0.1)


def _early_checkpoint(folder: Path, before: int = 2048) -> bool:
    """The run has a checkpoint from its first half (4,096-step runs): a Ctrl-C now finds it still running,
    where one sent at its last checkpoint could arrive after the run finished (seen on an idle machine)."""
    try:
        return int(json.loads((folder / "checkpoint" / "state.json").read_text())["timesteps"]) <= before
    except (OSError, ValueError, KeyError):
        return False


def _expected(seeds: int = 2) -> list[str]:
    return sorted(f"runs/{e}/{a}/seed{s}" for e in ("CartPole-v1", "Acrobot-v1")
                  for a in ("fixed", "around") for s in range(seeds))


def test_ctrl_c_of_a_local_batch_checkpoints_and_the_rerun_finishes(tmp_path: Path, h: Any) -> None:
    timesteps = 4096
    spec = tmp_path / "ctrlc.toml"
    spec.write_text(h.tiny_spec("ctrlc", timesteps=timesteps))
    out = tmp_path / "out"
    proc = _start(h, spec, out, tmp_path)
    try:
        _wait_for(h, out, proc, finished=1)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-2000:]
    assert "run the same command again to continue" in stderr
    assert "Traceback" not in stderr
    states = h.statuses(out)
    assert len(states) < 8  # queued runs were cancelled, not started
    interrupted = [f for f, s in states.items() if s == "interrupted"]
    assert interrupted and all(s in ("finished", "interrupted") for s in states.values())
    stopped_at = {}
    for folder in interrupted:  # stopped at a rollout boundary, with a checkpoint there
        record = json.loads((out / folder / "run.json").read_text())
        state = json.loads((out / folder / "checkpoint" / "state.json").read_text())
        assert record["timesteps_done"] == state["timesteps"] and state["timesteps"] % 128 == 0
        stopped_at[folder] = state["timesteps"]
    finished_before = h.mtimes(out)
    finished_before = {k: v for k, v in finished_before.items() if states.get(k.rsplit("/", 1)[0]) == "finished"}

    rerun = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    assert "ctrlc: 8 runs" in rerun.stdout
    assert h.run_folders(out) == _expected()
    assert all(s == "finished" for s in h.statuses(out).values())
    after = h.mtimes(out)
    assert {k: after[k] for k in finished_before} == finished_before
    for folder in interrupted:
        record = json.loads((out / folder / "run.json").read_text())
        assert record["resumed_from"] == stopped_at[folder]  # continued, not restarted
        steps = [s for s, _ in h.scalars(out / folder, "train/lr_applied")]
        assert steps == list(range(128, timesteps + 1, 128))


def test_ray_batch_interrupted_then_resumed(tmp_path: Path, h: Any) -> None:
    pytest.importorskip("ray")
    timesteps = 4096
    spec = tmp_path / "rayint.toml"
    spec.write_text(h.tiny_spec("rayint", timesteps=timesteps, seeds=1))
    out = tmp_path / "out"
    proc = _start(h, spec, out, tmp_path, "--backend", "ray")
    try:
        _wait_for(h, out, proc, finished=1)
        proc.send_signal(signal.SIGINT)  # the driver only: Ray's workers are its own processes
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-2000:]
    time.sleep(1.0)
    states = h.statuses(out)
    finished_before = {k: v for k, v in h.mtimes(out).items() if states.get(k.rsplit("/", 1)[0]) == "finished"}
    assert 1 <= len(finished_before) // 2 < 4

    rerun = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", "--backend", "ray", cwd=tmp_path))
    assert f"rayint: 4 runs, {len(finished_before) // 2} already complete" in rerun.stdout
    assert h.run_folders(out) == _expected(seeds=1)
    assert all(s == "finished" for s in h.statuses(out).values())
    after = h.mtimes(out)
    assert {k: after[k] for k in finished_before} == finished_before
    for folder in _expected(seeds=1):  # one LR value per update, nothing logged twice
        steps = [s for s, _ in h.scalars(out / folder, "train/lr_applied")]
        assert steps == list(range(128, timesteps + 1, 128)), folder


def test_kill_9_of_the_driver_alone_leaves_no_orphan_workers(tmp_path: Path, h: Any) -> None:
    """kill -9 of only the `clr-rl compare` process: its pool workers notice, stop their runs at a
    checkpoint and exit, instead of training on into folders that the next `compare` owns."""
    timesteps = 4096
    spec = tmp_path / "orphan.toml"
    spec.write_text(h.tiny_spec("orphan", timesteps=timesteps))
    out = tmp_path / "out"
    proc = _start(h, spec, out, tmp_path)
    try:
        _wait_for(h, out, proc, finished=1)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"], capture_output=True,
                                 text=True).stdout.split()
        assert len(workers) == 2
        proc.kill()  # SIGKILL to the driver only
        proc.wait(timeout=30)
        deadline = time.time() + 60
        while any(Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
                  for pid in workers):
            assert time.time() < deadline, "pool workers outlived the batch process"
            time.sleep(0.2)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # the group is gone: every worker exited
            pass
    states = h.statuses(out)
    assert "running" not in states.values()  # each run in flight stopped itself at a checkpoint
    assert len(states) < 8
    rerun = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    assert "orphan: 8 runs" in rerun.stdout
    assert all(s == "finished" for s in h.statuses(out).values()) and len(h.statuses(out)) == 8


def test_sigterm_of_the_driver_starts_no_queued_run(tmp_path: Path, h: Any) -> None:
    """SIGTERM to `clr-rl compare` alone (what a job scheduler sends): the driver forwards one SIGINT
    to its workers; the run in flight stops at a checkpoint and the worker starts none of the runs
    already queued to it (a regression: the next queued run used to start and run on)."""
    spec = tmp_path / "term.toml"
    spec.write_text(h.tiny_spec("term", timesteps=4096))
    out = tmp_path / "out"
    proc = h.start("compare", spec, "--out", out, "--workers", "1", cwd=tmp_path)
    try:
        _wait_for(h, out, proc, finished=0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-2000:]
    states = h.statuses(out)
    assert list(states.values()) == ["interrupted"], states
    rerun = h.ok(h.run("compare", spec, "--out", out, "--workers", "2", cwd=tmp_path))
    assert "term: 8 runs, 0 already complete, 8 to run" in rerun.stdout
    assert all(s == "finished" for s in h.statuses(out).values()) and len(h.statuses(out)) == 8
