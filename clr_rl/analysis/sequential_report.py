"""The report of a ``[sequential]`` batch: each arm's looks, the look that decided it, and the compute saved.

The verdicts of a sequential batch are the looks' decisions (``sequential.json``, written by the
looks phase as the batch ran): re-judging its runs with the fixed-design rule would ignore that
the batch looked several times. Everything else in the report (per-env tables, aggregates,
profiles) reads the runs as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clr_rl.analysis.collect import RunData
from clr_rl.analysis.results import Comparison
from clr_rl.phases.looks import read_looks
from clr_rl.stats.sequential import STATISTIC_TEXT

__all__ = ["answer_sentence", "md_sequential", "sequential_comparisons", "sequential_summary"]


def sequential_summary(out: Path, runs: list[RunData]) -> dict[str, Any] | None:
    """``stats.json``'s ``sequential``: the design, per arm its looks and decision, seeds and timesteps used
    against the fixed ``max_seeds`` design; None for a fixed batch."""
    data = read_looks(out)
    if data is None:
        return None
    design, looks = data["design"], data["looks"]
    arms: dict[str, Any] = {}
    for arm in data["arms"]:
        history = [(rec.look, rec.decisions[arm]) for rec in looks if arm in rec.decisions]
        final = next((d for _, d in history if d.verdict is not None), None)
        arms[arm] = {"verdict": final.verdict if final else "UNDECIDED",
                     "decided_at_look": final.look + 1 if final else None,
                     "seeds": history[-1][1].seeds if history else 0,
                     "looks": [{"look": k + 1, "seeds": d.seeds, "estimate": d.estimate,
                                "ci": [max(0.0, d.ci[0]), min(1.0, d.ci[1])],  # a normal CI of P, within [0, 1]
                                "boundary": d.boundary, "level": d.level, "verdict": d.verdict or "continue",
                                "reason": d.reason} for k, d in history]}
    per_run = {(r.env, r.arm): r.timesteps for r in runs}
    envs = sorted({r.env for r in runs})
    all_arms = [*data["arms"], data["baseline"]]
    used = sum(r.timesteps for r in runs if r.complete)
    fixed = sum(per_run.get((e, a), 0) * design["max_seeds"] for e in envs for a in all_arms)
    return {"design": design, "statistic": data["statistic"], "looks_run": len(looks),
            "look_seeds": [rec.seeds for rec in looks],
            "baseline": data["baseline"], "arms": arms, "timesteps_used": used, "timesteps_fixed_design": fixed,
            "compute_saved": 1 - used / fixed if fixed else 0.0,
            "runs_used": sum(1 for r in runs if r.complete), "runs_fixed_design": len(envs) * len(all_arms)
            * design["max_seeds"]}


def sequential_comparisons(seq: dict[str, Any], fixed: dict[str, Comparison], baseline: str) -> dict[str, Comparison]:
    """Each arm's :class:`Comparison` with the verdict of the look that decided it (its 95% CI of P and
    seeds as the fixed rule read them, for the tables and figures)."""
    out = {}
    for arm, c in fixed.items():
        s = seq["arms"].get(arm)
        if s is None or not s["looks"]:
            out[arm] = c
            continue
        last = s["looks"][-1]
        verb = "decided" if s["verdict"] != "INCONCLUSIVE" else "stopped"
        how = (f"{verb} at look {s['decided_at_look']} of {len(_sizes(seq['design']))} "
               f"({last['seeds']} seeds per env)" if s["decided_at_look"] else
               f"undecided after look {len(s['looks'])} ({last['seeds']} seeds per env): rerun the batch to continue")
        reason = f"sequential, {how}: {last['reason']}"
        text = (f"{arm} {s['verdict']} against {baseline}: P(improvement) {last['estimate']:.2f}, "
                f"{_statistic(seq)} against the look's boundary {last['boundary']:.3g} "
                f"(level spent {last['level']:.3g}); "
                f"{reason}")
        out[arm] = Comparison(list(range(last["seeds"])), last["estimate"], c.ci_low, c.ci_high, None,
                              last["level"], (last["ci"][0], last["ci"][1]), s["verdict"], reason, None, text)
    return out


def _statistic(seq: dict[str, Any]) -> str:
    name = seq.get("statistic", "plain-p")
    return STATISTIC_TEXT.get(name, name)


def _sizes(design: dict[str, Any]) -> list[int]:
    step = design.get("step") or design["first"]
    return [*range(design["first"], design["max_seeds"], step), design["max_seeds"]]


def answer_sentence(seq: dict[str, Any]) -> str:
    """How the decisions were reached, in words, for the report's answer."""
    d = seq["design"]
    decided = [a for a, s in seq["arms"].items() if s["verdict"] in ("BEATS", "WORSE", "EQUIVALENT")]
    capped = [a for a, s in seq["arms"].items() if s["verdict"] == "INCONCLUSIVE"]
    at_cap = f", {len(capped)} still undecided at the cap of {d['max_seeds']} seeds" if capped else ""
    running = [a for a, s in seq["arms"].items() if s["verdict"] == "UNDECIDED"]
    if running:
        at_cap += (f"; {len(running)} still running after look {seq['looks_run']} (the batch is not finished: "
                   "rerun it to continue; the counts below are so far)")
    return (f"Decided sequentially: looks at {_sizes(d)} seeds per env ({d['boundaries']} boundaries, family-wise "
            f"level {d['alpha']} over arms and looks for BEATS/WORSE and for EQUIVALENT); {len(decided)} of "
            f"{len(seq['arms'])} arm(s) decided{at_cap}, using {seq['runs_used']} runs "
            f"({seq['timesteps_used']:,} timesteps) instead of the fixed max_seeds design's "
            f"{seq['runs_fixed_design']} ({100 * seq['compute_saved']:.0f}% of its compute saved).")


def md_sequential(seq: dict[str, Any] | None) -> list[str]:
    """The report's section on the looks: one row per arm and look."""
    if seq is None:
        return []
    d = seq["design"]
    out = ["## Sequential decisions", "", answer_sentence(seq), "",
           f"Boundary: the permutation-calibrated boundary on {_statistic(seq)} at that look "
           f"(inf: the look cannot stop); "
           f"level: the superiority level spent by then; CI: the look's CI of P at the equivalence level "
           f"(margin {d['margin']:g}).", ""]
    rows = [[arm, str(look["look"]), str(look["seeds"]), f"{look['estimate']:.3f}",
             f"[{look['ci'][0]:.3f}, {look['ci'][1]:.3f}]", f"{look['boundary']:.3g}", f"{look['level']:.3g}",
             look["verdict"]] for arm, s in seq["arms"].items() for look in s["looks"]]
    header = ["arm", "look", "seeds/env", "P(arm > baseline)", "CI", "boundary", "level", "decision"]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    return out
