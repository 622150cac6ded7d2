"""Layer 1, schedules: pure, frozen, picklable LR schedules of SB3's ``progress_remaining``.

Every public name is re-exported here (``from clr_rl.schedules import Triangular2``):
models saved before the package was split name their schedule ``clr_rl.schedules.<Class>`` and still load."""

from __future__ import annotations

from clr_rl.schedules.base import Constant, Exponential, Linear, Space, elapsed_fraction, schedule_params
from clr_rl.schedules.cyclical import Anneal, CosineRestarts, ExpRange, OneCycle, Triangular, Triangular2
from clr_rl.schedules.text import (
    SCHEDULE_KINDS,
    Schedule,
    bind_gradient_steps,
    bind_total_timesteps,
    check_lr_resolution,
    parse_schedule,
)
from clr_rl.schedules.theory import Alternating, Spike

__all__ = ["Alternating", "Anneal", "Constant", "CosineRestarts", "ExpRange", "Exponential", "Linear", "OneCycle",
           "SCHEDULE_KINDS", "Schedule", "Space", "Spike", "Triangular", "Triangular2", "bind_gradient_steps",
           "bind_total_timesteps", "check_lr_resolution", "elapsed_fraction", "parse_schedule", "schedule_params"]

