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
# (The report is `clr_rl.analysis.report.report`: the name `report` is its module's.)
_API = {
    "compare": "clr_rl.compare.driver", "execute": "clr_rl.execute.batch",
    "RunConfig": "clr_rl.run.config", "prepare": "clr_rl.run.prepare", "resume": "clr_rl.run.train",
    "train": "clr_rl.run.train",
    "load_spec": "clr_rl.compare.spec", "plan": "clr_rl.compare.plan",
    "lr_range_single": "clr_rl.phases.lr_single", "lr_range_sweep": "clr_rl.phases.lr_sweep",
    "tune": "clr_rl.phases.tune",
    "tradeoff": "clr_rl.phases.tradeoff",
}

if TYPE_CHECKING:
    from clr_rl.compare.driver import compare
    from clr_rl.compare.plan import plan
    from clr_rl.compare.spec import load_spec
    from clr_rl.execute.batch import execute
    from clr_rl.phases.lr_single import lr_range_single
    from clr_rl.phases.lr_sweep import lr_range_sweep
    from clr_rl.phases.tradeoff import tradeoff
    from clr_rl.phases.tune import tune
    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.run.train import resume, train


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
