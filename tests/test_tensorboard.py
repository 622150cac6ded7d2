"""TensorBoard at the level of arms: aggregate runs, the custom-scalars layout, HParams.

One tiny real batch (CartPole-v1 and Pendulum-v1 x 2 arms x 3 seeds at 1024 steps) is
trained once for the module and reported (``stats.json``). A real TensorBoard server started
by :func:`clr_rl.analysis.tensorboard.serve` (which writes the missing aggregate runs) is then asked
over HTTP for the aggregate runs' scalars, which are checked against an independent oracle:
each seed's ``evaluations.csv`` read with :mod:`csv`, the mean and ``scipy.stats.t.interval``
computed here, and the normalisation scores read from ``envs/classic.toml``; at the last
evaluation they must equal ``stats.json``'s per-env ``final_return`` mean and ``ci95``.
Event files are read back with ``EventAccumulator`` (TensorBoard stores float32: ``rel=1e-6``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLASSIC = tomllib.loads((ROOT / "envs" / "classic.toml").read_text())["env"]
ENVS = ("CartPole-v1", "Pendulum-v1")
ARMS = ("fixed", "around")
SEEDS = (0, 1, 2)
REL = 1e-6  # float32 in event files



@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, h: Any) -> Path:
    """The batch, trained and reported once (``report/stats.json``)."""
    from clr_rl.analysis.report import report
    from clr_rl.compare.driver import compare

    root = tmp_path_factory.mktemp("tb")
    (root / "spec.toml").write_text(h.tiny_spec("tiny_tensorboard", envs=ENVS, seeds=len(SEEDS)))
    out = root / "out"
    assert compare(root / "spec.toml", out=out, workers=2) == 0
    assert report(out, seed=3, reps=200) == 0
    return out


def _stats(batch: Path) -> dict[str, Any]:
    return json.loads((batch / "report" / "stats.json").read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _scalars(base: str, run: str, tag: str) -> list[tuple[int, float]]:
    query = urllib.parse.urlencode({"run": run, "tag": tag})
    return [(int(step), float(value)) for _, step, value in _get(f"{base}/data/plugin/scalars/scalars?{query}")]


AGG_RUNS = {f"aggregate/{e}/{a}" for e in ENVS for a in ARMS} | {f"aggregate/all_envs/{a}" for a in ARMS}


@pytest.fixture(scope="module")
def server(batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``serve(batch)`` in its own process, with no aggregate runs on disk beforehand."""
    shutil.rmtree(batch / "runs" / "aggregate", ignore_errors=True)
    port = _free_port()
    log = tmp_path_factory.mktemp("tblog") / "serve.out"
    code = f"from pathlib import Path; from clr_rl.analysis.tensorboard import serve; serve(Path({str(batch)!r}), port={port})"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    base = f"http://localhost:{port}"
    try:
        deadline = time.time() + 90
        names: list[str] = []
        while time.time() < deadline and not AGG_RUNS <= set(names):
            assert proc.poll() is None, log.read_text()
            try:
                names = _get(f"{base}/data/runs")
            except OSError:
                pass
            time.sleep(0.5)
        assert AGG_RUNS <= set(names), (names, log.read_text())
        yield {"base": base, "runs": names, "log": log}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # anything left in the session this fixture started
            except ProcessLookupError:
                pass


def _evaluations(batch: Path, env: str, arm: str) -> dict[int, list[float]]:
    """Independent reader: step -> the seeds' mean returns, from each evaluations.csv."""
    by_step: dict[int, list[float]] = {}
    for seed in SEEDS:
        with open(batch / "runs" / env / arm / f"seed{seed}" / "evaluations.csv") as fh:
            for row in csv.DictReader(fh):
                by_step.setdefault(int(float(row["timesteps"])), []).append(float(row["mean_return"]))
    return by_step


def test_runs_listed_by_the_server(server: dict[str, Any]) -> None:
    names = set(server["runs"])
    seeds = {f"{e}/{a}/seed{s}" for e in ENVS for a in ARMS for s in SEEDS}
    assert names == seeds | AGG_RUNS | {"_layout"}  # no run "." any more
    assert "wrote 6 aggregate runs" in server["log"].read_text()


def test_aggregate_mean_and_ci_match_the_evaluations_and_the_report(batch: Path, server: dict[str, Any]) -> None:
    from scipy.stats import t

    stats = _stats(batch)
    for env in ENVS:
        rnd, ref = CLASSIC[env]["random_score"], CLASSIC[env]["reference_score"]
        for arm in ARMS:
            run = f"aggregate/{env}/{arm}"
            mean = dict(_scalars(server["base"], run, f"aggregate/{env}/return_mean"))
            low = dict(_scalars(server["base"], run, f"aggregate/{env}/return_mean_ci95_low"))
            high = dict(_scalars(server["base"], run, f"aggregate/{env}/return_mean_ci95_high"))
            norm = dict(_scalars(server["base"], run, f"aggregate/{env}/normalized_mean"))
            seeds = dict(_scalars(server["base"], run, f"aggregate/{env}/seeds"))
            evals = _evaluations(batch, env, arm)
            assert sorted(mean) == sorted(evals) == [0, 512, 1024]
            for step, values in evals.items():
                x = np.array(values)
                m = x.mean()
                lo, hi = t.interval(0.95, len(x) - 1, loc=m, scale=x.std(ddof=1) / np.sqrt(len(x)))
                assert seeds[step] == len(SEEDS)
                assert mean[step] == pytest.approx(m, rel=REL, abs=1e-4)
                if x.std() > 0:
                    assert (low[step], high[step]) == pytest.approx((lo, hi), rel=REL, abs=1e-4)
                else:  # every seed the same: the interval is the point
                    assert low[step] == high[step] == pytest.approx(m, rel=REL)
                assert norm[step] == pytest.approx((m - rnd) / (ref - rnd), rel=REL, abs=1e-6)
            # the last evaluation is the report's final return: the same mean and 95% CI
            final = stats["per_env"][env]["arms"][arm]["final_return"]
            last = max(mean)
            assert mean[last] == pytest.approx(final["mean"], rel=REL)
            assert [low[last], high[last]] == pytest.approx(final["ci95"], rel=REL, abs=1e-4)


def test_aggregate_lr_is_the_lr_a_seed_applied(server: dict[str, Any]) -> None:
    for env in ENVS:
        for arm in ARMS:
            applied = _scalars(server["base"], f"aggregate/{env}/{arm}", f"aggregate/{env}/lr_applied")
            seed = _scalars(server["base"], f"{env}/{arm}/seed1", "train/lr_applied")
            assert len(applied) == len(seed) >= 7  # one per PPO update (1024 / 128 steps)
            assert applied == seed
            values = {v for _, v in applied}
            assert (len(values) == 1) == (arm == "fixed")  # the cyclical arm's LR moves


def test_batch_iqm_matches_the_reports_point_estimate(batch: Path, server: dict[str, Any]) -> None:
    efficiency = _stats(batch)["sample_efficiency"]
    steps = [round(100 * f) for f in efficiency["fractions"]]
    for arm in ARMS:
        tag = "aggregate/all_envs/normalized_iqm"
        iqm = _scalars(server["base"], f"aggregate/all_envs/{arm}", tag)
        assert [s for s, _ in iqm] == steps
        assert [v for _, v in iqm] == pytest.approx(efficiency[arm]["iqm"], rel=REL, abs=1e-6)


def test_layout_one_margin_chart_per_env_over_the_aggregate_tags(batch: Path, server: dict[str, Any]) -> None:
    import re

    layout = _get(f"{server['base']}/data/plugin/custom_scalars/layout")
    titles = [c["title"] for c in layout["category"]]
    assert titles == ["all envs: normalised IQM per arm", *ENVS]
    for category in layout["category"][1:]:
        env = category["title"]
        margins = [c for c in category["chart"] if "margin" in c]
        assert len(margins) == 1
        (series,) = margins[0]["margin"]["series"]
        assert (series["value"], series["lower"], series["upper"]) == (
            f"aggregate/{env}/return_mean", f"aggregate/{env}/return_mean_ci95_low",
            f"aggregate/{env}/return_mean_ci95_high")
        # the series exist in exactly this env's aggregate runs (one line and band per arm)
        for run in sorted(AGG_RUNS):
            tags = set(_get(f"{server['base']}/data/plugin/scalars/tags?"
                            + urllib.parse.urlencode({"run": run})).get(run, {}))
            has = {series["value"], series["lower"], series["upper"]} <= tags
            assert has == run.startswith(f"aggregate/{env}/"), (run, env)
        # the per-arm LR chart matches the aggregate LR tag only, not the per-seed ones
        lr_chart = next(c for c in category["chart"] if c["title"].startswith("learning rate applied, per arm"))
        (regex,) = lr_chart["multiline"]["tag"]
        assert re.search(regex, f"aggregate/{env}/lr_applied")
        assert not re.search(regex, f"env/{env}/lr") and not re.search(regex, "train/lr_applied")
        assert len(category["chart"]) == 4  # margin, LR per arm, per-seed return, per-seed LR


def _accumulator(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_layout_read_back_from_the_events(batch: Path, server: dict[str, Any]) -> None:
    from tensorboard.plugins.custom_scalar.layout_pb2 import Layout

    runs = batch / "runs"
    assert not list(runs.glob("events.out.tfevents.*"))  # nothing in runs/ itself: no run "."
    acc = _accumulator(runs / "_layout")
    layout = Layout.FromString(acc.Tensors("custom_scalars__config__")[-1].tensor_proto.string_val[0])
    for env in ENVS:
        (category,) = [c for c in layout.category if c.title == env]
        margins = [c.margin for c in category.chart if c.HasField("margin")]
        assert [(s.value, s.lower, s.upper) for m in margins for s in m.series] == [
            (f"aggregate/{env}/return_mean", f"aggregate/{env}/return_mean_ci95_low",
             f"aggregate/{env}/return_mean_ci95_high")]
        agg = _accumulator(runs / "aggregate" / env / "fixed")
        assert {margins[0].series[0].value, margins[0].series[0].lower} <= set(agg.Tags()["scalars"])


def test_hparams_experiment_has_every_schedule_parameter(batch: Path, server: dict[str, Any]) -> None:
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    params: set[str] = set()
    for env in ENVS:
        for arm in ARMS:
            record = json.loads((batch / "runs" / env / arm / "seed0" / "run.json").read_text())
            params |= {f"lr.{k}" for k in record["config"]["schedule_params"]}
    assert {"lr.lr", "lr.base_lr", "lr.max_lr"} <= params  # two kinds, different parameters
    acc = _accumulator(batch / "runs" / "_layout")
    content = acc.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = HParamsPluginData.FromString(content).experiment
    columns = {h.name for h in experiment.hparam_infos}
    assert params | {"arm", "env", "seed", "algo", "schedule_kind"} <= columns
    arm_info = next(h for h in experiment.hparam_infos if h.name == "arm")
    assert {v.string_value for v in arm_info.domain_discrete.values} == set(ARMS)
    assert {m.name.tag for m in experiment.metric_infos} == {
        "eval/final_return", "eval/auc", "eval/normalized_final_return"}


def test_session_end_status_follows_the_run_status(tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    from torch.utils.tensorboard import SummaryWriter

    from clr_rl.run.tblog import session_end_summary, session_start_summary

    expected = {"finished": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
                "diverged": api_pb2.STATUS_FAILURE}
    assert session_end_summary("running") is None and session_end_summary("interrupted") is None
    for status, code in expected.items():
        writer = SummaryWriter(log_dir=str(tmp_path / status))
        writer._get_file_writer().add_summary(session_start_summary({"arm": "a", "seed": 1, "lr.lr": 1e-3}))
        writer._get_file_writer().add_summary(session_end_summary(status))
        writer.close()
        content = _accumulator(tmp_path / status).PluginTagToContent("hparams")
        start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
        assert start.hparams["lr.lr"].number_value == 1e-3 and start.hparams["arm"].string_value == "a"
        end = HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info
        assert end.status == code


def test_rewriting_aggregates_does_not_duplicate_events(batch: Path, server: dict[str, Any]) -> None:
    from clr_rl.analysis.tensorboard import write_aggregates

    stats = _stats(batch)
    for _ in range(2):
        written = write_aggregates(batch, stats)
    root = batch / "runs" / "aggregate"
    assert {str(p.relative_to(root)) for p in written} == {r.removeprefix("aggregate/") for r in AGG_RUNS}
    for folder in written:
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert len(list((batch / "runs" / "_layout").glob("events.out.tfevents.*"))) == 1
    acc = _accumulator(root / "CartPole-v1" / "around")
    assert [e.step for e in acc.Scalars("aggregate/CartPole-v1/return_mean")] == [0, 512, 1024]
    # given the report's stats, the batch IQM band is the report's, bounds included
    acc = _accumulator(root / "all_envs" / "around")
    band = stats["sample_efficiency"]["around"]
    for tag, key in (("normalized_iqm", "iqm"), ("normalized_iqm_ci95_low", "ci_low"),
                     ("normalized_iqm_ci95_high", "ci_high")):
        assert [e.value for e in acc.Scalars(f"aggregate/all_envs/{tag}")] == pytest.approx(band[key], rel=REL,
                                                                                              abs=1e-6)


def test_write_aggregates_needs_a_batch_folder(tmp_path: Path) -> None:
    from clr_rl.analysis.tensorboard import write_aggregates

    with pytest.raises(ValueError, match="not a batch folder"):
        write_aggregates(tmp_path)
