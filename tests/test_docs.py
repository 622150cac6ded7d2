"""The documentation site: it builds in strict mode (a broken link, anchor or missing page fails), its spec
reference lists exactly the keys the spec reader accepts, and its API pages cover every public name.

The spec reference is rendered by ``docs/hooks/spec_reference.py``; the keys the reader accepts are found here
independently, through ``load_spec`` alone: a spec using each documented key with a valid value must load, and
an unknown key in each table must be refused with the reader's own list of what it expected.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import clr_rl
from clr_rl.compare.spec import load_spec
from clr_rl.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_docs_hook_{name}", ROOT / "docs" / "hooks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    spec_page = (tmp_path / "site" / "reference" / "spec" / "index.html").read_text()
    assert "cycle_momentum" in spec_page and "lr_range" in spec_page  # the generated page is in the site
    api_page = (tmp_path / "site" / "api" / "python-api" / "index.html").read_text()
    assert 'id="clr_rl.compare.driver.compare"' in api_page or "compare" in api_page


# A valid value for every key, as TOML; the base spec below supplies what each table needs besides the key.
_EXAMPLES: dict[str, dict[str, str]] = {
    "top level": {
        "name": 'name = "probe"', "description": 'description = "a probe"', "envs": 'envs = ["CartPole-v1"]',
        "suite": 'suite = "classic"', "seeds": "seeds = [0, 1]", "timesteps": "timesteps = 1024",
        "baseline": 'baseline = "a"', "gpus_per_run": "gpus_per_run = 0.5", "tuned": 'tuned = ["tuned_lr.json"]',
        "eval": "eval = {}", "overrides": "overrides = {}", "arms": "", "tune": 'tune = {grid = "1e-5:1e-2:4"}',
        "lr_range": "lr_range = {}", "report": "report = {}", "tradeoff": "tradeoff = {cycles = 2}",
        "sequential": 'baseline = "a"\nsequential = {max_seeds = 6}',
    },
    "run settings": {
        "algo": 'algo = "dqn"', "device": 'device = "cpu"', "hyperparams": "hyperparams = {n_steps = 64}",
        "optimizer": 'optimizer = "sgd"', "lr_per_step": "lr_per_step = true",
        "cycle_momentum": "cycle_momentum = [0.85, 0.95]", "vec_env": 'vec_env = "ale"',
    },
    "eval": {"every": "every = 512", "episodes": "episodes = 2"},
    "overrides.<env>": {
        "timesteps": "timesteps = 2048", "eval_every": "eval_every = 512", "eval_episodes": "eval_episodes = 3",
        "hyperparams": "hyperparams = {n_steps = 64}", "random_score": "random_score = 9.0",
        "reference_score": "reference_score = 500.0", "vec_env": 'vec_env = "sb3"',
    },
    "tune": {"grid": 'grid = "1e-5:1e-2:4"', "trials": "trials = 4", "range": 'range = "1e-5:1e-2"',
             "seeds": "seeds = [1000]", "criterion": 'criterion = "final"'},
    "lr_range": {"method": 'method = "sweep"', "timesteps": "timesteps = 4096", "range": 'range = "1e-6:1e-1"',
                 "grid": 'grid = "1e-5:1e-2:5"', "seeds": "seeds = 3", "points": "points = 30"},
    "report": {"margin": "margin = 0.2"},
    "tradeoff": {"cycles": "cycles = 3", "t_mult": "t_mult = 3.0", "max_lr": "max_lr = 1e-3",
                 "min_lr_fraction": "min_lr_fraction = 0.1", "seeds": "seeds = [0, 1]", "validate": "validate = true",
                 "timesteps": "timesteps = 4096"},
    "sequential": {"max_seeds": "max_seeds = 6", "step": "step = 2", "alpha": "alpha = 0.1",
                   "boundaries": 'boundaries = "pocock"', "equivalence": "equivalence = false"},
}
_ARM = '[arms.a]\nkind = "constant"\nlr = 1e-3\n'
_TOP = {"sequential": 'baseline = "a"'}  # what a table needs at the top level


def _spec(tmp: Path, *, top: str = "", table: str = "", body: str = "", envs: bool = True, arm: str = _ARM) -> Path:
    (tmp / "tuned_lr.json").write_text(json.dumps({"algo": "ppo", "env_id": "CartPole-v1", "value": 3e-4}))
    text = "\n".join(filter(None, [top, 'envs = ["CartPole-v1"]' if envs else "", f"[{table}]" if table else "",
                                   body, arm]))
    path = tmp / "spec.toml"
    path.write_text(text + "\n")
    return path


def _table_header(table: str) -> str:
    return 'overrides."CartPole-v1"' if table == "overrides.<env>" else table


def _body(table: str, key: str) -> str:
    lines = [_EXAMPLES[table][key]]
    if table == "tune" and key not in ("grid", "trials"):
        lines.append(_EXAMPLES["tune"]["grid"])
    if table == "tradeoff" and key != "cycles":
        lines.append("cycles = 2")
    if table == "sequential" and key != "max_seeds":
        lines.append("max_seeds = 6")
    return "\n".join(lines)


def _refused_list(path: Path) -> set[str]:
    """The reader's own list of the keys it expected, from its refusal of an unknown key."""
    with pytest.raises(ConfigError) as refused:
        load_spec(path)
    found = re.search(r"unknown (?:key|parameter) 'zz_unknown'; expected one of (.+)$", str(refused.value))
    assert found, str(refused.value)
    return set(found.group(1).split(", "))


@pytest.fixture(scope="module")
def documented() -> dict[str, set[str]]:
    return _hook("spec_reference").accepted_keys()


def test_every_documented_key_of_every_table_loads(documented: dict[str, set[str]], tmp_path: Path) -> None:
    settings = set(_EXAMPLES["run settings"])
    for table in ("top level", "eval", "overrides.<env>", "tune", "lr_range", "report", "tradeoff", "sequential"):
        keys = documented[table] - (settings if table == "top level" else set())
        assert keys == set(_EXAMPLES[table]), f"[{table}]: give this test an example value for each key"
        for key in sorted(keys):
            if table == "top level":
                path = _spec(tmp_path, top=_EXAMPLES[table][key], envs=key not in ("envs", "suite"))
            else:
                path = _spec(tmp_path, table=_table_header(table), body=_body(table, key), top=_TOP.get(table, ""))
            load_spec(path)  # raises ConfigError if the reader refuses a documented key
    for line in _EXAMPLES["run settings"].values():  # top level and per arm
        load_spec(_spec(tmp_path, top=line))
        load_spec(_spec(tmp_path, arm=_ARM + line + "\n"))


def test_the_reader_accepts_no_key_the_reference_leaves_out(documented: dict[str, set[str]], tmp_path: Path) -> None:
    for table in ("top level", "eval", "overrides.<env>", "tune", "lr_range", "report", "tradeoff", "sequential"):
        if table == "top level":
            path = _spec(tmp_path, top="zz_unknown = 1")
        else:
            body = "zz_unknown = 1" + ("\n" + _body(table, {"tune": "grid", "tradeoff": "cycles"}.get(table, "step"))
                                       if table in ("tune", "tradeoff", "sequential") else "")
            path = _spec(tmp_path, table=_table_header(table), body=body, top=_TOP.get(table, ""))
        assert _refused_list(path) == documented[table], table


def test_arm_keys_per_kind_are_the_readers(documented: dict[str, set[str]], tmp_path: Path) -> None:
    settings = set(_EXAMPLES["run settings"])
    kinds = {name.split("=", 1)[1] for name in documented if name.startswith("arms.<name> kind=")}
    assert kinds == set(clr_rl.SCHEDULE_KINDS)
    for kind in sorted(kinds):
        arm = f'[arms.a]\nkind = "{kind}"\nzz_unknown = 1\n'
        parameters = _refused_list(_spec(tmp_path, arm=arm))
        assert documented[f"arms.<name> kind={kind}"] == {"kind"} | parameters | settings, kind


def test_api_pages_cover_every_public_name() -> None:
    directives = set(re.findall(r"^::: clr_rl\.(\w+)", (ROOT / "docs" / "api" / "schedules.md").read_text(), re.M))
    lazy = set(_hook("api_reference")._lazy_api())
    assert set(clr_rl.__all__) - {"__version__"} == directives | lazy
