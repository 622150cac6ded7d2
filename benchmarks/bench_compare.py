"""Benchmark the comparison harness: scaling with workers, per-run overhead, local vs Ray.

One small batch (CartPole-v1 PPO, 8 runs) is run with 1 and 2 local workers and with 2 Ray workers,
into fresh folders; a bare SB3 script runs the same single run for the per-run overhead. Prints:
- wall(1 worker) / wall(2 workers)            (target >= 1.9 on 2 cores)
- per-run overhead = wall(1 worker) / runs - bare single run  (process start, imports, evaluation, files)
- wall(ray, 2) / wall(local, 2) and Ray's per-run overhead.

    .venv/bin/python benchmarks/bench_compare.py [--timesteps 20000] [--seeds 4] [--no-ray]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """
name = "bench"
algo = "ppo"
timesteps = {timesteps}
seeds = {seeds}
envs = ["CartPole-v1"]
[eval]
every = {timesteps}
episodes = 5
[arms.fixed]
kind = "constant"
lr = "tuned"
[arms.tri2]
kind = "triangular2"
base_lr = 1e-4
max_lr = 1e-3
cycles = 3
"""

BARE = """
import sys, torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
model = PPO("MlpPolicy", env, learning_rate=1e-3, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
            n_epochs=20, ent_coef=0.0, clip_range=0.2, seed=0, device="cpu", verbose=0)
model.learn(int(sys.argv[1]))
evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=1), n_eval_episodes=5)
"""


def _run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    clr = str(Path(sys.executable).with_name("clr-rl"))
    runs = 2 * args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench.toml"
        spec.write_text(SPEC.format(timesteps=args.timesteps, seeds=args.seeds))
        bare = _run([sys.executable, "-c", BARE, str(args.timesteps)])
        w1 = _run([clr, "compare", str(spec), "--out", f"{tmp}/w1", "--workers", "1"])
        w2 = _run([clr, "compare", str(spec), "--out", f"{tmp}/w2", "--workers", "2"])
        ray2 = None if args.no_ray else _run([clr, "compare", str(spec), "--out", f"{tmp}/r2", "--workers", "2",
                                               "--backend", "ray"])
    print(f"batch: {runs} PPO CartPole-v1 runs x {args.timesteps} timesteps (1 torch thread per worker)")
    print(f"  bare SB3 single run (incl. python start, 5 eval episodes): {bare:.1f} s")
    print(f"  local, 1 worker : {w1:.1f} s   local, 2 workers: {w2:.1f} s")
    print(f"  scaling wall(1)/wall(2) = {w1 / w2:.2f}  (target >= 1.9 on 2 cores)")
    print(f"  per-run overhead vs bare = {w1 / runs - bare:+.2f} s ({(w1 / runs) / bare:.2f}x a bare run)")
    if ray2 is not None:
        print(f"  ray, 2 workers  : {ray2:.1f} s   ray/local (2 workers) = {ray2 / w2:.2f}; "
              f"Ray overhead per run = {(ray2 - w2) / runs:+.2f} s")


if __name__ == "__main__":
    main()
