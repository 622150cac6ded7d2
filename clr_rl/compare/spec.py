"""Reading a comparison spec (TOML) into frozen dataclasses; every key validated here."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError, config_errors
from clr_rl.phases.tune import CRITERIA, TunedLR
from clr_rl.schedules.text import SCHEDULE_KINDS, parse_schedule
from clr_rl.stats.sequential import SequentialDesign

__all__ = ["Arm", "LRRangeSpec", "Spec", "TradeoffSpec", "TuneSpec", "load_spec", "resolve_relative",
           "resolve_schedule"]


_TOP_FIXED = {"name", "timesteps", "seeds", "envs", "suite", "eval", "overrides", "arms", "description", "baseline",
              "gpus_per_run", "tuned", "tune", "lr_range", "report", "tradeoff", "sequential"}


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
_SEQUENTIAL_KEYS = {"max_seeds", "step", "alpha", "boundaries", "equivalence"}
_TRADEOFF_SETTINGS = {"algo", "device", "overrides"}  # the run settings clr_rl.phases.tradeoff.tradeoff takes
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _spec_keys() -> dict[str, str]:
    """Spec key -> RunConfig field, for every run setting a spec may set (top level or per arm)."""
    from clr_rl.run.config import RunConfig

    return {s.spec_key: name for name, s in RunConfig.settings().items() if s.spec_key}


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
    (:func:`clr_rl.phases.tradeoff.tradeoff`), trained after the arms into ``<out>/tradeoff/<env>/``.

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
    tuned: dict[tuple[str, str], TunedLR] = field(default_factory=dict)  # (algo, env) -> tune record
    tune: TuneSpec | None = None
    lr_range: LRRangeSpec | None = None
    margin: float | None = None
    tradeoff: TradeoffSpec | None = None
    sequential: SequentialDesign | None = None  # [sequential]: looks at seeds, seeds + step, ... max_seeds


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


def _check_size(name: str, value: int, limit: str) -> None:
    from clr_rl.run import limits

    limits.check_count(name, value, getattr(limits, limit))


def _load_tuned(path: Path, raw: Any) -> dict[tuple[str, str], TunedLR]:
    """``tuned = ["tune-out/tuned_lr.json", ...]`` (relative to the spec): records of ``clr-rl tune``,
    read by :meth:`TunedLR.read`."""
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise _fail(path, "tuned", f"{raw!r} must be a list of paths to tuned_lr.json records")
    out: dict[tuple[str, str], TunedLR] = {}
    for item in raw:
        file = (path.parent / item) if not Path(item).is_absolute() else Path(item)
        if not file.is_file():
            raise _fail(path, "tuned", f"{item!r}: no such tune record")
        try:
            record = TunedLR.read(file)
        except ConfigError:
            raise _fail(path, "tuned", f"{item!r} is not a clr-rl tune record (needs algo, env_id, value)") from None
        out[(record.algo, record.env_id)] = record
    return out


def _load_tune(path: Path, raw: Any, eval_seeds: tuple[int, ...]) -> TuneSpec:
    from clr_rl.phases.tune import parse_grid, parse_range

    table = _table(path, "tune", raw)
    _check_keys(path, "tune", table, _TUNE_KEYS)
    if ("grid" in table) == ("trials" in table):
        raise _fail(path, "tune", "give exactly one of grid = \"lo:hi:n\" or trials = N")
    with config_errors(f"{path}: tune"):
        grid = parse_grid(str(table["grid"]), flag="grid") if "grid" in table else None
        lr_range = parse_range(str(table.get("range", "1e-5:1e-2")), flag="range")
    trials = _pos_int(path, "tune.trials", table["trials"]) if "trials" in table else None
    if trials is not None:
        with config_errors(f"{path}: tune"):
            _check_size("trials", trials, "MAX_TRIALS")
    seeds = list(_load_seeds(path, table.get("seeds", [1000, 1001]), "tune.seeds", count=False))
    overlap = sorted(set(seeds) & set(eval_seeds))
    if overlap:
        raise _fail(path, "tune.seeds", f"{seeds!r} overlaps the evaluation seeds at {overlap}; tuning seeds must be "
                    "disjoint from the seeds the arms are judged on")
    criterion = table.get("criterion", "auc")
    if criterion not in CRITERIA:
        raise _fail(path, "tune.criterion", f"{criterion!r} must be one of {', '.join(CRITERIA)}")
    return TuneSpec(grid, trials, lr_range, tuple(seeds), criterion)


def _load_lr_range(path: Path, raw: Any) -> LRRangeSpec:
    from clr_rl.phases.tune import parse_grid, parse_range

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
    with config_errors(f"{path}: lr_range"):
        _check_size("seeds", seeds, "MAX_SEEDS")
        _check_size("points", points, "MAX_POINTS")
    return LRRangeSpec(method, timesteps, lr_range, grid, seeds, points)


def _load_tradeoff(path: Path, raw: Any, defaults: dict[str, Any],
                   overrides: dict[str, dict[str, Any]]) -> TradeoffSpec:
    """``[tradeoff]``: each field's type and range (the env-dependent checks, such as a first cycle
    of at least two LR updates, are :func:`clr_rl.phases.tradeoff.plan_tradeoff`'s, in ``compare``)."""
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
    with config_errors(f"{path}: tradeoff"):
        _check_size("seeds", seeds, "MAX_SEEDS")
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
    from clr_rl.run.config import RunConfig

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
    from clr_rl.run.envs import load_suite

    with config_errors(f"{path}: suite"):
        return [info.env_id for info in load_suite(str(raw["suite"]))]


def _load_seeds(path: Path, raw: Any, where: str = "seeds", *, count: bool = True) -> tuple[int, ...]:
    """A list of distinct seeds (each a numpy seed), or (``count``) a number of seeds 0 .. n-1; bounded."""
    from clr_rl.run.limits import MAX_SEEDS, check_count, check_seed

    if isinstance(raw, list):
        if not raw or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw):
            raise _fail(path, where, f"{_short(raw)} must be a non-empty list of integers >= 0")
        with config_errors(f"{path}: {where}"):
            check_count("len(seeds)", len(raw), MAX_SEEDS)
            for s in raw:
                check_seed("seed", s)
        if len(set(raw)) != len(raw):
            raise _fail(path, where, f"{_short(raw)} lists a seed twice (two runs would train the same folder)")
        return tuple(raw)
    if not count:
        raise _fail(path, where, f"{raw!r} must be a non-empty list of integers >= 0")
    _pos_int(path, where, raw)
    with config_errors(f"{path}: {where}"):
        check_count(where, raw, MAX_SEEDS)
    return tuple(range(raw))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _load_sequential(path: Path, raw: Any, raw_seeds: Any, seeds: tuple[int, ...],
                     margin: float | None) -> SequentialDesign:
    """``[sequential]``: the design of :class:`~clr_rl.stats.sequential.SequentialDesign`; ``seeds`` is the
    first look (a count, or the list ``0 .. n-1``: later looks add the next seed ids)."""
    table = _table(path, "sequential", raw)
    _check_keys(path, "sequential", table, _SEQUENTIAL_KEYS)
    if isinstance(raw_seeds, list) and list(seeds) != list(range(len(seeds))):
        raise _fail(path, "seeds", f"{raw_seeds!r} must be a count (or the list 0..n-1) with [sequential]: "
                    "its looks add seed ids n, n+1, ...")
    if "max_seeds" not in table:
        raise _fail(path, "sequential", "max_seeds is required (the cap per env and arm, the last look)")
    kwargs: dict[str, Any] = {"max_seeds": _pos_int(path, "sequential.max_seeds", table["max_seeds"])}
    if "step" in table:
        step = table["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise _fail(path, "sequential.step", f"{step!r} must be an integer >= 1 (seeds added per look)")
        kwargs["step"] = step
    if "alpha" in table:
        kwargs["alpha"] = _number(path, "sequential.alpha", table["alpha"])
    if "equivalence" in table:
        if not isinstance(table["equivalence"], bool):
            raise _fail(path, "sequential.equivalence", f"{table['equivalence']!r} must be true or false")
        kwargs["equivalence"] = table["equivalence"]
    if "boundaries" in table:
        b = table["boundaries"]
        ok = isinstance(b, str) or (isinstance(b, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                for v in b))
        if not ok:
            raise _fail(path, "sequential.boundaries", f"{b!r} must be a spending function name or a list of "
                        "per-look levels")
        kwargs["boundaries"] = b if isinstance(b, str) else tuple(float(v) for v in b)
    try:
        return SequentialDesign(first=len(seeds), margin=margin or 0.1, **kwargs)
    except ValueError as exc:
        raise _fail(path, "sequential", str(exc)) from None


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
            if key in table and not math.isfinite(_number(path, f"{where}.{key}", table[key])):
                raise _fail(path, f"{where}.{key}", f"{table[key]!r} must be a finite number")
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
    margin = _load_margin(path, raw.get("report", {}))
    sequential = _load_sequential(path, raw["sequential"], raw.get("seeds", 3), seeds, margin) \
        if "sequential" in raw else None
    judged = tuple(range(sequential.max_seeds)) if sequential else seeds  # every seed the arms may be judged on
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
    tune = _load_tune(path, raw["tune"], judged) if "tune" in raw else None
    lr_range = _load_lr_range(path, raw["lr_range"]) if "lr_range" in raw else None
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
    if sequential is not None and baseline is None:
        raise _fail(path, "sequential", "needs a baseline = \"<arm>\": the arms are decided against it")
    return Spec(path, name, tuple(envs), arms, seeds, timesteps, every, episodes, overrides, baseline, raw,
                float(gpus_per_run), tuned, tune, lr_range, margin, tradeoff, sequential)


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
