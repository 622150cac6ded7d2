"""clr-rl: cyclical learning rates for Stable-Baselines3, and the statistics to judge them.

Schedules are pure values you can hand to SB3 directly::

    from stable_baselines3 import PPO
    from clr_rl import Triangular2
    model = PPO("MlpPolicy", "CartPole-v1", learning_rate=Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=4))
"""

from clr_rl.schedules import (
    SCHEDULE_KINDS,
    Constant,
    CosineRestarts,
    Exponential,
    ExpRange,
    Linear,
    OneCycle,
    Schedule,
    Triangular,
    Triangular2,
    bind_total_timesteps,
    check_lr_resolution,
    elapsed_fraction,
    parse_schedule,
    schedule_params,
)

__version__ = "0.1.0"

__all__ = [
    "SCHEDULE_KINDS",
    "Constant",
    "CosineRestarts",
    "ExpRange",
    "Exponential",
    "Linear",
    "OneCycle",
    "Schedule",
    "Triangular",
    "Triangular2",
    "__version__",
    "bind_total_timesteps",
    "check_lr_resolution",
    "elapsed_fraction",
    "parse_schedule",
    "schedule_params",
]
