"""Reading a batch's runs back: summary rows, the progress line, ``clr-rl status``."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from clr_rl.errors import ConfigError
from clr_rl.execute.planned import PlannedRun, run_state
from clr_rl.run.record import RECORD_FILE, Status, read_record, read_status
from clr_rl.store import (
    read_evaluations,
    read_json_checked,
    write_csv_atomic,
)

__all__ = ["SUMMARY_COLUMNS", "print_status", "summary_rows"]


SUMMARY_COLUMNS = ("env", "algo", "arm", "seed", "status", "final_return", "auc", "timesteps", "wall_seconds",
                   "schedule", "lr_provenance", "run_id", "folder")



def summary_rows(out: Path, runs: list[PlannedRun]) -> list[dict[str, Any]]:
    """One row per planned run, read from its folder."""
    rows = []
    for run in runs:
        folder = out / run.folder
        status, record = read_record(folder)
        evals = read_evaluations(folder / "evaluations.csv")
        final = record.get("final_eval", {})
        c = run.prepared.config
        rows.append({
            "env": run.env_id, "algo": c.algo, "arm": run.arm, "seed": run.seed,
            "status": status.value, "final_return": final.get("mean_return", ""),
            "auc": record.get("auc", ""), "timesteps": int(evals[-1]["timesteps"]) if evals else 0,
            "wall_seconds": record.get("wall_seconds", ""), "schedule": str(run.prepared.schedule),
            "lr_provenance": c.lr_provenance, "run_id": record.get("run_id", ""), "folder": run.folder,
        })
    return rows



def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    write_csv_atomic(path, SUMMARY_COLUMNS, rows)



def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)



def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = ("env", "algo", "arm", "seed", "status", "final_return", "auc", "timesteps", "wall_seconds")
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))



def _progress_line(out: Path, runs: list[PlannedRun], t0: float, start: dict[str, Any] | None,
                   est: dict[str, float]) -> dict[str, Any]:
    """Counts, timesteps done and their rate since ``t0``, and the ETA: the work left in estimated seconds
    (each run's ``est`` times the share of its timesteps not done) at the pace kept since ``t0``
    (estimated seconds of work done per second since ``start``, the line at ``t0``). Envs that train
    at different speeds so weigh by their estimates, not by their timesteps."""
    counts = {"complete": 0, "failed": 0, "left": 0}
    steps, work = 0, 0.0
    for r in runs:
        state = run_state(out, r)
        counts["complete" if state and state.complete else "failed" if state == Status.FAILED else "left"] += 1
        evals = read_evaluations(out / r.folder / "evaluations.csv")
        done = int(evals[-1]["timesteps"]) if evals else 0
        steps += done
        work += est[r.folder] * min(done / r.prepared.config.timesteps, 1.0)
    elapsed = max(time.time() - t0, 1e-9)
    start = start or {"steps": steps, "work": work}
    pace = max(work - start["work"], 0.0) / elapsed
    eta = max(sum(est[r.folder] for r in runs) - work, 0.0) / pace if pace > 0 else math.inf
    return {**counts, "steps": steps, "total": sum(r.prepared.config.timesteps for r in runs),
            "rate": max(steps - start["steps"], 0) / elapsed, "eta": eta, "work": work}



def _describe(p: dict[str, Any]) -> str:
    eta = "?" if not math.isfinite(p["eta"]) else time.strftime("%H:%M:%S", time.gmtime(p["eta"]))
    return (f"runs complete {p['complete']}, failed {p['failed']}, left {p['left']} | "
            f"{p['steps']:,}/{p['total']:,} steps, {p['rate']:,.0f} steps/s | ETA {eta}")



def print_status(out: Path) -> int:
    """``clr-rl status DIR``: counts, steps and the summary table of a batch."""
    out = Path(out)
    if not (out / "spec.resolved.json").is_file():
        raise ConfigError(f"{str(out)!r} is not a batch folder (spec.resolved.json missing)")
    resolved = read_json_checked(out / "spec.resolved.json", "clr-rl compare writes it: rerun `clr-rl compare SPEC "
                                 "--out` on this folder (spec.toml beside it is the spec); finished runs are kept")
    folders = [r["folder"] for r in resolved["runs"]]
    counts = {status: 0 for status in Status}
    for folder in folders:
        counts[read_status(out / folder)] += 1
    steps = 0
    for folder in folders:
        evals = read_evaluations(out / folder / "evaluations.csv")
        steps += int(evals[-1]["timesteps"]) if evals else 0
    total = sum(int(r["timesteps"]) for r in resolved["runs"])
    print(f"{resolved['name']}: {len(folders)} runs: " + ", ".join(f"{status.value.replace('_', ' ')} {n}"
                                                                  for status, n in counts.items())
          + f" | {steps:,}/{total:,} steps ({100 * steps / max(total, 1):.0f}%)")
    rows, torn = [], []
    for r in resolved["runs"]:
        status, record = read_record(out / r["folder"])  # a torn record counts as interrupted (resumable)
        if not record and (out / r["folder"] / RECORD_FILE).is_file():
            torn.append(str(out / r["folder"] / RECORD_FILE))
        evals = read_evaluations(out / r["folder"] / "evaluations.csv")
        rows.append({"env": r["env_id"], "algo": r["algo"], "arm": r["arm"], "seed": r["seed"],
                     "status": status.value,
                     "final_return": record.get("final_eval", {}).get("mean_return", ""),
                     "auc": record.get("auc", ""), "timesteps": int(evals[-1]["timesteps"]) if evals else 0,
                     "wall_seconds": record.get("wall_seconds", "")})
    _print_table(rows)
    for path in torn:
        print(f"{path} is not valid JSON: the run counts as interrupted; rerun `clr-rl compare SPEC --out {out}` "
              "and it trains again (or delete its folder)")
    return 0
