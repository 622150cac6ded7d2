"""The setup phase's ``[tune]``, driven: train the tuning runs, pick each env's LR by the one rule, and
never hand the arms an LR that sits at its grid's edge.

A best LR at the top (or bottom) of a log grid says nothing about the LRs past it: the grid is
extended by one point of the same log spacing past that edge and the new runs trained, until the
best LR is inside the grid or :data:`MAX_EXTENSIONS` points were added; then the batch stops before
the arms with one line naming the range to widen.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from clr_rl.compare.setup import SetupPlan, _needs, _tune_runs
from clr_rl.compare.spec import Spec
from clr_rl.errors import ConfigError
from clr_rl.execute.batch import _TUNE_FILES, execute
from clr_rl.execute.options import ExecOptions
from clr_rl.execute.planned import PlannedRun
from clr_rl.phases.tune import TunedLR, optuna_search, tuned_record

__all__ = ["MAX_EXTENSIONS", "run_tuning"]

MAX_EXTENSIONS = 3  # grid points added past an edge before the batch stops and asks for a wider grid


def run_tuning(spec: Spec, setup: SetupPlan, out: Path,
               options: ExecOptions) -> tuple[int, dict[tuple[str, str], TunedLR]]:
    """Train the ``[tune]`` runs (resumably, like any run) and pick each (algo, env)'s best fixed LR by
    :func:`clr_rl.phases.tune.lr_scores`; each record is written to ``<out>/tune/<env>/tuned_lr.json``."""
    assert spec.tune is not None
    status = 0
    tuned: dict[tuple[str, str], TunedLR] = {}
    if setup.tune_runs:
        status |= execute(setup.tune_runs, out, meta={"name": f"{spec.name}-tune"}, options=options,
                          files=_TUNE_FILES, quiet=True)
        grid = spec.tune.grid
        assert grid is not None
        for key in dict.fromkeys((r.prepared.config.algo, r.env_id) for r in setup.tune_runs):
            runs = [r for r in setup.tune_runs if (r.prepared.config.algo, r.env_id) == key]
            runs, more_status, method = _inside_the_grid(spec, out, key, runs, setup, options)
            status |= more_status
            tuned[key] = _tuned(spec, out, key, runs, method)
    for algo, env_id in setup.trials:
        settings = _needs(spec, "tuned")[(algo, env_id)]
        trials = spec.tune.trials
        assert trials is not None
        runs, trial_status, method = optuna_search(
            trials, spec.tune.lr_range, 0, partial(_tune_runs, spec, algo, env_id, settings),
            partial(execute, out=out, meta={"name": f"{spec.name}-tune"}, options=options, files=_TUNE_FILES,
                    quiet=True), out, spec.tune.criterion)
        status |= trial_status
        tuned[(algo, env_id)] = _tuned(spec, out, (algo, env_id), runs, method)
    return status, tuned



def _tuned(spec: Spec, out: Path, key: tuple[str, str], runs: list[PlannedRun], method: str) -> TunedLR:
    assert spec.tune is not None
    try:
        record = tuned_record(out, runs, spec.tune.criterion, method, algo=key[0], env_id=key[1])
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; see {out / 'tune' / key[1]}") from None
    record.write(out / "tune" / key[1] / "tuned_lr.json")
    return record


def _inside_the_grid(spec: Spec, out: Path, key: tuple[str, str], runs: list[PlannedRun], setup: SetupPlan,
                     options: ExecOptions) -> tuple[list[PlannedRun], int, str]:
    """The grid's runs, extended past an edge the best LR sits at (see the module doc); ConfigError when
    :data:`MAX_EXTENSIONS` points did not bring it inside."""
    assert spec.tune is not None and spec.tune.grid is not None
    lo, hi, n = spec.tune.grid
    method, status = f"log grid {lo:g}:{hi:g}:{n}", 0
    settings = _needs(spec, "tuned")[key]
    for extension in range(MAX_EXTENSIONS + 1):
        lrs = sorted({float(r.prepared.schedule.lr) for r in runs})
        best = tuned_record(out, runs, spec.tune.criterion, method, algo=key[0], env_id=key[1]).value
        edge = "top" if best == lrs[-1] else "bottom" if best == lrs[0] else None
        if edge is None:
            return runs, status, method
        if extension == MAX_EXTENSIONS:
            break
        ratio = (hi / lo) ** (1 / (n - 1))
        new = float(f"{lrs[-1] * ratio if edge == 'top' else lrs[0] / ratio:.3g}")
        print(f"{spec.name}: [tune] on {key[1]}: the best LR {best:g} is the {edge} of the grid; extending it to "
              f"{new:g} (same log spacing)", flush=True)
        runs = runs + _tune_runs(spec, key[0], key[1], settings, [new])
        status |= execute(setup.tune_runs + [r for r in runs if r not in setup.tune_runs], out,
                          meta={"name": f"{spec.name}-tune"}, options=options, files=_TUNE_FILES, quiet=True)
        method = f"log grid {lo:g}:{hi:g}:{n}, extended to {min(*lrs, new):g}..{max(*lrs, new):g}"
    wider = f"{lrs[0] / 10:g}:{hi:g}" if edge == "bottom" else f"{lo:g}:{lrs[-1] * 10:g}"
    raise ConfigError(f"{spec.path}: tune on {key[1]}: the best LR {best:g} is still the {edge} of the grid after "
                      f"extending it {MAX_EXTENSIONS} points to {lrs[0]:g}..{lrs[-1]:g}; widen the grid, e.g. "
                      f"grid = \"{wider}:{n + MAX_EXTENSIONS + 2}\"")
