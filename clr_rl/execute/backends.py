"""Where runs execute: a spawn-context local process pool or Ray tasks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from clr_rl.execute.worker import _mark_dead, _worker_init, run_task
from clr_rl.run.record import Status, read_status


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
                            started = read_status(Path(task["folder"])) == Status.RUNNING
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



_RAY_AUTH = ("Ray 2.60 clusters started with `ray start --head` use token authentication: give this process the "
             "cluster's token (RAY_AUTH_MODE=token with the token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or "
             "RAY_AUTH_TOKEN; `ray get-auth-token` on the head prints it), or start the cluster with "
             "RAY_AUTH_MODE=disabled on a trusted network; see docs/gpus-and-ray.md")


def check_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """``--address`` reachable: ``auto``, or ``HOST:PORT`` / ``ray://HOST:PORT`` that accepts a TCP
    connection within ``timeout_s`` (Ray itself would wait on a wrong address without end). ConfigError
    (a malformed address) or StateError (nothing answers there), one line each."""
    import socket

    from clr_rl.errors import ConfigError, StateError

    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address={address!r} must be auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise StateError(f"--address={address!r}: no Ray cluster answers there within {timeout_s:g} s "
                         f"({exc.strerror or type(exc).__name__}); check the head node's address and port "
                         "(`ray status` on the head prints it)") from None


def _ray_init(ray: Any, workers: int, address: str | None) -> None:
    """Start (no ``address``) or join a Ray instance; a refused connection is one line naming the likely
    cause (token authentication), not a traceback."""
    from clr_rl.errors import StateError

    try:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StateError(f"Ray: could not {'start' if address is None else f'connect to {address}'}: "
                         f"{type(exc).__name__}: {first[:300]}. {_RAY_AUTH}") from None


def _run_ray(tasks: list[dict[str, Any]], workers: int, address: str | None, report: Any,
             cap: int | None = None) -> None:
    """Each run is a Ray task (1 CPU, or ``num_gpus`` for CUDA runs); results land in the same folders.
    At most ``cap`` runs are in flight at once (``--workers``; None: as many as the cluster takes; a
    local instance has ``workers`` CPUs anyway).

    Ray tasks rather than Tune trials: a run is one function call with no search to drive,
    and the run folder (not Tune's experiment state) is the source of truth for resume.
    Run folders must be on storage every node sees (shared filesystem) — with a local
    instance that is simply this disk.
    """
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        _ray_init(ray, workers, address)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        refs: dict[Any, dict[str, Any]] = {}
        queue = list(tasks)
        limit = cap or len(tasks)

        def submit() -> None:
            while queue and len(pending) < limit:
                t = queue.pop(0)
                if t["gpus"]:  # Ray picks the GPU and sets CUDA_VISIBLE_DEVICES: the task sees it as cuda
                    t = {**t, "config": {**t["config"], "device": "cuda"}}
                t = {**t, "backend": "ray"}
                ref = remote.options(num_gpus=t["gpus"]).remote(t)
                refs[ref] = t
                pending.append(ref)

        last = 0.0
        pending: list[Any] = []
        submit()
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as exc:  # a worker that died: only its run fails
                    _mark_dead(refs[ref], f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            submit()
            last = _show(report, last, final=not pending)
    finally:
        if started_here:
            ray.shutdown()
