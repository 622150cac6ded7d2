"""A batch's TensorBoard layout: the arm runs' folder and tags, the custom-scalars layout, the event files.

The batch's per-arm runs (``runs/arms/<arm>``) are written by :mod:`clr_rl.analysis.tensorboard`;
the layout and the HParams experiment are written here, when a batch records its plan and again
with the arm runs, into the first arm's run, so that they add no run of their own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clr_rl.run.tblog import env_tag, hparams_experiment_summary, run_hparams

__all__ = ["ALL_ENVS", "ARMS_DIR", "ARM_WALL_TIME", "BAND_TITLE", "LAYOUT_SUFFIX", "LEGACY_DIRS", "aggregate_tag",
           "layout_folder", "scalar_summary", "write_events", "write_layout"]


ARMS_DIR = "arms"  # runs/arms/<arm>: one run per arm, every env's aggregate series under env-prefixed tags



ALL_ENVS = "all_envs"  # tags aggregate/all_envs/...: the batch-level IQM, in each arm's run



LEGACY_DIRS = ("aggregate", "_layout")  # what older versions wrote under runs/: removed when rewriting



LAYOUT_SUFFIX = ".layout"  # the event file holding the layout and the HParams experiment



def aggregate_tag(env_id: str, name: str) -> str:
    """Tag of an arm's aggregate series (``env_id`` is :data:`ALL_ENVS` for the batch-level IQM).

    >>> aggregate_tag("CartPole-v1", "return_mean")
    'aggregate/CartPole-v1/return_mean'
    """
    return f"aggregate/{env_id}/{name}"



BAND_TITLE = "band = 95% percentile bootstrap CI of the mean over seeds"



ARM_WALL_TIME = 1.0  # wall time of every event in runs/arms: see write_events



def write_events(folder: Path, summaries: list[tuple[int, Any]], *, suffix: str = "") -> Path:
    """One event file in ``folder`` holding ``(step, Summary)`` pairs, every event at :data:`ARM_WALL_TIME`.

    TensorBoard lists runs, and hands out its colours, in the order of their first event's wall
    time: dated at the epoch, the arm runs come first and get its first, most distinct colours
    (the per-seed runs are dated when they ran). Aggregate points have no time of their own.
    """
    import socket

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events.out.tfevents.{int(ARM_WALL_TIME)}.{socket.gethostname()}{suffix}"
    with open(path, "wb") as fh:
        writer = RecordWriter(fh)
        writer.write(Event(wall_time=ARM_WALL_TIME, file_version="brain.Event:2").SerializeToString())
        for step, summary in summaries:
            writer.write(Event(wall_time=ARM_WALL_TIME, step=int(step), summary=summary).SerializeToString())
    return path



def scalar_summary(tag: str, value: float) -> Any:
    """A ``Summary`` of one scalar (``simple_value``, as ``SummaryWriter.add_scalar`` writes it)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])



# ------------------------------------------------------------------------------ layout
def _margin(title: str, env: str, stem: str) -> Any:
    from tensorboard.plugins.custom_scalar import layout_pb2

    series = layout_pb2.MarginChartContent.Series(value=aggregate_tag(env, stem),
                                                  lower=aggregate_tag(env, f"{stem}_ci95_low"),
                                                  upper=aggregate_tag(env, f"{stem}_ci95_high"))
    return layout_pb2.Chart(title=title, margin=layout_pb2.MarginChartContent(series=[series]))



def _lines(title: str, pattern: str) -> Any:
    from tensorboard.plugins.custom_scalar import layout_pb2

    return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[pattern]))



def _lr_title(env: str, ranges: dict[str, tuple[float, float]] | None) -> str:
    """The per-arm LR chart's title: what the flat lines are and, once known, each arm's applied range."""
    title = f"{env}: learning rate applied per arm (flat lines: the arm's min and max)"
    if ranges:
        title += "; " + ", ".join(f"{arm} {lo:.3g}" if lo == hi else f"{arm} {lo:.3g}..{hi:.3g}"
                                  for arm, (lo, hi) in ranges.items())
    return title



def _layout(envs: list[str], *, iqm: bool, lr_ranges: dict[str, dict[str, tuple[float, float]]] | None = None
            ) -> Any:
    """Custom-scalars layout, the comparison first.

    TensorBoard draws a section's multiline charts before its margin charts, so the margin
    charts (one band per arm) get a section of their own, above everything else; then the LR
    each arm applied (with its min and max as flat lines, so that "ignore outliers in chart
    scaling", on by default, never clips a peak or a trough); then per env the per-seed detail,
    folded.
    """
    from tensorboard.plugins.custom_scalar import layout_pb2

    compare = []
    if iqm:
        compare.append(_margin("all envs: normalised IQM over envs and seeds, band = 95% stratified bootstrap CI "
                               "(step = % of budget)", ALL_ENVS, "normalized_iqm"))
    compare += [_margin(f"{env}: return, mean over seeds; {BAND_TITLE}", env, "return_mean") for env in envs]
    lr = [_lines(_lr_title(env, (lr_ranges or {}).get(env)),
                 f"^{re.escape(aggregate_tag(env, 'lr_applied'))}(_min|_max)?$") for env in envs]
    categories = [layout_pb2.Category(title="compare arms: one colour per arm", chart=compare),
                  layout_pb2.Category(title="learning rate applied, per arm", chart=lr)]
    for env in envs:
        categories.append(layout_pb2.Category(title=f"{env}: every seed", closed=True, chart=[
            _lines("return (every arm and seed)", f"^{re.escape(env_tag(env, 'eval_return'))}$"),
            _lines("learning rate applied (every arm and seed)", f"^{re.escape(env_tag(env, 'lr'))}$"),
        ]))
    return layout_pb2.Layout(category=categories)



def layout_folder(runs_dir: Path, arms: list[str]) -> Path:
    """Where the layout goes: inside the first arm's run, so it adds no run of its own."""
    return Path(runs_dir) / ARMS_DIR / arms[0] if arms else Path(runs_dir) / ARMS_DIR



def _remove_layouts(runs_dir: Path) -> None:
    """Every layout event file under ``runs/arms``, events in ``runs/`` itself (the old run "."), and
    the old ``runs/_layout`` run."""
    import shutil

    for old in [*runs_dir.glob("events.out.tfevents.*"), *runs_dir.glob(f"{ARMS_DIR}/**/*{LAYOUT_SUFFIX}")]:
        old.unlink()
    shutil.rmtree(runs_dir / "_layout", ignore_errors=True)



def write_layout(runs_dir: Path, envs: list[str], *, runs: list[dict[str, Any]] | None = None,
                 iqm: bool | None = None, lr_ranges: dict[str, dict[str, tuple[float, float]]] | None = None
                 ) -> Path:
    """Write the custom-scalars layout and the HParams experiment into the first arm's run.

    ``runs``: the planned runs (``spec.resolved.json``'s ``runs``) whose HParams make the
    experiment's columns and whose arms name the arm runs; by default read from
    ``spec.resolved.json`` beside ``runs_dir``. ``iqm``: include the batch-level IQM chart
    (default: every env has references in ``envs/``). ``lr_ranges``: env -> arm -> the
    (min, max) LR applied, for the LR charts' titles. Rewritten each call, in its own event
    file (suffix :data:`LAYOUT_SUFFIX`); what older versions wrote (``runs/_layout``, events in
    ``runs/`` itself) is removed. Returns the folder written into.
    """
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.custom_scalar import metadata

    from clr_rl.run.envs import env_info
    from clr_rl.store import read_json

    runs_dir = Path(runs_dir)
    if runs is None and (runs_dir.parent / "spec.resolved.json").is_file():
        runs = read_json(runs_dir.parent / "spec.resolved.json").get("runs")
    if iqm is None:
        iqm = all(env_info(env) is not None for env in envs)
    folder = layout_folder(runs_dir, list(dict.fromkeys(r["arm"] for r in runs or [])))
    _remove_layouts(runs_dir)
    layout = _layout(envs, iqm=iqm, lr_ranges=lr_ranges)
    tensor = TensorProto(dtype="DT_STRING", string_val=[layout.SerializeToString()], tensor_shape=TensorShapeProto())
    plugin = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME))
    summaries = [(0, Summary(value=[Summary.Value(tag=metadata.CONFIG_SUMMARY_TAG, tensor=tensor, metadata=plugin)]))]
    if runs:
        summaries.append((0, hparams_experiment_summary([run_hparams(r) for r in runs])))
    write_events(folder, summaries, suffix=LAYOUT_SUFFIX)
    return folder
