"""TensorBoard for a batch: per-seed runs, per-arm aggregate runs, a layout, HParams, ``clr-rl tensorboard``.

With ``--logdir <batch>/runs`` TensorBoard lists these runs:

* ``<env>/<arm>/seed<k>``: one per training run (written by :mod:`clr_rl.runner`), with
  ``eval/mean_return``, ``train/lr_applied`` and the per-env copies ``env/<env>/eval_return``
  and ``env/<env>/lr`` that feed the per-seed charts, and its HParams session.
* ``aggregate/<env>/<arm>``: one per arm and env (:func:`write_aggregates`), so one colour per
  arm. At each evaluation step ``t`` over the arm's finished seeds ``x_1..x_n``:
  ``return_mean = mean(x)`` and ``return_mean_ci95_low/high = mean -/+ t_{0.975, n-1} * sd(x) / sqrt(n)``
  (Student-t over seeds, :func:`clr_rl.stats.mean_ci_t`, the interval the report gives for
  per-env final returns; with one seed the bounds equal the mean), the same three for the
  normalised score ``(x - random) / (reference - random)`` when the env has references,
  ``seeds = n``, and ``lr_applied``: the LR the arm's optimizer used, read from one seed's
  events (the LR does not depend on the seed).
* ``aggregate/all_envs/<arm>``: the normalised IQM over envs and seeds with its bootstrap CI,
  against the percentage of each env's budget (step 0..100), when every env has references.
* ``_layout``: no data, only the custom-scalars layout and the HParams experiment (the columns
  of the HParams table: the union of every run's hyperparameters, every schedule parameter of
  every kind). It used to be written into ``runs/`` itself, where it showed up as a run ".".

Tags are ``aggregate/<env>/<name>``: a custom-scalars chart draws a tag for every run that has
it, so env-specific tags keep each env's chart to that env's arms.
"""

from __future__ import annotations

import math
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "AGGREGATE_DIR",
    "ALL_ENVS",
    "HPARAM_METRICS",
    "LAYOUT_RUN",
    "LR_STEP_TAG",
    "LR_TAG",
    "RETURN_TAG",
    "aggregate_tag",
    "env_tag",
    "hparams_experiment_summary",
    "run_hparams",
    "serve",
    "session_end_summary",
    "session_start_summary",
    "write_aggregates",
    "write_layout",
]

RETURN_TAG = "eval/mean_return"  # a run's evaluation return
LR_TAG = "train/lr_applied"  # the LR the optimizer used, once per SB3 update
LR_STEP_TAG = "train/lr_per_step"  # the same, per gradient step (``lr_per_step`` runs)
AGGREGATE_DIR = "aggregate"  # runs/aggregate/<env>/<arm>
ALL_ENVS = "all_envs"  # runs/aggregate/all_envs/<arm>: the batch-level IQM
LAYOUT_RUN = "_layout"  # runs/_layout: custom-scalars layout and HParams experiment, no data
HPARAM_METRICS = {  # tag -> column title in the HParams table
    "eval/final_return": "final return",
    "eval/auc": "AUC",
    "eval/normalized_final_return": "normalised final return",
}
_HPARAM_FIRST = ("algo", "env", "arm", "seed", "schedule", "schedule_kind", "optimizer")


def env_tag(env_id: str, name: str) -> str:
    """Tag under which a run also logs ``name`` for the per-env custom-scalars charts."""
    return f"env/{env_id}/{name}"


def aggregate_tag(env_id: str, name: str) -> str:
    """Tag of an aggregate run (``env_id`` is :data:`ALL_ENVS` for the batch-level IQM).

    >>> aggregate_tag("CartPole-v1", "return_mean")
    'aggregate/CartPole-v1/return_mean'
    """
    return f"aggregate/{env_id}/{name}"


# ------------------------------------------------------------------------------ HParams


def run_hparams(config: dict[str, Any]) -> dict[str, Any]:
    """HParams of one run from its resolved config (``run.json``'s ``config``, or a planned run
    in ``spec.resolved.json``): algo, env, arm, seed, schedule, kind, optimizer, and every
    schedule parameter as ``lr.<name>``.

    >>> run_hparams({"algo": "ppo", "env_id": "CartPole-v1", "arm": "", "seed": 1,
    ...              "schedule": "constant(lr=0.001)", "schedule_kind": "constant",
    ...              "schedule_params": {"lr": 0.001}})["lr.lr"]
    0.001
    """
    kind = config.get("schedule_kind", "")
    out: dict[str, Any] = {
        "algo": config.get("algo", ""), "env": config.get("env_id", ""), "arm": config.get("arm") or kind,
        "seed": int(config.get("seed", 0)), "schedule": str(config.get("schedule", "")), "schedule_kind": kind,
        "optimizer": config.get("optimizer", "adam"),
    }
    for key, value in (config.get("schedule_params") or {}).items():
        out[f"lr.{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def _hparams_summary(tag: str, data: Any) -> Any:
    """A summary holding one ``HParamsPluginData`` (tensorboard's own helpers need TensorFlow)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data),
                                        tensor=metadata.NULL_TENSOR)])


def session_start_summary(hparams: dict[str, Any]) -> Any:
    """The HParams session-start summary of one run (its row in the HParams table).

    Write it once, at the start of a fresh run: ``writer._get_file_writer().add_summary(...)``.
    Values are numbers, strings or bools (see :func:`run_hparams`).
    """
    import time

    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = str(value)
    return _hparams_summary(metadata.SESSION_START_INFO_TAG,
                            plugin_data_pb2.HParamsPluginData(session_start_info=start))


def session_end_summary(status: str) -> Any | None:
    """The HParams session-end summary for a run's ``run.json`` status, or None while the run
    may still go on (``running``, ``interrupted``: resumable).

    TensorBoard keeps the first session-end it reads, so write it once, when the run ends:
    ``finished`` is a success; ``failed`` and ``diverged`` are failures.
    """
    import time

    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    codes = {"finished": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
             "diverged": api_pb2.STATUS_FAILURE}
    if str(status) not in codes:
        return None
    end = plugin_data_pb2.SessionEndInfo(status=codes[str(status)], end_time_secs=time.time())
    return _hparams_summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))


def hparams_experiment_summary(hparams: list[dict[str, Any]]) -> Any:
    """One HParams experiment whose columns are the union of ``hparams`` (one dict per run).

    TensorBoard takes the experiment (the table's columns) from the first run that holds one;
    without it a run's own columns win and the other schedule kinds' parameters are missing.
    Strings get their values as a discrete domain, numbers their [min, max] interval.
    """
    import time

    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    values: dict[str, list[Any]] = {}
    for hp in hparams:
        for name, value in hp.items():
            values.setdefault(name, []).append(value)
    names = [n for n in _HPARAM_FIRST if n in values] + sorted(n for n in values if n not in _HPARAM_FIRST)
    infos = []
    for name in names:
        seen = values[name]
        if all(isinstance(v, bool) for v in seen):
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DATA_TYPE_BOOL))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DATA_TYPE_FLOAT64,
                                            domain_interval=api_pb2.Interval(min_value=min(seen),
                                                                             max_value=max(seen))))
        else:
            domain = struct_pb2.ListValue()
            domain.extend(sorted({str(v) for v in seen}))
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DATA_TYPE_STRING, domain_discrete=domain))
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=title)
               for tag, title in HPARAM_METRICS.items()]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics, time_created_secs=time.time())
    return _hparams_summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


# ------------------------------------------------------------------------------ layout


def _layout(envs: list[str], *, iqm: bool) -> Any:
    """Custom-scalars layout: (batch IQM), then per env a margin chart of the arms' mean return
    with its 95% CI, the LR each arm applied, and the per-seed charts for detail."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    def margin(title: str, env: str, stem: str) -> Any:
        series = layout_pb2.MarginChartContent.Series(value=aggregate_tag(env, f"{stem}"),
                                                      lower=aggregate_tag(env, f"{stem}_ci95_low"),
                                                      upper=aggregate_tag(env, f"{stem}_ci95_high"))
        return layout_pb2.Chart(title=title, margin=layout_pb2.MarginChartContent(series=[series]))

    def lines(title: str, tag: str) -> Any:
        return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[f"^{re.escape(tag)}$"]))

    categories = []
    if iqm:
        categories.append(layout_pb2.Category(title="all envs: normalised IQM per arm", chart=[
            margin("normalised IQM over envs and seeds, 95% bootstrap CI (step = % of budget)", ALL_ENVS,
                   "normalized_iqm")]))
    for env in envs:
        categories.append(layout_pb2.Category(title=env, chart=[
            margin("return: mean over seeds, 95% CI (one colour per arm)", env, "return_mean"),
            lines("learning rate applied, per arm (set smoothing to 0)", aggregate_tag(env, "lr_applied")),
            lines("return (every arm and seed)", env_tag(env, "eval_return")),
            lines("learning rate applied (every arm and seed)", env_tag(env, "lr")),
        ]))
    return layout_pb2.Layout(category=categories)


def _clear_events(folder: Path) -> None:
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()


def write_layout(runs_dir: Path, envs: list[str], *, runs: list[dict[str, Any]] | None = None,
                 iqm: bool | None = None) -> Path:
    """Write the custom-scalars layout and the HParams experiment into ``runs_dir/_layout``.

    ``runs``: the planned runs (``spec.resolved.json``'s ``runs``) whose HParams make the
    experiment's columns; by default read from ``spec.resolved.json`` beside ``runs_dir``.
    ``iqm``: include the batch-level IQM section (default: every env has references in
    ``envs/``). Rewritten each call; events left in ``runs_dir`` itself by older versions
    (the run ".") are removed. Returns the layout run's folder.
    """
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.custom_scalar import metadata
    from torch.utils.tensorboard import SummaryWriter

    from clr_rl.envs import env_info
    from clr_rl.store import read_json

    runs_dir = Path(runs_dir)
    if runs is None and (runs_dir.parent / "spec.resolved.json").is_file():
        runs = read_json(runs_dir.parent / "spec.resolved.json").get("runs")
    if iqm is None:
        iqm = all(env_info(env) is not None for env in envs)
    folder = runs_dir / LAYOUT_RUN
    folder.mkdir(parents=True, exist_ok=True)
    _clear_events(runs_dir)
    _clear_events(folder)
    writer = SummaryWriter(log_dir=str(folder))
    file_writer = writer._get_file_writer()  # raw summaries (the layout and HParams protos)
    tensor = TensorProto(dtype="DT_STRING", string_val=[_layout(envs, iqm=iqm).SerializeToString()],
                         tensor_shape=TensorShapeProto())
    plugin = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME))
    file_writer.add_summary(Summary(value=[Summary.Value(tag=metadata.CONFIG_SUMMARY_TAG, tensor=tensor,
                                                         metadata=plugin)]))
    if runs:
        file_writer.add_summary(hparams_experiment_summary([run_hparams(r) for r in runs]))
    writer.close()
    return folder


# ------------------------------------------------------------------------------ aggregates


def _refs(resolved: dict[str, Any], env: str) -> tuple[float, float] | None:
    """(random, reference) scores: the spec's ``[overrides."<env>"]``, else ``envs/``, else None."""
    from clr_rl.envs import env_info

    over = (resolved.get("spec") or {}).get("overrides", {}).get(env, {})
    if "random_score" in over and "reference_score" in over:
        return float(over["random_score"]), float(over["reference_score"])
    info = env_info(env)
    return (info.random_score, info.reference_score) if info is not None else None


def _applied_lr(folder: Path, config: dict[str, Any], steps: list[int]) -> list[tuple[int, float]]:
    """The LR a run applied, from its events (``train/lr_applied``, else ``train/lr_per_step``);
    for a run without them, its schedule at ``steps``: ``schedule(1 - t / timesteps)``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from clr_rl.schedules import bind_total_timesteps, parse_schedule

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags().get("scalars", []))
    for tag in (LR_TAG, LR_STEP_TAG):
        if tag in tags:
            return [(int(e.step), float(e.value)) for e in acc.Scalars(tag)]
    if "timesteps" not in config or "schedule" not in config:  # a record without its config (crashed early)
        return []
    total = int(config["timesteps"])
    schedule = bind_total_timesteps(parse_schedule(config["schedule"]), total)
    return [(t, float(schedule(min(1.0, max(0.0, 1 - t / total))))) for t in steps]


def _write_arm(folder: Path, env: str, seeds: list[dict[str, Any]], refs: tuple[float, float] | None,
               lr: list[tuple[int, float]]) -> None:
    """One aggregate run: mean and t-interval over the seeds at each evaluation step."""
    from torch.utils.tensorboard import SummaryWriter

    from clr_rl.stats import mean_ci_t

    by_step: dict[int, list[float]] = {}
    for run in seeds:
        for row in run["evals"]:
            if math.isfinite(row["mean_return"]):  # never a NaN in a chart (a run that diverged)
                by_step.setdefault(int(row["timesteps"]), []).append(float(row["mean_return"]))
    folder.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(folder))
    for step in sorted(by_step):
        values = by_step[step]
        mean, _, low, high = mean_ci_t(values)
        if len(values) < 2:  # no interval from one seed: the band collapses onto the mean
            low = high = mean
        scalars = {"return_mean": mean, "return_mean_ci95_low": low, "return_mean_ci95_high": high,
                   "seeds": float(len(values))}
        if refs is not None:
            rnd, ref = refs
            a, b, c = ((v - rnd) / (ref - rnd) for v in (mean, low, high))
            scalars.update(normalized_mean=a, normalized_mean_ci95_low=min(b, c), normalized_mean_ci95_high=max(b, c))
        for name, value in scalars.items():
            writer.add_scalar(aggregate_tag(env, name), value, step)
    for step, value in lr:
        writer.add_scalar(aggregate_tag(env, "lr_applied"), value, step)
    writer.close()


def _iqm_curve(arm: str, envs: list[str], finished: dict[tuple[str, str], list[dict[str, Any]]],
               refs: dict[str, tuple[float, float] | None], stats: dict[str, Any] | None
               ) -> list[tuple[int, float, float, float]]:
    """(percent of budget, IQM, CI low, CI high) of the arm's normalised return over envs and seeds.

    From the report's ``stats["sample_efficiency"]`` when given (the same numbers as the
    report); otherwise computed the same way: each finished run's evaluation curve linearly
    interpolated at 0, 5, ..., 100% of its budget and normalised, the first ``n`` seeds of each
    env (``n`` = fewest finished in any env), IQM with a stratified bootstrap CI (1000
    resamples, seed 0).
    """
    import numpy as np

    efficiency = (stats or {}).get("sample_efficiency") or {}
    if isinstance(efficiency.get(arm), dict) and efficiency.get("fractions"):
        band = efficiency[arm]
        rows = zip(efficiency["fractions"], band.get("iqm", []), band.get("ci_low", []), band.get("ci_high", []))
        return [(round(100 * f), m, lo, hi) for f, m, lo, hi in rows if None not in (m, lo, hi)]
    from clr_rl.stats import bootstrap_ci, iqm, normalize

    grid = np.linspace(0.0, 1.0, 21)
    curves: dict[str, list[np.ndarray]] = {}
    for env in envs:
        rnd, ref = refs[env] or (0.0, 1.0)
        curves[env] = []
        for run in finished.get((env, arm), []):
            t = np.array([e["timesteps"] for e in run["evals"]], dtype=float) / run["timesteps"]
            y = np.array([e["mean_return"] for e in run["evals"]], dtype=float)
            curves[env].append(normalize(np.interp(grid, t, y), rnd, ref))
    n = min(len(c) for c in curves.values())
    if n == 0:
        return []
    rng = np.random.default_rng(0)
    out = []
    for g, fraction in enumerate(grid):
        matrix = np.array([[curves[e][i][g] for e in envs] for i in range(n)])
        out.append((round(100 * float(fraction)), *bootstrap_ci(matrix, iqm, reps=1000, rng=rng)))
    return out


def _finished_runs(batch_dir: Path, planned: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(env, arm) -> its finished runs that have evaluations: folder, config, evaluations, timesteps."""
    from clr_rl.store import read_evaluations, read_json

    finished: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in planned:
        folder = batch_dir / r["folder"]
        record = read_json(folder / "run.json") if (folder / "run.json").is_file() else {}
        evals = read_evaluations(folder / "evaluations.csv")
        if record.get("status") == "finished" and evals:
            finished.setdefault((r["env_id"], r["arm"]), []).append(
                {"folder": folder, "config": record.get("config", r), "evals": evals, "timesteps": int(r["timesteps"])})
    return finished


def _write_arms(root: Path, envs: list[str], arms: list[str], finished: dict[tuple[str, str], list[dict[str, Any]]],
                refs: dict[str, tuple[float, float] | None]) -> list[Path]:
    """One aggregate run per (env, arm) with finished seeds, under ``root/<env>/<arm>``; the folders written."""
    written = []
    for env in envs:
        for arm in arms:
            seeds = finished.get((env, arm), [])
            if not seeds:
                continue
            steps = sorted({int(e["timesteps"]) for s in seeds for e in s["evals"]})
            lr = _applied_lr(seeds[0]["folder"], seeds[0]["config"], steps)
            folder = root / env / arm
            _write_arm(folder, env, seeds, refs[env], lr)
            written.append(folder)
    return written


def _write_iqm_run(folder: Path, curve: list[tuple[int, float, float, float]]) -> None:
    """One ``aggregate/all_envs/<arm>`` run: the IQM and its CI bounds at each percent of budget."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder))
    for step, estimate, low, high in curve:
        writer.add_scalar(aggregate_tag(ALL_ENVS, "normalized_iqm"), estimate, step)
        writer.add_scalar(aggregate_tag(ALL_ENVS, "normalized_iqm_ci95_low"), low, step)
        writer.add_scalar(aggregate_tag(ALL_ENVS, "normalized_iqm_ci95_high"), high, step)
    writer.close()


def _write_iqm_runs(root: Path, envs: list[str], arms: list[str],
                    finished: dict[tuple[str, str], list[dict[str, Any]]],
                    refs: dict[str, tuple[float, float] | None], stats: dict[str, Any] | None) -> list[Path]:
    """One batch-level IQM run per arm whose curve has finite points; the folders written."""
    written = []
    for arm in arms:
        curve = _iqm_curve(arm, envs, finished, refs, stats)
        curve = [p for p in curve if all(math.isfinite(v) for v in p[1:])]
        if not curve:
            continue
        folder = root / ALL_ENVS / arm
        _write_iqm_run(folder, curve)
        written.append(folder)
    return written


def write_aggregates(batch_dir: Path, stats: dict[str, Any] | None = None) -> list[Path]:
    """Write one TensorBoard run per (env, arm) under ``<batch>/runs/aggregate/<env>/<arm>/``.

    Only finished runs count, and only their finite evaluations (runs that diverged are left
    out; the report scores them by its own rule, so its numbers can differ where they exist).
    The whole ``runs/aggregate/`` folder is deleted and rewritten each call, never appended.
    Also writes ``aggregate/all_envs/<arm>``
    (normalised IQM, when every env has references; from ``stats`` -- the report's
    ``stats.json`` -- when given) and rewrites the ``_layout`` run. Returns the run folders
    written. Raises ValueError if ``batch_dir`` holds no ``spec.resolved.json``.
    """
    from clr_rl.store import read_json

    batch_dir = Path(batch_dir)
    path = batch_dir / "spec.resolved.json"
    if not path.is_file():
        raise ValueError(f"{str(batch_dir)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json(path)
    planned: list[dict[str, Any]] = resolved["runs"]
    runs_dir = batch_dir / "runs"
    root = runs_dir / AGGREGATE_DIR
    shutil.rmtree(root, ignore_errors=True)
    envs = list(dict.fromkeys(r["env_id"] for r in planned))
    arms = list(dict.fromkeys(r["arm"] for r in planned))
    refs = {env: _refs(resolved, env) for env in envs}
    finished = _finished_runs(batch_dir, planned)
    written = _write_arms(root, envs, arms, finished, refs)
    iqm = all(refs[env] is not None for env in envs)
    if iqm:
        written += _write_iqm_runs(root, envs, arms, finished, refs, stats)
    write_layout(runs_dir, envs, runs=planned, iqm=iqm)
    return written


def _aggregates_stale(batch_dir: Path) -> bool:
    """Missing, or older than some run's ``run.json`` / ``evaluations.csv``."""
    runs_dir = batch_dir / "runs"
    root = runs_dir / AGGREGATE_DIR
    written = [p.stat().st_mtime for p in root.rglob("events.out.tfevents.*")] if root.is_dir() else []
    if not written or not (runs_dir / LAYOUT_RUN).is_dir():
        return True
    newest = 0.0
    for pattern in ("run.json", "evaluations.csv"):
        for p in runs_dir.rglob(pattern):
            if root not in p.parents:
                newest = max(newest, p.stat().st_mtime)
    return newest > min(written)


# ------------------------------------------------------------------------------ serve


def serve(folder: Path, *, port: int = 6006) -> int:
    """Start TensorBoard on a batch (its ``runs/``) or a single run folder; blocks until Ctrl-C.

    On a batch, the aggregate runs are (re)written first when missing or older than the runs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder")
    if not 1 <= port <= 65535:
        raise ValueError(f"--port={port} must be in 1..65535")
    if (folder / "spec.resolved.json").is_file() and (folder / "runs").is_dir() and _aggregates_stale(folder):
        try:
            written = write_aggregates(folder)
            print(f"wrote {len(written)} aggregate runs under {folder / 'runs' / AGGREGATE_DIR}", flush=True)
        except (ValueError, OSError, KeyError) as exc:  # the per-seed runs are still worth showing
            print(f"aggregate runs not written ({exc}); showing the runs as they are", file=sys.stderr, flush=True)
    logdir = folder / "runs" if (folder / "runs").is_dir() else folder
    exe = shutil.which("tensorboard") or str(Path(sys.executable).with_name("tensorboard"))
    print(f"TensorBoard on {logdir}: http://localhost:{port}/ (Ctrl-C to stop)", flush=True)
    proc = subprocess.Popen([exe, "--logdir", str(logdir), "--port", str(port), "--host", "localhost"])

    def on_term(signum: int, frame: object) -> None:  # SIGTERM as Ctrl-C: never leave TensorBoard orphaned
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        return 0
    finally:
        if main:
            signal.signal(signal.SIGTERM, old_term)

