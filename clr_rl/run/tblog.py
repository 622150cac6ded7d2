"""What one run writes to TensorBoard: tags, HParams session summaries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["AGGREGATE_DIR", "ALL_ENVS", "HPARAM_METRICS", "LAYOUT_RUN", "LR_STEP_TAG", "LR_TAG", "RETURN_TAG", "aggregate_tag", "env_tag", "hparams_experiment_summary", "run_hparams", "session_end_summary", "session_start_summary", "write_layout"]


RETURN_TAG = "eval/mean_return"  # a run's evaluation return



LR_TAG = "train/lr_applied"  # the LR the optimizer used, once per SB3 update



LR_STEP_TAG = "train/lr_per_step"  # the same, per gradient step (``lr_per_step`` runs)



HPARAM_METRICS = {  # tag -> column title in the HParams table
    "eval/final_return": "final return",
    "eval/auc": "AUC",
    "eval/normalized_final_return": "normalised final return",
}



_HPARAM_FIRST = ("algo", "env", "arm", "seed", "schedule", "schedule_kind", "optimizer")



def env_tag(env_id: str, name: str) -> str:
    """Tag under which a run also logs ``name`` for the per-env custom-scalars charts."""
    return f"env/{env_id}/{name}"



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


AGGREGATE_DIR = "aggregate"  # runs/aggregate/<env>/<arm>



ALL_ENVS = "all_envs"  # runs/aggregate/all_envs/<arm>: the batch-level IQM



LAYOUT_RUN = "_layout"  # runs/_layout: custom-scalars layout and HParams experiment, no data



def aggregate_tag(env_id: str, name: str) -> str:
    """Tag of an aggregate run (``env_id`` is :data:`ALL_ENVS` for the batch-level IQM).

    >>> aggregate_tag("CartPole-v1", "return_mean")
    'aggregate/CartPole-v1/return_mean'
    """
    return f"aggregate/{env_id}/{name}"



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

    from clr_rl.run.envs import env_info
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
