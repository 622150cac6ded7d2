"""One run in a worker process (pool worker or Ray task): never raises, records what happened."""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.execute.planned import PlannedRun
from clr_rl.run.record import RunRecord, Status, read_status

__all__ = ["run_task"]

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
    threading.excepthook = _quiet_disk_full
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



def _quiet_disk_full(args: Any) -> None:
    """A background thread (TensorBoard's event writer) that dies of a full disk prints no traceback: the
    run's own write fails the same way, leaves the run resumable, and the batch says so in one line."""
    import threading

    from clr_rl.errors import DISK_FULL

    if isinstance(args.exc_value, OSError) and args.exc_value.errno in DISK_FULL:
        return
    threading.__excepthook__(args)


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
        result = _run_one(task, folder)
        if result["status"] == Status.INTERRUPTED.value and _STOP is not None:
            _STOP.set()  # the signal that stopped this run means the batch is stopping: start no queued run
        return result
    finally:
        if _BUSY is not None:
            _BUSY.clear()



def _run_one(task: dict[str, Any], folder: Path) -> dict[str, Any]:
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.run.train import train

    try:
        record = train(prepare(RunConfig.from_dict(task["config"])), folder, resume=True,
                       trust_checkpoints=bool(task.get("trust_checkpoints")))
        record.executor = {"backend": task.get("backend", "local"), "host": socket.gethostname(), "pid": os.getpid()}
        record.write(folder)
        return {"folder": str(folder), "status": record.status.value}
    except (KeyboardInterrupt, SystemExit):  # stopped from outside: recorded interrupted (resumable)
        return {"folder": str(folder), "status": Status.INTERRUPTED.value}
    except BaseException as exc:  # recorded failed/diverged by the run's lifecycle; the batch goes on
        if read_status(folder) not in (Status.FAILED, Status.DIVERGED):  # raised before the run started
            _mark_dead(task, f"{type(exc).__name__}: {exc}")
        return {"folder": str(folder), "status": read_status(folder).value, "error": repr(exc)}



def _task(out: Path, run: PlannedRun) -> dict[str, Any]:
    config = run.prepared.config.to_dict()
    config.update(schedule=str(run.prepared.schedule), eval_every=run.prepared.eval_every,
                  eval_episodes=run.prepared.eval_episodes, threads=1)
    return {"folder": str(out / run.folder), "run_id": run.prepared.run_id(), "config": config}



def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0



def _gpu_slots(gpus_per_run: float) -> int:
    """How many GPU runs fit at once on this machine's GPUs (a fraction lets runs share one)."""
    n = _cuda_count()
    if n == 0:
        return 0
    return n * int(1 / gpus_per_run) if gpus_per_run < 1 else max(1, n // math.ceil(gpus_per_run))



def _tasks(out: Path, runs: list[PlannedRun], gpus_per_run: float, trust: bool = False) -> list[dict[str, Any]]:
    """Tasks with their device placed: CUDA runs go round-robin over the local GPUs."""
    from clr_rl.run.prepare import resolve_device

    n_gpus = _cuda_count()
    tasks = []
    for i, run in enumerate(runs):
        task = {**_task(out, run), "trust_checkpoints": trust}
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



def _mark_dead(task: dict[str, Any], error: str = "the worker process died (killed, or out of memory)") -> None:
    """Record a run whose worker died (or that raised before its lifecycle began) as failed."""
    folder = Path(task["folder"])
    try:
        record = RunRecord.read(folder)
    except ConfigError:
        record = RunRecord(run_id=task["run_id"], config=task["config"])
    if not record.status.complete:
        record.status, record.error = Status.FAILED, error
        try:
            folder.mkdir(parents=True, exist_ok=True)
            record.write(folder)
        except OSError:  # a full disk: the run keeps its last record (resumable), the batch says so
            pass
