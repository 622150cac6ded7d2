"""The tradeoff figure: curves, gaps and the LR."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clr_rl.phases.tradeoff import TradeoffPlan


def _draw_curves(ax: Any, rows: list[dict[str, Any]], single: dict[int, Any]) -> None:
    """The whole single-run curve (mean over seeds at every evaluation), faint, and each approach's
    points at the budgets with their 95% CIs."""
    import numpy as np

    curves = [ev for _, ev in single.values()]
    ts = sorted({e["timesteps"] for ev in curves for e in ev if e["timesteps"] > 0})
    if ts:
        ys = np.array([np.interp(ts, [e["timesteps"] for e in ev], [e["mean_return"] for e in ev]) for ev in curves])
        ax.plot(ts, ys.mean(axis=0), color="tab:blue", lw=0.8, alpha=0.45, label="single run, every evaluation")
    for approach, color, marker, label in (("single", "tab:blue", "o", "single run: end of each cycle"),
                                           ("separate", "tab:orange", "s", "separate runs, one cosine each")):
        pts = [r for r in rows if r["approach"] == approach]
        if not pts:
            continue
        x = np.array([r["budget"] for r in pts], dtype=float)
        y = np.array([r["mean_return"] for r in pts])
        lo = np.array([r["ci_low"] if math.isfinite(r["ci_low"]) else r["mean_return"] for r in pts])
        hi = np.array([r["ci_high"] if math.isfinite(r["ci_high"]) else r["mean_return"] for r in pts])
        ax.errorbar(x, y, yerr=[y - lo, hi - y], color=color, marker=marker, ms=6, lw=1.6, capsize=3,
                    label=f"{label} (n={max(r['seeds'] for r in pts)})")



def _style_curves(ax: Any, plan: TradeoffPlan, gaps: dict[str, Any] | None, compute: dict[str, Any]) -> None:
    """Log x, labels, legend, and a title with each approach's compute per seed."""
    ax.set_xscale("log")
    ax.set_ylabel("evaluation return\n(mean, 95% CI over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    title = (f"{plan.algo.upper()} {plan.env_id}: return vs budget from one run ({plan.cycles} cycles, "
             f"t_mult {plan.t_mult:g})\ncompute per seed: single run {compute['single_timesteps_per_seed']:,} "
             "timesteps")
    if gaps:
        title += (f"; separate runs {compute['separate_timesteps_per_seed']:,} "
                  f"({compute['separate_over_single']:.2f}x)")
    ax.set_title(title, fontsize=9)



def _draw_gap(g: Any, plan: TradeoffPlan, gaps: dict[str, Any]) -> None:
    """The gap single - separate per budget with its paired-bootstrap CI."""
    import numpy as np

    x = np.array(plan.budgets, dtype=float)
    y = np.array(gaps["gap"])
    g.errorbar(x, y, yerr=[y - np.array(gaps["ci_low"]), np.array(gaps["ci_high"]) - y], color="tab:red",
               marker="D", ms=5, capsize=3, lw=1.2)
    g.axhline(0.0, color="black", lw=0.8)
    m = gaps["mean_abs_gap"]
    g.set_ylabel("gap, normalised\n(single - separate)")
    g.set_title(f"mean |gap| {m['estimate']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] (paired bootstrap, "
                "95%); first budget identical by construction", fontsize=8)
    g.grid(alpha=0.3)



def _draw_lr(lr_ax: Any, plan: TradeoffPlan) -> None:
    """The single run's LR against the budget, ticks at the budgets."""
    import numpy as np

    grid = np.geomspace(max(1.0, plan.budgets[0] / 8), plan.timesteps, 800)
    lr_ax.plot(grid, [plan.schedule(1 - t / plan.timesteps) for t in grid], color="tab:blue", lw=1.0,
               label="single run")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("budget (timesteps); dotted: cycle ends")
    lr_ax.grid(alpha=0.3)
    lr_ax.set_xticks(list(plan.budgets), [f"{b:,}" for b in plan.budgets])
    lr_ax.minorticks_off()



def _plot(path: Path, plan: TradeoffPlan, rows: list[dict[str, Any]], single: dict[int, Any],
          gaps: dict[str, Any] | None, compute: dict[str, Any]) -> None:
    from clr_rl.plotting import _pyplot

    plt = _pyplot()
    panels = 3 if gaps else 2
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.6 * panels + 1.2), dpi=100, sharex=True,
                             gridspec_kw={"height_ratios": [3, 1.3, 1.3][:panels]})
    _draw_curves(axes[0], rows, single)
    for a in axes:
        for b in plan.budgets:
            a.axvline(b, color="grey", ls=":", lw=0.8)
    _style_curves(axes[0], plan, gaps, compute)
    if gaps:
        _draw_gap(axes[1], plan, gaps)
    _draw_lr(axes[-1], plan)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
