"""Benchmark ``clr-rl report`` on a large synthetic batch: 10 envs x 5 arms x 20 seeds = 1,000 runs.

The batch folder is written in the format ``clr-rl compare`` writes (``batch.execute`` and
``runner.train``): ``spec.resolved.json`` with every run's resolved config (from the real
``clr_rl.run.prepare.prepare``, so ids, schedules and agent settings are the genuine article),
and per run ``runs/<env>/<arm>/seed<k>/run.json`` (status finished, config, versions,
final_eval, auc, wall_seconds) and ``evaluations.csv`` with 50 evaluation points. The
returns are synthetic learning curves between each env's random and reference score from
``envs/classic.toml`` / ``envs/mujoco.toml`` (so normalisation references exist), with an
arm effect and per-seed noise. Then ``clr-rl report DIR`` runs as a subprocess and its wall
time is printed against the target (<= 30 s on 2 cores). When it is over the target (or with
``--profile``) the report is run again under cProfile and the top functions are printed.

    .venv/bin/python benchmarks/bench_report.py [--envs 10] [--arms 5] [--seeds 20] [--points 50]
        [--reps 2000] [--keep DIR] [--profile]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 30.0
ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "LunarLander-v3",
        "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5"]
ARMS = {  # arm -> (schedule, effect on the learning-curve plateau)
    "fixed": ("tuned", 0.0),
    "tri": ("triangular:base_lr=tuned/3,max_lr=tuned*3,cycles=4", 0.05),
    "tri2": ("triangular2:base_lr=tuned/4,max_lr=tuned*4,cycles=4", 0.02),
    "exp": ("exp_range:base_lr=tuned/3,max_lr=tuned*3,cycles=4,gamma=0.999999", -0.03),
    "onecycle": ("one_cycle:max_lr=tuned*3", 0.08),
}


def _schedule_text(template: str, tuned: float) -> str:
    """Substitute ``tuned`` (and tuned/k, tuned*k) by numbers, as a spec's arms resolve them."""
    import re

    def value(m: re.Match[str]) -> str:
        op, k = m.group(1), m.group(2)
        v = tuned if op is None else tuned / float(k) if op == "/" else tuned * float(k)
        return repr(v)

    return re.sub(r"tuned(?:([/*])([0-9.]+))?", value, template)


def synthesise(out: Path, *, n_envs: int, n_arms: int, n_seeds: int, points: int) -> int:
    """Write the batch folder; returns the number of runs."""
    import numpy as np

    from clr_rl.run.agents import agent_config
    from clr_rl.run.config import RunConfig
    from clr_rl.run.envs import env_family, env_info
    from clr_rl.run.prepare import prepare

    envs = ENVS[:n_envs]
    arms = list(ARMS.items())[:n_arms]
    rng = np.random.default_rng(0)
    versions = {"clr_rl": "0.1.0", "python": "3.11.7", "torch": "2.13.0+cpu", "stable_baselines3": "2.9.2",
                "gymnasium": "1.4.0", "platform": "synthetic benchmark"}
    planned = []
    for env in envs:
        info = env_info(env)
        assert info is not None, env
        tuned = agent_config("ppo", env, env_family(env), {}).tuned_lr
        for arm, (template, effect) in arms:
            schedule = _schedule_text(template, tuned) if "tuned" in template else template
            if schedule == repr(tuned):
                schedule = f"constant:lr={tuned!r}"
            for seed in range(n_seeds):
                prepared = prepare(RunConfig(algo="ppo", env_id=env, schedule=schedule, timesteps=info.timesteps,
                                             seed=seed, arm=arm, eval_every=max(1, info.timesteps // (points - 1)),
                                             eval_episodes=info.eval_episodes))
                planned.append((env, arm, seed, effect, info, prepared))
    runs_meta = []
    for env, arm, seed, effect, info, prepared in planned:
        folder = f"runs/{env}/{arm}/seed{seed}"
        resolved = prepared.resolved()
        run_id = prepared.run_id()
        runs_meta.append({"folder": folder, "run_id": run_id, **resolved})
        # a learning curve: random -> plateau (0.6 + effect of the reference, +- noise), saturating
        t = np.linspace(0, info.timesteps, points).round().astype(int)
        plateau = 0.6 + effect + rng.normal(0, 0.15)
        rate = rng.uniform(3.0, 6.0)
        frac = plateau * (1 - np.exp(-rate * t / info.timesteps)) + rng.normal(0, 0.05, points)
        y = info.random_score + frac * (info.reference_score - info.random_score)
        rows = [{"timesteps": int(ti), "mean_return": float(yi), "std_return": float(abs(rng.normal(0, 10))),
                 "episodes": info.eval_episodes, "wall_seconds": round(float(ti) / 1500, 3)}
                for ti, yi in zip(t, y)]
        area = sum((b["timesteps"] - a["timesteps"]) * (a["mean_return"] + b["mean_return"]) / 2
                   for a, b in zip(rows, rows[1:])) / (rows[-1]["timesteps"] - rows[0]["timesteps"])
        d = out / folder
        d.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=("timesteps", "mean_return", "std_return", "episodes",
                                                 "wall_seconds"), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (d / "evaluations.csv").write_text(buf.getvalue())
        final = rows[-1]
        record = {
            "run_id": run_id, "status": "finished", "config": resolved, "versions": versions,
            "started": "2026-11-30T00:00:00+0000", "pid": 0, "timesteps_done": info.timesteps, "device_used": "cpu",
            "wall_seconds": round(info.timesteps / 1500, 3), "finished": "2026-11-30T00:10:00+0000",
            "final_eval": {k: final[k] for k in ("timesteps", "mean_return", "std_return", "episodes")},
            "auc": area,
        }
        (d / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    spec = {"name": "bench_report", "algo": "ppo", "seeds": n_seeds, "envs": envs, "baseline": "fixed",
            "arms": {a: {"schedule": s} for a, (s, _) in arms}}
    (out / "spec.resolved.json").write_text(json.dumps(
        {"name": "bench_report", "spec": spec, "baseline": "fixed", "runs": runs_meta}, indent=2) + "\n")
    return len(runs_meta)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("clr-rl")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "clr_rl.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--points", type=int, default=50, help="evaluations per run")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (the report's default)")
    parser.add_argument("--keep", type=Path, help="write the batch here and keep it (default: a temp folder)")
    parser.add_argument("--profile", action="store_true", help="always profile the report")
    args = parser.parse_args()
    if not 1 <= args.envs <= len(ENVS) or not 1 <= args.arms <= len(ARMS) or args.seeds < 2 or args.points < 2:
        parser.error(f"--envs 1..{len(ENVS)}, --arms 1..{len(ARMS)}, --seeds >= 2, --points >= 2")

    tmp = None
    if args.keep:
        out = args.keep
        if out.exists() and any(out.iterdir()):
            parser.error(f"--keep {out} must be a new or empty folder")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_report_")
        out = Path(tmp.name) / "batch"
    try:
        t0 = time.perf_counter()
        n = synthesise(out, n_envs=args.envs, n_arms=args.arms, n_seeds=args.seeds, points=args.points)
        print(f"synthesised {n} runs ({args.envs} envs x {args.arms} arms x {args.seeds} seeds, {args.points} "
              f"evaluations each) in {time.perf_counter() - t0:.1f} s -> {out}")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [*_cli(), "report", str(out), "--reps", str(args.reps)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            print(f"clr-rl report failed with exit status {proc.returncode}")
            return 1
        stats = json.loads((out / "report" / "stats.json").read_text())
        figures = len(list((out / "report").glob("*.png")))
        print(proc.stdout.rstrip())
        print(f"report over {n} runs: {len(stats['envs'])} envs, {len(stats['arms'])} arms, {figures} figures, "
              f"{len(stats['missing'])} missing")
        verdict = "OK" if wall <= TARGET_S else "TOO SLOW"
        print(f"clr-rl report wall time: {wall:.1f} s (target <= {TARGET_S:.0f} s on 2 cores, "
              f"{os.cpu_count()} CPUs here): {verdict}")
        if args.profile or wall > TARGET_S:
            prof = out.parent / "report.prof"
            pcmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "clr_rl.cli", "report", str(out),
                    "--reps", str(args.reps)]
            subprocess.run(pcmd, capture_output=True, text=True, env=env, check=True)
            import pstats

            print("\nwhere the time goes (cProfile, cumulative, clr_rl functions first):")
            p = pstats.Stats(str(prof))
            p.sort_stats("cumulative").print_stats(r"clr_rl", 15)
            p.sort_stats("tottime").print_stats(12)
        return 0 if math.isfinite(wall) else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
