"""The report's figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clr_rl.plotting import _pyplot, _save
from clr_rl.schedules.plot import _lr_curve
from clr_rl.stats import AGGREGATES

__all__ = ["report_figures"]


def report_figures(res: Any, runs: list[Any], dest: Path) -> dict[str, str]:
    """All report figures of a :class:`clr_rl.analysis.results.Report` as PNGs in ``dest``; returns {key: file name}.

    Keys: each env id (learning curves with the LR overlay), ``aggregates``, ``improvement``,
    ``profiles``, ``efficiency``. The figures only read ``res`` (and the runs' evaluations).
    """
    plt = _pyplot()
    colors = {arm: plt.get_cmap("tab10")(i % 10) for i, arm in enumerate(res.arms)}
    images: dict[str, str] = {}
    for k, env in enumerate(res.envs):
        name = f"curves_{k:02d}_{env.replace('/', '_')}.png"
        _curves_figure(plt, env, res.arms, runs, colors, dest / name)
        images[env] = name
    arms = [a for a in res.arms if res.aggregates.get(a)]
    if arms:
        _intervals_figure(plt, arms, res.aggregates, colors, dest / "aggregates.png")
        images["aggregates"] = "aggregates.png"
    poi = {a: c for a, c in res.comparisons.items() if c.estimate is not None}
    if poi:
        _improvement_figure(plt, poi, res.baseline, colors, dest / "improvement.png")
        images["improvement"] = "improvement.png"
    for key, xs, bands, xlabel, ylabel in (
        ("profiles", res.profile_taus, res.performance_profiles, "normalised score tau",
         "fraction of runs with score > tau"),
        ("efficiency", res.efficiency_fractions, res.sample_efficiency, "fraction of the budget (1 = final evaluation)",
         "IQM normalised return"),
    ):
        if bands:
            _bands_figure(plt, xs, bands, colors, xlabel, ylabel, dest / f"{key}.png")
            images[key] = f"{key}.png"
    return images



def _curves_figure(plt: Any, env: str, arms: list[str], runs: list[Any], colors: dict[str, Any], path: Path) -> None:
    """Mean evaluation return over seeds with its Student-t 95% band, and each arm's LR (dotted, right axis)."""
    import numpy as np
    from scipy.stats import t as student_t

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    ax2 = ax.twinx()
    for arm in arms:
        rs = [r for r in runs if r.env == env and r.arm == arm and r.complete and not r.diverged]
        div = sum(1 for r in runs if r.env == env and r.arm == arm and r.diverged)
        if not rs:
            continue
        ts = np.array([e["timesteps"] for e in rs[0].evals], dtype=float)
        ys = np.array([np.interp(ts, [e["timesteps"] for e in r.evals], [e["mean_return"] for e in r.evals])
                       for r in rs])
        mean = ys.mean(axis=0)
        label = f"{arm} (n={len(rs)}" + (f", {div} diverged not drawn)" if div else ")")
        ax.plot(ts, mean, color=colors[arm], lw=1.8, label=label)
        if len(rs) > 1:
            half = student_t.ppf(0.975, len(rs) - 1) * ys.std(axis=0, ddof=1) / np.sqrt(len(rs))
            ax.fill_between(ts, mean - half, mean + half, color=colors[arm], alpha=0.15)
        grid = np.linspace(0, rs[0].timesteps, 400)
        ax2.plot(grid, _lr_curve(rs[0].schedule, rs[0].timesteps, grid), color=colors[arm], lw=0.8, ls=":")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("evaluation return (mean, 95% CI over seeds)")
    ax2.set_ylabel("learning rate (dotted)")
    ax2.set_yscale("log")
    ax.set_title(env)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    _save(plt, fig, path)



def _intervals_figure(plt: Any, arms: list[str], aggregates: dict[str, Any], colors: dict[str, Any],
                      path: Path) -> None:
    metrics = list(AGGREGATES.values())
    fig, axes = plt.subplots(1, len(metrics), figsize=(3 * len(metrics), 0.5 * len(arms) + 1.5), dpi=100,
                             sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, arm in enumerate(arms):
            a = aggregates[arm].intervals[metric.name]
            ax.plot([a.ci_low, a.ci_high], [i, i], color=colors[arm], lw=6, alpha=0.6, solid_capstyle="butt")
            ax.plot([a.estimate], [i], "|", color="black", ms=12)
        ax.set_title(metric.title + ("" if metric.higher_is_better else " (lower is better)"))
        ax.set_xlabel("normalised score")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(range(len(arms)), arms)
    _save(plt, fig, path)



def _improvement_figure(plt: Any, poi: dict[str, Any], baseline: str, colors: dict[str, Any], path: Path) -> None:
    """95% CI (thick) and the CI at the Holm-adjusted level (thin) of P(arm > baseline), with the verdict."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(poi) + 1.5), dpi=100)
    for i, (arm, c) in enumerate(poi.items()):
        ax.plot([c.ci_low, c.ci_high], [i, i], color=colors[arm], lw=6, alpha=0.6, solid_capstyle="butt")
        if c.decision_ci:
            ax.plot(list(c.decision_ci), [i, i], color=colors[arm], lw=1.5)
        ax.plot([c.estimate], [i], "|", color="black", ms=12)
        ax.annotate(c.verdict, (1.0, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7,
                    annotation_clip=False)
    ax.axvline(0.5, color="grey", ls="--")
    ax.set_yticks(range(len(poi)), list(poi))
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"P(arm > {baseline}): 95% CI (thick), CI at the Holm level (thin)")
    _save(plt, fig, path)



def _bands_figure(plt: Any, xs: list[float], bands: dict[str, Any], colors: dict[str, Any], xlabel: str,
                  ylabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for arm, band in bands.items():
        ax.plot(xs, band.point, color=colors[arm], label=arm)
        ax.fill_between(xs, band.ci_low, band.ci_high, color=colors[arm], alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(plt, fig, path)
