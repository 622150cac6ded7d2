"""MkDocs hook: the spec reference page (``reference/spec.md``), rendered from the code that reads specs.

Every table and key comes from the spec reader itself: the run settings are the fields of ``RunConfig``
with a ``Setting.spec_key`` (help, choices, ``clr-rl train`` flag, default, whether it enters the run id);
the fixed tables are the reader's key sets (``_TOP_FIXED``, ``_EVAL_KEYS``, ``_OVERRIDE_KEYS``,
``_TUNE_KEYS``, ``_LR_RANGE_KEYS``, ``_REPORT_KEYS``, ``_TRADEOFF_KEYS``), their defaults are what the
reader's ``_load_*`` functions return for a table that leaves the key out, and an arm's schedule parameters
are the fields of its kind's dataclass. Only the one-line descriptions of the fixed keys are written here
(``_HELP``), and the build stops if they name a key the reader does not accept or miss one it does.
``tests/test_docs.py`` checks :func:`accepted_keys` against what ``load_spec`` accepts and refuses.
"""

from __future__ import annotations

import dataclasses
import html
import sys
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PAGE = "reference/spec.md"


def _sources() -> SimpleNamespace:
    """The clr_rl objects the page is built from: the one place to change when modules move.

    ``RunConfig`` from ``clr_rl.run.config`` and the reader from ``clr_rl.compare.spec``.
    The checkout beside ``mkdocs.yml`` comes first on the path, whatever clr_rl the environment has installed.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from clr_rl import SCHEDULE_KINDS
    from clr_rl.compare import spec as reader
    from clr_rl.run.config import RunConfig

    return SimpleNamespace(RunConfig=RunConfig, reader=reader, kinds=SCHEDULE_KINDS)


# One line per fixed key: (TOML type, what it means). The build fails if this and the reader disagree.
_HELP: dict[str, dict[str, tuple[str, str]]] = {
    "top level": {
        "name": ("string", "the batch's name (letters, digits, `.`, `_`, `-`); default: the spec file's stem"),
        "description": ("string", "free text, kept in the resolved spec"),
        "envs": ("list of strings", "Gymnasium ids; give exactly one of `envs` or `suite`"),
        "suite": ("string", "a suite of `envs/*.toml` (`classic`, `mujoco`, `atari`); exactly one of `envs` or "
                  "`suite`"),
        "seeds": ("integer or list", "evaluation seeds: a count `n` (seeds 0 .. n-1) or a list of distinct "
                  "integers >= 0"),
        "timesteps": ("integer", "budget of every run; default: each env's budget in `envs/`"),
        "baseline": ("string", "the arm the report judges the others against (must be an arm)"),
        "gpus_per_run": ("number", "share of a GPU per CUDA run: a fraction in (0, 1] or a whole number"),
        "tuned": ("list of strings", "paths (relative to the spec) of `clr-rl tune` records (`tuned_lr.json`) that "
                  "`tuned` LR fields take"),
        "eval": ("table", "[`[eval]`](#eval): evaluation period and episodes"),
        "overrides": ("table of tables", "[`[overrides.\"<env>\"]`](#overrides): per-env settings"),
        "arms": ("table of tables", "[`[arms.<name>]`](#arms): the arms (at least one)"),
        "tune": ("table", "[`[tune]`](#tune): tune the fixed LR in this batch"),
        "lr_range": ("table", "[`[lr_range]`](#lr_range): an LR range test gives the `range` bounds"),
        "report": ("table", "[`[report]`](#report): settings of `clr-rl report`"),
        "tradeoff": ("table", "[`[tradeoff]`](#tradeoff): a return-vs-budget curve per env"),
        "sequential": ("table", "[`[sequential]`](#sequential): add seeds look by look until every arm is decided"),
    },
    "eval": {
        "every": ("integer", "evaluate every N timesteps (default from `envs/`, else budget/10)"),
        "episodes": ("integer", "episodes per evaluation (default from `envs/`, else 10)"),
    },
    "overrides.<env>": {
        "timesteps": ("integer", "this env's budget"),
        "eval_every": ("integer", "this env's evaluation period"),
        "eval_episodes": ("integer", "this env's episodes per evaluation"),
        "hyperparams": ("table", "SB3 keyword arguments for this env (above the top level's, below an arm's)"),
        "random_score": ("number", "normalisation: the random policy's score"),
        "reference_score": ("number", "normalisation: the reference score (must differ from `random_score`)"),
        "vec_env": ("string", "`sb3` or `ale` for this env's runs"),
    },
    "tune": {
        "grid": ("string", "a log grid `\"lo:hi:n\"`; give exactly one of `grid` or `trials`"),
        "trials": ("integer", "Optuna TPE trials over `range` (`pip install 'clr-rl[tune]'`)"),
        "range": ("string", "`\"lo:hi\"`, the range `trials` searches"),
        "seeds": ("list of integers", "tuning seeds, disjoint from the evaluation seeds"),
        "criterion": ("string", "`auc` or `final`: what the best LR maximises (mean over seeds)"),
    },
    "lr_range": {
        "method": ("string", "`single` (one run with a rising LR) or `sweep` (short runs at fixed LRs)"),
        "timesteps": ("integer", "each test run's budget; default: the env's budget"),
        "range": ("string", "`\"lo:hi\"`, the single run's ramp"),
        "grid": ("string", "`\"lo:hi:n\"`, the sweep's LRs"),
        "seeds": ("integer", "the sweep's seeds per LR"),
        "points": ("integer", "the single run's minimum number of measured LRs (checked while planning)"),
    },
    "report": {
        "margin": ("number", "equivalence margin of the verdicts, in (0, 0.5); the report's default is 0.1"),
    },
    "tradeoff": {
        "cycles": ("integer", "number of cycles (>= 2); required"),
        "t_mult": ("number", "cycle length multiplier (> 1)"),
        "max_lr": ("number or `\"tuned\"`", "the LR at each cycle's start"),
        "min_lr_fraction": ("number", "the minimum LR as a fraction of `max_lr`, in [0, 1)"),
        "seeds": ("integer or list", "a count n, or the list [0, 1, ..., n-1]"),
        "validate": ("boolean", "also train separate runs per budget and write the gap"),
        "timesteps": ("integer", "the curve's budget; default: each env's budget in the batch"),
    },
    "sequential": {
        "max_seeds": ("integer", "the cap per env and arm, the last look (>= the first look's `seeds`); required"),
        "step": ("integer", "seeds added per look (>= 1); default: the first look's `seeds`"),
        "alpha": ("number", "family-wise level over arms and looks, for BEATS/WORSE and for EQUIVALENT each, "
                  "in (0, 1)"),
        "boundaries": ("string or list", "the spending function (`\"linear\"`, `\"pocock\"`, `\"obrien-fleming\"`) "
                       "or the level spent at each look (one per look, summing to at most `alpha`)"),
        "equivalence": ("boolean", "stop arms at EQUIVALENT (margin: `[report] margin`, default 0.1)"),
    },
}

_INTRO = {
    "top level": "The spec file's top level. It may also set any [run setting](#run-settings).",
    "eval": "`[eval]`: evaluation of every run.",
    "overrides.<env>": "`[overrides.\"<env>\"]`: per env of `envs`, above the top level and below an arm.",
    "tune": "`[tune]`: tune a fixed LR per (algo, env) at the batch's own budget, before the arms run "
            "(see [The setup phase](../setup-phase.md)).",
    "lr_range": "`[lr_range]`: one LR range test per (algo, env) whose bounds `\"range\"` LR fields take.",
    "report": "`[report]`: settings of `clr-rl report`.",
    "tradeoff": "`[tradeoff]`: a return-vs-budget curve per env from one cosine-restarts run, trained after the "
                "arms (see [Comparing schedules](../comparing.md#tradeoff)).",
    "sequential": "`[sequential]`: a group-sequential batch; `seeds` is the first look, and the arms are decided "
                  "against `baseline` look by look (see [Sequential decisions](../sequential.md)).",
}

# A spec key whose loaded attribute has another name.
_ATTRIBUTE = {"range": "lr_range"}


@dataclass(frozen=True)
class Key:
    name: str
    type: str
    default: str
    help: str


@dataclass(frozen=True)
class Table:
    name: str
    intro: str
    keys: tuple[Key, ...]


def _fmt(value: Any) -> str:
    """A default as the TOML one would write: ``(1e-6, 0.1)`` read from ``"1e-6:0.1"`` prints as ``"1e-06:0.1"``."""
    if value is None or value is dataclasses.MISSING:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[0], float):
        return "`\"" + ":".join(str(v) for v in value) + "\"`"
    if isinstance(value, tuple):
        return f"`{list(value)}`"
    if isinstance(value, str):
        return f"`\"{value}\"`"
    return f"`{value}`"


def _loaded_defaults(src: SimpleNamespace) -> dict[str, dict[str, Any]]:
    """What the reader returns for each key a minimal table leaves out (``name`` would be the file's stem)."""
    path = Path("spec.toml")
    minimal = {"top level": {"envs": [], "arms": {}, "name": ""}, "tune": {"grid": "1e-5:1e-2:7"}, "lr_range": {},
               "tradeoff": {"cycles": 2}, "sequential": {"max_seeds": 10}}
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.toml"
        spec_file.write_text('envs = ["CartPole-v1"]\n[arms.a]\nkind = "constant"\nlr = 1e-3\n')
        top = src.reader.load_spec(spec_file)
    loaded = {
        "top level": top,
        "tune": src.reader._load_tune(path, minimal["tune"], ()),
        "lr_range": src.reader._load_lr_range(path, minimal["lr_range"]),
        "tradeoff": src.reader._load_tradeoff(path, minimal["tradeoff"], {}, {}),
        "sequential": src.reader._load_sequential(path, minimal["sequential"], 3, (0, 1, 2), None),
    }
    out: dict[str, dict[str, Any]] = {}
    for table, obj in loaded.items():
        out[table] = {}
        for key in _HELP[table]:
            attribute = _ATTRIBUTE.get(key, key)
            value = getattr(obj, attribute, None)
            if key not in minimal[table] and value not in (None, {}, ()):
                out[table][key] = value
    return out


def _reader_key_sets(src: SimpleNamespace) -> dict[str, set[str]]:
    r = src.reader
    return {"top level": set(r._TOP_FIXED), "eval": set(r._EVAL_KEYS), "overrides.<env>": set(r._OVERRIDE_KEYS),
            "tune": set(r._TUNE_KEYS), "lr_range": set(r._LR_RANGE_KEYS), "report": set(r._REPORT_KEYS),
            "tradeoff": set(r._TRADEOFF_KEYS), "sequential": set(r._SEQUENTIAL_KEYS)}


def _settings(src: SimpleNamespace) -> tuple[Key, ...]:
    fields = {f.name: f for f in dataclasses.fields(src.RunConfig)}
    keys = []
    for name, s in src.RunConfig.settings().items():
        if not s.spec_key:
            continue
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        notes = [html.escape(s.help, quote=False)]
        if s.choices:
            notes.append("one of " + ", ".join(f"`{c}`" for c in s.choices))
        if s.flag:
            notes.append(f"`clr-rl train {s.flag}`")
        if not s.identity:
            notes.append("not part of the run id")
        if s.spec_key == "hyperparams":
            notes.append("top level < `[overrides.\"<env>\"]` < arm")
        keys.append(Key(s.spec_key, f"`{f.type}`", _fmt(default) or ("`{}`" if default == {} else ""),
                        "; ".join(notes)))
    return tuple(keys)


def _type_text(annotation: Any) -> str:
    """``Literal["linear", "log"]`` -> `"linear"` or `"log"`; other annotations as written."""
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(f"`\"{v}\"`" for v in typing.get_args(annotation))
    return f"`{annotation}`"


def _schedule_params(cls: type, lr_fields: set[str]) -> tuple[Key, ...]:
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        literal = typing.get_origin(hints[f.name]) is typing.Literal
        keys.append(Key(f.name, _type_text(hints[f.name]) if literal else f"`{f.type}`",
                        "required" if required else _fmt(f.default),
                        "an LR field: a number, or `tuned`, `zoo`, `range` (with `*X`, `/X`, `X*`)"
                        if f.name in lr_fields else ""))
    return tuple(keys)


def tables() -> list[Table]:
    """Every table the spec reader accepts, with its keys; raises if ``_HELP`` and the reader disagree."""
    src = _sources()
    reader_sets = _reader_key_sets(src)
    for table, accepted in reader_sets.items():
        documented = set(_HELP[table])
        if documented != accepted:
            raise RuntimeError(f"spec reference: [{table}] documents {sorted(documented - accepted)} that the reader "
                               f"refuses and misses {sorted(accepted - documented)} that it accepts; edit _HELP in "
                               f"{__file__}")
    defaults = _loaded_defaults(src)
    out = []
    for table, helps in _HELP.items():
        keys = tuple(Key(k, t, _fmt(defaults.get(table, {}).get(k)), h) for k, (t, h) in sorted(helps.items()))
        out.append(Table(table, _INTRO[table], keys))
    out.append(Table("run settings", "Run settings: the top level sets them for every arm, an arm for its own runs "
                     "(an arm's value wins). Each is a field of `RunConfig`, and its `Setting` metadata is this row.",
                     _settings(src)))
    arm_keys = (Key("kind", "string", "required", "the schedule kind: one of "
                    + ", ".join(f"`{k}`" for k in src.kinds)),)
    out.append(Table("arms.<name>", "`[arms.<name>]`: one arm. `kind`, the parameters of that kind (below), and any "
                     "[run setting](#run-settings).", arm_keys))
    for kind, cls in src.kinds.items():
        summary = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        out.append(Table(f"arms.<name> kind={kind}", f"Parameters of `kind = \"{kind}\"`: "
                         f"[`{cls.__name__}`](../api/schedules.md#clr_rl.{cls.__name__}), {summary}",
                         _schedule_params(cls, set(src.reader._LR_FIELDS))))
    return out


def accepted_keys() -> dict[str, set[str]]:
    """Table -> the keys this page documents for it; an arm's keys are listed per kind
    (``"arms.<name> kind=triangular"``: ``kind``, the run settings and the kind's parameters)."""
    by_name = {t.name: {k.name for k in t.keys} for t in tables()}
    settings = by_name.pop("run settings")
    common = by_name.pop("arms.<name>")
    out = {}
    for name, keys in by_name.items():
        if name.startswith("arms.<name> kind="):
            out[name] = keys | common | settings
        elif name == "top level":
            out[name] = keys | settings
        else:
            out[name] = keys
    return out


def _anchor(name: str) -> str:
    return {"top level": "top-level", "overrides.<env>": "overrides", "arms.<name>": "arms",
            "run settings": "run-settings"}.get(name, name.replace("arms.<name> kind=", "kind-"))


def render() -> str:
    lines = ["# Spec reference", "",
             "Every table and key that `clr-rl compare` accepts in a spec file, generated from the code that reads "
             "the spec when the site is built (`docs/hooks/spec_reference.py`), so it lists exactly what the "
             "reader accepts. An unknown key or kind is bad input: one line naming the file, the field and the "
             "rule, exit status 2, nothing written. For a worked example, see "
             "[Comparing schedules](../comparing.md).", "",
             "An LR field (" + ", ".join(f"`{k}`" for k in sorted(_sources().reader._LR_FIELDS)) + ") may be a "
             "number or `tuned`, `zoo` or `range`, each optionally `*X`, `/X` or `X*` "
             "(see [Comparing schedules](../comparing.md#lr-fields)).", ""]
    for table in tables():
        title = {"top level": "Top level", "run settings": "Run settings",
                 "overrides.<env>": '`[overrides."<env>"]`'}.get(table.name, f"`[{table.name}]`")
        if table.name.startswith("arms.<name> kind="):
            title = f"`kind = \"{table.name.split('=', 1)[1]}\"`"
        lines += [f"## {title} {{#{_anchor(table.name)}}}", "", table.intro, "",
                  "| key | type | default | meaning |", "|---|---|---|---|"]
        for k in table.keys:
            lines.append(f"| `{k.name}` | {k.type} | {k.default} | {k.help.replace('|', '&#124;')} |")
        lines.append("")
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
