"""Tuning a fixed LR (``clr-rl tune``) and LR range tests for RL (``clr-rl lr-range``).

Both sweeps run through the batch runner (parallel, resumable: each LR x seed is a run
folder). ``tune`` writes a record (``tuned_lr.json``) that a spec can name in
``tuned = [...]`` so its ``lr = "tuned"`` arms use it. The range tests print a cyclical
schedule ready to paste into ``--schedule`` or a spec, draw a plot, and say how they decided.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from clr_rl.store import read_json, write_text_atomic

__all__ = ["lr_grid", "lr_range_single", "lr_range_sweep", "parse_grid", "parse_range", "suggest_from_sweep", "tune"]

CRITERIA = ("auc", "final")


def parse_grid(text: str, *, flag: str = "--grid") -> tuple[float, float, int]:
    """``"1e-5:1e-2:7"`` -> (1e-5, 1e-2, 7): log-spaced from lo to hi, n points.

    >>> parse_grid("1e-5:1e-2:4")
    (1e-05, 0.01, 4)
    """
    parts = text.split(":")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise IndexError
    except (IndexError, ValueError):
        raise ValueError(f"{flag}={text!r} must look like lo:hi:n, e.g. 1e-5:1e-2:7") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"{flag}={text!r}: needs 0 < lo < hi")
    if n < 2:
        raise ValueError(f"{flag}={text!r}: n={n} must be >= 2")
    return lo, hi, n


def parse_range(text: str, *, flag: str = "--range") -> tuple[float, float]:
    """``"1e-6:1e-1"`` -> (1e-06, 0.1), with 0 < lo < hi.

    >>> parse_range("1e-6:1e-1")
    (1e-06, 0.1)
    """
    parts = text.split(":")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{flag}={text!r} must look like lo:hi, e.g. 1e-6:1e-1") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"{flag}={text!r}: needs 0 < lo < hi")
    return lo, hi


def lr_grid(lo: float, hi: float, n: int) -> list[float]:
    """``n`` log-spaced LRs from ``lo`` to ``hi``, rounded to 3 significant digits.

    >>> lr_grid(1e-4, 1e-2, 3)
    [0.0001, 0.001, 0.01]
    """
    return [float(f"{lo * (hi / lo) ** (i / (n - 1)):.3g}") for i in range(n)]


def _sweep_runs(algo: str, env_id: str, timesteps: int, seeds: int, lrs: list[float], overrides: dict[str, Any],
                eval_every: int | None, eval_episodes: int | None, device: str) -> list[Any]:
    from clr_rl.runner import RunConfig, prepare
    from clr_rl.schedules import Constant
    from clr_rl.specs import PlannedRun

    runs = []
    for lr in lrs:
        arm = f"lr{lr:.3g}"
        for seed in range(seeds):
            config = RunConfig(algo=algo, env_id=env_id, schedule=Constant(lr), timesteps=timesteps, seed=seed,
                               device=device, overrides=overrides, eval_every=eval_every,
                               eval_episodes=eval_episodes, arm=arm, threads=1)
            runs.append(PlannedRun(env_id, arm, seed, f"runs/{env_id}/{arm}/seed{seed}", prepare(config)))
    return runs


def _scores(out: Path, runs: list[Any], criterion: str) -> dict[float, list[float]]:
    """LR -> per-seed scores of its finished runs (criterion: AUC or final return)."""
    scores: dict[float, list[float]] = {}
    for run in runs:
        path = out / run.folder / "run.json"
        if not path.is_file():
            continue
        record = read_json(path)
        if record.get("status") != "finished":
            continue
        lr = float(run.prepared.schedule.lr)
        value = record["auc"] if criterion == "auc" else record["final_eval"]["mean_return"]
        scores.setdefault(lr, []).append(float(value))
    return scores


def _cost(out: Path, runs: list[Any]) -> int:
    total = 0
    for run in runs:
        path = out / run.folder / "run.json"
        if path.is_file():
            total += int(read_json(path).get("timesteps_done", 0) or 0)
    return total


def _check_common(algo: str, timesteps: int, seeds: int, criterion: str, out: Path) -> None:
    from clr_rl.store import check_writable

    if algo not in ("ppo", "dqn"):
        raise ValueError(f"--algo={algo!r} must be ppo or dqn")
    if timesteps < 1:
        raise ValueError(f"--timesteps={timesteps} must be >= 1")
    if seeds < 1:
        raise ValueError(f"--seeds={seeds} must be >= 1")
    if criterion not in CRITERIA:
        raise ValueError(f"--criterion={criterion!r} must be one of {', '.join(CRITERIA)}")
    check_writable(out)


def tune(*, algo: str, env_id: str, timesteps: int, seeds: int, out: Path, grid: str | None = None,
         trials: int | None = None, lr_range: str = "1e-5:1e-2", criterion: str = "auc",
         overrides: dict[str, Any] | None = None, workers: int | None = None, eval_every: int | None = None,
         eval_episodes: int | None = None, device: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Sweep a fixed LR (log grid, or Optuna TPE trials) and write ``out/tuned_lr.json``.

    The best LR maximises the criterion averaged over seeds. Every LR tried is in the record
    with its scores, and the cost is the sum of all runs' timesteps.
    """
    from clr_rl.batch import execute

    out = Path(out)
    _check_common(algo, timesteps, seeds, criterion, out)
    overrides = dict(overrides or {})
    if (grid is None) == (trials is None):
        raise ValueError("give exactly one of --grid lo:hi:n or --trials N")
    meta = {"name": f"tune-{algo}-{env_id}".replace("/", "_"), "baseline": None,
            "spec": {"tune": {"algo": algo, "env_id": env_id, "timesteps": timesteps, "seeds": seeds,
                              "criterion": criterion, "grid": grid, "trials": trials}}}
    all_runs: list[Any] = []
    if grid is not None:
        lrs = lr_grid(*parse_grid(grid))
        all_runs = _sweep_runs(algo, env_id, timesteps, seeds, lrs, overrides, eval_every, eval_episodes, device)
        status = execute(all_runs, out, meta=meta, workers=workers, quiet=True)
        method = f"log grid {grid}"
    else:
        assert trials is not None
        if trials < 1:
            raise ValueError(f"--trials={trials} must be >= 1")
        lo, hi = parse_range(lr_range)
        try:
            import optuna
        except ImportError:
            raise ValueError("--trials needs Optuna: pip install 'clr-rl[tune]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        dist = optuna.distributions.FloatDistribution(math.log10(lo), math.log10(hi))
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        status = 0
        tried_lrs: list[float] = []
        for _ in range(trials):  # earlier trials' folders are reused, so the study replays them
            trial = study.ask({"log10_lr": dist})
            lr = float(f"{10 ** trial.params['log10_lr']:.3g}")
            runs = _sweep_runs(algo, env_id, timesteps, seeds, [lr], overrides, eval_every, eval_episodes, device)
            if lr not in tried_lrs:
                all_runs += runs
                tried_lrs.append(lr)
            status |= execute(all_runs, out, meta=meta, workers=workers, quiet=True)
            per_seed = _scores(out, runs, criterion).get(lr, [])
            if per_seed:
                study.tell(trial, sum(per_seed) / len(per_seed))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        method = f"Optuna TPE, {trials} trials over log10(lr) in [{lo:g}, {hi:g}], sampler seed {seed}"
    scores = _scores(out, all_runs, criterion)
    if not scores:
        raise ValueError("no run of the sweep finished; see the run folders for their errors")
    best = max(scores, key=lambda lr: sum(scores[lr]) / len(scores[lr]))
    from clr_rl.runner import _versions

    measure = "AUC of the evaluation curve" if criterion == "auc" else "final evaluation return"
    tried: list[dict[str, Any]] = [{"lr": lr, "score_mean": sum(v) / len(v), "per_seed": v}
                                   for lr, v in sorted(scores.items())]
    record: dict[str, Any] = {
        "algo": algo, "env_id": env_id, "value": best, "criterion": criterion,
        "criterion_rule": f"mean over seeds of the {measure}; the best LR maximises it",
        "method": method, "timesteps": timesteps, "seeds": list(range(seeds)),
        "tried": tried,
        "cost_timesteps": _cost(out, all_runs), "overrides": overrides, "versions": _versions(),
        "date": time.strftime("%Y-%m-%d"),
    }
    write_text_atomic(out / "tuned_lr.json", json.dumps(record, indent=2) + "\n")
    print(f"{'lr':>10}  {'score (' + criterion + ')':>14}  seeds")
    for row in tried:
        mark = "  <- best" if row["lr"] == best else ""
        print(f"{row['lr']:>10.3g}  {row['score_mean']:>14.2f}  {len(row['per_seed'])}{mark}")
    print(f"tuned fixed LR for {algo} on {env_id}: {best:g} ({method}; cost {record['cost_timesteps']:,} timesteps)"
          f" -> {out / 'tuned_lr.json'}")
    if status:
        print("some runs failed; the record uses the finished ones")
    record["exit_status"] = status
    return record


def suggest_from_sweep(scores: dict[float, float]) -> tuple[float, float, str]:
    """Smith's rule on a score-vs-LR curve: base where it starts improving, max before it worsens.

    base_lr: the smallest LR whose score is at least 25% of the way from the smallest LR's score to
    the best. max_lr: the largest LR at or above the best one whose score stays within 10% of the
    best (of the best-minus-worst span). If they meet, base = max / 4 (Smith: base ~ max/3..4).

    >>> suggest_from_sweep({1e-5: 10.0, 1e-4: 50.0, 1e-3: 100.0, 1e-2: 95.0, 1e-1: 0.0})[:2]
    (0.0001, 0.01)
    """
    lrs = sorted(scores)
    best_lr = max(lrs, key=lambda lr: scores[lr])
    best, worst, low_end = scores[best_lr], min(scores.values()), scores[lrs[0]]
    base = next(lr for lr in lrs if scores[lr] >= low_end + 0.25 * (best - low_end))
    span = best - worst
    max_lr = max(lr for lr in lrs if lr >= best_lr and scores[lr] >= best - 0.10 * span)
    how = ("base_lr = smallest LR scoring >= 25% of the way from the lowest LR's score to the best; "
           "max_lr = largest LR at or above the best one scoring within 10% of the best-worst span")
    if base >= max_lr:
        base = float(f"{max_lr / 4:.3g}")
        how += "; they met, so base_lr = max_lr / 4 (Smith)"
    return base, max_lr, how


def _suggested_spec(base: float, max_lr: float) -> str:
    from clr_rl.schedules import Triangular2

    if max_lr / base >= 10:
        return str(Triangular2(base_lr=base, max_lr=max_lr, cycles=4, space="log"))
    return str(Triangular2(base_lr=base, max_lr=max_lr, cycles=4))


def _write_result(out: Path, result: dict[str, Any]) -> None:
    write_text_atomic(out / "lr_range.json", json.dumps(result, indent=2) + "\n")
    print(f"suggested: {result['suggested_schedule']}")
    print(f"how: {result['rule']}")
    print(f"wrote {out / 'lr_range.json'} and {out / 'lr_range.png'}")


def lr_range_sweep(*, algo: str, env_id: str, timesteps: int, out: Path, grid: str = "1e-5:1e-2:7", seeds: int = 2,
                   criterion: str = "auc", overrides: dict[str, Any] | None = None, workers: int | None = None,
                   eval_every: int | None = None, eval_episodes: int | None = None,
                   device: str = "auto") -> dict[str, Any]:
    """LR range test by sweep: short runs at log-spaced fixed LRs (the same runs as ``tune``)."""
    from clr_rl.batch import execute
    from clr_rl.plots import plot_lr_range

    out = Path(out)
    _check_common(algo, timesteps, seeds, criterion, out)
    lrs = lr_grid(*parse_grid(grid))
    runs = _sweep_runs(algo, env_id, timesteps, seeds, lrs, dict(overrides or {}), eval_every, eval_episodes, device)
    meta = {"name": f"lr-range-{algo}-{env_id}".replace("/", "_"), "baseline": None,
            "spec": {"lr_range": {"method": "sweep", "grid": grid, "seeds": seeds, "timesteps": timesteps}}}
    execute(runs, out, meta=meta, workers=workers, quiet=True)
    per_seed = _scores(out, runs, criterion)
    if len(per_seed) < 2:
        raise ValueError("fewer than 2 LRs of the sweep finished; see the run folders for their errors")
    means = {lr: sum(v) / len(v) for lr, v in per_seed.items()}
    base, max_lr, how = suggest_from_sweep(means)
    spec = _suggested_spec(base, max_lr)
    plot_lr_range(out / "lr_range.png", {"score": (sorted(means), [means[lr] for lr in sorted(means)])},
                  base, max_lr, f"{algo.upper()} {env_id}: {criterion} vs fixed LR (sweep, {seeds} seeds)",
                  points={lr: per_seed[lr] for lr in per_seed})
    result = {"method": "sweep", "algo": algo, "env_id": env_id, "timesteps": timesteps, "seeds": seeds,
              "criterion": criterion, "scores": [{"lr": lr, "mean": means[lr], "per_seed": per_seed[lr]}
                                                 for lr in sorted(means)],
              "base_lr": base, "max_lr": max_lr, "rule": how, "suggested_schedule": spec,
              "cost_timesteps": _cost(out, runs)}
    _write_result(out, result)
    return result


def _unstable_at(values: list[float], limit: float, window: int = 3) -> int | None:
    """First index where the running median of ``window`` values exceeds ``limit`` (or is not finite)."""
    for i in range(len(values)):
        recent = sorted(values[max(0, i - window + 1): i + 1])
        if not math.isfinite(values[i]) or (len(recent) == window and recent[window // 2] > limit):
            return i
    return None


def lr_range_single(*, algo: str, env_id: str, timesteps: int, out: Path, start_lr: float = 1e-6,
                    end_lr: float = 1e-1, overrides: dict[str, Any] | None = None, seed: int = 0,
                    device: str = "auto", kl_limit: float = 0.05, clip_limit: float = 0.5,
                    loss_factor: float = 4.0) -> dict[str, Any]:
    """LR range test in one run: the LR rises exponentially while each update's health is watched.

    PPO: an update is unhealthy when approx_kl > ``kl_limit`` or clip_fraction > ``clip_limit`` (each as
    the running median of 3 updates) or a loss is not finite. DQN: when the TD loss (running median of 3)
    exceeds ``loss_factor`` x its lowest running median so far. max_lr = the LR of the last update before
    the first unhealthy one; base_lr = max_lr / 4 (Smith's base ~ max/3..4).
    """
    import torch

    from clr_rl.agents import build_model
    from clr_rl.envs import make_env
    from clr_rl.plots import plot_lr_range
    from clr_rl.runner import RunConfig, check_out_dir, prepare, resolve_device
    from clr_rl.schedules import Exponential

    out = Path(out)
    _check_common(algo, timesteps, 1, "auc", out)
    check_out_dir(out)
    if not 0 < start_lr < end_lr:
        raise ValueError(f"--range: start {start_lr} must be > 0 and < end {end_lr}")
    prepared = prepare(RunConfig(algo=algo, env_id=env_id, schedule=Exponential(start_lr, end_lr),
                                 timesteps=timesteps, seed=seed, device=device, overrides=dict(overrides or {})))
    torch.set_num_threads(1)
    agent = prepared.agent
    env = make_env(env_id, n_envs=agent.n_envs, seed=seed, normalize=agent.normalize,
                   gamma=float(agent.hyperparams.get("gamma", 0.99)))
    model = build_model(agent, env, prepared.schedule, seed=seed, device=resolve_device(device, agent.policy))
    rows: list[dict[str, float]] = []
    from stable_baselines3.common.callbacks import BaseCallback

    keys = ("train/approx_kl", "train/clip_fraction", "train/value_loss", "train/loss")

    class Watch(BaseCallback):
        n_updates = 0

        def _on_rollout_start(self) -> None:
            if self.model._n_updates != self.n_updates:
                self.n_updates = self.model._n_updates
                values = self.model.logger.name_to_value
                rows.append({"timesteps": self.num_timesteps, "lr": self.model.policy.optimizer.param_groups[0]["lr"],
                             **{k.split("/")[1]: float(values[k]) for k in keys if k in values}})

        def _on_training_end(self) -> None:
            self._on_rollout_start()

        def _on_step(self) -> bool:
            return True

    out.mkdir(parents=True, exist_ok=True)
    model.learn(timesteps, callback=Watch())
    env.close()
    if len(rows) < 4:
        raise ValueError(f"only {len(rows)} LR updates in {timesteps} timesteps; give more --timesteps")
    if algo == "ppo":
        kl = _unstable_at([r.get("approx_kl", math.nan) for r in rows], kl_limit)
        clip = _unstable_at([r.get("clip_fraction", math.nan) for r in rows], clip_limit)
        hits = [i for i in (kl, clip) if i is not None]
        rule = (f"PPO update unhealthy when approx_kl > {kl_limit} or clip_fraction > {clip_limit} "
                "(running median of 3 updates) or a loss is not finite")
        series = {k: ([r["lr"] for r in rows], [r.get(k, math.nan) for r in rows])
                  for k in ("approx_kl", "clip_fraction", "value_loss")}
    else:
        losses = [r.get("loss", math.nan) for r in rows]
        medians = [sorted(losses[max(0, i - 2): i + 1])[len(losses[max(0, i - 2): i + 1]) // 2]
                   for i in range(len(losses))]
        hits = []
        lowest = math.inf
        for i, m in enumerate(medians):
            if not math.isfinite(m) or (i >= 2 and m > loss_factor * lowest):
                hits.append(i)
                break
            lowest = min(lowest, m) if i >= 2 else lowest
        rule = f"DQN update unhealthy when the TD loss (running median of 3) exceeds {loss_factor}x its lowest so far"
        series = {"loss": ([r["lr"] for r in rows], losses)}
    first = min(hits) if hits else None
    if first is None:
        max_lr = rows[-1]["lr"]
        rule += f"; no unhealthy update up to lr={max_lr:.3g}: max_lr is the last LR reached (raise the range end)"
    else:
        max_lr = rows[max(first - 1, 0)]["lr"]
        rule += f"; first unhealthy update at lr={rows[first]['lr']:.3g} (timestep {rows[first]['timesteps']})"
    max_lr = float(f"{max_lr:.3g}")
    base = float(f"{max_lr / 4:.3g}")
    rule += "; max_lr = LR of the update before it, base_lr = max_lr / 4 (Smith: base ~ max/3..4)"
    plot_lr_range(out / "lr_range.png", series, base, max_lr, f"{algo.upper()} {env_id}: one run, LR rising "
                  f"{start_lr:g} -> {end_lr:g} over {timesteps:,} timesteps")
    result = {"method": "single", "algo": algo, "env_id": env_id, "timesteps": timesteps, "seed": seed,
              "schedule": str(prepared.schedule), "updates": rows, "base_lr": base, "max_lr": max_lr,
              "rule": rule, "suggested_schedule": _suggested_spec(base, max_lr), "cost_timesteps": timesteps}
    _write_result(out, result)
    return result
