"""The LR-vs-timesteps figure of one schedule (``clr-rl schedule --png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clr_rl.plotting import _pyplot

__all__ = ["plot_schedule"]


def plot_schedule(schedule: Any, timesteps: int, path: Path, *, points: int = 1001) -> Path:
    """Draw ``schedule`` over a run of ``timesteps`` (log y-axis when it spans a decade)."""
    plt = _pyplot()
    ts = [timesteps * i / (points - 1) for i in range(points)]
    lrs = [schedule(1 - t / timesteps) for t in ts]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    ax.plot(ts, lrs, lw=1.6)
    if min(lrs) > 0 and max(lrs) / min(lrs) >= 10:
        ax.set_yscale("log")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("learning rate")
    ax.set_title(str(schedule), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path



def _lr_curve(schedule_text: str, timesteps: int, ts: Any) -> Any:
    from clr_rl.schedules.text import bind_total_timesteps, parse_schedule

    schedule = bind_total_timesteps(parse_schedule(schedule_text), timesteps)
    return [schedule(1 - t / timesteps) for t in ts]
