"""clr-rl: cyclical learning rates for Stable-Baselines3, and the statistics to judge them.

Schedules are pure values you can hand to SB3 directly::

    from stable_baselines3 import PPO
    from clr_rl import Triangular2
    model = PPO("MlpPolicy", "CartPole-v1", learning_rate=Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=4))
"""

from typing import TYPE_CHECKING, Any

from clr_rl.schedules import (
    SCHEDULE_KINDS,
    Alternating,
    Constant,
    CosineRestarts,
    Exponential,
    ExpRange,
    Linear,
    OneCycle,
    Schedule,
    Spike,
    Triangular,
    Triangular2,
    bind_gradient_steps,
    bind_total_timesteps,
    check_lr_resolution,
    elapsed_fraction,
    parse_schedule,
    schedule_params,
)

__version__ = "0.1.0"

# The Python API behind the CLI, loaded on first use so that `import clr_rl` (and `clr-rl --help`) stays light.
# (The report is `clr_rl.report.report`: the name `report` is its module's.)
_API = {
    "compare": "clr_rl.batch", "execute": "clr_rl.batch",
    "RunConfig": "clr_rl.runner", "prepare": "clr_rl.runner", "resume": "clr_rl.runner", "train": "clr_rl.runner",
    "load_spec": "clr_rl.specs", "plan": "clr_rl.specs",
    "lr_range_single": "clr_rl.tuning", "lr_range_sweep": "clr_rl.tuning", "tune": "clr_rl.tuning",
    "tradeoff": "clr_rl.tradeoff",
}

if TYPE_CHECKING:
    from clr_rl.batch import compare, execute
    from clr_rl.runner import RunConfig, prepare, resume, train
    from clr_rl.specs import load_spec, plan
    from clr_rl.tradeoff import tradeoff
    from clr_rl.tuning import lr_range_single, lr_range_sweep, tune


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'clr_rl' has no attribute {name!r}")


__all__ = [
    "SCHEDULE_KINDS",
    "Alternating",
    "Constant",
    "CosineRestarts",
    "ExpRange",
    "Exponential",
    "Linear",
    "RunConfig",
    "OneCycle",
    "Schedule",
    "Spike",
    "Triangular",
    "Triangular2",
    "__version__",
    "bind_gradient_steps",
    "bind_total_timesteps",
    "check_lr_resolution",
    "compare",
    "elapsed_fraction",
    "execute",
    "load_spec",
    "lr_range_single",
    "lr_range_sweep",
    "parse_schedule",
    "plan",
    "prepare",
    "resume",
    "schedule_params",
    "tradeoff",
    "train",
    "tune",
]
