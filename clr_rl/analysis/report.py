"""``clr-rl report``: analyse a batch folder and write report.md, stats.json and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clr_rl.analysis.analyse import analyse, to_json
from clr_rl.analysis.collect import collect
from clr_rl.analysis.markdown import _copy_tradeoff_figures, markdown
from clr_rl.errors import ConfigError
from clr_rl.store import write_text_atomic

__all__ = ["report"]


# ------------------------------------------------------------------------ the command
def _baseline(resolved: dict[str, Any], arms: list[str], baseline: str | None) -> str:
    chosen = baseline or resolved.get("baseline") or ("fixed-tuned" if "fixed-tuned" in arms else None)
    if chosen is None:
        raise ConfigError(f"baseline: this batch's spec names no baseline and has no arm named 'fixed-tuned'; "
                         f"pass baseline= (one of {', '.join(arms)})")
    if chosen not in arms:
        raise ConfigError(f"baseline={chosen!r} is not an arm of this batch; expected one of {', '.join(arms)}")
    return str(chosen)



def _margin(resolved: dict[str, Any], margin: float | None) -> float:
    if margin is None:
        margin = ((resolved.get("spec") or {}).get("report") or {}).get("margin", 0.1)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 0.5:
        raise ConfigError(f"margin={margin!r} must be a number in (0, 0.5)")
    return float(margin)



def report(out: Path | str, *, baseline: str | None = None, reps: int = 2000, seed: int = 0,
           margin: float | None = None) -> int:
    """Write ``<out>/report/`` (``report.md``, ``stats.json``, PNGs); print the verdicts.

    ``margin``: the equivalence margin on P(improvement) (default: the spec's ``[report] margin``, else 0.1).
    """
    from clr_rl.analysis import plots

    out = Path(out)
    if reps < 10:
        raise ConfigError(f"reps={reps} must be >= 10")
    resolved, runs = collect(out)
    arms = list(dict.fromkeys(r.arm for r in runs))
    chosen, m = _baseline(resolved, arms, baseline), _margin(resolved, margin)
    result = analyse(out, resolved, runs, baseline=chosen, reps=reps, seed=seed, margin=m)
    dest = out / "report"
    dest.mkdir(parents=True, exist_ok=True)
    images = {**plots.report_figures(result, runs, dest), **_copy_tradeoff_figures(out, result, dest)}
    stats = to_json(result)
    write_text_atomic(dest / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")
    write_text_atomic(dest / "report.md", markdown(result, runs, images))
    from clr_rl.analysis.tensorboard import write_aggregates

    write_aggregates(out, stats, seed=seed, reps=reps)  # one TensorBoard run per arm, rewritten each time
    done = sum(1 for r in runs if r.complete)
    print(f"report: {done}/{len(runs)} runs complete; baseline {chosen}")
    for v in result.verdicts.values():
        print(f"  {v}")
    print(f"wrote {dest / 'report.md'}, {dest / 'stats.json'} and {len(images)} figures")
    return 0
