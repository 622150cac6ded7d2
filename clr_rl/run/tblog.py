"""What one run writes to TensorBoard: tags, HParams session summaries (and the experiment's columns)."""

from __future__ import annotations

from typing import Any

__all__ = ["HPARAM_METRICS", "LR_STEP_TAG", "LR_TAG", "RETURN_TAG", "env_tag", "hparams_experiment_summary",
           "run_hparams", "schedule_range", "session_end_summary", "session_start_summary", "shown_by_default",
           "trial_name"]


RETURN_TAG = "eval/mean_return"  # a run's evaluation return



LR_TAG = "train/lr_applied"  # the LR the optimizer used, once per SB3 update



LR_STEP_TAG = "train/lr_per_step"  # the same, per gradient step (``lr_per_step`` runs)



HPARAM_METRICS = {  # tag -> column title in the HParams table
    "eval/final_return": "final return",
    "eval/auc": "AUC",
    "eval/normalized_final_return": "normalised final return",
}



_HPARAM_FIRST = ("algo", "env", "arm", "seed", "schedule", "schedule_kind", "optimizer")



_HPARAM_SHOWN = ("arm", "lr_max", "lr_min", "schedule", "seed")  # ticked in the HParams table: see shown_by_default



def env_tag(env_id: str, name: str) -> str:
    """Tag under which a run also logs ``name`` for the per-env custom-scalars charts."""
    return f"env/{env_id}/{name}"



# ------------------------------------------------------------------------------ HParams
def run_hparams(config: dict[str, Any]) -> dict[str, Any]:
    """HParams of one run from its resolved config (``run.json``'s ``config``, or a planned run
    in ``spec.resolved.json``): algo, env, arm, seed, schedule, kind, optimizer, and every
    schedule parameter as ``lr.<name>``, and the schedule's LR range as ``lr_min`` / ``lr_max``
    (:func:`schedule_range`).

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
    lr_range = schedule_range(config)
    if lr_range is not None:
        out["lr_min"], out["lr_max"] = lr_range
    return out



def schedule_range(config: dict[str, Any], points: int = 2001) -> tuple[float, float] | None:
    """(lowest, highest) LR of a run's schedule over its budget: sampled at ``points`` evenly spaced
    ``progress_remaining`` values, each end snapped to a schedule parameter within 0.5% of it (a
    sampled triangle misses its exact peak). None without a parseable schedule.

    >>> schedule_range({"schedule": "triangular:base_lr=1e-4,max_lr=1e-3,cycles=3", "timesteps": 4096,
    ...                 "schedule_params": {"base_lr": 1e-4, "max_lr": 1e-3, "cycles": 3}})
    (0.0001, 0.001)
    """
    from clr_rl.errors import ConfigError
    from clr_rl.schedules.text import bind_total_timesteps, parse_schedule

    try:
        schedule = bind_total_timesteps(parse_schedule(config["schedule"]), int(config.get("timesteps", 1)))
        values = [float(schedule(1 - i / (points - 1))) for i in range(points)]
    except (KeyError, TypeError, ValueError, ConfigError):
        return None
    params = [float(v) for v in (config.get("schedule_params") or {}).values()
              if isinstance(v, (int, float)) and not isinstance(v, bool)]

    def snap(x: float) -> float:
        return next((v for v in params if abs(v - x) <= 0.005 * abs(v)), x)

    return snap(min(values)), snap(max(values))



def _hparams_summary(tag: str, data: Any) -> Any:
    """A summary holding one ``HParamsPluginData`` (tensorboard's own helpers need TensorFlow)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data),
                                        tensor=metadata.NULL_TENSOR)])



def trial_name(hparams: dict[str, Any]) -> str:
    """The HParams table's trial id of a run: env and seed first (the column is narrow; the arm and
    the seed also have columns of their own).

    >>> trial_name({"env": "CartPole-v1", "arm": "fixed", "seed": 2})
    'CartPole-v1 seed2 fixed'
    """
    return " ".join(str(p) for p in (hparams.get("env", ""), f"seed{hparams['seed']}" if "seed" in hparams else "",
                                     hparams.get("arm", "")) if p)



def session_start_summary(hparams: dict[str, Any], group_name: str | None = None) -> Any:
    """The HParams session-start summary of one run (its row in the HParams table).

    Write it once, at the start of a fresh run: ``writer._get_file_writer().add_summary(...)``.
    Values are numbers, strings or bools (see :func:`run_hparams`). ``group_name`` is the
    row's trial id (default :func:`trial_name`; TensorBoard would show the run's folder).
    """
    import time

    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    name = trial_name(hparams) if group_name is None else group_name
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time(), group_name=name)
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



def shown_by_default(names: list[str]) -> set[str]:
    """The HParams columns flagged ``differs``, which TensorBoard 2.21 ticks (shows) by default.

    TensorBoard sorts the columns by (``differs`` first, name) and ticks the first five, whatever
    the flags say, so exactly five get the flag: the arm, the seed, the schedule text (it carries
    every schedule parameter) and the LR range every row has (``lr_min``, ``lr_max``). The env
    leads each row's trial id; the per-kind ``lr.*`` parameters stay one click away.

    >>> sorted(shown_by_default(["algo", "arm", "env", "seed", "schedule", "lr.lr", "lr_min", "lr_max"]))
    ['arm', 'lr_max', 'lr_min', 'schedule', 'seed']
    """
    return {n for n in names if n in _HPARAM_SHOWN}



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
    infos, shown = [], shown_by_default(names)
    for name in names:
        seen = values[name]
        differs = name in shown
        if all(isinstance(v, bool) for v in seen):
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DATA_TYPE_BOOL, differs=differs))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DATA_TYPE_FLOAT64, differs=differs,
                                            domain_interval=api_pb2.Interval(min_value=min(seen),
                                                                             max_value=max(seen))))
        else:
            domain = struct_pb2.ListValue()
            domain.extend(sorted({str(v) for v in seen}))
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DATA_TYPE_STRING, domain_discrete=domain,
                                            differs=differs))
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=title)
               for tag, title in HPARAM_METRICS.items()]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics, time_created_secs=time.time())
    return _hparams_summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))
