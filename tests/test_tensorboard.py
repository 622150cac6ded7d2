"""TensorBoard at the level of arms: one run per arm, the custom-scalars layout, HParams.

One tiny real batch (CartPole-v1 and Pendulum-v1 x 2 arms x 3 seeds at 1024 steps) is
trained once for the module and reported (``stats.json``). A real TensorBoard server started
by :func:`clr_rl.analysis.tensorboard.serve` (which writes the missing arm runs) is then asked
over HTTP for the runs, the arm runs' scalars, the layout and the HParams experiment, which are
checked against an independent reader: each seed's ``evaluations.csv`` read with :mod:`csv`,
means computed here with numpy, the normalisation scores read from ``envs/classic.toml``; the
band must lie inside the seeds' observed returns (a percentile bootstrap of the mean cannot
leave them, unlike the t-interval it replaces). Event files are read back with
``EventAccumulator`` pointed at each run's folder (TensorBoard stores float32: ``rel=1e-6``).
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


ARM_RUNS = {f"arms/{a}" for a in ARMS}  # one run per arm, every env inside


@pytest.fixture(scope="module")
def server(batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``serve(batch)`` in its own process, with no arm runs on disk beforehand."""
    shutil.rmtree(batch / "runs" / "arms", ignore_errors=True)
    port = _free_port()
    log = tmp_path_factory.mktemp("tblog") / "serve.out"
    code = (f"from pathlib import Path; from clr_rl.analysis.tensorboard import serve; "
            f"serve(Path({str(batch)!r}), port={port})")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    base = f"http://localhost:{port}"
    try:
        deadline = time.time() + 90
        names: list[str] = []
        while time.time() < deadline and not ARM_RUNS <= set(names):
            assert proc.poll() is None, log.read_text()
            try:
                names = _get(f"{base}/data/runs")
            except OSError:
                pass
            time.sleep(0.5)
        assert ARM_RUNS <= set(names), (names, log.read_text())
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


def _accumulator(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def test_one_run_per_arm_and_no_layout_run(batch: Path, server: dict[str, Any]) -> None:
    names = server["runs"]
    seeds = {f"{e}/{a}/seed{s}" for e in ENVS for a in ARMS for s in SEEDS}
    assert set(names) == seeds | ARM_RUNS  # no "_layout", no run "."
    assert set(names[:len(ARMS)]) == ARM_RUNS  # listed first (then by name): TensorBoard's first colours
    assert "wrote 2 arm runs" in server["log"].read_text()
    for arm in ARMS:  # every env's series in the arm's one run (EventAccumulator on the run's own folder)
        tags = set(_accumulator(batch / "runs" / "arms" / arm).Tags()["scalars"])
        for env in ENVS:
            assert {f"aggregate/{env}/{n}" for n in ("return_mean", "return_mean_ci95_low", "return_mean_ci95_high",
                                                     "normalized_mean", "seeds", "lr_applied", "lr_applied_min",
                                                     "lr_applied_max")} <= tags
        assert "aggregate/all_envs/normalized_iqm" in tags


def test_arm_mean_and_bootstrap_band_from_the_evaluations(batch: Path, server: dict[str, Any]) -> None:
    from clr_rl.stats import AGGREGATES, bootstrap_ci, rng_for

    stats = _stats(batch)
    for env in ENVS:
        rnd, ref = CLASSIC[env]["random_score"], CLASSIC[env]["reference_score"]
        for arm in ARMS:
            run = f"arms/{arm}"
            mean, low, high, norm, seeds = (dict(_scalars(server["base"], run, f"aggregate/{env}/{n}")) for n in (
                "return_mean", "return_mean_ci95_low", "return_mean_ci95_high", "normalized_mean", "seeds"))
            evals = _evaluations(batch, env, arm)
            assert sorted(mean) == sorted(evals) == [0, 512, 1024]
            rng = rng_for(0, "tensorboard", env, arm)  # serve's defaults: seed 0, 2000 resamples
            for step, values in sorted(evals.items()):
                x = np.array(values)
                assert seeds[step] == len(SEEDS)
                assert mean[step] == pytest.approx(x.mean(), rel=REL, abs=1e-4)
                # the band never leaves the returns the seeds reached (a t-interval did: 876 on CartPole)
                assert x.min() - 1e-4 <= low[step] <= mean[step] <= high[step] <= x.max() + 1e-4
                expected = bootstrap_ci(x[:, None], AGGREGATES["mean"], reps=2000, rng=rng)[1:]
                assert (low[step], high[step]) == pytest.approx(expected, rel=REL, abs=1e-4)
                assert norm[step] == pytest.approx((x.mean() - rnd) / (ref - rnd), rel=REL, abs=1e-6)
            final = stats["per_env"][env]["arms"][arm]["final_return"]  # the report's final mean
            assert mean[max(mean)] == pytest.approx(final["mean"], rel=REL)


def test_arm_lr_is_the_lr_a_seed_applied_framed_by_its_range(server: dict[str, Any]) -> None:
    for env in ENVS:
        for arm in ARMS:
            applied = _scalars(server["base"], f"arms/{arm}", f"aggregate/{env}/lr_applied")
            seed = _scalars(server["base"], f"{env}/{arm}/seed1", "train/lr_applied")
            assert len(applied) == len(seed) >= 7  # one per PPO update (1024 / 128 steps)
            assert applied == seed
            values = [v for _, v in applied]
            assert (len(set(values)) == 1) == (arm == "fixed")  # the cyclical arm's LR moves
            for name, bound in (("lr_applied_min", min(values)), ("lr_applied_max", max(values))):
                line = _scalars(server["base"], f"arms/{arm}", f"aggregate/{env}/{name}")
                # as many points as the LR: at least 1/3 of an arm's points at each end, so the
                # 5%..95% quantiles TensorBoard scales to ("ignore outliers") include both ends
                assert [s for s, _ in line] == [s for s, _ in applied]
                assert [v for _, v in line] == pytest.approx([bound] * len(line), rel=REL)


def test_batch_iqm_matches_the_reports_band(batch: Path, server: dict[str, Any]) -> None:
    efficiency = _stats(batch)["sample_efficiency"]
    steps = [round(100 * f) for f in efficiency["fractions"]]
    for arm in ARMS:
        for tag, key in (("normalized_iqm", "iqm"), ("normalized_iqm_ci95_low", "ci_low"),
                         ("normalized_iqm_ci95_high", "ci_high")):
            series = _scalars(server["base"], f"arms/{arm}", f"aggregate/all_envs/{tag}")
            assert [s for s, _ in series] == steps
            assert [v for _, v in series] == pytest.approx(efficiency[arm][key], rel=REL, abs=1e-6)


def test_layout_puts_the_margin_charts_first_and_says_what_the_band_is(server: dict[str, Any]) -> None:
    import re

    layout = _get(f"{server['base']}/data/plugin/custom_scalars/layout")
    titles = [c["title"] for c in layout["category"]]
    assert titles == ["compare arms: one colour per arm", "learning rate applied, per arm",
                      *(f"{e}: every seed" for e in ENVS)]
    compare, lr, *detail = layout["category"]
    # the first section holds only margin charts (TensorBoard draws multiline charts first otherwise)
    assert all("margin" in c for c in compare["chart"]) and len(compare["chart"]) == 1 + len(ENVS)
    assert "95% stratified bootstrap CI" in compare["chart"][0]["title"]
    for env, chart in zip(ENVS, compare["chart"][1:], strict=True):
        assert chart["title"].startswith(env) and "95% percentile bootstrap CI of the mean over seeds" in chart["title"]
        (series,) = chart["margin"]["series"]
        tags = (series["value"], series["lower"], series["upper"])
        assert tags == (f"aggregate/{env}/return_mean", f"aggregate/{env}/return_mean_ci95_low",
                        f"aggregate/{env}/return_mean_ci95_high")
        for run in ARM_RUNS:  # one band per arm: the series are in every arm's run
            have = _get(f"{server['base']}/data/plugin/scalars/tags?" + urllib.parse.urlencode({"run": run}))[run]
            assert set(tags) <= set(have)
    for env, chart in zip(ENVS, lr["chart"], strict=True):
        (regex,) = chart["multiline"]["tag"]
        assert all(re.search(regex, f"aggregate/{env}/lr_applied{s}") for s in ("", "_min", "_max"))
        assert not re.search(regex, f"env/{env}/lr") and not re.search(regex, "train/lr_applied")
        lrs = {a: [v for _, v in _scalars(server["base"], f"arms/{a}", f"aggregate/{env}/lr_applied")] for a in ARMS}
        assert f"fixed {lrs['fixed'][0]:.3g}" in chart["title"]  # each arm's applied range, in the title
        assert f"around {min(lrs['around']):.3g}..{max(lrs['around']):.3g}" in chart["title"], chart["title"]
    assert all(c.get("closed") for c in detail)  # the per-seed detail starts folded


def test_layout_lives_in_the_first_arms_run(batch: Path, server: dict[str, Any]) -> None:
    from tensorboard.plugins.custom_scalar.layout_pb2 import Layout

    runs = batch / "runs"
    assert not list(runs.glob("events.out.tfevents.*")) and not (runs / "_layout").exists()
    home = runs / "arms" / ARMS[0]
    assert len(list(home.glob("events.out.tfevents.*.layout"))) == 1
    acc = _accumulator(home)
    layout = Layout.FromString(acc.Tensors("custom_scalars__config__")[-1].tensor_proto.string_val[0])
    assert layout.category[0].chart[1].margin.series[0].value == f"aggregate/{ENVS[0]}/return_mean"
    assert f"aggregate/{ENVS[0]}/return_mean" in acc.Tags()["scalars"]  # the same run holds the arm's data
    assert not any(f.name.endswith(".layout") for f in (runs / "arms" / ARMS[1]).iterdir())


def test_hparams_columns_shown_by_default_and_trial_names(batch: Path, server: dict[str, Any]) -> None:
    params: set[str] = set()
    for env in ENVS:
        for arm in ARMS:
            record = json.loads((batch / "runs" / env / arm / "seed0" / "run.json").read_text())
            params |= {f"lr.{k}" for k in record["config"]["schedule_params"]}
    assert {"lr.lr", "lr.base_lr", "lr.max_lr"} <= params  # two kinds, different parameters
    experiment = _post(f"{server['base']}/data/plugin/hparams/experiment", {})
    infos = experiment["hparamInfos"]
    assert params | {"arm", "env", "seed", "algo", "schedule", "lr_min", "lr_max"} <= {h["name"] for h in infos}
    # TensorBoard 2.21 ticks the first five columns after sorting by (differs first, name)
    assert [h["name"] for h in infos[:5]] == ["arm", "lr_max", "lr_min", "schedule", "seed"]
    assert all(h.get("differs") for h in infos[:5]) and not any(h.get("differs") for h in infos[5:])
    assert {m["name"]["tag"] for m in experiment["metricInfos"]} == {
        "eval/final_return", "eval/auc", "eval/normalized_final_return"}
    groups = _post(f"{server['base']}/data/plugin/hparams/session_groups", {
        "experimentName": "", "startIndex": 0, "sliceSize": 100,
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
    rows = {g["name"]: g["hparams"] for g in groups["sessionGroups"]}
    assert set(rows) == {f"{e} seed{s} {a}" for e in ENVS for a in ARMS for s in SEEDS}
    fixed, around = rows[f"{ENVS[0]} seed1 fixed"], rows[f"{ENVS[0]} seed1 around"]
    assert fixed["lr_min"] == fixed["lr_max"] == fixed["lr.lr"] and fixed["seed"] == 1
    assert (around["lr_min"], around["lr_max"]) == pytest.approx((around["lr.base_lr"], around["lr.max_lr"]))


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


def test_rewriting_the_arm_runs_does_not_duplicate_events(batch: Path, server: dict[str, Any]) -> None:
    from clr_rl.analysis.tensorboard import write_aggregates

    stats = _stats(batch)
    for _ in range(2):
        written = write_aggregates(batch, stats, seed=3, reps=200)
    root = batch / "runs" / "arms"
    assert sorted(written) == sorted(root / a for a in ARMS)
    for folder in written:
        data = [f for f in folder.glob("events.out.tfevents.*") if not f.name.endswith(".layout")]
        assert len(data) == 1
    acc = _accumulator(root / "around")
    assert [e.step for e in acc.Scalars("aggregate/CartPole-v1/return_mean")] == [0, 512, 1024]


def test_a_batch_from_the_old_layout_is_migrated(batch: Path, server: dict[str, Any], tmp_path: Path) -> None:
    """Folders older versions wrote (runs/aggregate/<env>/<arm>, runs/_layout) never stay as stale runs."""
    from torch.utils.tensorboard import SummaryWriter

    from clr_rl.analysis.tensorboard import _aggregates_stale, write_aggregates

    old = tmp_path / "old"
    shutil.copytree(batch, old, ignore=shutil.ignore_patterns("arms"))
    for folder in (old / "runs" / "aggregate" / "CartPole-v1" / "fixed", old / "runs" / "_layout"):
        writer = SummaryWriter(log_dir=str(folder))
        writer.add_scalar("aggregate/CartPole-v1/return_mean", 1.0, 0)
        writer.close()
    assert _aggregates_stale(old)
    write_aggregates(old)
    assert not (old / "runs" / "aggregate").exists() and not (old / "runs" / "_layout").exists()
    assert {p.parent.relative_to(old / "runs").as_posix() for p in (old / "runs").rglob("events.out.tfevents.*")
            if "seed" not in p.parent.name} == {f"arms/{a}" for a in ARMS}
    assert not _aggregates_stale(old)


def test_write_aggregates_needs_a_batch_folder(tmp_path: Path) -> None:
    from clr_rl.analysis.tensorboard import write_aggregates

    with pytest.raises(ValueError, match="not a batch folder"):
        write_aggregates(tmp_path)
