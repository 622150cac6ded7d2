"""Benchmark the group-sequential design against the fixed ``max_seeds`` design and AdaStop, on the same draws.

Simulated batches: a baseline and 1 or 3 arms, ``max_seeds`` runs per env drawn up front, so
every method sees the same runs (the sequential ones read only the seeds they asked for).
Score families per env: ``normal``; ``t2`` (Student t, 2 df: heavy tails); ``ceiling``
(CartPole-like: ``min(500, 470 + 60 z)``, about a third of the runs tie at the 500 cap);
``spread4`` (normal, the arm's sigma 4x the baseline's: the null P = 0.5 is not
exchangeability). The arm's shift gives the true P(arm > baseline) (ties 1/2), found by
bisection on 400k Monte Carlo pairs. Methods:

* ``seq-<boundaries>``: ``clr_rl.stats.sequential.decide_sequentially`` (looks at 5, 10, ... 30;
  studentized statistic).
* ``--statistic welch``: a what-if, not a product option: the sequential designs use the
  studentized mean difference (Welch's t, stratified over envs) in place of the studentized P,
  through the same joint permutation calibration.
* ``fixed``: ``clr_rl.stats.decide`` at ``max_seeds`` (permutation p + bootstrap CI, Holm).
* ``adastop``: ``adastop.MultipleAgentsComparator`` (n = first, K = looks, alpha, B), baseline
  vs each arm; it takes one score per run, so with 3 envs it gets each run's mean over envs.
* ``adastop-a/2``: the same at ``alpha / 2``. AdaStop 0.1.3's ``partial_compare`` compares the
  absolute statistic ``|mean difference|`` with boundaries taken from the signed permuted
  differences, i.e. a one-sided calibration: its two-sided false-verdict rate is about
  ``2 alpha``; at ``alpha / 2`` it is calibrated two-sided like the other methods.
  ``--adastop-alphas`` sets the levels run (``adastop@<level>`` for any other than ``alpha`` and
  ``alpha / 2``), e.g. to compare power at a matched false-verdict rate.

Columns: ``false%`` = batches with any wrong verdict (null: any BEATS/WORSE; P >= 0.7: any
WORSE or EQUIVALENT) with its binomial simulation SE; ``beats%`` = arm-verdicts BEATS;
``decided%`` = arm-verdicts other than INCONCLUSIVE; ``seeds`` = mean runs per env per arm
(baseline included); ``%fixed`` = seeds / max_seeds.

    .venv/bin/python benchmarks/bench_sequential.py [--quick] [--batches N] [--null-batches N] [--seed S]
        [--kinds normal,t2,ceiling,spread4] [--ps 0.5,0.7,0.8] [--envs 1,3] [--arms 1,3]
        [--boundaries linear,obrien-fleming,pocock] [--adastop-alphas 0.05,0.025] [--statistic rank|welch]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one process per core: threaded BLAS only contends here

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clr_rl import stats  # noqa: E402
from clr_rl.stats import sequential  # noqa: E402
from clr_rl.stats.sequential import SequentialDesign, decide_sequentially, seeds_used  # noqa: E402

FIRST, MAX_SEEDS, ALPHA, MARGIN = 5, 30, 0.05, 0.1
KINDS = ("normal", "t2", "ceiling", "spread4")


def _base_and_arm(kind: str) -> tuple[Callable, Callable]:
    """(baseline sampler, arm sampler given shift) for one score family: rng, shape -> scores."""
    if kind == "normal":
        return (lambda r, s: r.normal(size=s)), (lambda r, s, d: r.normal(size=s) + d)
    if kind == "t2":
        return (lambda r, s: r.standard_t(2, size=s)), (lambda r, s, d: r.standard_t(2, size=s) + d)
    if kind == "ceiling":
        return ((lambda r, s: np.minimum(500.0, np.round(470 + 60 * r.normal(size=s)))),
                (lambda r, s, d: np.minimum(500.0, np.round(470 + d + 60 * r.normal(size=s)))))
    if kind == "spread4":
        return (lambda r, s: r.normal(size=s)), (lambda r, s, d: 4 * r.normal(size=s) + d)
    raise ValueError(f"kind={kind!r} must be one of {KINDS}")


def shift_for(kind: str, p: float) -> float:
    """The arm's shift giving P(arm > baseline) + P(=)/2 = p, by bisection on common random numbers."""
    if p == 0.5:
        return 0.0
    base, arm = _base_and_arm(kind)
    lo, hi = 0.0, 500.0 if kind == "ceiling" else 20.0
    for _ in range(40):
        mid = (lo + hi) / 2
        r = np.random.default_rng(7)
        y, x = base(r, 400_000), arm(r, 400_000, mid)
        lo, hi = (mid, hi) if float(np.mean(x > y) + 0.5 * np.mean(x == y)) < p else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Outcome:
    false: bool
    verdicts: tuple[str, ...]
    seeds: float  # mean runs per env per arm, baseline included


def _wrong(v: str, p: float) -> bool:
    return v in ("BEATS", "WORSE") if p == 0.5 else v in ("WORSE", "EQUIVALENT")


def _outcome(verdicts: list[str], seeds: float, p: float) -> Outcome:
    return Outcome(any(_wrong(v, p) for v in verdicts), tuple(verdicts), seeds)


def run_seq(design: SequentialDesign, arms: dict[str, np.ndarray], base: np.ndarray, p: float,
            seed: int) -> Outcome:
    hist = decide_sequentially(design, arms, base, seed=seed)
    used = seeds_used(hist)
    return _outcome([h[-1].verdict or "INCONCLUSIVE" for h in hist.values()], float(np.mean(list(used.values()))), p)


def run_fixed(arms: dict[str, np.ndarray], base: np.ndarray, p: float, seed: int, reps: int) -> Outcome:
    tests = {}
    for a, x in arms.items():
        est, samples = stats.poi_samples(x, base, reps=reps, rng=stats.rng_for(seed, "b", a))
        pv = stats.permutation_pvalue(x, base, reps=reps, rng=stats.rng_for(seed, "p", a))
        tests[a] = {"estimate": est, "samples": samples, "p_value": pv}
    d = stats.decide(tests, alpha=ALPHA, margin=MARGIN)
    return _outcome([v.verdict for v in d.values()], float(MAX_SEEDS), p)


def run_adastop(arms: dict[str, np.ndarray], base: np.ndarray, p: float, seed: int, b: int,
                alpha: float = ALPHA) -> Outcome:
    from adastop import MultipleAgentsComparator

    names = ["baseline", *arms]
    values = {"baseline": base.mean(axis=1), **{a: x.mean(axis=1) for a, x in arms.items()}}
    looks = MAX_SEEDS // FIRST
    comp = MultipleAgentsComparator(n=FIRST, K=looks, B=b, comparisons=np.array([(0, i) for i in range(1, len(names))]),
                                    alpha=alpha, seed=seed)
    runs = dict.fromkeys(names, 0)
    for k in range(looks):
        live = {names[i] for c in comp.current_comparisons for i in c} if k else set(names)
        for a in live:
            runs[a] = (k + 1) * FIRST
        comp.partial_compare({a: values[a][: (k + 1) * FIRST] for a in names}, verbose=False)
        if comp.is_finished:
            break
    verdicts = []
    for i in range(1, len(names)):
        d = comp.decisions[str(np.array([0, i]))]
        verdicts.append({"larger": "WORSE", "smaller": "BEATS"}.get(d, "INCONCLUSIVE"))
    return _outcome(verdicts, float(np.mean(list(runs.values()))), p)


def welch(values: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """The stratified studentized mean difference of every labelling (same layout as ``sequential.studentized``)."""
    envs, total = values.shape
    arm = np.broadcast_to(arm, np.broadcast_shapes(arm.shape, values.shape))
    f = np.moveaxis(arm.reshape(-1, envs, total), 1, 0).astype(float)  # (envs, labellings, N)
    n = f[0, 0].sum()
    m = total - n
    v = values[:, None, :]
    mx, my = (f * v).sum(-1) / n, ((1 - f) * v).sum(-1) / m
    vx = ((f * v * v).sum(-1) - n * mx ** 2) / (n - 1)
    vy = (((1 - f) * v * v).sum(-1) - m * my ** 2) / (m - 1)
    t = (mx - my).sum(0) / np.sqrt(np.maximum((vx / n + vy / m).sum(0), 1e-300))
    return np.round(t, 9).reshape(arm.shape[:-2])


def _adastop_name(level: float) -> str:
    return {ALPHA: "adastop", ALPHA / 2: "adastop-a/2"}.get(level, f"adastop@{level:g}")


def _draw(rng: np.random.Generator, kind: str, envs: int, n_arms: int, shift: float
          ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    base_f, arm_f = _base_and_arm(kind)
    base = base_f(rng, (MAX_SEEDS, envs))
    return {f"arm{i}": arm_f(rng, (MAX_SEEDS, envs), shift) for i in range(n_arms)}, base


def _row(label: str, outs: list[Outcome], p: float) -> str:
    n = len(outs)
    false = sum(o.false for o in outs) / n
    verdicts = [v for o in outs for v in o.verdicts]
    beats = sum(v == "BEATS" for v in verdicts) / len(verdicts)
    decided = sum(v != "INCONCLUSIVE" for v in verdicts) / len(verdicts)
    seeds = float(np.mean([o.seeds for o in outs]))
    se = math.sqrt(max(false * (1 - false), 1 / n) / n)
    return (f"{label:<34} {100 * false:6.1f} ±{100 * se:4.1f} {100 * beats:7.1f} {100 * decided:9.1f} "
            f"{seeds:7.1f} {100 * seeds / MAX_SEEDS:7.0f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    ap.add_argument("--batches", type=int, default=None, help="batches per config at P > 0.5")
    ap.add_argument("--null-batches", type=int, default=None, help="batches per config at P = 0.5")
    ap.add_argument("--boundaries", default="linear", help="comma-separated spending functions")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--ps", default="0.5,0.7,0.8", help="comma-separated true P(arm > baseline)")
    ap.add_argument("--envs", default="1,3", help="comma-separated env counts")
    ap.add_argument("--arms", default="1,3", help="arm counts: 1 in every family, 3 (normal scores only)")
    ap.add_argument("--adastop-b", type=int, default=1000, help="AdaStop's permutations B")
    ap.add_argument("--adastop-alphas", default=f"{ALPHA},{ALPHA / 2}", help="comma-separated AdaStop levels")
    ap.add_argument("--reps", type=int, default=500, help="fixed design's bootstrap / permutation reps")
    ap.add_argument("--permutations", type=int, default=None, help="the sequential design's B (4999; quick 1999)")
    ap.add_argument("--no-adastop", action="store_true")
    ap.add_argument("--statistic", choices=["rank", "welch"], default="rank",
                    help="the sequential designs' statistic: rank (the product's) or welch (a what-if)")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    if args.statistic == "welch":
        sequential.studentized = welch  # read by sequential._null_statistics at call time
    alt_n = args.batches or (20 if args.quick else 30)
    null_n = args.null_batches or (40 if args.quick else 60)
    tag = "" if args.statistic == "rank" else f"-{args.statistic}"
    designs = {f"seq-{b}{tag}": SequentialDesign(first=FIRST, max_seeds=MAX_SEEDS, alpha=ALPHA, boundaries=b,
                                            margin=MARGIN,
                                            permutations=args.permutations or (1999 if args.quick else 4999))
               for b in args.boundaries.split(",")}
    adastop_ok = not args.no_adastop
    try:
        import adastop  # noqa: F401
    except ImportError as e:
        adastop_ok = False
        print(f"AdaStop left out: {e} (pip install 'clr-rl[bench]')")
    ps, envs_list = [float(v) for v in args.ps.split(",")], [int(v) for v in args.envs.split(",")]
    arm_counts = [int(v) for v in args.arms.split(",")]
    configs = [(k, e, p, 1) for k in args.kinds.split(",") for e in envs_list for p in ps] if 1 in arm_counts else []
    configs += [("normal", e, p, 3) for e in envs_list for p in ps] if 3 in arm_counts else []
    print(f"looks at {designs[next(iter(designs))].looks()} seeds per env and arm; alpha {ALPHA}, margin {MARGIN}; "
          f"fixed design: {MAX_SEEDS} seeds; batches {null_n} at P = 0.5, {alt_n} otherwise; seed {args.seed}")
    print(f"{'method':<34} {'false%':>6} {'±SE':>5} {'beats%':>7} {'decided%':>9} {'seeds':>7} {'%fixed':>8}")
    start = time.time()
    for kind, envs, p, n_arms in configs:
        shift, n = shift_for(kind, p), null_n if p == 0.5 else alt_n
        rng = np.random.default_rng([args.seed, KINDS.index(kind), envs, int(p * 100), n_arms])
        ada = ({_adastop_name(a): a for a in map(float, args.adastop_alphas.split(","))} if adastop_ok else {})
        outs: dict[str, list[Outcome]] = {m: [] for m in [*designs, "fixed", *ada]}
        for i in range(n):
            arms, base = _draw(rng, kind, envs, n_arms, shift)
            for name, design in designs.items():
                outs[name].append(run_seq(design, arms, base, p, seed=i))
            outs["fixed"].append(run_fixed(arms, base, p, i, args.reps))
            for name, level in ada.items():
                outs[name].append(run_adastop(arms, base, p, i, args.adastop_b, alpha=level))
        print(f"-- {kind}, {envs} env(s), {n_arms} arm(s), true P {p}, {n} batches")
        for name, o in outs.items():
            print("   " + _row(name, o, p))
        sys.stdout.flush()
    print(f"({time.time() - start:.0f} s; null false% targets <= 5% + 2 SE of simulation noise)")


if __name__ == "__main__":
    main()
