"""The report as markdown."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from clr_rl import stats as st
from clr_rl.analysis.analyse import _ratio, _tradeoff_folder
from clr_rl.analysis.collect import RunData
from clr_rl.analysis.results import Report
from clr_rl.analysis.sequential_report import md_sequential

__all__ = ["markdown"]


# ------------------------------------------------------------------------ presentation (reads a Report)
def _num(x: Any, sig: int = 4) -> str:
    """``sig`` significant digits, thousands separators for large values, ``n/a`` for None/NaN.

    >>> [_num(v) for v in (475.31, -0.0012345, 12345.6, None, 0.0)]
    ['475.3', '-0.001234', '12,346', 'n/a', '0']
    """
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    if abs(x) >= 10 ** sig:
        return f"{x:,.0f}"
    return f"{x:.{sig}g}"



def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]



def _md_verdicts(res: Report) -> list[str]:
    out = ["## Verdict against the baseline", ""]
    out += [f"- {c.text}" for c in res.comparisons.values()] or ["- (no arm to compare)"]
    levels = ", ".join(f"`{a}` {c.holm_level:.3g}" for a, c in res.comparisons.items() if c.holm_level)
    rule = res.rules["sequential"] if res.sequential is not None else res.rules["verdict"]
    out += ["", f"Verdict rule ({len(res.comparisons)} arm(s) compared with `{res.baseline}`, family-wise level "
            f"{res.alpha}, correction: {res.correction}; adjusted level per arm: {levels or 'none'}): "
            f"{rule}. Equivalence margin {res.margin:g}. The permutation test guards the "
            "decision because the percentile bootstrap alone is anti-conservative with few seeds.", ""]
    if res.comparisons:
        rows = [[a, c.verdict, _num(c.estimate, 3), f"[{_num(c.ci_low, 3)}, {_num(c.ci_high, 3)}]",
                 _num(c.p_value, 3), _num(c.holm_level, 3),
                 f"[{_num(c.decision_ci[0], 3)}, {_num(c.decision_ci[1], 3)}]" if c.decision_ci else "n/a",
                 ", ".join(map(str, c.seeds)) or "none"] for a, c in res.comparisons.items()]
        out += [f"### Probability of improvement over `{res.baseline}`", ""]
        out += _md_table(["arm", "verdict", "P(arm > baseline)", "95% CI", "permutation p", "Holm level",
                          "CI at Holm level", "seeds entered"], rows)
    return out



def _md_relook(res: Report) -> list[str]:
    """For a fixed batch that some arm would decide with more seeds: the [sequential] table that adds them
    with the error rate held (re-looking at a fixed batch at 0.05 each time gave 15% false verdicts over
    six looks in simulation)."""
    need = [c.seeds_needed for c in res.comparisons.values() if c.seeds_needed]
    if res.sequential is not None or not need:
        return []
    first = max((len(c.seeds) for c in res.comparisons.values()), default=5) or 5
    cap = max(max(need), first + 1)
    return ["### Adding seeds", "", f"Do not add seeds to this batch and look again: each look at level {res.alpha} "
            "adds its own chance of a false verdict (looks at 5, 10, ... 30 seeds gave 15% false verdicts instead of "
            "5% in simulation). Decide with the error rate held by running the spec as a sequential batch, which "
            "adds seeds only to the arms still undecided:", "", "```toml", f"seeds = {first}",
            "[sequential]", f"max_seeds = {cap}  # the largest seeds-for-80%-power estimate above",
            f"step = {first}", "```", ""]


def _md_costs(res: Report) -> list[str]:
    out = ["## Cost of each arm", "",
           "Setup = what it took to set the arm up in this batch (tuning grid, LR range test; 0 for a general "
           "setting); run = the arm's training runs. 'For less tuning?' = setup timesteps / the baseline's.", ""]
    rows = [[c.env, c.arm, c.setup_method, f"{c.setup_timesteps:,}", _num(c.setup_wall_seconds, 3),
             f"{c.run_timesteps:,}", _num(c.run_wall_seconds, 3), _ratio(c.setup_ratio_vs_baseline),
             res.per_env[c.env].arms[c.arm].lr_provenance or "n/a"] for c in res.costs]
    out += _md_table(["env", "arm", "setup", "setup timesteps", "setup s", "run timesteps", "run s",
                      "for less tuning? (vs baseline)", "LR provenance"], rows)
    if not any(c.setup_timesteps for c in res.costs):
        out += ["No setup cost is recorded in this batch: LRs taken from `agents/` or a tune record were set up "
                "outside it (see the baseline provenance below).", ""]
    return out



def _md_provenance(res: Report, runs: list[RunData]) -> list[str]:
    out = ["### Baseline provenance and tuning cost", ""]
    rows = []
    for env in res.envs:
        run = next((r for r in runs if r.env == env and r.arm == res.baseline and r.record.get("config")), None)
        agent = run.record.get("config", {}).get("agent", {}) if run else {}
        cost = agent.get("tuned_lr_cost_timesteps")
        rows.append([env, str(agent.get("tuned_lr", "?")), str(agent.get("tuned_lr_source", "?")),
                     f"{cost:,} timesteps" if cost else "not measured here (value shipped in agents/)"])
    return out + _md_table(["env", "tuned fixed LR", "provenance", "tuning cost"], rows)



def _md_setup(res: Report, runs: list[RunData]) -> list[str]:
    first = next((r.record for r in runs if r.record.get("versions")), {})
    versions, cfg = first.get("versions", {}), first.get("config", {})
    budgets = {r.env: r.timesteps for r in runs}
    evals = {(r.env, r.record.get("config", {}).get("eval_every"), r.record.get("config", {}).get("eval_episodes"))
             for r in runs if r.record.get("config")}
    out = ["## Setup", "",
           f"- algo: {cfg.get('algo', '?')}; envs: " + ", ".join(f"{e} ({budgets[e]:,} timesteps)" for e in res.envs),
           f"- arms: {len(res.arms)}; seeds: {sorted({r.seed for r in runs})}; baseline: `{res.baseline}`",
           "- evaluation: deterministic policy on a separate env (seed + 10000), "
           + "; ".join(f"{e}: {n} episodes every {k:,} steps" for e, k, n in sorted(evals, key=str) if k),
           f"- bootstrap: {res.bootstrap['method']}, {res.bootstrap['reps']} resamples, seed {res.bootstrap['seed']}; "
           "per-env CIs are Student-t over seeds",
           "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform"),
           f"- device: {cfg.get('device', '?')}; platform: {versions.get('platform', '?')}", "",
           "### Definitions and rules", ""]
    out += [f"- {k}: {v}" for k, v in res.definitions.items()]
    out += [f"- {k}: {v}" for k, v in res.rules.items()]
    return [*out, ""]



def _md_env(res: Report, env: str, images: dict[str, str]) -> list[str]:
    e = res.per_env[env]
    where = ("in the cross-env aggregates" if e.in_aggregates else
             "**left out of the cross-env aggregates**: no reference score (set `[overrides.\"" + env
             + "\"] reference_score` in the spec)")
    out = [f"### {env}", "", f"Normalisation: random {_num(e.random_score)} ({e.random_source}), reference "
           f"{_num(e.reference_score)} ({e.reference_source}); {where}. Threshold: {_num(e.threshold)}.", ""]
    rows = []
    for arm, a in e.arms.items():
        fr, au = a.final_return, a.auc
        div = f", diverged {a.diverged}/{a.seeds_done}" if a.diverged else ""
        rows.append([arm, f"`{a.schedule}`", f"{a.seeds_done}/{a.seeds_planned}{div}",
                     f"{_num(fr.mean)} ± {_num(fr.std)}", f"[{_num(fr.ci95[0])}, {_num(fr.ci95[1])}]",
                     f"{_num(au.mean)} [{_num(au.ci95[0])}, {_num(au.ci95[1])}]",
                     f"{a.threshold_reached or 'n/a'}, median {_num(a.timesteps_to_threshold_median)}"])
    out += _md_table(["arm", "schedule", "seeds", "final return mean ± std", "95% CI", "AUC [95% CI]",
                      "reached threshold, timesteps"], rows)
    out += [f"- `{arm}` diverged: " + "; ".join(a.diverged_reasons) for arm, a in e.arms.items() if a.diverged]
    if env in images:
        out += [f"![learning curves {env}]({images[env]})", ""]
    return out



def _md_aggregates(res: Report) -> list[str]:
    out = ["## Aggregates over envs (normalised final return)", ""]
    if not res.aggregate_envs:
        return [*out, "No env of this batch has a reference score: no cross-env aggregate is computed.", ""]
    left = [e for e in res.envs if e not in res.aggregate_envs]
    out += [f"Envs: {', '.join(res.aggregate_envs)}" + (f"; left out (no reference score): {', '.join(left)}"
                                                          if left else "") + ".", ""]
    rows = []
    for arm, a in res.aggregates.items():
        if a is None:
            rows.append([arm] + ["n/a"] * len(st.AGGREGATES) + ["0", "none"])
            continue
        rows.append([arm] + [f"{_num(i.estimate, 3)} [{_num(i.ci_low, 3)}, {_num(i.ci_high, 3)}]"
                             for i in (a.intervals[name] for name in st.AGGREGATES)]
                    + [str(a.runs_per_env), ", ".join(map(str, a.seeds))])
    out += _md_table(["arm", *(agg.title for agg in st.AGGREGATES.values()), "runs/env", "seeds entered"], rows)
    left_runs = {arm: a.finished_runs_left_out for arm, a in res.aggregates.items() if a and a.finished_runs_left_out}
    if left_runs:
        out += ["Aggregates use the seed ids complete in every env; complete runs left out: "
                + ", ".join(f"{arm} {n}" for arm, n in left_runs.items()) + ".", ""]
    return out



def _md_tradeoff(res: Report, images: dict[str, str]) -> list[str]:
    """Each env's ``[tradeoff]`` curve: budget, mean return and its CI per approach, and the gap."""
    if not res.tradeoff:
        return []
    out = ["## Tradeoff curves (Portes et al. 2022)", "",
           "One run of cosine annealing with warm restarts whose cycles grow by `t_mult`, evaluated at the end of "
           "every cycle, stands in for one run per budget (Portes, Blalock, Stephenson, Frankle, arXiv 2206.00832). "
           "Return: mean over seeds with its Student-t 95% CI; gap: single - separate runs in normalised return, "
           "paired bootstrap 95% CI. Numbers as written in `tradeoff/<env>/tradeoff.json`.", ""]
    for env, t in res.tradeoff.items():
        by = {(r["approach"], int(r["budget"])): r for r in t["curve"]}
        gap = t["gap"]
        c = t["compute"]
        cost = f"{c['single_timesteps_per_seed']:,} timesteps per seed"
        if "separate_timesteps_per_seed" in c:
            cost += (f" (the separate runs: {c['separate_timesteps_per_seed']:,}, "
                     f"{c['separate_over_single']:.2f}x)")
        out += [f"### {env}", "", f"`{t['schedule']}` over {t['timesteps']:,} timesteps, {t['cycles']} cycles, "
                f"t_mult {t['t_mult']:g}; {t['max_lr_source'] or t['lr_provenance']}; compute: {cost}. "
                f"Files: `{t['folder']}/`.", ""]
        header = ["budget", "cycle", "seeds", "mean return", "95% CI"]
        if t["validate"]:
            header += ["separate runs: mean return", "95% CI", "gap (normalised)", "gap 95% CI"]
        rows = []
        for k, budget in enumerate(t["budgets"]):
            single = by.get(("single", int(budget)))
            row = [f"{budget:,}", str(k + 1)]
            row += ([str(single["seeds"]), _num(single["mean_return"]),
                     f"[{_num(single['ci_low'])}, {_num(single['ci_high'])}]"] if single else ["0", "n/a", "n/a"])
            if t["validate"]:
                sep = by.get(("separate", int(budget)))
                row += [_num(sep["mean_return"]), f"[{_num(sep['ci_low'])}, {_num(sep['ci_high'])}]"] if sep else [
                    "n/a", "n/a"]
                row += ([_num(gap["gap"][k], 3), f"[{_num(gap['ci_low'][k], 3)}, {_num(gap['ci_high'][k], 3)}]"]
                        if gap else ["n/a", "n/a"])
            rows.append(row)
        out += _md_table(header, rows)
        if gap:
            m = gap["mean_abs_gap"]
            line = (f"Mean |gap| (normalised): {_num(m['estimate'], 3)} "
                    f"[{_num(m['ci_low'], 3)}, {_num(m['ci_high'], 3)}]")
            if "mean_abs_gap_after_first" in gap:
                a = gap["mean_abs_gap_after_first"]
                line += (f"; without the first budget (identical by construction): {_num(a['estimate'], 3)} "
                         f"[{_num(a['ci_low'], 3)}, {_num(a['ci_high'], 3)}]")
            floor = gap.get("noise_floor_after_first", gap["noise_floor"])
            out += [line + f"; noise floor (no true gap): {_num(floor, 3)}.", ""]
        out += [f"- left out: {r['folder']} ({r['status']})" for r in t["left_out"]]
        if f"tradeoff:{env}" in images:
            out += [f"![tradeoff {env}]({images[f'tradeoff:{env}']})", ""]
    return out



def _copy_tradeoff_figures(out: Path, res: Report, dest: Path) -> dict[str, str]:
    """``tradeoff/<env>/tradeoff.png`` -> ``report/tradeoff_<env>.png``; ``{"tradeoff:<env>": name}``."""
    import shutil

    images = {}
    for env in res.tradeoff:
        png = _tradeoff_folder(out, env) / "tradeoff.png"
        if png.is_file():
            name = f"tradeoff_{env.replace('/', '_')}.png"
            shutil.copyfile(png, dest / name)
            images[f"tradeoff:{env}"] = name
    return images



def markdown(res: Report, runs: list[RunData], images: dict[str, str]) -> str:
    """``report.md``: the answer first, then verdicts, costs, setup, per-env tables, aggregates, figures,
    the ``[tradeoff]`` curves."""
    out = [f"# clr-rl report: {res.name}", "", "## The answer", "", res.answer, ""]
    out += _md_verdicts(res) + md_sequential(res.sequential) + _md_relook(res) + _md_costs(res)
    out += _md_provenance(res, runs) + _md_setup(res, runs)
    out += ["## Per environment", ""]
    for env in res.envs:
        out += _md_env(res, env, images)
    out += _md_aggregates(res)
    for key, title in (("aggregates", "Aggregate intervals"), ("improvement", "Probability of improvement"),
                       ("profiles", "Performance profiles"), ("efficiency", "Sample efficiency (IQM vs budget)")):
        if key in images:
            out += [f"### {title}", "", f"![{title}]({images[key]})", ""]
    out += _md_tradeoff(res, images)
    if res.missing:
        out += ["## Missing runs", "", f"{len(res.missing)} planned run(s) are not complete and are left out:", ""]
        out += [f"- {m['folder']}: {m['status']}" for m in res.missing] + [""]
    out += ["Produced by `clr-rl report`; numbers in `stats.json`."]
    return "\n".join(out) + "\n"
