"""Comparison specs: TOML read into frozen dataclasses at one boundary (:func:`load_spec`).

A spec names environments x arms x seeds::

    name = "classic-demo"
    algo = "ppo"                    # or per arm
    timesteps = 50_000              # default: each env's budget from envs/
    seeds = 3                       # or [0, 1, 2]
    envs = ["CartPole-v1"]          # or suite = "classic"
    [eval]
    every = 5_000
    episodes = 10
    [hyperparams]                   # overrides for every run
    [overrides."CartPole-v1"]       # per env: timesteps, eval_every, eval_episodes, hyperparams
    [arms.fixed-tuned]
    kind = "constant"
    lr = "tuned"                    # the env's tuned fixed LR from agents/
    [arms.around-tuned]             # relative to the tuned LR: "tuned", "tuned*3", "tuned/3"
    kind = "triangular2"
    base_lr = "tuned/3"
    max_lr = "tuned*3"
    cycles = 4
    [tradeoff]                      # optional: a return-vs-budget curve per env (clr_rl.tradeoff)
    cycles = 4
    t_mult = 2.0
    max_lr = "tuned"                # or a number

An arm may also set ``algo``, ``optimizer`` and a ``hyperparams`` table. Every run
is resolved and validated by :func:`plan` before anything is trained or written.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError, config_errors
from clr_rl.schedules import SCHEDULE_KINDS, parse_schedule

__all__ = ["Arm", "LRRangeSpec", "PlannedRun", "Spec", "TradeoffSpec", "TuneSpec", "load_spec", "plan",
           "resolve_relative", "run_folder", "tradeoff_request"]

_TOP_FIXED = {"name", "timesteps", "seeds", "envs", "suite", "eval", "overrides", "arms", "description", "baseline",
              "gpus_per_run", "tuned", "tune", "lr_range", "report", "tradeoff"}
_OVERRIDE_KEYS = {"timesteps", "eval_every", "eval_episodes", "hyperparams", "random_score", "reference_score",
                  "vec_env"}
_LR_FIELDS = {"lr", "start_lr", "end_lr", "base_lr", "max_lr", "min_lr", "spike_lr", "small_lr", "large_lr"}
_RELATIVE = re.compile(r"^\s*(?:(?P<pre>[0-9.eE+-]+)\s*\*\s*)?(?P<ref>tuned|range|zoo)\s*"
                       r"(?:(?P<op>[*/])\s*(?P<num>[0-9.eE+-]+))?\s*$")
_TRADEOFF_KEYS = {"cycles", "t_mult", "max_lr", "min_lr_fraction", "seeds", "validate", "timesteps"}
_EVAL_KEYS = {"every", "episodes"}
_TUNE_KEYS = {"grid", "trials", "range", "seeds", "criterion"}
_LR_RANGE_KEYS = {"method", "timesteps", "range", "grid", "seeds", "points"}
_REPORT_KEYS = {"margin"}
_TRADEOFF_SETTINGS = {"algo", "device", "overrides"}  # the run settings clr_rl.tradeoff.tradeoff takes
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CRITERIA = ("auc", "final")


def _spec_keys() -> dict[str, str]:
    """Spec key -> RunConfig field, for every run setting a spec may set (top level or per arm)."""
    from clr_rl.runner import RunConfig

    return {s.spec_key: name for name, s in RunConfig.settings().items() if s.spec_key}


def run_folder(env_id: str, arm: str, seed: int) -> str:
    """A run's folder inside a batch folder: ``runs/<env>/<arm>/seed<k>``.

    >>> run_folder("CartPole-v1", "fixed", 3)
    'runs/CartPole-v1/fixed/seed3'
    """
    return f"runs/{env_id}/{arm}/seed{seed}"


@dataclass(frozen=True)
class Arm:
    """One arm: a schedule table (LR fields possibly ``"tuned*3"`` or ``"range"``) and the run
    settings it sets (RunConfig field names: ``algo``, ``optimizer``, ``overrides``, ...)."""

    name: str
    schedule: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def algo(self) -> str:
        return str(self.settings.get("algo", "ppo"))

    def refers_to(self, ref: str) -> bool:
        """Whether an LR field of the schedule is relative to ``ref`` (``"tuned"`` or ``"range"``)."""
        return any(isinstance(v, str) and _RELATIVE.match(v) and _RELATIVE.match(v).group("ref") == ref  # type: ignore[union-attr]
                   for k, v in self.schedule.items() if k in _LR_FIELDS)


@dataclass(frozen=True)
class TuneSpec:
    """``[tune]``: tune a fixed LR per (algo, env) at the batch's own budget, before the arms run."""

    grid: tuple[float, float, int] | None
    trials: int | None
    lr_range: tuple[float, float]
    seeds: tuple[int, ...]
    criterion: str


@dataclass(frozen=True)
class LRRangeSpec:
    """``[lr_range]``: an LR range test per (algo, env) whose bounds ``"range"`` LR fields take."""

    method: str
    timesteps: int | None
    lr_range: tuple[float, float]
    grid: tuple[float, float, int]
    seeds: int
    points: int


@dataclass(frozen=True)
class TradeoffSpec:
    """``[tradeoff]``: a return-vs-budget curve per env from one cosine-restarts run
    (:func:`clr_rl.tradeoff.tradeoff`), trained after the arms into ``<out>/tradeoff/<env>/``.

    ``algo`` and ``device`` are the spec's top-level ones; ``seeds`` runs seeds ``0 .. seeds-1``;
    ``timesteps`` None means each env's budget in the batch.
    """

    cycles: int
    t_mult: float = 2.0
    max_lr: float | str = "tuned"
    min_lr_fraction: float = 0.0
    seeds: int = 3
    validate: bool = False
    timesteps: int | None = None
    algo: str = "ppo"
    device: str = "auto"


@dataclass(frozen=True)
class Spec:
    path: Path
    name: str
    envs: tuple[str, ...]
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...]
    timesteps: int | None
    eval_every: int | None
    eval_episodes: int | None
    overrides: dict[str, dict[str, Any]]
    baseline: str | None
    raw: dict[str, Any]
    gpus_per_run: float = 1.0
    tuned: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (algo, env) -> tune record
    tune: TuneSpec | None = None
    lr_range: LRRangeSpec | None = None
    margin: float | None = None
    tradeoff: TradeoffSpec | None = None


@dataclass(frozen=True)
class PlannedRun:
    """One resolved run of a batch and its folder (relative to the batch folder)."""

    env_id: str
    arm: str
    seed: int
    folder: str
    prepared: Any  # clr_rl.runner.PreparedRun (imported lazily: specs must load without torch)


def _fail(path: Path, where: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {message}")


def _check_keys(path: Path, where: str, table: dict[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(path, where, f"unknown key {key!r}; expected one of {', '.join(sorted(allowed))}")


def _pos_int(path: Path, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, where, f"{value!r} must be a positive integer")
    return value


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, where, f"{value!r} must be a table")
    return value


def _number(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, where, f"{value!r} must be a number")
    return float(value)


def resolve_relative(value: Any, tuned_lr: float, *, range_value: float | None = None,
                     zoo_value: float | None = None) -> Any:
    """``"tuned"``, ``"tuned*3"``, ``"tuned/3"``, ``"0.5*tuned"`` (and the same with ``range`` or
    ``zoo``) -> numbers; others unchanged. ``range`` stands for ``range_value`` (the range test's
    bound for that field); ``zoo`` for ``zoo_value``, the LR shipped in ``agents/`` (the Zoo's
    value, whatever ``tuned`` means in this spec; default ``tuned_lr``).

    >>> resolve_relative("tuned/4", 1e-3), resolve_relative("2*tuned", 1e-3), resolve_relative(1e-4, 1e-3)
    (0.00025, 0.002, 0.0001)
    >>> resolve_relative("range*2", 1e-3, range_value=0.01)
    0.02
    """
    if not isinstance(value, str):
        return value
    m = _RELATIVE.match(value)
    rule = f"{value!r} must be a number or tuned, tuned*X, tuned/X, X*tuned (or the same with range)"
    if not m:
        raise ValueError(rule)
    try:
        pre = float(m.group("pre")) if m.group("pre") else 1.0
        num = float(m.group("num")) if m.group("op") else 1.0
    except ValueError:  # the pattern admits "e", "+-" ...
        raise ValueError(f"{rule} with X a number") from None
    if m.group("op") == "/" and num == 0:
        raise ValueError(f"{value!r} divides by zero; X in {m.group('ref')}/X must be non-zero")
    if m.group("ref") == "range":
        if range_value is None:
            raise ValueError(f"{value!r} needs an [lr_range] table (the range test gives its value)")
        ref = range_value
    elif m.group("ref") == "zoo":
        ref = tuned_lr if zoo_value is None else zoo_value
    else:
        ref = tuned_lr
    out = ref * pre
    out = out * num if m.group("op") == "*" else out / num if m.group("op") == "/" else out
    return float(f"{out:.12g}")  # tuned/3 of 3e-4 is 1e-4, not 9.999999999999999e-05


def resolve_schedule(table: dict[str, Any], tuned_lr: float, bounds: dict[str, float] | None,
                     zoo_lr: float | None = None) -> dict[str, Any]:
    """The schedule table with every relative LR field resolved; ``bounds`` are the range test's
    ``base_lr``/``max_lr`` (a ``"range"`` in ``min_lr`` or ``lr`` takes ``base_lr``)."""
    out = {}
    for key, value in table.items():
        if key in _LR_FIELDS:
            ref = None if bounds is None else bounds["max_lr" if key in ("max_lr", "spike_lr") else "base_lr"]
            value = resolve_relative(value, tuned_lr, range_value=ref, zoo_value=zoo_lr)
        out[key] = value
    return out


def _load_tuned(path: Path, raw: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """``tuned = ["tune-out/tuned_lr.json", ...]`` (relative to the spec): records of ``clr-rl tune``."""
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise _fail(path, "tuned", f"{raw!r} must be a list of paths to tuned_lr.json records")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for item in raw:
        file = (path.parent / item) if not Path(item).is_absolute() else Path(item)
        if not file.is_file():
            raise _fail(path, "tuned", f"{item!r}: no such tune record")
        try:
            record = json.loads(file.read_text())
            key = (str(record["algo"]), str(record["env_id"]))
            float(record["value"])
        except (ValueError, KeyError, TypeError):
            raise _fail(path, "tuned", f"{item!r} is not a clr-rl tune record (needs algo, env_id, value)") from None
        record["path"] = str(file.resolve())
        out[key] = record
    return out


def _load_tune(path: Path, raw: Any, eval_seeds: tuple[int, ...]) -> TuneSpec:
    from clr_rl.tuning import parse_grid, parse_range

    table = _table(path, "tune", raw)
    _check_keys(path, "tune", table, _TUNE_KEYS)
    if ("grid" in table) == ("trials" in table):
        raise _fail(path, "tune", "give exactly one of grid = \"lo:hi:n\" or trials = N")
    with config_errors(f"{path}: tune"):
        grid = parse_grid(str(table["grid"]), flag="grid") if "grid" in table else None
        trials = _pos_int(path, "tune.trials", table["trials"]) if "trials" in table else None
        lr_range = parse_range(str(table.get("range", "1e-5:1e-2")), flag="range")
    seeds = table.get("seeds", [1000, 1001])
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise _fail(path, "tune.seeds", f"{seeds!r} must be a non-empty list of integers >= 0")
    overlap = sorted(set(seeds) & set(eval_seeds))
    if overlap:
        raise _fail(path, "tune.seeds", f"{seeds!r} overlaps the evaluation seeds at {overlap}; tuning seeds must be "
                    "disjoint from the seeds the arms are judged on")
    criterion = table.get("criterion", "auc")
    if criterion not in CRITERIA:
        raise _fail(path, "tune.criterion", f"{criterion!r} must be one of {', '.join(CRITERIA)}")
    return TuneSpec(grid, trials, lr_range, tuple(seeds), criterion)


def _load_lr_range(path: Path, raw: Any) -> LRRangeSpec:
    from clr_rl.tuning import parse_grid, parse_range

    table = _table(path, "lr_range", raw)
    _check_keys(path, "lr_range", table, _LR_RANGE_KEYS)
    method = table.get("method", "single")
    if method not in ("single", "sweep"):
        raise _fail(path, "lr_range.method", f"{method!r} must be single or sweep")
    timesteps = _pos_int(path, "lr_range.timesteps", table["timesteps"]) if "timesteps" in table else None
    with config_errors(f"{path}: lr_range"):
        lr_range = parse_range(str(table.get("range", "1e-6:1e-1")), flag="range")
        grid = parse_grid(str(table.get("grid", "1e-5:1e-2:7")), flag="grid")
    seeds = _pos_int(path, "lr_range.seeds", table.get("seeds", 2))
    points = _pos_int(path, "lr_range.points", table.get("points", 24))
    return LRRangeSpec(method, timesteps, lr_range, grid, seeds, points)


def _load_tradeoff(path: Path, raw: Any, defaults: dict[str, Any],
                   overrides: dict[str, dict[str, Any]]) -> TradeoffSpec:
    """``[tradeoff]``: each field's type and range (the env-dependent checks, such as a first cycle
    of at least two LR updates, are :func:`clr_rl.tradeoff.plan_tradeoff`'s, in ``compare``)."""
    table = _table(path, "tradeoff", raw)
    _check_keys(path, "tradeoff", table, _TRADEOFF_KEYS)
    if "cycles" not in table:
        raise _fail(path, "tradeoff.cycles", "missing; give the number of cycles (an integer >= 2)")
    cycles = table["cycles"]
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 2:
        raise _fail(path, "tradeoff.cycles", f"{cycles!r} must be an integer >= 2 (one cycle gives a single budget "
                    "point)")
    t_mult = _number(path, "tradeoff.t_mult", table.get("t_mult", 2.0))
    if not math.isfinite(t_mult) or t_mult <= 1:
        raise _fail(path, "tradeoff.t_mult", f"{table['t_mult']!r} must be a number > 1 (each cycle longer than the "
                    "last)")
    max_lr = table.get("max_lr", "tuned")
    if max_lr != "tuned":
        if isinstance(max_lr, str) or not math.isfinite(_number(path, "tradeoff.max_lr", max_lr)) or max_lr <= 0:
            raise _fail(path, "tradeoff.max_lr", f"{max_lr!r} must be a number > 0 or \"tuned\"")
        max_lr = float(max_lr)
    fraction = _number(path, "tradeoff.min_lr_fraction", table.get("min_lr_fraction", 0.0))
    if not 0.0 <= fraction < 1.0:
        raise _fail(path, "tradeoff.min_lr_fraction", f"{table['min_lr_fraction']!r} must be in [0, 1)")
    seeds = table.get("seeds", 3)
    if isinstance(seeds, list):
        if not seeds or seeds != list(range(len(seeds))):
            raise _fail(path, "tradeoff.seeds", f"{seeds!r} must be a count or the list [0, 1, ..., n-1] (the "
                        "tradeoff runs use seeds 0 .. n-1)")
        seeds = len(seeds)
    seeds = _pos_int(path, "tradeoff.seeds", seeds)
    validate = table.get("validate", False)
    if not isinstance(validate, bool):
        raise _fail(path, "tradeoff.validate", f"{validate!r} must be true or false")
    timesteps = _pos_int(path, "tradeoff.timesteps", table["timesteps"]) if "timesteps" in table else None
    for key, value in defaults.items():  # top-level run settings the tradeoff runs could not honour
        if key not in _TRADEOFF_SETTINGS:
            raise _fail(path, "tradeoff", f"the spec's top-level {key} = {value!r} cannot reach the tradeoff runs "
                        "(they take algo, device and hyperparams); set it per arm instead")
    for env_id, over in overrides.items():
        if "vec_env" in over:
            raise _fail(path, "tradeoff", f"overrides.{env_id}.vec_env cannot reach the tradeoff runs (they use "
                        "SB3's vector env); set it per arm instead")
    return TradeoffSpec(cycles, t_mult, max_lr, fraction, seeds, validate, timesteps,
                        str(defaults.get("algo", "ppo")), str(defaults.get("device", "auto")))


def _load_settings(path: Path, where: str, table: dict[str, Any]) -> dict[str, Any]:
    """Run settings given in ``table`` under their spec keys, checked by each setting's own rule."""
    from clr_rl.runner import RunConfig

    settings = RunConfig.settings()
    out = {}
    for key, name in _spec_keys().items():
        if key not in table:
            continue
        setting = settings[name]
        value = table[key]
        value = setting.from_json(value) if setting.from_json and value is not None else value
        with config_errors(f"{path}: {where}.{key}" if where else f"{path}: {key}"):
            if setting.check is not None:
                setting.check(value)
        out[name] = dict(value) if isinstance(value, dict) else value
    return out


def _load_arm(path: Path, name: str, table: Any, defaults: dict[str, Any]) -> Arm:
    where = f"arms.{name}"
    _table(path, where, table)
    if not _NAME.fullmatch(name):
        raise _fail(path, where, f"arm name {name!r} must be letters, digits, '.', '_' or '-'")
    kind = table.get("kind")
    if kind not in SCHEDULE_KINDS:
        raise _fail(path, f"{where}.kind", f"{kind!r} must be one of {', '.join(SCHEDULE_KINDS)}")
    keys = _spec_keys()
    schedule = {k: v for k, v in table.items() if k not in keys}
    for key, value in schedule.items():
        if isinstance(value, str) and key in _LR_FIELDS:
            with config_errors(f"{path}: {where}.{key}"):
                resolve_relative(value, 1.0, range_value=1.0)
    with config_errors(f"{path}: {where}"):  # shape check with stand-ins; plan() checks the real values
        parse_schedule(resolve_schedule(schedule, 1e-3, {"base_lr": 1e-4, "max_lr": 1e-3}))
    settings = {**defaults, **_load_settings(path, where, table)}
    return Arm(name, schedule, settings)


def _load_envs(path: Path, raw: dict[str, Any]) -> list[str]:
    if ("envs" in raw) == ("suite" in raw):
        raise _fail(path, "envs", "give exactly one of envs = [...] or suite = \"...\"")
    if "envs" in raw:
        envs = raw["envs"]
        if not isinstance(envs, list) or not envs or not all(isinstance(e, str) for e in envs):
            raise _fail(path, "envs", f"{envs!r} must be a non-empty list of Gymnasium ids")
        if len(set(envs)) != len(envs):
            raise _fail(path, "envs", f"{envs!r} lists an env twice")
        return list(envs)
    from clr_rl.envs import load_suite

    with config_errors(f"{path}: suite"):
        return [info.env_id for info in load_suite(str(raw["suite"]))]


def _load_seeds(path: Path, raw: Any) -> tuple[int, ...]:
    if isinstance(raw, list):
        if not raw or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw):
            raise _fail(path, "seeds", f"{raw!r} must be a non-empty list of integers >= 0")
        if len(set(raw)) != len(raw):
            raise _fail(path, "seeds", f"{raw!r} lists a seed twice")
        return tuple(raw)
    return tuple(range(_pos_int(path, "seeds", raw)))


def _load_overrides(path: Path, raw: Any, envs: list[str]) -> dict[str, dict[str, Any]]:
    overrides = _table(path, "overrides", raw)
    for env_id, table in overrides.items():
        where = f"overrides.{env_id}"
        _table(path, where, table)
        if env_id not in envs:
            raise _fail(path, where, f"env {env_id!r} is not in the spec's envs")
        _check_keys(path, where, table, _OVERRIDE_KEYS)
        for key in ("timesteps", "eval_every", "eval_episodes"):
            if key in table:
                _pos_int(path, f"{where}.{key}", table[key])
        for key in ("random_score", "reference_score"):
            if key in table:
                _number(path, f"{where}.{key}", table[key])
        if "reference_score" in table and table["reference_score"] == table.get("random_score"):
            raise _fail(path, f"{where}.reference_score", "must differ from random_score")
        _table(path, f"{where}.hyperparams", table.get("hyperparams", {}))
    return {k: dict(v) for k, v in overrides.items()}


def _load_margin(path: Path, raw: Any) -> float | None:
    table = _table(path, "report", raw)
    _check_keys(path, "report", table, _REPORT_KEYS)
    if "margin" not in table:
        return None
    margin = _number(path, "report.margin", table["margin"])
    if not 0 < margin < 0.5:
        raise _fail(path, "report.margin", f"{margin!r} must be in (0, 0.5)")
    return margin


def load_spec(path: Path | str, *, device: str | None = None) -> Spec:
    """Read and check a spec's shape (types, keys, names); :func:`plan` checks the runs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: spec file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _check_keys(path, "top level", raw, _TOP_FIXED | set(_spec_keys()))
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _fail(path, "name", f"{name!r} must be letters, digits, '.', '_' or '-'")
    envs = _load_envs(path, raw)
    seeds = _load_seeds(path, raw.get("seeds", 3))
    timesteps = _pos_int(path, "timesteps", raw["timesteps"]) if "timesteps" in raw else None
    ev = _table(path, "eval", raw.get("eval", {}))
    _check_keys(path, "eval", ev, _EVAL_KEYS)
    every = _pos_int(path, "eval.every", ev["every"]) if "every" in ev else None
    episodes = _pos_int(path, "eval.episodes", ev["episodes"]) if "episodes" in ev else None
    overrides = _load_overrides(path, raw.get("overrides", {}), envs)
    defaults = {k: v for k, v in _load_settings(path, "", raw).items() if k != "overrides"}  # hp: run_config
    if device is not None:
        defaults["device"] = device
    gpus_per_run = raw.get("gpus_per_run", 1.0)
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, (int, float)) or not gpus_per_run > 0 or (
            gpus_per_run > 1 and gpus_per_run != int(gpus_per_run)):
        raise _fail(path, "gpus_per_run", f"{gpus_per_run!r} must be a fraction in (0, 1] or a whole number")
    tuned = _load_tuned(path, raw["tuned"]) if "tuned" in raw else {}
    tune = _load_tune(path, raw["tune"], seeds) if "tune" in raw else None
    lr_range = _load_lr_range(path, raw["lr_range"]) if "lr_range" in raw else None
    margin = _load_margin(path, raw.get("report", {}))
    tradeoff = _load_tradeoff(path, raw["tradeoff"], defaults, overrides) if "tradeoff" in raw else None
    if tradeoff is not None and tune is not None and tradeoff.max_lr == "tuned":
        overlap = sorted(set(tune.seeds) & set(range(tradeoff.seeds)))
        if overlap:
            raise _fail(path, "tune.seeds", f"{list(tune.seeds)!r} overlaps the tradeoff runs' seeds at {overlap}; "
                        "tuning seeds must be disjoint from the seeds the tuned LR is used on")
    arms_raw = _table(path, "arms", raw.get("arms", {}))
    if not arms_raw:
        raise _fail(path, "arms", "no arms: add at least one [arms.<name>] table")
    arms = tuple(_load_arm(path, arm_name, table, defaults) for arm_name, table in arms_raw.items())
    if lr_range is None:
        for arm in arms:
            if arm.refers_to("range"):
                raise _fail(path, f"arms.{arm.name}", "an LR field says \"range\" but the spec has no [lr_range] "
                            "table (add one: method = \"single\")")
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in arms_raw:
        raise _fail(path, "baseline", f"{baseline!r} is not an arm; expected one of {', '.join(arms_raw)}")
    return Spec(path, name, tuple(envs), arms, seeds, timesteps, every, episodes, overrides, baseline, raw,
                float(gpus_per_run), tuned, tune, lr_range, margin, tradeoff)


def env_budget(spec: Spec, env_id: str) -> int:
    """The env's timesteps: the env's override, else the spec's, else the suite's default."""
    from clr_rl.envs import env_info

    over = spec.overrides.get(env_id, {})
    info = env_info(env_id)
    timesteps = over.get("timesteps") or spec.timesteps or (info.timesteps if info else None)
    if timesteps is None:
        raise _fail(spec.path, "timesteps", f"env {env_id!r} has no default budget in envs/; set timesteps")
    return int(timesteps)


def run_config(spec: Spec, env_id: str, settings: dict[str, Any], **fields: Any) -> Any:
    """A RunConfig for ``env_id``: the spec's run settings < the env's overrides < ``settings`` (an
    arm's); hyperparameters merge key by key in that order; ``fields`` (schedule, seed, ...) as given."""
    from clr_rl.runner import RunConfig

    over = spec.overrides.get(env_id, {})
    if "vec_env" in over and "vec_env" not in settings:  # spec < env < arm, as for hyperparameters
        settings = {**settings, "vec_env": over["vec_env"]}
    kwargs = {**settings, "overrides": _hyperparams(spec, env_id, settings), "env_id": env_id,
              "timesteps": env_budget(spec, env_id),
              "eval_every": over.get("eval_every") or spec.eval_every,
              "eval_episodes": over.get("eval_episodes") or spec.eval_episodes, "threads": 1, **fields}
    return RunConfig(**kwargs)


def _hyperparams(spec: Spec, env_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Top-level ``[hyperparams]`` < ``[overrides.<env>.hyperparams]`` < the arm's ``hyperparams``."""
    return {**spec.raw.get("hyperparams", {}), **spec.overrides.get(env_id, {}).get("hyperparams", {}),
            **settings.get("overrides", {})}


Results = dict[tuple[str, str], dict[str, Any]]  # (algo, env) -> a tuning or range-test result


def _tuned_value(spec: Spec, arm: Arm, env_id: str, family: str,
                 tuned: Results | None) -> tuple[float, str, dict[str, Any]]:
    """The fixed LR that ``"tuned"`` means for this arm on this env, its provenance, and the
    provenance hyperparameters (``tuned_lr*``) the run records."""

    key = (arm.algo, env_id)
    if spec.tune is not None:
        if tuned is None or key not in tuned:
            return 1e-3, "tuned in this batch (pending)", {}
        result = tuned[key]
        note = f"tuned in this batch: {result['method']}, criterion {result['criterion']}, seeds {result['seeds']}"
        return float(result["value"]), note, {"tuned_lr": float(result["value"]), "tuned_lr_source": note,
                                              "tuned_lr_cost_timesteps": int(result["cost_timesteps"])}
    record = spec.tuned.get(key)
    if record is not None:
        note = (f"clr-rl tune record {record['path']} ({record.get('method', '?')}, "
                f"criterion {record.get('criterion', '?')})")
        return float(record["value"]), note, {"tuned_lr": float(record["value"]), "tuned_lr_source": note,
                                              "tuned_lr_cost_timesteps": record.get("cost_timesteps")}
    zoo_lr, note = _zoo_value(spec, arm, env_id, family)
    return zoo_lr, note, {}


def tradeoff_request(spec: Spec, env_id: str, tuned: Results | None = None) -> tuple[dict[str, Any], str]:
    """The keyword arguments of :func:`clr_rl.tradeoff.tradeoff` (less ``out`` and ``workers``) for
    ``env_id`` under the spec's ``[tradeoff]``, and where its max LR comes from.

    ``max_lr = "tuned"`` means what ``"tuned"`` means for the arms: the batch's ``[tune]`` value
    (``tuned``; before tuning, the value in ``agents/`` stands in), else a ``tuned = [...]`` record,
    else ``agents/``. Hyperparameters: ``[hyperparams]`` < ``[overrides.<env>.hyperparams]``.
    """
    t = spec.tradeoff
    if t is None:
        raise ValueError("the spec has no [tradeoff] table")
    over = spec.overrides.get(env_id, {})
    hyperparams = _hyperparams(spec, env_id, {})
    max_lr: float | str = t.max_lr
    if t.max_lr != "tuned":
        note = f"max_lr {t.max_lr:g} given in the spec's [tradeoff]"
    elif spec.tune is not None and tuned is not None:
        r = tuned[(t.algo, env_id)]
        max_lr = float(r["value"])
        note = (f"max_lr {max_lr:g} = the env's tuned fixed LR, tuned in this batch: {r['method']}, "
                f"criterion {r['criterion']}, seeds {r['seeds']}")
    elif spec.tune is not None:
        note = "max_lr = the env's tuned fixed LR, tuned in this batch (pending)"
    elif (t.algo, env_id) in spec.tuned:
        record = spec.tuned[(t.algo, env_id)]
        max_lr = float(record["value"])
        note = f"max_lr {max_lr:g} = the env's tuned fixed LR, clr-rl tune record {record['path']}"
    else:
        note = "max_lr = the env's tuned fixed LR in agents/"
    kwargs = {"algo": t.algo, "env_id": env_id, "timesteps": t.timesteps or env_budget(spec, env_id),
              "cycles": t.cycles, "t_mult": t.t_mult, "min_lr_fraction": t.min_lr_fraction, "max_lr": max_lr,
              "seeds": t.seeds, "validate": t.validate, "overrides": hyperparams,
              "eval_episodes": over.get("eval_episodes") or spec.eval_episodes, "device": t.device}
    return kwargs, note


def _zoo_value(spec: Spec, arm: Arm, env_id: str, family: str) -> tuple[float, str]:
    """The LR shipped in agents/ for this arm's algo on this env (``"zoo"``), and its provenance."""
    from clr_rl.agents import agent_config

    agent = agent_config(arm.algo, env_id, family, _hyperparams(spec, env_id, arm.settings))
    return agent.tuned_lr, f"agents/{arm.algo}.toml: {agent.tuned_lr_source}"


def _range_bounds(spec: Spec, arm: Arm, env_id: str, ranges: Results | None) -> tuple[dict[str, float] | None, str]:
    if not arm.refers_to("range"):
        return None, ""
    if ranges is None or (arm.algo, env_id) not in ranges:
        return {"base_lr": 1e-4, "max_lr": 1e-3}, "LR range test in this batch (pending)"
    r = ranges[(arm.algo, env_id)]
    return ({"base_lr": float(r["base_lr"]), "max_lr": float(r["max_lr"])},
            f"LR range test in this batch ({r['method']}): base_lr {r['base_lr']:g}, max_lr {r['max_lr']:g}")


def plan(spec: Spec, *, tuned: Results | None = None, ranges: Results | None = None) -> list[PlannedRun]:
    """Resolve and validate every arm run of the spec (env ids, LRs, hyperparameters, aliasing).

    ``tuned`` / ``ranges`` hold the batch's own tuning and range-test results; without them (or
    for an (algo, env) they lack) a ``[tune]`` / ``[lr_range]`` spec is planned with stand-in values:
    a check of everything but the values themselves, before any tuning runs.
    """
    from clr_rl.envs import env_family
    from clr_rl.runner import prepare

    runs = []
    for env_id in spec.envs:
        with config_errors(f"{spec.path}: envs"):
            family = env_family(env_id)
        for arm in spec.arms:
            with config_errors(f"{spec.path}: arms.{arm.name} on {env_id}"):
                tuned_lr, provenance, hp_extra = _tuned_value(spec, arm, env_id, family, tuned)
                bounds, range_note = _range_bounds(spec, arm, env_id, ranges)
                zoo_lr, zoo_note = _zoo_value(spec, arm, env_id, family)
                table = resolve_schedule(arm.schedule, tuned_lr, bounds, zoo_lr)
                note = "; ".join(n for n in (provenance if arm.refers_to("tuned") else "", range_note,
                                             zoo_note if arm.refers_to("zoo") else "") if n)
                settings = {**arm.settings, "overrides": {**arm.settings.get("overrides", {}), **hp_extra}}
                for seed in spec.seeds:
                    config = run_config(spec, env_id, settings, schedule=parse_schedule(table), seed=seed,
                                        arm=arm.name, lr_provenance=note or "given in the spec")
                    runs.append(PlannedRun(env_id, arm.name, seed, run_folder(env_id, arm.name, seed),
                                           prepare(config)))
    return runs
