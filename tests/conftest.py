"""Helpers shared by the test files, as fixtures (the suite runs in importlib import mode, where test
files cannot import each other): the installed CLI run as a user would, a tiny comparison spec, and
readers for what a batch folder holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).with_name("clr-rl")  # the installed console script
CLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "clr_rl.cli"]


@pytest.fixture(autouse=True, scope="session")
def _own_speed_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Time estimates read calibrations from $XDG_CACHE_HOME/clr-rl: the suite (and the CLI it runs)
    gets an empty one of its own, not the developer's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))  # its own checkpoint-signing key
        yield


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``clr-rl ARGS`` in ``cwd``, captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _as_in_a_terminal() -> None:
    """SIGINT as a command typed in a terminal gets it: default. A suite started in the background by a
    non-interactive shell (``cmd &``) inherits SIGINT ignored, and Python then installs no Ctrl-C handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    """``clr-rl ARGS`` started in its own process group (so a test can Ctrl-C the whole group)."""
    return subprocess.Popen([*CLI, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=_as_in_a_terminal)


def ok(proc: subprocess.CompletedProcess[str], status: int = 0) -> subprocess.CompletedProcess[str]:
    """The command exited with ``status`` and printed no traceback (unless a crash is expected)."""
    assert proc.returncode == status, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr or status == 1
    return proc


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Bad input: exit status 2, exactly one line on stderr, no traceback; returns that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def tiny_spec(name: str, *, envs: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1"), seeds: int = 2,
              timesteps: int = 1024, extra_arms: str = "", extra: str = "") -> str:
    """A spec of PPO runs small enough for tests: n_steps 32 x 4 envs (the LR changes every 128 steps)."""
    return f"""\
name = "{name}"
algo = "ppo"
seeds = {seeds}
timesteps = {timesteps}
envs = {json.dumps(list(envs))}
baseline = "fixed"
{extra}
[eval]
every = 512
episodes = 2
[hyperparams]
n_steps = 32
n_envs = 4
batch_size = 64
[arms.fixed]
kind = "constant"
lr = "tuned"
[arms.around]
kind = "triangular"
base_lr = "tuned/3"
max_lr = "tuned*3"
cycles = 2
{extra_arms}"""


def statuses(out: Path) -> dict[str, str]:
    """Run folder (relative to the batch) -> the status its run.json records."""
    result = {}
    for path in (out / "runs").rglob("run.json"):
        try:
            result[str(path.parent.relative_to(out))] = json.loads(path.read_text())["status"]
        except (ValueError, KeyError):  # pragma: no cover - writes are atomic
            result[str(path.parent.relative_to(out))] = "?"
    return result


def mtimes(out: Path, names: tuple[str, ...] = ("run.json", "model.zip")) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for n in names for p in (out / "runs").rglob(n)}


def run_folders(out: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(out)) for p in (out / "runs").rglob("run.json"))


def scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    """A TensorBoard scalar series read back from the event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.fixture(scope="session")
def h() -> Any:
    """The helpers above: ``h.run``, ``h.start``, ``h.ok``, ``h.one_error_line``, ``h.tiny_spec``,
    ``h.statuses``, ``h.mtimes``, ``h.run_folders``, ``h.scalars``, ``h.ROOT``."""
    return SimpleNamespace(run=run, start=start, ok=ok, one_error_line=one_error_line, tiny_spec=tiny_spec,
                           statuses=statuses, mtimes=mtimes, run_folders=run_folders, scalars=scalars, ROOT=ROOT)
