"""Benchmark: `clr-rl train` vs a bare SB3 script on the same PPO CartPole run, and `clr-rl --help`.

Runs are alternated (bare, bare with TensorBoard logging, clr, ...) so machine noise hits all alike;
prints the median wall times and two ratios: clr-rl / SB3 at equal logging (SB3 with
``tensorboard_log=`` set, as clr-rl always logs; target <= 1.03) and clr-rl / plain SB3 (the
difference is mostly TensorBoard's own cost), and the median `clr-rl --help` time (target <= 0.5 s).
Both sides use 1 torch thread and the same hyperparameters; clr-rl evaluates only at the start and end
(--eval-every = budget, 1 episode) so the ratio measures the harness, not extra evaluation.

    .venv/bin/python benchmarks/bench_train.py [--timesteps 30000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = """
import sys, torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
model = PPO("MlpPolicy", env, learning_rate=1e-3, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
            n_epochs=20, ent_coef=0.0, clip_range=0.2, seed=0, device="cpu", verbose=0,
            tensorboard_log=sys.argv[3] if len(sys.argv) > 3 else None)
model.learn(int(sys.argv[1]))
model.save(sys.argv[2] + "/model.zip")
"""


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    exe = Path(sys.executable)
    clr = str(exe.with_name("clr-rl"))
    bare_t, logged_t, clr_t = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            bare_t.append(_time([str(exe), "-c", BARE, str(args.timesteps), tmp]))
            logged_t.append(_time([str(exe), "-c", BARE, str(args.timesteps), tmp, f"{tmp}/tb{i}"]))
            clr_t.append(_time([clr, "train", "--algo", "ppo", "--env", "CartPole-v1", "--schedule",
                                "triangular2:base_lr=3e-4,max_lr=3e-3,cycles=3", "--timesteps", str(args.timesteps),
                                "--device", "cpu", "--threads", "1", "--eval-every", str(args.timesteps),
                                "--eval-episodes", "1", "--no-progress", "--out", f"{tmp}/clr{i}"]))
        helps = [_time([clr, "--help"]) for _ in range(5)]
    b, g, c = statistics.median(bare_t), statistics.median(logged_t), statistics.median(clr_t)
    print(f"PPO CartPole-v1, {args.timesteps} timesteps, 1 torch thread, {args.repeats} alternated repeats")
    print(f"  bare SB3 script             : median {b:.2f} s  {[round(x, 2) for x in bare_t]}")
    print(f"  SB3 with tensorboard_log set: median {g:.2f} s  {[round(x, 2) for x in logged_t]}")
    print(f"  clr-rl train                : median {c:.2f} s  {[round(x, 2) for x in clr_t]}")
    print(f"  ratio clr-rl / SB3 at equal logging = {c / g:.3f}  (target <= 1.03)")
    print(f"  ratio clr-rl / plain SB3            = {c / b:.3f}  (TensorBoard's own cost included)")
    print(f"clr-rl --help: median {statistics.median(helps):.3f} s over 5 (target <= 0.5 s)")


if __name__ == "__main__":
    main()
