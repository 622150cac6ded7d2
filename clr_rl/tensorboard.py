"""TensorBoard for a batch: run names, a custom-scalars layout, and ``clr-rl tensorboard``.

Each run folder ``<batch>/runs/<env>/<arm>/seed<k>`` holds its own event files, so with
``--logdir <batch>/runs`` TensorBoard names the runs ``<env>/<arm>/seed<k>`` and its run
filter groups them by env and arm. Every run also logs its HParams (arm, schedule kind
and parameters, env, seed, algo) with the metrics ``eval/final_return`` and ``eval/auc``.
Per-env tags ``env/<env>/eval_return`` and ``env/<env>/lr`` feed the custom-scalars
layout: one chart per env with every arm's return, and one with their LRs.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["env_tag", "serve", "write_layout"]


def env_tag(env_id: str, name: str) -> str:
    """Tag under which a run also logs ``name`` for the per-env custom-scalars charts."""
    return f"env/{env_id}/{name}"


def write_layout(runs_dir: Path, envs: list[str]) -> None:
    """Write the custom-scalars layout (one category per env) into ``runs_dir``."""
    import re

    from torch.utils.tensorboard import SummaryWriter

    layout = {
        env: {
            "return (every arm and seed)": ["Multiline", [re.escape(env_tag(env, "eval_return"))]],
            "learning rate applied": ["Multiline", [re.escape(env_tag(env, "lr"))]],
        }
        for env in envs
    }
    runs_dir.mkdir(parents=True, exist_ok=True)
    for old in runs_dir.glob("events.out.tfevents.*"):
        old.unlink()
    writer = SummaryWriter(log_dir=str(runs_dir))
    writer.add_custom_scalars(layout)
    writer.close()


def serve(folder: Path, *, port: int = 6006) -> int:
    """Start TensorBoard on a batch (its ``runs/``) or a single run folder; blocks until Ctrl-C."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder")
    if not 1 <= port <= 65535:
        raise ValueError(f"--port={port} must be in 1..65535")
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
