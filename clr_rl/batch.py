"""Run a comparison batch: plan, check memory, skip finished runs, train the rest in parallel.

Layout of a batch folder::

    <out>/spec.toml            the spec as given
    <out>/spec.resolved.json   every run's resolved config and id
    <out>/runs/<env>/<arm>/seed<k>/   one run folder each (the source of truth)
    <out>/summary.csv          one row per run, rebuilt from the run folders

Runs are independent processes (local pool, or Ray tasks); a run that raises is
recorded as failed with its traceback and the batch goes on.
"""

from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clr_rl.specs import PlannedRun, load_spec, plan
from clr_rl.store import check_writable, read_evaluations, read_json, write_json_atomic, write_text_atomic

__all__ = ["SUMMARY_COLUMNS", "compare", "estimate", "print_status", "summary_rows"]

SUMMARY_COLUMNS = ("env", "algo", "arm", "seed", "status", "final_return", "auc", "timesteps", "wall_seconds",
                   "run_id", "folder")

# Single-thread training speeds on a 2-core machine (steps/s): FACTS.md for bare SB3, and PPO
# classic measured here with the Zoo hyperparameters (8-16 envs: CartPole 50k in 20 s, Acrobot 100k in 22 s).
_SPEED = {("ppo", "classic"): 2500, ("ppo", "box2d"): 1500, ("ppo", "mujoco"): 1310, ("ppo", "atari"): 235,
          ("dqn", "classic"): 1840, ("dqn", "box2d"): 1400, ("dqn", "atari"): 100}
_PROCESS_GB = 0.45  # a worker with torch + SB3 + an env, measured RSS ~0.4 GB


def estimate(run: PlannedRun) -> tuple[float, float]:
    """(seconds, GB) a run is expected to take: speed table + evaluation; replay/rollout buffers."""
    p = run.prepared
    speed = _SPEED.get((p.config.algo, p.family), 1000)
    steps = p.config.timesteps
    evals = steps // p.eval_every + 2
    eval_steps = evals * p.eval_episodes * (1000 if p.family in ("mujoco", "atari") else 300)
    seconds = steps / speed + eval_steps / (speed * 4)
    from clr_rl.runner import buffer_gb

    return seconds, _PROCESS_GB + buffer_gb(p)


def _available_gb() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1e6
    except OSError:  # pragma: no cover
        pass
    return math.inf


def _state(out: Path, run: PlannedRun) -> str:
    """done | failed | partial | todo | stale (a different config lives in the folder)."""
    path = out / run.folder / "run.json"
    if not path.is_file():
        return "todo"
    try:
        record = read_json(path)
    except ValueError:
        return "partial"
    if record.get("run_id") != run.prepared.run_id():
        return "stale"
    return {"finished": "done", "failed": "failed"}.get(record.get("status", ""), "partial")


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"out={str(out)!r} is in use by another clr-rl compare") from None
        yield


_STOP: Any = None  # set in pool workers: no new run starts once the batch is stopping
_BUSY: Any = None  # set in pool workers while a run is in flight


def _worker_init() -> None:
    """Pool workers: a SIGINT between runs (Ctrl-C of the batch) means "start no more runs"; during a
    run, the run's own handler stops it at a rollout boundary with a checkpoint. If the batch process
    dies (kill -9), the worker stops the same way instead of running on, orphaned, into folders that a
    rerun now owns."""
    import signal
    import threading

    global _STOP, _BUSY
    _STOP, _BUSY = threading.Event(), threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: _STOP.set())
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        if not _STOP.is_set():
            _STOP.set()
            os.kill(os.getpid(), signal.SIGINT)
        while _BUSY.is_set():  # let the run in flight write its checkpoint, then leave
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Train one planned run in this process (a pool worker or a Ray task); never raises."""
    import torch

    torch.set_num_threads(1)
    folder = Path(task["folder"])
    if _STOP is not None and _STOP.is_set():
        return {"folder": str(folder), "status": "skipped"}
    if _BUSY is not None:
        _BUSY.set()
    try:
        return _run_one(task, folder)
    finally:
        if _BUSY is not None:
            _BUSY.clear()


def _run_one(task: dict[str, Any], folder: Path) -> dict[str, Any]:
    import traceback

    from clr_rl.runner import RunConfig, prepare, train

    try:
        prepared = prepare(RunConfig.from_dict(task["config"]))
        record = train(prepared, folder, resume=True)
        return {"folder": str(folder), "status": record["status"]}
    except (KeyboardInterrupt, SystemExit):  # stopped from outside (Ctrl-C, shutdown): resumable, not failed
        record_path = folder / "run.json"
        if record_path.is_file():
            record = read_json(record_path)
            if record.get("status") == "running":
                write_json_atomic(record_path, {**record, "status": "interrupted"})
        return {"folder": str(folder), "status": "interrupted"}
    except BaseException as exc:  # recorded, the batch goes on
        record_path = folder / "run.json"
        record = read_json(record_path) if record_path.is_file() else {}
        if record.get("status") != "failed":
            record.update(status="failed", error=repr(exc), traceback=traceback.format_exc(),
                          run_id=task["run_id"])
            write_json_atomic(record_path, record)
        return {"folder": str(folder), "status": "failed", "error": repr(exc)}


def _task(out: Path, run: PlannedRun) -> dict[str, Any]:
    config = run.prepared.config.to_dict()
    config.update(schedule=str(run.prepared.schedule), eval_every=run.prepared.eval_every,
                  eval_episodes=run.prepared.eval_episodes, threads=1)
    return {"folder": str(out / run.folder), "run_id": run.prepared.run_id(), "config": config}


def summary_rows(out: Path, runs: list[PlannedRun] | None = None) -> list[dict[str, Any]]:
    """One row per run folder, read from the folders themselves."""
    if runs is None:
        folders = sorted(p.parent for p in (out / "runs").glob("**/run.json"))
    else:
        folders = [out / r.folder for r in runs]
    rows = []
    for folder in folders:
        path = folder / "run.json"
        record = read_json(path) if path.is_file() else {}
        cfg = record.get("config", {})
        rel = folder.relative_to(out / "runs").parts
        evals = read_evaluations(folder / "evaluations.csv")
        final = record.get("final_eval", {})
        rows.append({
            "env": cfg.get("env_id", "/".join(rel[:-2])), "algo": cfg.get("algo", ""),
            "arm": cfg.get("arm", rel[-2]), "seed": cfg.get("seed", rel[-1].removeprefix("seed")),
            "status": {"finished": "done"}.get(record.get("status", "todo"), record.get("status", "todo")),
            "final_return": final.get("mean_return", ""), "auc": record.get("auc", ""),
            "timesteps": int(evals[-1]["timesteps"]) if evals else 0,
            "wall_seconds": record.get("wall_seconds", ""), "run_id": record.get("run_id", ""),
            "folder": str(folder.relative_to(out)),
        })
    return rows


def _write_summary(out: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "summary.csv", buf.getvalue())


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = ("env", "algo", "arm", "seed", "status", "final_return", "auc", "timesteps", "wall_seconds")
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _progress_line(out: Path, runs: list[PlannedRun], t0: float, steps0: int) -> dict[str, Any]:
    counts = {"done": 0, "failed": 0, "left": 0}
    steps = 0
    for r in runs:
        state = _state(out, r)
        counts["done" if state == "done" else "failed" if state == "failed" else "left"] += 1
        evals = read_evaluations(out / r.folder / "evaluations.csv")
        steps += int(evals[-1]["timesteps"]) if evals else 0
    total = sum(r.prepared.config.timesteps for r in runs)
    rate = max(steps - steps0, 0) / max(time.time() - t0, 1e-9)
    eta = max(total - steps, 0) / rate if rate > 0 else math.inf
    return {**counts, "steps": steps, "total": total, "rate": rate, "eta": eta}


def _describe(p: dict[str, Any]) -> str:
    eta = "?" if not math.isfinite(p["eta"]) else time.strftime("%H:%M:%S", time.gmtime(p["eta"]))
    return (f"runs done {p['done']}, failed {p['failed']}, left {p['left']} | "
            f"{p['steps']:,}/{p['total']:,} steps, {p['rate']:,.0f} steps/s | ETA {eta}")


def _check_backend(backend: str, address: str | None, workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise ValueError(f"--workers={workers} must be >= 1")
    if backend not in ("local", "ray"):
        raise ValueError(f"--backend={backend!r} must be local or ray")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("--backend ray needs Ray: pip install 'clr-rl[ray]' "
                             "(or pip install 'ray[default]')") from None
    elif address is not None:
        raise ValueError("--address is only for --backend ray")


def compare(spec_path: Path | str, *, out: Path | None = None, workers: int | None = None, dry_run: bool = False,
            retry_failed: bool = False, backend: str = "local", address: str | None = None,
            device: str | None = None) -> int:
    """Run a spec; returns the exit status (0 all done, 1 some failed, 2 bad input)."""
    spec = load_spec(spec_path, device=device)
    out = Path(out) if out is not None else Path("results") / spec.name
    _check_backend(backend, address, workers)
    check_writable(out)
    runs = plan(spec)
    shape = f"{len(spec.envs)} envs x {len(spec.arms)} arms x {len(spec.seeds)} seeds"
    meta = {"name": spec.name, "spec": spec.raw, "baseline": spec.baseline, "shape": shape}
    return execute(runs, out, meta=meta, spec_text=Path(spec_path).read_text(), workers=workers, dry_run=dry_run,
                   retry_failed=retry_failed, backend=backend, address=address, gpus_per_run=spec.gpus_per_run)


def execute(runs: list[PlannedRun], out: Path, *, meta: dict[str, Any], spec_text: str | None = None,
            workers: int | None = None, dry_run: bool = False, retry_failed: bool = False, backend: str = "local",
            address: str | None = None, gpus_per_run: float = 1.0, quiet: bool = False) -> int:
    """Train the planned runs into ``out`` (skipping finished ones); 0 all done, 1 some failed.

    Shared by ``compare``, ``tune`` and ``lr-range``: the run folders are the only state.
    """
    _check_backend(backend, address, workers)
    check_writable(out)
    workers = workers or os.cpu_count() or 1
    stale = [r for r in runs if _state(out, r) == "stale"]
    if stale:
        raise ValueError(f"{out / stale[0].folder} holds a run with a different config than the spec now gives; "
                         "use a new --out (or delete that folder)")
    states = {r.folder: _state(out, r) for r in runs}
    rerun = ("todo", "partial", "failed") if retry_failed else ("todo", "partial")
    todo = [r for r in runs if states[r.folder] in rerun]
    est = {r.folder: estimate(r) for r in runs}
    name = meta.get("name", out.name)
    if dry_run:
        shape = f" ({meta['shape']})" if meta.get("shape") else ""
        print(f"{name}: {len(runs)} runs{shape}, {len(todo)} to run -> {out}")
        print(f"{'env':<24} {'algo':<4} {'arm':<20} {'seed':>4} {'timesteps':>10} {'est_s':>7} {'est_GB':>6}  state")
        for r in runs:
            s, gb = est[r.folder]
            print(f"{r.env_id:<24} {r.prepared.config.algo:<4} {r.arm:<20} {r.seed:>4} "
                  f"{r.prepared.config.timesteps:>10,} {s:>7.0f} {gb:>6.2f}  {states[r.folder]}")
        total_s = sum(est[r.folder][0] for r in todo)
        print(f"estimated: {total_s:,.0f} CPU-seconds, about {total_s / min(workers, max(len(todo), 1)) / 60:.1f} min "
              f"with {workers} workers (speeds measured on a 2-core machine, 1 thread per run)")
        return 0
    tasks = _tasks(out, todo, gpus_per_run)
    gpu_slots = _gpu_slots(gpus_per_run)
    if tasks and gpu_slots and all(t["gpus"] > 0 for t in tasks) and backend == "local":
        workers = min(workers, gpu_slots)
    if todo:
        need = min(workers, len(todo)) * max(est[r.folder][1] for r in todo)
        have = _available_gb()
        if need > 0.9 * have:
            largest = max(todo, key=lambda r: est[r.folder][1])
            raise ValueError(f"memory: {min(workers, len(todo))} workers need about {need:.1f} GB (largest run "
                             f"{largest.folder}: {est[largest.folder][1]:.1f} GB) but {have:.1f} GB is available; "
                             "use fewer --workers or a smaller buffer_size")
    with _lock(out):
        if spec_text is not None:
            spec_copy = out / "spec.toml"
            if not spec_copy.exists() or spec_copy.read_text() != spec_text:
                write_text_atomic(spec_copy, spec_text)
        write_json_atomic(out / "spec.resolved.json", {
            **meta, "runs": [{"folder": r.folder, "run_id": r.prepared.run_id(), **r.prepared.resolved()}
                             for r in runs],
        })
        from clr_rl.tensorboard import write_layout

        write_layout(out / "runs", list(dict.fromkeys(r.env_id for r in runs)))
        for r in todo:
            if states[r.folder] == "failed":
                shutil.rmtree(out / r.folder)
        done = sum(1 for r in runs if states[r.folder] == "done")
        kept = len(runs) - len(todo) - done  # failed runs left as they are (no --retry-failed)
        print(f"{name}: {len(runs)} runs, {done} already done, "
              + (f"{kept} failed (rerun them with --retry-failed), " if kept else "")
              + f"{len(todo)} to run, {workers} {backend} workers -> {out}", flush=True)
        t0 = time.time()
        steps0 = _progress_line(out, runs, t0, 0)["steps"]

        def report() -> str:
            return _describe(_progress_line(out, runs, t0, steps0))

        try:
            if tasks and backend == "ray":  # nothing to train: no Ray instance to start
                _run_ray(tasks, workers, address, report)
            elif tasks:
                _run_local(tasks, workers, report)
        except KeyboardInterrupt:
            _write_summary(out, summary_rows(out, runs))
            print("\nstopped: finished runs are kept, running ones stopped at a checkpoint; run the same command "
                  "again to continue", file=sys.stderr)
            raise
        rows = summary_rows(out, runs)
        _write_summary(out, rows)
    if not quiet:
        print()
        _print_table(rows)
    failed = [r for r in rows if r["status"] == "failed"]
    for row in failed:
        record = read_json(out / row["folder"] / "run.json")
        print(f"FAILED {row['folder']}: {record.get('error', '?')}")
    if failed:
        print(f"{len(failed)} run(s) failed; see run.json in their folders; rerun with --retry-failed")
    print(f"summary: {out / 'summary.csv'}")
    return 1 if failed else 0


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _gpu_slots(gpus_per_run: float) -> int:
    """How many GPU runs fit at once on this machine's GPUs (a fraction lets runs share one)."""
    n = _cuda_count()
    if n == 0:
        return 0
    return n * int(1 / gpus_per_run) if gpus_per_run < 1 else max(1, n // math.ceil(gpus_per_run))


def _tasks(out: Path, runs: list[PlannedRun], gpus_per_run: float) -> list[dict[str, Any]]:
    """Tasks with their device placed: CUDA runs go round-robin over the local GPUs."""
    from clr_rl.runner import resolve_device

    n_gpus = _cuda_count()
    tasks = []
    for i, run in enumerate(runs):
        task = _task(out, run)
        device = resolve_device(run.prepared.config.device, run.prepared.agent.policy)
        if device.startswith("cuda"):
            task["gpus"] = gpus_per_run
            if device == "cuda" and n_gpus > 1:
                device = f"cuda:{i % n_gpus}"
        else:
            task["gpus"] = 0
        task["config"]["device"] = device
        tasks.append(task)
    return tasks


def _show(report: Any, last: float, final: bool) -> float:
    """Print the progress line: in place on a terminal, every 30 s in a log."""
    now = time.time()
    tty = sys.stderr.isatty()
    if tty or now - last > 30 or final:
        print(f"\r{report()}" if tty else report(), end="\n" if final or not tty else "", file=sys.stderr, flush=True)
        return now
    return last


def _run_local(tasks: list[dict[str, Any]], workers: int, report: Any) -> None:
    """A spawn-context process pool, one torch thread per worker.

    A dead worker (OOM, segfault, kill) breaks the whole pool: runs that had not started are
    queued again in a fresh pool; runs that were in flight are queued again once (they resume
    from their checkpoints) and marked failed if they are in flight at a second breakage.
    Ctrl-C / SIGTERM: queued runs are cancelled, running ones stop at a rollout boundary with a
    checkpoint, and KeyboardInterrupt propagates.
    """
    import multiprocessing
    import signal
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending = list(tasks)
    breaks: dict[str, int] = {}
    last = 0.0
    pool: ProcessPoolExecutor | None = None

    def on_term(signum: int, frame: Any) -> None:
        for proc in list(getattr(pool, "_processes", {}).values()):  # workers stop at a rollout boundary
            try:
                os.kill(proc.pid, signal.SIGINT)
            except OSError:
                pass
        raise KeyboardInterrupt

    import threading

    main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        while pending:
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx,
                                       initializer=_worker_init)
            futures = {pool.submit(run_task, t): t for t in pending}
            pending = []
            not_done = set(futures)
            try:
                while not_done:
                    done, not_done = wait(not_done, timeout=2.0, return_when=FIRST_COMPLETED)
                    for f in done:
                        task = futures[f]
                        try:
                            f.result()
                        except BrokenProcessPool:
                            path = Path(task["folder"]) / "run.json"
                            started = path.is_file() and read_json(path).get("status") == "running"
                            breaks[task["folder"]] = breaks.get(task["folder"], 0) + int(started)
                            if breaks[task["folder"]] >= 2:
                                _mark_dead(task)
                            else:
                                pending.append(task)
                        except Exception as exc:  # pragma: no cover - run_task never raises
                            _mark_dead(task, repr(exc))
                    last = _show(report, last, final=not not_done and not pending)
            except KeyboardInterrupt:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    finally:
        if main:
            signal.signal(signal.SIGTERM, old_term)


def _run_ray(tasks: list[dict[str, Any]], workers: int, address: str | None, report: Any) -> None:
    """Each run is a Ray task (1 CPU, or ``num_gpus`` for CUDA runs); results land in the same folders.

    Ray tasks rather than Tune trials: a run is one function call with no search to drive,
    and the run folder (not Tune's experiment state) is the source of truth for resume.
    Run folders must be on storage every node sees (shared filesystem) — with a local
    instance that is simply this disk.
    """
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        refs = {}
        for t in tasks:
            if t["gpus"]:  # Ray picks the GPU and sets CUDA_VISIBLE_DEVICES: the task sees it as cuda
                t = {**t, "config": {**t["config"], "device": "cuda"}}
            refs[remote.options(num_gpus=t["gpus"]).remote(t)] = t
        last = 0.0
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as exc:  # a worker that died: only its run fails
                    _mark_dead(refs[ref], f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            last = _show(report, last, final=not pending)
    finally:
        if started_here:
            ray.shutdown()


def _mark_dead(task: dict[str, Any], error: str = "the worker process died (killed, or out of memory)") -> None:
    path = Path(task["folder"]) / "run.json"
    record = read_json(path) if path.is_file() else {"run_id": task["run_id"]}
    if record.get("status") != "finished":
        record.update(status="failed", error=error)
        write_json_atomic(path, record)


def print_status(out: Path) -> int:
    """``clr-rl status DIR``: counts, steps and the summary table of a batch."""
    out = Path(out)
    if not (out / "spec.resolved.json").is_file():
        raise ValueError(f"{str(out)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json(out / "spec.resolved.json")
    expected = [r["folder"] for r in resolved["runs"]]
    rows = summary_rows(out)
    by_folder = {r["folder"]: r for r in rows}
    done = sum(1 for f in expected if by_folder.get(f, {}).get("status") == "done")
    failed = sum(1 for f in expected if by_folder.get(f, {}).get("status") == "failed")
    running = sum(1 for f in expected if by_folder.get(f, {}).get("status") in ("running", "interrupted"))
    steps = sum(int(by_folder[f]["timesteps"]) for f in expected if f in by_folder)
    total = sum(int(r["timesteps"]) for r in resolved["runs"])
    print(f"{resolved['name']}: {len(expected)} runs: done {done}, failed {failed}, started {running}, "
          f"not started {len(expected) - done - failed - running} | {steps:,}/{total:,} steps "
          f"({100 * steps / max(total, 1):.0f}%)")
    _print_table([by_folder[f] for f in expected if f in by_folder])
    return 0
