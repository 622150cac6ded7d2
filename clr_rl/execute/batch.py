"""Execute planned runs into a folder: check, lock, skip complete runs, train the rest, summarise."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.execute.backends import _run_local, _run_ray
from clr_rl.execute.estimates import _check_memory, _minutes, _speed_source, estimate
from clr_rl.execute.lock import batch_lock
from clr_rl.execute.options import ExecOptions
from clr_rl.execute.planned import PlannedRun, _rerun, run_state
from clr_rl.execute.summary import _describe, _print_table, _progress_line, _write_summary, summary_rows
from clr_rl.execute.worker import _gpu_slots, _tasks
from clr_rl.run.record import Status, read_record
from clr_rl.run.tblayout import write_layout
from clr_rl.run.trust import verify_checkpoint
from clr_rl.store import (
    check_folders,
    check_writable,
    write_json_atomic,
    write_text_atomic,
)

__all__ = ["BatchFiles", "execute"]


@dataclass(frozen=True)
class BatchFiles:
    """Where one :func:`execute` call records its plan and summary (arm runs and tuning runs differ)."""

    plan: str = "spec.resolved.json"
    summary: str = "summary.csv"
    layout: bool = True  # the TensorBoard custom-scalars layout of the arm runs


_ARM_FILES = BatchFiles()


_TUNE_FILES = BatchFiles("tune/plan.json", "tune/summary.csv", False)


_lock = batch_lock  # one lock per results folder, re-entrant: a compare holds it for its whole batch


# ---------------------------------------------------------------------------------- execution
def execute(runs: list[PlannedRun], out: Path, *, meta: dict[str, Any], options: ExecOptions | None = None,
            spec_text: str | None = None, dry_run: bool = False, quiet: bool = False,
            files: BatchFiles = _ARM_FILES) -> int:
    """Train the planned runs into ``out`` (skipping complete ones); 0 all complete, 1 some failed.

    Shared by ``compare`` (arms, tuning, range sweeps, tradeoff curves), ``tune`` and ``lr-range``: the run
    folders are the only state. ``options``: where and how they run (:class:`ExecOptions`).
    """
    options = options or ExecOptions()
    retry_failed, backend, speeds = options.retry_failed, options.backend, options.speeds
    check_writable(out)
    check_folders(out, [r.folder for r in runs] + ([] if dry_run or not files.layout else ["runs/_layout"]))
    workers = options.workers or os.cpu_count() or 1
    states = {r.folder: run_state(out, r) for r in runs}
    stale = [r for r in runs if states[r.folder] is None]
    if stale:
        raise ConfigError(f"{out / stale[0].folder} holds a run with a different config than the spec now gives; "
                          "use a new --out (or delete that folder)")
    todo = [r for r in runs if states[r.folder] in _rerun(retry_failed)]
    est = {r.folder: estimate(r, speeds) for r in runs}
    if dry_run:
        _print_plan(runs, todo, states, est, out, meta, workers, speeds)
        return 0
    _check_checkpoints(out, todo, options.trust_checkpoints)
    tasks = _tasks(out, todo, options.gpus_per_run, options.trust_checkpoints)
    gpu_slots = _gpu_slots(options.gpus_per_run)
    if tasks and gpu_slots and all(t["gpus"] > 0 for t in tasks) and backend == "local":
        workers = min(workers, gpu_slots)
    _check_memory(todo, est, workers)
    with _lock(out):
        _record_plan(runs, out, {**meta, "estimate": {
            "cpu_seconds": round(sum(est[r.folder][0] for r in todo), 1), "workers": workers,
            "source": _speed_source(todo, speeds)}}, spec_text, files)
        for r in todo:
            if states[r.folder] == Status.FAILED:
                shutil.rmtree(out / r.folder)
        complete = sum(1 for r in runs if (states[r.folder] or Status.FAILED).complete)
        kept = len(runs) - len(todo) - complete  # failed runs left as they are (no --retry-failed)
        name = meta.get("name", out.name)
        print(f"{name}: {len(runs)} runs, {complete} already complete, "
              + (f"{kept} failed (rerun them with --retry-failed), " if kept else "")
              + f"{len(todo)} to run, {workers} {backend} workers -> {out}", flush=True)
        t0 = time.time()
        seconds = {r.folder: 0.0 if states[r.folder] == Status.FAILED and not retry_failed else est[r.folder][0]
                   for r in runs}  # a failed run left as it is has no work left
        start = _progress_line(out, runs, t0, None, seconds)

        def report() -> str:
            return _describe(_progress_line(out, runs, t0, start, seconds))

        try:
            if tasks and backend == "ray":  # nothing to train: no Ray instance to start
                _run_ray(tasks, workers, options.address, report, cap=options.workers)
            elif tasks:
                _run_local(tasks, workers, report)
        except KeyboardInterrupt:
            _write_summary(out / files.summary, summary_rows(out, runs))
            print("\nstopped: finished runs are kept, running ones stopped at a checkpoint; run the same command "
                  "again to continue", file=sys.stderr)
            raise
        rows = summary_rows(out, runs)
        _write_summary(out / files.summary, rows)
    return _summarise(rows, out, files, quiet)


def _check_checkpoints(out: Path, todo: list[PlannedRun], trust: bool) -> None:
    """Before anything trains: every checkpoint a run would resume from is signed by this user
    (:func:`clr_rl.run.trust.verify_checkpoint`), unless ``trust``."""
    for r in todo:
        for name in ("checkpoint", "checkpoint.old"):
            if (out / r.folder / name / "state.json").is_file():
                verify_checkpoint(out / r.folder / name, trust=trust)
                break


def _print_plan(runs: list[PlannedRun], todo: list[PlannedRun], states: dict[str, Status | None], est: dict[str, Any],
                out: Path, meta: dict[str, Any], workers: int, speeds: dict[str, dict[str, float]] | None) -> None:
    shape = f" ({meta['shape']})" if meta.get("shape") else ""
    print(f"{meta.get('name', out.name)}: {len(runs)} runs{shape}, {len(todo)} to run -> {out}")
    print(f"{'env':<24} {'algo':<4} {'arm':<20} {'seed':>4} {'timesteps':>10} {'est_s':>7} {'est_GB':>6}  state")
    for r in runs:
        s, gb = est[r.folder]
        state = states[r.folder]
        print(f"{r.env_id:<24} {r.prepared.config.algo:<4} {r.arm:<20} {r.seed:>4} "
              f"{r.prepared.config.timesteps:>10,} {s:>7.0f} {gb:>6.2f}  {state or 'stale'}")
    seconds = [est[r.folder][0] for r in todo]
    print(f"estimated: {sum(seconds):,.0f} CPU-seconds, about {_minutes(seconds, workers):.1f} min "
          f"with {workers} workers ({_speed_source(runs, speeds)}, 1 thread per run)")


def _record_plan(runs: list[PlannedRun], out: Path, meta: dict[str, Any], spec_text: str | None,
                 files: BatchFiles) -> None:
    if spec_text is not None:
        spec_copy = out / "spec.toml"
        if not spec_copy.exists() or spec_copy.read_text() != spec_text:
            write_text_atomic(spec_copy, spec_text)
    write_json_atomic(out / files.plan, {
        **meta, "runs": [{"folder": r.folder, "run_id": r.prepared.run_id(), **r.prepared.resolved()} for r in runs],
    })
    if files.layout:
        write_layout(out / "runs", list(dict.fromkeys(r.env_id for r in runs)))


def _summarise(rows: list[dict[str, Any]], out: Path, files: BatchFiles, quiet: bool) -> int:
    if not quiet:
        print()
        _print_table(rows)
    failed = [r for r in rows if r["status"] == Status.FAILED.value]
    for row in failed:
        print(f"FAILED {row['folder']}: {read_record(out / row['folder'])[1].get('error', '?')}")
    diverged = sum(1 for r in rows if r["status"] == Status.DIVERGED.value)
    if diverged:
        print(f"{diverged} run(s) diverged (complete: the report scores them by its diverged-run rule)")
    if failed:
        print(f"{len(failed)} run(s) failed; see run.json in their folders; rerun with --retry-failed")
    stopped = [r for r in rows if Status(r["status"]).resumable]
    for row in stopped:
        error = read_record(out / row["folder"])[1].get("error", "")
        print(f"NOT DONE {row['folder']}: {row['status']}{f' ({error})' if error else ''}")
    if stopped:
        print(f"{len(stopped)} run(s) did not finish (e.g. a full disk); run the same command again to resume them")
    print(f"summary: {out / files.summary}")
    return 1 if failed or stopped else 0
