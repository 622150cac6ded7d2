"""A batch in TensorBoard: one run per arm (``runs/arms/<arm>``), the custom-scalars layout, HParams, serving."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from clr_rl.analysis.tb_aggregates import arm_series, finished_runs, write_arm
from clr_rl.run.tblayout import ALL_ENVS, ARMS_DIR, LAYOUT_SUFFIX, LEGACY_DIRS, aggregate_tag, write_layout

__all__ = ["ALL_ENVS", "ARMS_DIR", "aggregate_tag", "serve", "write_aggregates", "write_layout"]


# ------------------------------------------------------------------------------ aggregates
def _newest_result(runs_dir: Path) -> float:
    """mtime of the newest ``run.json`` / ``evaluations.csv`` of the per-seed runs (0 without any)."""
    newest = 0.0
    for pattern in ("run.json", "evaluations.csv"):
        for p in runs_dir.rglob(pattern):
            newest = max(newest, p.stat().st_mtime)
    return newest


def _report_stats(batch_dir: Path) -> dict[str, Any] | None:
    """``report/stats.json`` when it is newer than every run's results (else None: it would be stale)."""
    from clr_rl.store import read_json

    path = batch_dir / "report" / "stats.json"
    if not path.is_file() or path.stat().st_mtime < _newest_result(batch_dir / "runs"):
        return None
    data = read_json(path)
    return data if isinstance(data, dict) else None


def write_aggregates(batch_dir: Path, stats: dict[str, Any] | None = None, *, seed: int = 0,
                     reps: int = 2000) -> list[Path]:
    """Write one TensorBoard run per arm, ``<batch>/runs/arms/<arm>/``, holding every env's series.

    Per env (tags ``aggregate/<env>/...``): the mean return over the arm's finished seeds at each
    evaluation with its 95% percentile bootstrap CI (``reps`` resamples of the seeds, stream
    ``rng_for(seed, "tensorboard", env, arm)``: inside the observed returns), the normalised score
    (scores from :func:`clr_rl.run.references.resolve_refs`), the seed count and the LR applied
    with its min and max. Batch-level (``aggregate/all_envs/...``): the report's normalised IQM band
    (``stats["sample_efficiency"]``; ``stats`` defaults to ``report/stats.json`` when it is newer
    than the runs; without it, no IQM). Only finished runs and finite evaluations count.

    ``runs/arms/`` and what older versions wrote (``runs/aggregate/``, ``runs/_layout``) are deleted
    and rewritten each call, never appended; the layout is rewritten too. Returns the arm runs
    written. Raises ValueError if ``batch_dir`` holds no ``spec.resolved.json``.
    """
    from clr_rl.run.references import resolve_refs
    from clr_rl.store import read_json

    batch_dir = Path(batch_dir)
    path = batch_dir / "spec.resolved.json"
    if not path.is_file():
        raise ValueError(f"{str(batch_dir)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json(path)
    planned: list[dict[str, Any]] = resolved["runs"]
    runs_dir = batch_dir / "runs"
    for old in (ARMS_DIR, *LEGACY_DIRS):
        shutil.rmtree(runs_dir / old, ignore_errors=True)
    envs = list(dict.fromkeys(r["env_id"] for r in planned))
    arms = list(dict.fromkeys(r["arm"] for r in planned))
    refs = resolve_refs(batch_dir, resolved, envs)
    stats = stats if stats is not None else _report_stats(batch_dir)
    finished = finished_runs(batch_dir, planned)
    written: list[Path] = []
    ranges: dict[str, dict[str, tuple[float, float]]] = {}
    iqm = all(refs[e].normalisable for e in envs)
    has_iqm = False
    for arm in arms:
        series = arm_series(arm, envs, finished, refs, stats, seed=seed, reps=reps)
        if series.scalars:
            write_arm(runs_dir / ARMS_DIR / arm, series)
            written.append(runs_dir / ARMS_DIR / arm)
        has_iqm = has_iqm or aggregate_tag(ALL_ENVS, "normalized_iqm") in series.scalars
        for env, lr_range in series.lr_range.items():
            ranges.setdefault(env, {})[arm] = lr_range
    write_layout(runs_dir, envs, runs=planned, iqm=iqm and has_iqm, lr_ranges=ranges)
    return written


def _aggregates_stale(batch_dir: Path) -> bool:
    """Missing, left by an older version, or older than some run's ``run.json`` / ``evaluations.csv``."""
    runs_dir = batch_dir / "runs"
    root = runs_dir / ARMS_DIR
    if any((runs_dir / old).exists() for old in LEGACY_DIRS):
        return True
    written = [p.stat().st_mtime for p in root.rglob("events.out.tfevents.*") if not p.name.endswith(LAYOUT_SUFFIX)]
    return not written or _newest_result(runs_dir) > min(written)



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
            print(f"wrote {len(written)} arm runs under {folder / 'runs' / ARMS_DIR}", flush=True)
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
