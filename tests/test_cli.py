"""The ``clr-rl`` command line, run as a user runs it: in a subprocess.

Checks what a user sees: ``--help`` is fast and torch-free, ``clr-rl schedule``
prints the schedule's own values and draws a real PNG, and every kind of bad
input ends with exit status 2 and exactly one ``clr-rl: error:`` line that names
the offending field, with no traceback and nothing written to disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clr_rl.schedules import Triangular, parse_schedule


def cli() -> list[str]:
    script = Path(sys.executable).parent / "clr-rl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "clr_rl.cli"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([*cli(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ 8. --help


HEAVY = ("torch", "stable_baselines3", "gymnasium", "tensorboard", "matplotlib")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["schedule", "--help"], ["compare", "--help"]])
def test_help_works_without_importing_heavy_libraries(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from clr_rl.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "else:\n"
        "    raise AssertionError('--help did not exit')\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: clr-rl")


def test_console_script_help_lists_the_commands() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    assert done.stderr == ""
    for command in ("schedule", "train", "compare", "status", "report", "tensorboard"):
        assert command in done.stdout


def test_schedule_command_without_png_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from clr_rl.cli import main\n"
        "assert main(['schedule', 'one_cycle:max_lr=1e-3', '--timesteps', '1000']) == 0\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# -------------------------------------------------------------- 9. schedule


def parse_table(stdout: str) -> tuple[str, list[tuple[int, float, float]]]:
    """The repr line and the (timestep, progress_remaining, lr) rows that ``clr-rl schedule`` prints."""
    lines = stdout.splitlines()
    assert lines[1].split() == ["timestep", "progress_remaining", "lr"]
    rows = []
    for line in lines[2:]:
        if line.startswith("wrote "):
            break
        t, p, lr = line.split()
        rows.append((int(t), float(p), float(lr)))
    return lines[0], rows


def test_schedule_prints_the_schedule_values_and_draws_a_png(tmp_path: Path) -> None:
    import matplotlib.image

    spec, total, points = "triangular2:base_lr=1e-4,max_lr=1e-3,cycles=2", 4096, 17
    png = tmp_path / "figs" / "lr.png"
    done = run_cli("schedule", spec, "--timesteps", str(total), "--points", str(points), "--png", str(png))
    assert done.returncode == 0, done.stderr
    schedule = parse_schedule(spec)
    first, rows = parse_table(done.stdout)
    assert first == repr(schedule)
    assert [t for t, _, _ in rows] == [total * i // (points - 1) for i in range(points)]
    for t, p, lr in rows:
        assert p == pytest.approx(1 - t / total, abs=5e-5)  # printed with 4 decimals
        assert lr == pytest.approx(schedule(1 - t / total), rel=1e-5)  # printed with 6 significant digits
    lrs = [lr for _, _, lr in rows]
    assert max(lrs) == pytest.approx(1e-3) and min(lrs) == pytest.approx(1e-4)
    assert lrs[12] == pytest.approx(5.5e-4)  # second peak at half height (triangular2)
    assert done.stdout.rstrip().endswith(f"wrote {png}")

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something is drawn


def test_schedule_binds_step_size_timesteps_to_the_budget() -> None:
    done = run_cli("schedule", "triangular:base_lr=1e-4,max_lr=1e-3,step_size_timesteps=1024", "--timesteps", "4096",
                   "--points", "9")
    assert done.returncode == 0, done.stderr
    first, rows = parse_table(done.stdout)
    assert "step_size_timesteps=1024, total_timesteps=4096" in first
    oracle = Triangular(base_lr=1e-4, max_lr=1e-3, cycles=2)  # 4096 / (2 * 1024) cycles
    assert [t for t, _, _ in rows] == list(range(0, 4097, 512))
    for t, _, lr in rows:
        assert lr == pytest.approx(oracle(1 - t / 4096), rel=1e-5)


# -------------------------------------------------------------- 10. bad input

CYCLIC = "triangular:base_lr=1e-4,max_lr=1e-3,cycles=2"


def train_args(out: Path, *, env: str = "CartPole-v1", schedule: str = CYCLIC, timesteps: str = "4096",
               extra: tuple[str, ...] = ()) -> list[str]:
    return ["train", "--env", env, "--schedule", schedule, "--timesteps", timesteps, "--device", "cpu",
            "--threads", "1", "--no-progress", "--out", str(out), *extra]


# (id, keyword arguments for train_args, substrings the error line must contain)
TRAIN_ERRORS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("unknown-env", {"env": "CartPol-v1"}, ("'CartPol-v1'", "did you mean", "CartPole-v1")),
    ("bad-kind", {"schedule": "triangle:base_lr=1e-4,max_lr=1e-3,cycles=2"}, ("'triangle'", "triangular2")),
    ("base-ge-max", {"schedule": "triangular:base_lr=1e-3,max_lr=1e-4,cycles=2"},
     ("base_lr=0.001", "must be < max_lr=0.0001")),
    ("cycles-0", {"schedule": "triangular2:base_lr=1e-4,max_lr=1e-3,cycles=0"}, ("cycles=0", "> 0")),
    ("unknown-param", {"schedule": CYCLIC + ",step=3"}, ("unknown parameter 'step'", "step_size_timesteps")),
    ("missing-param", {"schedule": "triangular:max_lr=1e-3,cycles=2"}, ("'base_lr'",)),
    ("not-a-number", {"schedule": "triangular:base_lr=fast,max_lr=1e-3,cycles=2"}, ("base_lr='fast'", "number")),
    ("unknown-hp", {"extra": ("--hp", "n_stepz=64")}, ("n_stepz", "unknown PPO hyperparameter", "n_steps")),
    ("hp-learning-rate", {"extra": ("--hp", "learning_rate=1e-3")}, ("learning_rate", "--schedule")),
    ("hp-no-equals", {"extra": ("--hp", "n_steps")}, ("'n_steps'", "key=value")),
    ("aliasing", {"schedule": "triangular:base_lr=1e-4,max_lr=1e-3,cycles=8"},
     ("fewer than 2 LR updates", "n_steps=32 x n_envs=8")),
    ("timesteps-0", {"timesteps": "0"}, ("timesteps=0", ">= 1")),
    ("seed-negative", {"extra": ("--seed", "-1")}, ("seed=-1",)),
    ("threads-0", {"extra": ("--threads", "0")}, ("threads=0",)),
    ("eval-episodes-negative", {"extra": ("--eval-episodes", "-2")}, ("eval_episodes=-2",)),
    ("eval-episodes-0", {"extra": ("--eval-episodes", "0")}, ("eval_episodes=0",)),  # not "use the default"
    ("eval-every-0", {"extra": ("--eval-every", "0")}, ("eval_every=0",)),
    ("cuda-on-cpu", {"extra": ("--device", "cuda")}, ("device='cuda'", "not available")),
    ("bad-device", {"extra": ("--device", "tpu")}, ("device='tpu'",)),
    ("dqn-continuous", {"env": "Pendulum-v1", "extra": ("--algo", "dqn")}, ("'Pendulum-v1'", "continuous")),
    ("missing-env", {"env": ""}, ("--env",)),
]


@pytest.mark.parametrize(("args", "expected"), [pytest.param(a, e, id=i) for i, a, e in TRAIN_ERRORS])
def test_bad_train_input_is_one_error_line_and_writes_nothing(args: dict[str, Any], expected: tuple[str, ...],
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = train_args(out, **args)
    if args.get("env") == "":
        argv = [a for a in argv if a not in ("--env", "")]
    done = run_cli(*argv, cwd=tmp_path)
    assert_one_error_line(done, expected)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing written anywhere near


def assert_one_error_line(done: subprocess.CompletedProcess[str], expected: tuple[str, ...]) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("clr-rl: error: ")
    for part in expected:
        assert part in lines[0], (part, lines[0])


def test_out_folder_that_is_not_empty_is_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    (out / "run.json").write_text("{}")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    done = run_cli(*train_args(out))
    assert_one_error_line(done, (repr(str(out)), "not empty", "--resume"))
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_out_below_a_regular_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    out = blocker / "run"
    done = run_cli(*train_args(out))
    assert_one_error_line(done, ("out=", str(blocker), "not writable"))
    assert blocker.read_text() == "not a folder"


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "file.txt"
    out.write_text("x")
    done = run_cli(*train_args(out))
    assert_one_error_line(done, (str(out), "not a folder"))


@pytest.mark.parametrize("make", [False, True], ids=["missing-folder", "empty-folder"])
def test_resume_without_a_run_is_refused(make: bool, tmp_path: Path) -> None:
    out = tmp_path / "nothing"
    if make:
        out.mkdir()
    done = run_cli("train", "--resume", "--out", str(out))
    assert_one_error_line(done, (str(out), "holds no run"))
    assert out.exists() == make
    if make:
        assert list(out.iterdir()) == []


def test_resume_of_a_finished_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "done"
    out.mkdir()
    (out / "run.json").write_text('{"status": "finished", "config": {}}')
    done = run_cli("train", "--resume", "--out", str(out))
    assert_one_error_line(done, ("finished run", "nothing to resume"))


def test_schedule_png_must_be_a_png(tmp_path: Path) -> None:
    jpg = tmp_path / "foo.jpg"
    done = run_cli("schedule", "triangular:base_lr=1e-4,max_lr=1e-3,step_size_timesteps=1024", "--timesteps", "4096",
                   "--png", str(jpg))
    assert_one_error_line(done, ("--png=", "foo.jpg", ".png"))
    assert done.stdout == ""  # refused before printing anything
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "expected"), [
    (["schedule", "triangular2:base_lr=1e-4,max_lr=1e-3,cycles=2", "--timesteps", "0"], ("--timesteps=0",)),
    (["schedule", "triangular2:base_lr=1e-4,max_lr=1e-3,cycles=2", "--timesteps", "10", "--points", "1"],
     ("--points=1",)),
    (["schedule", "cosine_restarts:min_lr=1e-3,max_lr=1e-4,cycles=2", "--timesteps", "10"], ("min_lr=0.001",)),
    (["schedule", "triangular:base_lr=1e-4,max_lr=1e-3", "--timesteps", "10"], ("exactly one of cycles",)),
])
def test_bad_schedule_command_input(argv: list[str], expected: tuple[str, ...]) -> None:
    assert_one_error_line(run_cli(*argv), expected)


@pytest.mark.parametrize("argv", [
    ["train", "--algo", "a2c", "--out", "x"],
    ["train", "--env", "CartPole-v1", "--timesteps", "many", "--out", "x"],
    ["train", "--env", "CartPole-v1"],  # --out is required
    ["schedule", "3e-4"],  # --timesteps is required
    ["fly"],
    [],
])
def test_argparse_errors_exit_2_with_usage(argv: list[str], tmp_path: Path) -> None:
    done = run_cli(*argv, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: clr-rl")
    assert "error:" in done.stderr.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_python_api_is_exported_and_import_stays_light():
    """`import clr_rl` loads no torch/SB3/gymnasium/numpy; the API names resolve on first use."""
    code = (
        "import sys, clr_rl\n"
        "heavy = [m for m in ('torch', 'stable_baselines3', 'gymnasium', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "names = [n for n in clr_rl.__all__ if callable(getattr(clr_rl, n))]\n"
        "from clr_rl import RunConfig, compare, train, tune\n"
        "from clr_rl.run.train import train as t2\n"
        "assert train is t2 and RunConfig.__name__ == 'RunConfig'\n"
        "print(len(names))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(proc.stdout) >= 20
