"""The wheel carries agents/, envs/ and the default spec: a non-editable install finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_data_and_a_plain_install_reads_it(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path / "w")],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "w").glob("clr_rl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("clr_rl/py.typed", "clr_rl/_data/agents/ppo.toml", "clr_rl/_data/agents/dqn.toml",
                 "clr_rl/_data/envs/classic.toml", "clr_rl/_data/envs/mujoco.toml", "clr_rl/_data/envs/atari.toml",
                 "clr_rl/_data/specs/classic-demo.toml"):
        assert name in names, name
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import clr_rl, clr_rl.run.envs as e; from clr_rl.run.agents import agent_config; "
            "print(clr_rl.__file__); print(e.data_dir('agents')); print(e.suite_names()); "
            "print(agent_config('ppo', 'HalfCheetah-v5', 'mujoco').tuned_lr)")
    # run outside the source tree, the unpacked wheel first on the path (as a plain install would be)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}).stdout.splitlines()
    assert out[0] == str(site / "clr_rl" / "__init__.py")
    assert out[1] == str(site / "clr_rl" / "_data" / "agents")
    assert out[2] == "['atari', 'classic', 'mujoco']"
    assert float(out[3]) == 2.0633e-05  # the Zoo's tuned HalfCheetah LR, read from the wheel's agents/ppo.toml
