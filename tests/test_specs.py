"""Tests for comparison specs: malformed specs through the real CLI, and the load_spec / plan API.

Every malformed spec must give exit status 2 and one stderr line
``clr-rl: error: <file>: <field>: <value and rule>``, with no traceback and nothing
written. The API tests check resolved numbers against independent sources: the
TOML data files read here with ``tomllib``, and LRs computed by hand.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from clr_rl.compare.plan import plan
from clr_rl.compare.spec import load_spec, resolve_relative

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).with_name("clr-rl")  # the installed console script
CLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "clr_rl.cli"]

# A small valid spec; the malformed cases below change one thing each.
HEAD = """\
name = "bad"
timesteps = 1024
seeds = 1
envs = ["CartPole-v1"]
[eval]
every = 512
episodes = 2
"""
PPO_HP = """\
[hyperparams]
n_steps = 32
n_envs = 4
batch_size = 64
"""
FIXED = """\
[arms.fixed]
kind = "constant"
lr = "tuned"
"""
VALID = HEAD + PPO_HP + FIXED


def _clr(lines: str) -> str:
    return "[arms.clr]\nkind = \"triangular\"\n" + lines


# (id, spec text, field named after the file, substrings the message must hold)
BAD_SPECS = [
    ("unknown-top-key", 'colour = "red"\n' + VALID, "top level", ["unknown key 'colour'", "expected one of", "arms"]),
    ("unknown-arm-key", VALID + 'colour = "red"\n', "arms.fixed", ["unknown parameter 'colour'", "expected one of lr"]),
    ("unknown-kind", HEAD + PPO_HP + '[arms.x]\nkind = "cyclic"\nlr = 1e-3\n', "arms.x.kind",
     ["'cyclic'", "must be one of", "triangular2"]),
    ("base-ge-max", HEAD + PPO_HP + _clr("base_lr = 1e-2\nmax_lr = 1e-3\n"), "arms.clr",
     ["base_lr=0.01", "max_lr=0.001", "<"]),
    ("relative-base-ge-max", HEAD + PPO_HP + _clr('base_lr = "tuned*3"\nmax_lr = "tuned"\n'), "arms.clr",
     ["base_lr=", "max_lr=", "<"]),
    ("seeds-string", VALID.replace("seeds = 1", 'seeds = "three"'), "seeds", ["'three'", "positive integer"]),
    ("seeds-duplicate", VALID.replace("seeds = 1", "seeds = [1, 1]"), "seeds", ["[1, 1]", "twice"]),
    ("seeds-negative", VALID.replace("seeds = 1", "seeds = [0, -1]"), "seeds", ["[0, -1]", ">= 0"]),
    ("timesteps-negative", VALID.replace("timesteps = 1024", "timesteps = -5"), "timesteps",
     ["-5", "positive integer"]),
    ("eval-every-zero", VALID.replace("every = 512", "every = 0"), "eval.every", ["0", "positive integer"]),
    ("envs-string", VALID.replace('envs = ["CartPole-v1"]', 'envs = "CartPole-v1"'), "envs",
     ["'CartPole-v1'", "non-empty list"]),
    ("envs-and-suite", VALID.replace("seeds = 1", 'seeds = 1\nsuite = "classic"'), "envs", ["exactly one of"]),
    ("unknown-env", VALID.replace("CartPole-v1", "CartPol-v1"), "envs",
     ["'CartPol-v1'", "not a registered Gymnasium environment", "did you mean CartPole-v1"]),
    ("unknown-suite", VALID.replace('envs = ["CartPole-v1"]', 'suite = "nope"'), "suite",
     ["'nope'", "unknown", "classic"]),
    ("empty-arms", HEAD + PPO_HP + "[arms]\n", "arms", ["no arms"]),
    ("no-arms", HEAD + PPO_HP, "arms", ["no arms"]),
    ("duplicate-envs", VALID.replace('["CartPole-v1"]', '["CartPole-v1", "Acrobot-v1", "CartPole-v1"]'), "envs",
     ["twice"]),
    ("relative-bad-syntax", HEAD + PPO_HP + _clr('base_lr = "tuned^2"\nmax_lr = "tuned*3"\n'), "arms.clr.base_lr",
     ["'tuned^2'", "tuned*X", "tuned/X"]),
    ("relative-not-a-number", HEAD + PPO_HP + _clr('base_lr = "tuned*e"\nmax_lr = "tuned*3"\n'), "arms.clr.base_lr",
     ["'tuned*e'", "tuned*X"]),
    ("relative-divide-by-zero", HEAD + PPO_HP + _clr('base_lr = "tuned/0"\nmax_lr = "tuned*3"\n'), "arms.clr.base_lr",
     ["'tuned/0'", "zero"]),
    ("override-env-not-listed", VALID + '[overrides."Acrobot-v1"]\ntimesteps = 2048\n', "overrides.Acrobot-v1",
     ["'Acrobot-v1'", "not in the spec's envs"]),
    ("override-unknown-key", VALID + '[overrides."CartPole-v1"]\nbudget = 2048\n', "overrides.CartPole-v1",
     ["unknown key 'budget'", "eval_every"]),
    # 8 cycles in 1024 steps: a rise of 64 steps, but SB3 sets the LR once every 32 x 4 = 128 steps.
    ("aliasing", HEAD + PPO_HP + _clr("base_lr = 1e-4\nmax_lr = 1e-3\ncycles = 8\n"), "arms.clr on CartPole-v1",
     ["spans 64 timesteps", "fewer than 2 LR updates", "every 128 timesteps", "n_steps=32 x n_envs=4"]),
    ("dqn-on-continuous", HEAD.replace("CartPole-v1", "Pendulum-v1") + '[arms.q]\nkind = "constant"\nlr = 1e-3\n'
     'algo = "dqn"\n', "arms.q on Pendulum-v1", ["'Pendulum-v1'", "continuous action space", "DQN"]),
    ("arm-algo-unknown", VALID + 'algo = "a2c"\n', "arms.fixed.algo", ["'a2c'", "one of ppo, dqn"]),
    ("unknown-hyperparameter", HEAD + "[hyperparams]\nn_step = 32\n" + FIXED, "arms.fixed on CartPole-v1",
     ["n_step=32", "unknown PPO hyperparameter"]),
    ("learning-rate-hyperparameter", HEAD + "[hyperparams]\nlearning_rate = 1e-3\n" + FIXED,
     "arms.fixed on CartPole-v1", ["learning_rate is not allowed"]),
    ("bad-arm-name", HEAD + PPO_HP + '[arms."my arm"]\nkind = "constant"\nlr = 1e-3\n', "arms.my arm",
     ["'my arm'", "letters, digits"]),
    ("baseline-missing-arm", 'baseline = "nope"\n' + VALID, "baseline", ["'nope'", "is not an arm", "fixed"]),
    ("gpus-per-run-zero", "gpus_per_run = 0\n" + VALID, "gpus_per_run", ["0", "fraction in (0, 1]"]),
    ("gpus-per-run-1.5", "gpus_per_run = 1.5\n" + VALID, "gpus_per_run", ["1.5", "whole number"]),
    ("tuned-not-paths", "tuned = [1]\n" + VALID, "tuned", ["[1]", "list of paths"]),
    ("lr-per-step-not-bool", VALID + 'lr_per_step = "yes"\n', "arms.fixed.lr_per_step", ["'yes'", "true or false"]),
    ("momentum-one-value", VALID + "cycle_momentum = [0.9]\n", "arms.fixed.cycle_momentum",
     ["[0.9]", "[low, high]"]),
    ("momentum-reversed", VALID + "cycle_momentum = [0.95, 0.85]\n", "arms.fixed.cycle_momentum",
     ["cycle_momentum=[0.95, 0.85]", "0 <= low < high < 1"]),
    ("device-unknown", 'device = "tpu"\n' + VALID, "arms.fixed on CartPole-v1",
     ["device='tpu'", "auto, cpu, cuda"]),
]

# TOML-level errors: the message comes from tomllib, after "not valid TOML".
BAD_TOML = [
    ("duplicate-arm-table", VALID + FIXED, ["not valid TOML"]),
    ("syntax", VALID.replace("timesteps = 1024", "timesteps = "), ["not valid TOML", "line 2"]),
]


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(("text", "field", "parts"), [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_malformed_spec_is_one_line_exit_2(tmp_path: Path, text: str, field: str, parts: list[str]) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    line = _one_error_line(_run("compare", spec, "--out", out, cwd=tmp_path))
    assert line.startswith(f"clr-rl: error: {spec}: {field}: "), line
    for part in parts:
        assert part in line, (part, line)
    assert not out.exists()


@pytest.mark.parametrize(("text", "parts"), [c[1:] for c in BAD_TOML], ids=[c[0] for c in BAD_TOML])
def test_invalid_toml_is_one_line_exit_2(tmp_path: Path, text: str, parts: list[str]) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    line = _one_error_line(_run("compare", spec, "--out", tmp_path / "out", cwd=tmp_path))
    assert line.startswith(f"clr-rl: error: {spec}: not valid TOML: "), line
    for part in parts:
        assert part in line
    assert not (tmp_path / "out").exists()


def test_bad_command_line_is_one_line_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "ok.toml"
    spec.write_text(VALID)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    line = _one_error_line(_run("compare", tmp_path / "missing.toml", "--out", tmp_path / "o", cwd=tmp_path))
    assert line == f"clr-rl: error: {tmp_path / 'missing.toml'}: spec file not found"

    line = _one_error_line(_run("compare", spec, "--out", tmp_path / "o", "--workers", "0", cwd=tmp_path))
    assert line == "clr-rl: error: --workers=0 must be >= 1"

    below = blocker / "sub" / "out"
    line = _one_error_line(_run("compare", spec, "--out", below, cwd=tmp_path))
    assert line.startswith(f"clr-rl: error: out={str(below)!r} cannot be")
    assert f"{str(blocker)!r} is not a folder" in line
    assert blocker.read_text() == "not a folder"

    line = _one_error_line(_run("compare", spec, "--out", blocker, cwd=tmp_path))
    assert line == f"clr-rl: error: out={str(blocker)!r} exists and is not a folder"
    assert not (tmp_path / "o").exists()


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_changed_arm_in_existing_batch_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(VALID)
    out = tmp_path / "out"
    first = _run("compare", spec, "--out", out, "--workers", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (out / "runs/CartPole-v1/fixed/seed0/model.zip").is_file()
    before = _snapshot(out)

    spec.write_text(VALID.replace('lr = "tuned"', 'lr = "tuned*2"'))
    line = _one_error_line(_run("compare", spec, "--out", out, "--workers", "1", cwd=tmp_path))
    assert "runs/CartPole-v1/fixed/seed0" in line and "different config" in line, line
    assert _snapshot(out) == before


# ----------------------------------------------------------------------------- Python API


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_suite_expands_to_the_suites_envs(tmp_path: Path) -> None:
    suite = tomllib.loads((ROOT / "envs" / "classic.toml").read_text())["env"]
    listed = list(suite)
    assert "CartPole-v1" in listed and len(listed) >= 4
    # no timesteps: each env gets its own budget from envs/classic.toml
    spec = load_spec(_write(tmp_path, VALID.replace('envs = ["CartPole-v1"]', 'suite = "classic"')
                            .replace(PPO_HP, "").replace("timesteps = 1024\n", "")))
    assert spec.envs == tuple(listed)
    runs = plan(spec)
    assert [(r.env_id, r.arm, r.seed) for r in runs] == [(e, "fixed", 0) for e in listed]
    ppo = tomllib.loads((ROOT / "agents" / "ppo.toml").read_text())
    for r in runs:  # the tuned LR of each env, from agents/ppo.toml (env entry, else family, else defaults)
        env_entry = ppo.get("env", {}).get(r.env_id, {})
        family_entry = ppo.get("family", {}).get(r.prepared.family, {})
        tuned = env_entry.get("tuned_lr", family_entry.get("tuned_lr", ppo["defaults"]["tuned_lr"]))
        assert r.prepared.schedule.lr == tuned
        assert r.prepared.config.timesteps == suite[r.env_id]["timesteps"]


def test_seeds_list_is_kept(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, VALID.replace("seeds = 1", "seeds = [3, 7]")))
    assert spec.seeds == (3, 7)
    runs = plan(spec)
    assert [(r.seed, r.folder, r.prepared.config.seed) for r in runs] == [
        (3, "runs/CartPole-v1/fixed/seed3", 3), (7, "runs/CartPole-v1/fixed/seed7", 7)]
    assert load_spec(_write(tmp_path, VALID.replace("seeds = 1", "seeds = 4"))).seeds == (0, 1, 2, 3)
    assert load_spec(_write(tmp_path, VALID.replace("seeds = 1\n", ""))).seeds == (0, 1, 2)


@pytest.mark.parametrize(("value", "tuned", "expected"), [
    ("tuned", 1e-3, 1e-3),
    ("tuned*3", 1e-3, 3e-3),
    ("tuned/3", 1e-3, 1e-3 / 3),
    ("0.5*tuned", 1e-3, 5e-4),
    (" tuned * 10 ", 3e-4, 3e-3),
    ("2*tuned/4", 1e-3, 5e-4),
    ("tuned*1e-1", 2.5e-4, 2.5e-5),
    (1e-4, 1e-3, 1e-4),
    (3, 1e-3, 3),
])
def test_resolve_relative(value: object, tuned: float, expected: float) -> None:
    assert resolve_relative(value, tuned) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("value", ["tuned^2", "3tuned", "tuned*", "tuned * x", "tunde", "tuned*e", "tuned/0", ""])
def test_resolve_relative_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=repr(value).replace("*", r"\*").replace("^", r"\^")):
        resolve_relative(value, 1e-3)


def test_overrides_and_arm_settings_reach_the_run_config(tmp_path: Path) -> None:
    text = (HEAD.replace('["CartPole-v1"]', '["CartPole-v1", "Acrobot-v1"]') + PPO_HP + "n_epochs = 3\n"
            + '[overrides."CartPole-v1"]\ntimesteps = 2048\neval_every = 256\neval_episodes = 3\n'
            + '[overrides."CartPole-v1".hyperparams]\nn_epochs = 2\ngamma = 0.9\n'
            + FIXED
            + '[arms.sgd-clr]\nkind = "triangular2"\nbase_lr = "tuned/3"\nmax_lr = "tuned*3"\ncycles = 2\n'
              'optimizer = "sgd"\n[arms.sgd-clr.hyperparams]\ngamma = 0.95\n'
            + '[arms.q]\nkind = "constant"\nlr = "tuned"\nalgo = "dqn"\n')
    # arm q is DQN: the n_epochs of CartPole's overrides (PPO only) reaches it too; DQN has no such parameter
    with pytest.raises(ValueError, match=r"arms\.q on CartPole-v1: .*n_epochs=2: unknown DQN hyperparameter"):
        plan(load_spec(_write(tmp_path, text)))

    text = text.replace('[arms.q]\nkind = "constant"\nlr = "tuned"\nalgo = "dqn"\n', "")
    runs = {(r.env_id, r.arm): r.prepared for r in plan(load_spec(_write(tmp_path, text)))}
    assert len(runs) == 4
    cp, acro = runs["CartPole-v1", "fixed"], runs["Acrobot-v1", "fixed"]
    assert (cp.config.timesteps, cp.eval_every, cp.eval_episodes) == (2048, 256, 3)
    assert (acro.config.timesteps, acro.eval_every, acro.eval_episodes) == (1024, 512, 2)
    # precedence: top-level [hyperparams] < [overrides.<env>.hyperparams] < [arms.<name>.hyperparams]
    assert cp.agent.hyperparams["n_epochs"] == 2 and cp.agent.hyperparams["gamma"] == 0.9
    assert acro.agent.hyperparams["n_epochs"] == 3 and acro.agent.hyperparams["gamma"] == 0.99
    assert runs["CartPole-v1", "sgd-clr"].agent.hyperparams["gamma"] == 0.95
    assert runs["Acrobot-v1", "sgd-clr"].agent.hyperparams["gamma"] == 0.95
    assert cp.agent.n_envs == 4 and cp.agent.hyperparams["n_steps"] == 32
    assert cp.config.optimizer == "adam" and runs["CartPole-v1", "sgd-clr"].config.optimizer == "sgd"
    # relative bounds resolved with each env's own tuned LR (agents/ppo.toml: CartPole 1e-3, Acrobot 3e-4)
    clr = runs["CartPole-v1", "sgd-clr"].schedule
    assert (clr.kind, clr.base_lr, clr.max_lr, clr.cycles) == ("triangular2", pytest.approx(1e-3 / 3), 3e-3, 2)
    clr = runs["Acrobot-v1", "sgd-clr"].schedule
    assert (clr.base_lr, clr.max_lr) == (pytest.approx(1e-4), pytest.approx(9e-4))
    assert runs["CartPole-v1", "sgd-clr"].resolved()["optimizer"] == "sgd"


def test_arm_algo_reaches_the_run_config(tmp_path: Path) -> None:
    dqn_toml = tomllib.loads((ROOT / "agents" / "dqn.toml").read_text())
    text = (HEAD + FIXED + '[arms.q]\nkind = "constant"\nlr = "tuned"\nalgo = "dqn"\noptimizer = "rmsprop"\n'
            '[arms.q.hyperparams]\nbuffer_size = 5000\n')
    runs = {r.arm: r.prepared for r in plan(load_spec(_write(tmp_path, text)))}
    assert runs["fixed"].config.algo == "ppo" and runs["q"].config.algo == "dqn"
    assert runs["q"].config.optimizer == "rmsprop"
    assert runs["q"].schedule.lr == dqn_toml["env"]["CartPole-v1"]["tuned_lr"] == 2.3e-3
    assert runs["fixed"].schedule.lr == 1e-3
    assert runs["q"].agent.hyperparams["buffer_size"] == 5000
    assert "n_epochs" not in runs["q"].agent.hyperparams and "exploration_fraction" in runs["q"].agent.hyperparams
    assert runs["q"].resolved()["algo"] == "dqn"


def test_run_ids_are_deterministic_and_follow_the_schedule(tmp_path: Path) -> None:
    text = HEAD.replace("seeds = 1", "seeds = 2") + PPO_HP + _clr("base_lr = 1e-4\nmax_lr = 1e-3\ncycles = 2\n")
    ids = [r.prepared.run_id() for r in plan(load_spec(_write(tmp_path, text)))]
    again = [r.prepared.run_id() for r in plan(load_spec(_write(tmp_path, text)))]
    assert ids == again and len(set(ids)) == 2
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    # a comment or a different device does not change what a run means
    same = [r.prepared.run_id() for r in plan(load_spec(_write(tmp_path, "# note\ndevice = \"cpu\"\n" + text)))]
    assert same == ids
    for change in ("max_lr = 2e-3", "cycles = 1", "base_lr = 2e-4"):
        key = change.split(" = ")[0]
        old = {"max_lr": "max_lr = 1e-3", "cycles": "cycles = 2", "base_lr": "base_lr = 1e-4"}[key]
        changed = [r.prepared.run_id() for r in plan(load_spec(_write(tmp_path, text.replace(old, change))))]
        assert set(changed).isdisjoint(ids), change
    changed = [r.prepared.run_id() for r in plan(load_spec(_write(tmp_path, text.replace("batch_size = 64",
                                                                                          "batch_size = 32"))))]
    assert set(changed).isdisjoint(ids)


def test_malformed_tune_record_and_bad_device_flag(tmp_path: Path) -> None:
    """A `tuned` file that is not a clr-rl tune record, and `compare --device` with a bad value."""
    (tmp_path / "rec.json").write_text('{"algo": "ppo"}')
    spec = tmp_path / "bad.toml"
    spec.write_text('tuned = ["rec.json"]\n' + VALID)
    out = tmp_path / "out"
    line = _one_error_line(_run("compare", spec, "--out", out, cwd=tmp_path))
    assert line == (f"clr-rl: error: {spec}: tuned: 'rec.json' is not a clr-rl tune record "
                    "(needs algo, env_id, value)")
    spec.write_text(VALID)
    line = _one_error_line(_run("compare", spec, "--out", out, "--device", "cuda:x", cwd=tmp_path))
    assert "device='cuda:x' must be auto, cpu, cuda or cuda:<index>" in line
    assert not out.exists()
