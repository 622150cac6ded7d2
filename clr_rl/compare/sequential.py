"""Driving a ``[sequential]`` batch: train a look's runs, score them as the report does, decide, repeat.

Look ``k`` trains seeds ``0 .. n_k - 1`` of every arm still undecided and of the baseline (decided
arms keep the runs of their deciding look), scores the complete runs by the report's rule
(:func:`clr_rl.analysis.collect.score_runs`: final return, a diverged run at the env's random
score), and hands the ``(seeds, envs)`` matrices to the looks phase
(:class:`clr_rl.phases.looks.Looks`), which decides with the family-wise error held over arms and
looks and records the look before the next one trains.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from clr_rl.analysis.collect import _matrix, collect, score_runs
from clr_rl.compare.plan import Results, Tuned, plan
from clr_rl.compare.spec import Spec
from clr_rl.execute.batch import execute
from clr_rl.execute.estimates import _minutes, estimate
from clr_rl.execute.options import ExecOptions
from clr_rl.execute.planned import PlannedRun, _rerun, run_state
from clr_rl.phases.looks import Looks
from clr_rl.run.references import resolve_refs
from clr_rl.stats.sequential import decide_sequentially

__all__ = ["look_runs", "plan_looks", "run_sequential", "sequential_estimate"]


def plan_looks(spec: Spec, out: Path) -> Looks:
    """The looks phase of a sequential spec, with what ``out`` already records."""
    assert spec.sequential is not None and spec.baseline is not None
    arms = [a.name for a in spec.arms if a.name != spec.baseline]
    return Looks(spec.sequential, arms, spec.baseline, out)


def look_runs(spec: Spec, seeds: dict[str, int], *, tuned: Tuned | None = None,
              ranges: Results | None = None) -> list[PlannedRun]:
    """Every arm run a batch holds once a look's runs are done: arm ``a``'s seeds ``0 .. seeds[a] - 1``."""
    widest = dataclasses.replace(spec, seeds=tuple(range(max(seeds.values()))))
    return [r for r in plan(widest, tuned=tuned, ranges=ranges) if r.seed < seeds[r.arm]]


def _scores(out: Path, looks: Looks, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The live arms' and the baseline's ``(n, envs)`` final-return matrices, by the report's scoring rule."""
    resolved, runs = collect(out)
    envs = list(dict.fromkeys(r.env for r in runs))
    table = score_runs(runs, resolve_refs(out, resolved, envs))
    seeds = list(range(n))

    def matrix(arm: str) -> np.ndarray:
        return _matrix(table, arm, envs, seeds, lambda s, e: s.final)

    return {a: matrix(a) for a in looks.live(len(looks.records))}, matrix(looks.baseline)


def run_sequential(spec: Spec, out: Path, options: ExecOptions, *, meta: dict[str, Any], spec_text: str,
                   tuned: Tuned | None = None, ranges: Results | None = None) -> int:
    """Run the looks until every arm is decided or ``max_seeds``; 0 when every run completed, 1 otherwise
    (a look with a failed run is not decided: rerun with ``--retry-failed``)."""
    looks = plan_looks(spec, out)
    while (k := looks.next_look()) is not None:
        n = looks.design.looks()[k]
        runs = look_runs(spec, looks.seeds(k), tuned=tuned, ranges=ranges)
        live = looks.live(k)
        print(f"{spec.name}: look {k + 1}/{len(looks.design.looks())} at {n} seeds per env: "
              f"{len(live)} arm(s) undecided ({', '.join(live)}) and the baseline {looks.baseline}", flush=True)
        status = execute(runs, out, meta={**meta, "sequential_look": k}, options=options, spec_text=spec_text)
        if status:
            print(f"{spec.name}: look {k + 1} has failed runs: no decision until they complete "
                  "(rerun with --retry-failed)")
            return status
        record = looks.decide(k, *_scores(out, looks, n))
        for arm, d in record.decisions.items():
            print(f"  {arm}: {d.verdict or 'continue'} ({d.reason})")  # the reason names P, |T| and the boundary
    decided = looks.decided()
    print(f"{spec.name}: sequential decisions: "
          + ", ".join(f"{a} {d.verdict} at {d.seeds} seeds" for a, d in decided.items()))
    return 0


def sequential_estimate(spec: Spec, out: Path, options: ExecOptions, *, tuned: Tuned | None = None,
                        ranges: Results | None = None) -> str:
    """``--dry-run``'s cases: best (every arm decided at the first look still to run) and worst (every arm
    to ``max_seeds``), in timesteps and wall minutes on the batch's workers."""
    looks = plan_looks(spec, out)
    k = looks.next_look()
    if k is None:
        return f"{spec.name}: sequential: every arm is decided; nothing left to train"
    workers = options.workers or 1
    lines = []
    for case, look in (("best", k), ("worst", len(looks.design.looks()) - 1)):
        seeds = looks.seeds(k) if look == k else {a: looks.design.max_seeds for a in looks.seeds(k)}
        if look != k:  # arms decided before the next look keep their seeds
            seeds = {**seeds, **{a: d.seeds for a, d in looks.decided().items()}}
        runs = look_runs(spec, seeds, tuned=tuned, ranges=ranges)
        todo = [r for r in runs if run_state(out, r) in _rerun(options.retry_failed)]
        secs = [estimate(r, options.speeds)[0] for r in todo]
        steps = sum(r.prepared.config.timesteps for r in runs)
        lines.append(f"{case} case: {sum(seeds.values()) // max(len(seeds), 1)} seeds per env and arm on average, "
                     f"{len(runs)} arm runs, {steps:,} timesteps, {len(todo)} to train, "
                     f"about {_minutes(secs, workers):.1f} min with {workers} workers")
    if looks.records:
        lines.append(_expected_case(spec, out, looks, options, tuned=tuned, ranges=ranges))
    fixed = len(spec.envs) * len(spec.arms) * looks.design.max_seeds
    return (f"{spec.name}: sequential looks at {list(looks.design.looks())} seeds per env (next: look {k + 1}); "
            f"the fixed design at max_seeds trains {fixed} arm runs\n  " + "\n  ".join(lines))


def _expected_case(spec: Spec, out: Path, looks: Looks, options: ExecOptions, *, tuned: Tuned | None,
                   ranges: Results | None, draws: int = 40) -> str:
    """The expected case from the looks run so far (the pilot): ``draws`` batches whose seeds past the pilot
    are resampled, per env, from the pilot's runs of each arm, replayed through the same design (with 499
    permutations per block, for speed); the mean seeds each arm would use, in runs, timesteps and minutes."""
    n = looks.records[-1].seeds
    arms, base = _scores(out, looks, n)
    live = looks.live(len(looks.records))
    full = {**{a: arms[a] for a in live}, looks.baseline: base}
    design = dataclasses.replace(looks.design, permutations=499)
    rng = np.random.default_rng(0)
    used = {a: 0.0 for a in live}
    for _ in range(draws):
        drawn = {a: np.concatenate([m, m[rng.integers(0, n, size=(design.max_seeds - n, m.shape[1])),
                                        np.arange(m.shape[1])]]) for a, m in full.items()}
        history = decide_sequentially(design, {a: drawn[a] for a in live}, drawn[looks.baseline], seed=looks.seed)
        for a, h in history.items():
            used[a] += h[-1].seeds / draws
    seeds = {**looks.seeds(len(looks.records) - 1), **{a: round(v) for a, v in used.items()}}
    seeds[looks.baseline] = max(seeds[a] for a in [*live, looks.baseline]) if live else seeds[looks.baseline]
    runs = look_runs(spec, seeds, tuned=tuned, ranges=ranges)
    todo = [r for r in runs if run_state(out, r) in _rerun(options.retry_failed)]
    secs = [estimate(r, options.speeds)[0] for r in todo]
    return (f"expected case (from the {n}-seed pilot, {draws} resampled batches): "
            + ", ".join(f"{a} ~{v:.1f} seeds" for a, v in used.items())
            + f"; {len(runs)} arm runs, {sum(r.prepared.config.timesteps for r in runs):,} timesteps, "
            f"about {_minutes(secs, options.workers or 1):.1f} min with {options.workers or 1} workers")
