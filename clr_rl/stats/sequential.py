"""Group-sequential comparisons: add seeds look by look until every arm is decided, error rates held.

The rule (one look ``k`` with ``n_k`` seeds per env and arm, ``t_k = n_k / max_seeds``):

* **Statistic**: the studentized Mann-Whitney (Brunner-Munzel) statistic, stratified over envs,
  ``T = sum_e (P_e - 0.5) / sqrt(sum_e var_e)`` (:func:`clr_rl.stats.ranks.studentized`) on all runs so far:
  ``P_e`` the probability of improvement of the arm over the baseline in env ``e`` (Mann-Whitney
  U / n^2, ties 1/2; ``mean_e P_e`` is the reported P), ``var_e`` its DeLong / Brunner-Munzel
  variance from the placements, floored at ``1 / (4 n^2)``. ``T`` is ``(P - 0.5) / se(P)``.
* **BEATS / WORSE** (two-sided, direction from the sign of ``T``): a group-sequential
  permutation test calibrated *jointly over looks*, as AdaStop does (Mathieu et al., TMLR
  2024). The runs added at look ``j`` form block ``j``; under the null (arm and baseline
  exchangeable in every env) labels may be permuted within each (env, block), and one set
  of ``permutations`` random relabellings (plus the identity, i.e. the observed labels)
  is fixed per (seed, arm, block). Every relabelling's ``T`` is studentized with its own
  variance (the studentized permutation test: Janssen 1997; Neubert & Brunner 2007; Pauly,
  Asendorf & Konietschke 2016). Boundary ``c_j`` on ``|T|`` is the smallest value such
  that at most ``floor(f(t_j) (B + 1))`` of the ``B + 1`` relabellings have crossed some
  ``c_i``, ``i <= j``; the arm is rejected when its observed ``|T|`` has crossed. ``f`` is
  the spending function (:data:`SPENDING`) at the arm's level, so the chance of a false
  BEATS/WORSE over all looks is at most that level (exactly, up to the Monte Carlo set,
  when runs are exchangeable; level not spent at a look that cannot stop carries over).
  Studentizing is what keeps the level when the null ``P = 0.5`` holds but the runs are not
  exchangeable (the arms' spreads differ): the permutation distribution of a studentized
  ``T`` approaches the same N(0, 1) as its null distribution, where the plain ``P - 0.5``'s
  permutation variance is the pooled one, not the null's.
* **Over arms**: Holm as a graphical procedure (Maurer & Bretz 2013): each of ``m`` arms
  starts at ``alpha / m``; an arm decided BEATS/WORSE hands its level to those not yet
  rejected (``alpha / (m - rejected)``), and the others are re-tested at the same look.
* **EQUIVALENT** (optional): two one-sided tests on the DeLong normal CI of P against
  ``[0.5 - margin, 0.5 + margin]``, at the level increment ``g(t_k) - g(t_{k-1})`` of the
  arm's equivalence level ``alpha / (m - equivalent)`` (``g`` O'Brien-Fleming, or the
  explicit level list): Bonferroni over looks, Holm over arms, a family of its own, so
  false EQUIVALENT verdicts are also family-wise <= alpha (as far as the normal CI is).
* At the last look (``max_seeds``) an arm still undecided is INCONCLUSIVE.

Discreteness (one env): with ``n`` seeds per arm the smallest two-sided permutation p is
``2 / C(2n, n)`` (n = 3: 0.1; n = 5: 0.0079), and the first looks of O'Brien-Fleming
spending ask for far less (about 2e-6 at 5 of 30 seeds), so in one env those looks can
never stop; the joint calibration then carries their unspent level to later looks, so the
design still reaches its full level at ``max_seeds``. Several envs stratify the test and
make early stops reachable.

Unequal spreads (normal scores, the arm's sigma 4x the baseline's, true P = 0.5; looks at 5,
10, ... 30, linear spending, alpha 0.05): ``benchmarks/bench_sequential.py --kinds spread4 --ps
0.5 --arms 1 --null-batches 1000 --permutations 999`` gave false BEATS/WORSE in 5.6 +- 0.7% of
batches in one env and 6.0 +- 0.8% in three (a second set of 1000 batches: 6.3 +- 0.8% and
4.9 +- 0.7%; the plain ``P - 0.5`` statistic this replaces: 8.3 +- 0.9% in one env, 13-15% in
the 60-batch table). So about 5-6%: within a standard error or two of ``alpha``, not exact. The
one-env excess sits at the first two looks (5 and 10 seeds: 3.4% against 1.7% spent): with so
few runs a complete or near separation is the largest statistic any rank test has, and unequal
spreads make it about twice as likely as exchangeability does (no studentization changes that);
from 15 seeds on the looks spent what they should (3.1% against 3.3%). At one look with 30
seeds the studentized test held 4.2% where the plain one gave 6.5% (``tests/test_sequential.py``).

>>> design = SequentialDesign(first=5, max_seeds=15, boundaries="obrien-fleming")
>>> design.looks()
(5, 10, 15)
>>> rng = np.random.default_rng(0)
>>> base = rng.normal(size=(5, 3))
>>> never_learns = np.full((5, 3), -9.0)  # every run at the floor, in 3 envs
>>> decide_look(design, 0, {"lr1e-7": never_learns}, base, seed=0)["lr1e-7"].verdict
'WORSE'
>>> long = SequentialDesign(5, 30, boundaries="obrien-fleming")  # first look spends 1.6e-6: out of reach
>>> decide_look(long, 0, {"lr1e-7": never_learns}, base, seed=0)["lr1e-7"].verdict is None
True
>>> SequentialDesign(first=5, max_seeds=15, boundaries="pocock").looks()[-1]
15
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from clr_rl.stats.aggregates import _finite, rng_for
from clr_rl.stats.decisions import _poi
from clr_rl.stats.ranks import delong, studentized

__all__ = ["SPENDING", "STATISTIC", "STATISTIC_TEXT", "LookDecision", "SequentialDesign", "decide_look",
           "decide_sequentially", "seeds_used", "spent"]

VERDICTS = ("BEATS", "WORSE", "EQUIVALENT", "INCONCLUSIVE")

#: The BEATS/WORSE statistic's name, recorded with a batch's looks: a resume under another rule refuses.
STATISTIC = "studentized-mann-whitney"
#: How a report names each recorded statistic's boundary ("plain-p": the rule before the studentized one).
STATISTIC_TEXT = {STATISTIC: "the studentized |T| = |P - 0.5| / se(P)", "plain-p": "|P - 0.5|"}


def _obrien_fleming(level: float, t: float) -> float:
    return float(2 * (1 - norm.cdf(norm.ppf(1 - level / 2) / math.sqrt(t))))


SPENDING: dict[str, Callable[[float, float], float]] = {
    "obrien-fleming": _obrien_fleming,  # Lan-DeMets: 2 - 2 Phi(z_{1 - a/2} / sqrt(t))
    "pocock": lambda level, t: level * math.log(1 + (math.e - 1) * t),  # Lan-DeMets Pocock-type
    "linear": lambda level, t: level * t,  # Kim-DeMets rho = 1, AdaStop's alpha (k + 1) / K
}


@dataclass(frozen=True)
class SequentialDesign:
    """Looks at ``first``, ``first + step``, ... seeds per env and arm, capped at ``max_seeds``.

    Args:
        first: seeds per env and arm at look 1.
        max_seeds: the cap per env and arm; the last look.
        step: seeds added per look (default ``first``).
        alpha: family-wise level over arms and looks, for BEATS/WORSE and for EQUIVALENT each.
        boundaries: a spending function name (:data:`SPENDING`; default ``"linear"``, AdaStop's
            ``alpha k / K``: in ``benchmarks/bench_sequential.py`` it stopped P = 0.8 arms with
            ~40% fewer seeds than O'Brien-Fleming at the same power, and unlike O'Brien-Fleming its
            first look is reachable in one env), or the family's level spent at each look (one
            per look, summing to at most ``alpha``).
        equivalence: stop arms at EQUIVALENT.
        margin: EQUIVALENT when P is shown inside ``[0.5 - margin, 0.5 + margin]``.
        permutations: random relabellings per block (B) for the joint calibration.
    """

    first: int
    max_seeds: int
    step: int | None = None
    alpha: float = 0.05
    boundaries: str | tuple[float, ...] = "linear"
    equivalence: bool = True
    margin: float = 0.1
    permutations: int = 4999

    def __post_init__(self) -> None:
        if isinstance(self.boundaries, list):
            object.__setattr__(self, "boundaries", tuple(float(v) for v in self.boundaries))
        rules: list[tuple[str, object, bool, str]] = [
            ("first", self.first, self.first >= 1, "must be >= 1"),
            ("max_seeds", self.max_seeds, self.max_seeds >= self.first,
             f"must be >= the first look's seeds={self.first}"),
            ("step", self.step, self.step is None or self.step >= 1, "must be >= 1"),
            ("alpha", self.alpha, 0 < self.alpha < 1, "must be in (0, 1)"),
            ("margin", self.margin, 0 < self.margin < 0.5, "must be in (0, 0.5)"),
            ("permutations", self.permutations, self.permutations >= 99, "must be >= 99"),
        ]
        for name, value, ok, rule in rules:
            if not ok:
                raise ValueError(f"{name}={value} {rule}")
        self._check_boundaries()

    def _check_boundaries(self) -> None:
        b = self.boundaries
        if isinstance(b, str):
            if b not in SPENDING:
                raise ValueError(f"boundaries={b!r} must be one of {sorted(SPENDING)} or a list of per-look levels")
            return
        n = len(self.looks())
        if len(b) != n:
            raise ValueError(f"boundaries={list(b)} must give one level per look: {n} looks {list(self.looks())}")
        if any(not v >= 0 for v in b) or sum(b) > self.alpha * (1 + 1e-9):
            raise ValueError(f"boundaries={list(b)} must be levels >= 0 summing to at most alpha={self.alpha}")

    def looks(self) -> tuple[int, ...]:
        """Seeds per env and arm at each look: ``first, first + step, ...``, the last one ``max_seeds``."""
        step = self.step or self.first
        sizes = list(range(self.first, self.max_seeds, step))
        return (*sizes, self.max_seeds)


def spent(design: SequentialDesign, level: float, look: int, *, equivalence: bool = False) -> float:
    """Level spent by the end of ``look`` (0-based) by one test run at ``level``: ``f(t_look)``.

    An explicit level list is the family's share per look, scaled to ``level / alpha``. The
    equivalence family spends by O'Brien-Fleming whatever the named boundaries: EQUIVALENT
    is out of reach at the first looks (a CI of +-0.1 on P needs ~40 seeds in one env), so
    its level is best kept for the last looks.

    >>> [round(spent(SequentialDesign(first=5, max_seeds=30), 0.05, k), 4) for k in range(6)]
    [0.0083, 0.0167, 0.025, 0.0333, 0.0417, 0.05]
    >>> spent(SequentialDesign(first=5, max_seeds=10, boundaries=(0.01, 0.04)), 0.025, 0)
    0.005
    """
    if look < 0:
        return 0.0
    sizes = design.looks()
    if isinstance(design.boundaries, str):
        name = "obrien-fleming" if equivalence else design.boundaries
        return SPENDING[name](level, sizes[look] / design.max_seeds)
    return float(sum(design.boundaries[: look + 1]) * level / design.alpha)


@dataclass(frozen=True)
class LookDecision:
    """One arm at one look (see :func:`decide_look`).

    ``verdict`` is BEATS, WORSE, EQUIVALENT, INCONCLUSIVE (undecided at the last look) or None
    (continue: add seeds). ``boundary`` is the permutation-calibrated boundary on
    the studentized ``|T|`` at this look (inf: this look cannot stop), ``level`` the superiority level
    spent by this look for this arm, ``ci`` the DeLong CI of P at the look's equivalence level.
    """

    look: int
    seeds: int
    verdict: str | None
    estimate: float
    statistic: float
    boundary: float
    level: float
    ci: tuple[float, float]
    equivalence_level: float
    p_equivalence: float
    reason: str


def _blocks(design: SequentialDesign, look: int) -> list[int]:
    sizes = design.looks()[: look + 1]
    return [b - a for a, b in zip((0, *sizes), sizes)]


def _relabellings(design: SequentialDesign, look: int, envs: int, arm: str, seed: int) -> list[np.ndarray]:
    """Per block ``j <= look``: ``(B + 1, envs, 2 s_j)`` masks, True at the runs labelled "arm".

    The pooled block is ``[arm's s_j runs, baseline's s_j runs]``; each relabelling gives the
    arm ``s_j`` of them in every env; row 0 is the identity (the observed labels). Each block's
    draws come from ``rng_for(seed, "sequential", arm, j)``, so every look (and a resumed batch)
    sees the same relabellings of the same block.
    """
    out = []
    for j, s in enumerate(_blocks(design, look)):
        rng = rng_for(seed, "sequential", arm, f"block{j}")
        draws = np.moveaxis(rng.random((design.permutations, 2 * s, envs)), 1, 2)  # the s smallest: the arm's
        masks = draws <= np.partition(draws, s - 1, axis=2)[..., s - 1: s]
        ident = np.broadcast_to(np.arange(2 * s) < s, (1, envs, 2 * s))
        out.append(np.concatenate([ident, masks], axis=0))
    return out


def _null_statistics(design: SequentialDesign, look: int, x: np.ndarray, y: np.ndarray, arm: str,
                     seed: int) -> np.ndarray:
    """Studentized ``|T|`` (:func:`clr_rl.stats.ranks.studentized`) at every look ``j <= look`` for every relabelling:
    ``(look + 1, B + 1)``, column 0 observed. Each relabelling is studentized with its own variance."""
    envs, blocks = x.shape[1], _blocks(design, look)
    relab = _relabellings(design, look, envs, arm, seed)
    out = np.empty((look + 1, design.permutations + 1))
    pooled, n = [], 0
    for j, s in enumerate(blocks):
        pooled += [x[n: n + s], y[n: n + s]]
        n += s
        out[j] = np.abs(studentized(np.concatenate(pooled, axis=0).T, np.concatenate(relab[: j + 1], axis=-1)))
    return out


def _boundaries(design: SequentialDesign, level: float, null: np.ndarray) -> tuple[np.ndarray, bool]:
    """Boundaries ``c_j`` on ``|T|`` for looks ``0..k`` at ``level``, and whether the observed row crossed."""
    total = null.shape[1]
    alive = np.ones(total, dtype=bool)
    bounds = np.full(null.shape[0], np.inf)
    for j, stat in enumerate(null):
        room = math.floor(spent(design, level, j) * total + 1e-9) - int((~alive).sum())
        vals, counts = np.unique(stat[alive], return_counts=True)
        at_least = np.cumsum(counts[::-1])[::-1]  # relabellings still alive with |T| >= each value
        ok = vals[at_least <= room]
        if ok.size:
            bounds[j] = ok[0]
            alive &= ~(stat >= ok[0])
    return bounds, not alive[0]


def _equivalence(design: SequentialDesign, look: int, level: float, x: np.ndarray,
                 y: np.ndarray) -> tuple[float, tuple[float, float], float]:
    """(level increment at this look, its two-sided CI, TOST p-value) for ``|P - 0.5| < margin``."""
    gamma = spent(design, level, look, equivalence=True) - spent(design, level, look - 1, equivalence=True)
    est, se = delong(x, y)
    lo_m, hi_m = 0.5 - design.margin, 0.5 + design.margin
    p = float(max(norm.sf((est - lo_m) / se), norm.cdf((est - hi_m) / se)))
    z = float(norm.isf(gamma)) if gamma > 0 else math.inf
    return gamma, (est - z * se, est + z * se), p


def _inputs(design: SequentialDesign, look: int, arms: Mapping[str, np.ndarray],
            baseline: np.ndarray) -> tuple[int, dict[str, np.ndarray], np.ndarray]:
    sizes = design.looks()
    if not 0 <= look < len(sizes):
        raise ValueError(f"look={look} must be in 0..{len(sizes) - 1} (looks at {list(sizes)} seeds)")
    n = sizes[look]
    mats = {a: _finite(a, m) for a, m in arms.items()}
    base = _finite("baseline", baseline)
    for name, mat in [*mats.items(), ("baseline", base)]:
        if mat.ndim != 2 or mat.shape[0] < n or mat.shape[1] != base.shape[1]:
            raise ValueError(f"{name} has shape {mat.shape}: look {look} needs (>= {n} runs, {base.shape[1]} envs)")
    return n, {a: m[:n] for a, m in mats.items()}, base[:n]


def decide_look(design: SequentialDesign, look: int, arms: Mapping[str, np.ndarray], baseline: np.ndarray, *,
                decided: Mapping[str, str] | None = None, seed: int = 0) -> dict[str, LookDecision]:
    """Decide every still-undecided arm at ``look`` (0-based) against the baseline.

    Args:
        design: the sequential design.
        look: the look index; its seeds are ``design.looks()[look]`` per env and arm.
        arms: the undecided arms' ``(runs, envs)`` score matrices; row ``i`` is seed ``i`` and the
            rows added at look ``j`` form block ``j`` (only the first ``n_look`` rows are read).
        baseline: the baseline's matrix, same layout.
        decided: verdicts already taken at earlier looks (arm -> BEATS/WORSE/EQUIVALENT/INCONCLUSIVE);
            they count in the family (``m``) and a BEATS/WORSE hands its level on.
        seed: the batch seed; each (arm, block)'s relabellings derive from it, so a resumed look
            reaches the same decisions.

    Returns:
        arm -> :class:`LookDecision`; ``verdict`` None means "add ``step`` seeds and look again".
    """
    n, mats, base = _inputs(design, look, arms, baseline)
    decided = dict(decided or {})
    m = len(mats) + len(decided)
    rejected = sum(v in ("BEATS", "WORSE") for v in decided.values())
    null = {a: _null_statistics(design, look, x, base, a, seed) for a, x in mats.items()}
    verdict: dict[str, str | None] = dict.fromkeys(mats)
    bounds: dict[str, tuple[float, float]] = {}
    while True:  # Holm's step-down as a graphical procedure: a rejection passes its level on
        level, new = design.alpha / max(m - rejected, 1), 0
        for a in (a for a in mats if verdict[a] is None):
            b, crossed = _boundaries(design, level, null[a])
            bounds[a] = (float(b[look]), spent(design, level, look))
            if crossed:
                verdict[a], new = ("BEATS" if _poi(mats[a], base) > 0.5 else "WORSE"), new + 1
        rejected += new
        if not new:
            break
    equiv = _equivalent(design, look, mats, base, decided, verdict)
    return {a: _record(design, look, n, mats[a], base, verdict[a], float(null[a][look, 0]), bounds[a], equiv[a])
            for a in mats}


def _equivalent(design: SequentialDesign, look: int, mats: Mapping[str, np.ndarray], base: np.ndarray,
                decided: Mapping[str, str], verdict: dict[str, str | None]) -> dict[str, tuple]:
    """The equivalence family: Holm over arms (graphical), Bonferroni over looks; marks EQUIVALENT in ``verdict``."""
    m = len(mats) + len(decided)
    accepted = sum(v == "EQUIVALENT" for v in decided.values())
    out: dict[str, tuple] = {}
    while True:
        level, new = design.alpha / max(m - accepted, 1), 0
        for a in (a for a in mats if verdict[a] is None or a not in out):
            out[a] = (level, *_equivalence(design, look, level, mats[a], base))
            if design.equivalence and verdict[a] is None and out[a][3] <= out[a][1]:
                verdict[a], new = "EQUIVALENT", new + 1
        accepted += new
        if not new:
            return out


def _record(design: SequentialDesign, look: int, n: int, x: np.ndarray, y: np.ndarray, verdict: str | None,
            stat: float, bound: tuple[float, float], equiv: tuple) -> LookDecision:
    _, gamma, ci, p_eq = equiv
    est = float(_poi(x, y))
    boundary, level = bound
    last = look == len(design.looks()) - 1
    if verdict in ("BEATS", "WORSE"):
        reason = (f"P {est:.3g}: studentized |T| {stat:.3g} crossed the look's boundary {boundary:.3g} "
                  f"(level spent {level:.3g})")
    elif verdict == "EQUIVALENT":
        reason = (f"CI [{ci[0]:.3g}, {ci[1]:.3g}] inside [{0.5 - design.margin:.3g}, {0.5 + design.margin:.3g}] "
                  f"(TOST p {p_eq:.3g} <= {gamma:.3g})")
    else:
        why = ("no relabelling count can reach this look's level" if math.isinf(boundary) else
               f"P {est:.3g}: studentized |T| {stat:.3g} below the boundary {boundary:.3g}")
        verdict = "INCONCLUSIVE" if last else None
        reason = why + (f" at the cap of {n} seeds" if last else f"; add seeds up to {design.looks()[look + 1]}")
    return LookDecision(look, n, verdict, est, stat, boundary, level, ci, gamma, p_eq, reason)


def decide_sequentially(design: SequentialDesign, arms: Mapping[str, np.ndarray], baseline: np.ndarray, *,
                        seed: int = 0) -> dict[str, list[LookDecision]]:
    """Play every look on pre-drawn ``(max_seeds, envs)`` matrices: each arm's looks until it is decided.

    An arm's seeds used are ``history[arm][-1].seeds`` (it gets no runs after its deciding look);
    the baseline runs until the last arm is decided. The reference for a driver, and the simulator
    of the benchmark and tests.
    """
    history: dict[str, list[LookDecision]] = {a: [] for a in arms}
    decided: dict[str, str] = {}
    for look in range(len(design.looks())):
        live = {a: m for a, m in arms.items() if a not in decided}
        if not live:
            break
        for a, rec in decide_look(design, look, live, baseline, decided=decided, seed=seed).items():
            history[a].append(rec)
            if rec.verdict is not None:
                decided[a] = rec.verdict
    return history


def seeds_used(history: Mapping[str, Sequence[LookDecision]]) -> dict[str, int]:
    """Seeds per env each arm ran (its deciding or last look), and the baseline's (the largest)."""
    used = {a: h[-1].seeds for a, h in history.items()}
    return {**used, "baseline": max(used.values(), default=0)}
