"""The group-sequential design (``clr_rl.sequential``) and the fixed design's EQUIVALENT family.

Every check goes through the real decision code: null calibration by simulation (a binomial
bound around alpha), an arm that never learns decided WORSE at the first look whose level a
single relabelling can reach (computed here from the spending function), bad designs refused
with the field named, decisions reproducible from the seed (a resumed look equals the look
played in sequence), and ``stats.decide``'s EQUIVALENT held family-wise over arms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from clr_rl import stats
from clr_rl.stats.ranks import delong, studentized
from clr_rl.stats.sequential import SequentialDesign, decide_look, decide_sequentially, seeds_used, spent


def test_null_batches_give_false_verdicts_within_a_binomial_bound_of_alpha() -> None:
    """300 null batches (an arm and the baseline from one distribution, 3 envs, looks at 4, 8, 12 seeds):
    the share with a BEATS/WORSE stays <= 0.05 + 2.5 simulation standard errors."""
    design = SequentialDesign(first=4, max_seeds=12, permutations=199, equivalence=False)
    rng = np.random.default_rng(20261202)
    batches, hits, stopped_early = 300, 0, 0
    for b in range(batches):
        hist = decide_sequentially(design, {"arm": rng.standard_t(2, size=(12, 3))}, rng.standard_t(2, size=(12, 3)),
                                   seed=b)
        hits += hist["arm"][-1].verdict in ("BEATS", "WORSE")
        stopped_early += len(hist["arm"]) < 3
    assert hits / batches <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / batches), hits
    assert stopped_early <= hits  # an arm stops early only with a verdict


def test_unequal_spreads_the_studentized_test_holds_its_level() -> None:
    """sigma ratio 4, 1 env, one look at 30 seeds (3000 null batches, P(X > Y) = 0.5 but not exchangeable): the
    permutation test on the plain P - 0.5 rejected 6.5% (as the asymptotic Mann-Whitney test, 7.5%); the
    studentized statistic stays <= 0.05 + 2.5 simulation standard errors (measured 4.2% at 1500)."""
    design = SequentialDesign(first=30, max_seeds=30, permutations=199, equivalence=False)
    rng = np.random.default_rng(20261203)
    batches = 3000
    hits = sum(decide_sequentially(design, {"arm": 4 * rng.normal(size=(30, 1))}, rng.normal(size=(30, 1)),
                                   seed=b)["arm"][-1].verdict in ("BEATS", "WORSE") for b in range(batches))
    assert hits / batches <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / batches), hits


@pytest.mark.parametrize("ties", [False, True])
def test_the_statistic_of_every_relabelling_is_p_over_its_own_delong_se(ties: bool) -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), 3 * rng.normal(size=(7, 3))
    if ties:
        x, y = np.round(x), np.round(y)
    values = np.concatenate([x, y]).T
    masks = np.stack([np.stack([rng.permutation(14) < 7 for _ in range(3)]) for _ in range(5)])  # (5, envs, 14)
    masks[0] = np.arange(14) < 7  # the observed labels
    expected = []
    for mask in masks:
        xs, ys = (np.stack([values[e][sel[e]] for e in range(3)], axis=1) for sel in (mask, ~mask))
        est, se = delong(xs, ys)
        expected.append((est - 0.5) / se)
    assert studentized(values, masks) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("boundaries", ["obrien-fleming", "linear", "pocock"])
def test_an_arm_that_never_learns_is_worse_at_the_earliest_look_allowed_and_gets_no_more_seeds(
        boundaries: str) -> None:
    """LR 1e-7: every run scores the floor in all 3 envs, below every baseline run. With 5 seeds x 3 envs
    a random relabelling separates as fully with probability (2 / C(10, 5))^3 ~ 5e-7, so the observed
    labels alone sit at the top: the earliest look is the first whose level lets one of the B + 1
    relabellings cross, floor(f(t) (B + 1)) >= 1 at the arm's Holm level alpha / 2 (two arms)."""
    design = SequentialDesign(first=5, max_seeds=30, boundaries=boundaries)
    earliest = next(k for k in range(6) if math.floor(spent(design, 0.05 / 2, k) * (design.permutations + 1)) >= 1)
    rng = np.random.default_rng(3)
    base = rng.normal(size=(30, 3))
    arms = {"lr1e-7": np.full((30, 3), -10.0), "same": rng.normal(size=(30, 3))}
    hist = decide_sequentially(design, arms, base, seed=0)
    assert [r.verdict for r in hist["lr1e-7"]] == [None] * earliest + ["WORSE"]
    assert seeds_used(hist)["lr1e-7"] == design.looks()[earliest]
    assert {"obrien-fleming": 2, "linear": 0, "pocock": 0}[boundaries] == earliest  # OBF at 10 seeds: 1.0e-4 x 5000
    assert hist["lr1e-7"][-1].estimate == 0.0 and "crossed" in hist["lr1e-7"][-1].reason


def test_one_env_can_still_decide_though_early_levels_are_below_the_smallest_p() -> None:
    """One env, 5 seeds: the smallest two-sided p is 2/252 = 0.0079, O'Brien-Fleming's first look spends 1.6e-6.
    The look cannot stop (boundary inf), and its unspent level carries to later looks."""
    design = SequentialDesign(first=5, max_seeds=30, boundaries="obrien-fleming")
    hist = decide_sequentially(design, {"floor": np.zeros((30, 1))}, np.arange(1.0, 31.0)[:, None], seed=1)
    assert hist["floor"][0].verdict is None and math.isinf(hist["floor"][0].boundary)
    assert hist["floor"][-1].verdict == "WORSE" and len(hist["floor"]) <= 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"first": 5, "max_seeds": 3}, "max_seeds=3 must be >= the first look's seeds=5"),
    ({"first": 5, "max_seeds": 30, "step": 0}, "step=0 must be >= 1"),
    ({"first": 5, "max_seeds": 30, "alpha": 1.5}, r"alpha=1.5 must be in \(0, 1\)"),
    ({"first": 5, "max_seeds": 30, "alpha": 0.0}, r"alpha=0.0 must be in \(0, 1\)"),
    ({"first": 5, "max_seeds": 30, "boundaries": "haybittle"}, "boundaries='haybittle' must be one of"),
    ({"first": 5, "max_seeds": 15, "boundaries": (0.01, 0.02)}, r"must give one level per look: 3 looks \[5, 10, 15\]"),
    ({"first": 5, "max_seeds": 10, "boundaries": (0.03, 0.03)}, "summing to at most alpha=0.05"),
    ({"first": 5, "max_seeds": 30, "margin": 0.5}, r"margin=0.5 must be in \(0, 0.5\)"),
])
def test_bad_designs_are_refused_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SequentialDesign(**kwargs)


def test_looks_are_capped_at_max_seeds() -> None:
    assert SequentialDesign(first=5, max_seeds=30).looks() == (5, 10, 15, 20, 25, 30)
    assert SequentialDesign(first=5, max_seeds=17, step=4).looks() == (5, 9, 13, 17)
    assert SequentialDesign(first=5, max_seeds=5).looks() == (5,)
    assert SequentialDesign(5, 10, boundaries=[0.01, 0.04]).boundaries == (0.01, 0.04)  # a TOML list is accepted


def test_decisions_are_reproducible_and_a_resumed_look_reaches_the_same_decisions() -> None:
    design = SequentialDesign(first=5, max_seeds=20, permutations=999)
    rng = np.random.default_rng(11)
    base = rng.normal(size=(20, 2))
    arms = {"a": rng.normal(size=(20, 2)) + 0.9, "b": rng.normal(size=(20, 2)), "c": rng.normal(size=(20, 2)) - 0.4}
    first = decide_sequentially(design, arms, base, seed=7)
    assert first == decide_sequentially(design, arms, base, seed=7)
    # resume: the process died during look 2; replaying it from the recorded decisions alone gives the same records
    for look in range(1, 4):
        decided = {a: h[-1].verdict for a, h in first.items() if len(h) <= look and h[-1].verdict}
        live = {a: arms[a][: design.looks()[look]] for a, h in first.items() if len(h) > look}
        again = decide_look(design, look, live, base[: design.looks()[look]], decided=decided, seed=7)
        assert again == {a: first[a][look] for a in live}


def test_identical_arms_reach_equivalent_and_only_when_asked() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(size=(40, 3))
    on = decide_sequentially(SequentialDesign(first=10, max_seeds=40), {"same": base.copy()}, base, seed=0)
    assert on["same"][-1].verdict == "EQUIVALENT" and 0.4 < on["same"][-1].ci[0] < 0.5 < on["same"][-1].ci[1] < 0.6
    off = decide_sequentially(SequentialDesign(first=10, max_seeds=40, equivalence=False), {"same": base}, base, seed=0)
    assert [r.verdict for r in off["same"]] == [None, None, None, "INCONCLUSIVE"]
    assert "at the cap of 40 seeds" in off["same"][-1].reason


def test_fixed_design_equivalent_is_family_wise_over_arms() -> None:
    """Each arm's bootstrap puts 1.5% of P* below 0.4: its equivalence p is 0.03. Alone, the 95% CI is inside
    [0.4, 0.6]: EQUIVALENT. With three such arms, Holm over the equivalence tests asks 0.05/3 of the smallest:
    none is EQUIVALENT (the old rule judged the third at the superiority order's level 0.05: EQUIVALENT)."""
    samples = np.concatenate([np.full(6, 0.35), np.linspace(0.45, 0.55, 394)])
    one = stats.decide({"a": {"estimate": 0.5, "samples": samples, "p_value": 0.9}})
    assert one["a"].verdict == "EQUIVALENT" and one["a"].level == pytest.approx(0.05)
    three = stats.decide({k: {"estimate": 0.5, "samples": samples, "p_value": p}
                          for k, p in zip("abc", (0.7, 0.8, 0.9))})
    assert [d.verdict for d in three.values()] == ["INCONCLUSIVE"] * 3
