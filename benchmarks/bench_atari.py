"""Benchmark: the "ale" Atari pipeline (AleVecEnv over ale_py.AtariVectorEnv) vs SB3's, side by side.

1. env steps/s, random actions, 8 envs, PongNoFrameskip-v4: clr_rl.run.envs.make_env(vec_env="ale")
   vs make_env(vec_env="sb3") (make_atari_env + VecFrameStack + VecTransposeImage), each for
   ``--seconds``; the bare ale_py.AtariVectorEnv is shown too, to see what the adapter costs.
   Target: ale / sb3 >= 2.5x on a 2-core machine.
2. PPO Pong end to end on CPU with agents/ppo.toml's atari family (CnnPolicy, 8 envs, n_steps 128,
   n_epochs 4, batch 256), ``--threads`` torch threads: steps/s of both pipelines over ``--ppo-steps``
   after one warm-up rollout.
``--gpu`` instead measures (3): PPO Pong through the ale pipeline on cuda vs on this machine's CPU and
vs the 2-core CPU reference, and ``--share`` such runs sharing the GPU at once (aggregate vs one run).

    .venv/bin/python benchmarks/bench_atari.py [--seconds 10] [--ppo-steps 4096] [--threads 1] [--repeats 2]
    python3 benchmarks/bench_atari.py --gpu [--share 4]      # on a CUDA machine (gpu_check.sh runs it)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's clr_rl, no install needed

ENV_ID = "PongNoFrameskip-v4"
CPU_2CORE_PONG = 235.0  # PPO Pong CNN, 8 envs, 1 thread, SB3 pipeline, 2-core CPU machine (FACTS.md)


def env_rate(vec_env: str, seconds: float, n_envs: int = 8) -> float:
    """Env steps/s (summed over the envs) under uniformly random actions."""
    import numpy as np

    if vec_env == "bare":
        from ale_py.vector_env import AtariVectorEnv

        env: Any = AtariVectorEnv("pong", n_envs, autoreset_mode="SameStep")
        env.reset(seed=0)
        step = lambda a: env.step(a)  # noqa: E731
    else:
        from clr_rl.run.envs import make_env

        env = make_env(ENV_ID, n_envs=n_envs, seed=0, normalize=False, vec_env=vec_env)
        env.reset()
        step = env.step
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 6, size=(4096, n_envs))
    for i in range(20):  # warm-up
        step(actions[i])
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for i in range(50):
            step(actions[(steps + i) % 4096])
        steps += 50
    rate = steps * n_envs / (time.perf_counter() - t0)
    env.close()
    return rate


def ppo_rate(vec_env: str, device: str, timesteps: int, threads: int, queue: Any = None) -> float:
    """PPO Pong steps/s with the library's own atari settings (agents/ppo.toml), after a warm-up rollout."""
    import torch

    torch.set_num_threads(threads)
    from clr_rl.run.agents import agent_config, build_model
    from clr_rl.run.envs import env_family, make_env
    from clr_rl.schedules import Triangular2

    agent = agent_config("ppo", ENV_ID, env_family(ENV_ID))
    env = make_env(ENV_ID, n_envs=agent.n_envs, seed=0, normalize=False, vec_env=vec_env)
    model = build_model(agent, env, Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=2), seed=0, device=device)
    model.learn(int(agent.hyperparams["n_steps"]) * agent.n_envs)  # warm-up: first rollout (and CUDA init)
    start, t0 = model.num_timesteps, time.perf_counter()
    model.learn(timesteps, reset_num_timesteps=False)
    rate = (model.num_timesteps - start) / (time.perf_counter() - t0)
    env.close()
    if queue is not None:
        queue.put(rate)
    return rate


def shared(k: int, timesteps: int, threads: int) -> float:
    """Aggregate steps/s of ``k`` PPO Pong runs (ale pipeline) on one GPU, one process each."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=ppo_rate, args=("ale", "cuda", timesteps, threads, queue)) for _ in range(k)]
    for p in procs:
        p.start()
    rates = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def cpu(args: argparse.Namespace) -> dict[str, float]:
    """Alternates the pipelines (sb3, ale, sb3, ale, ...) so machine noise hits both alike; medians."""
    print(f"{ENV_ID}, 8 envs, {os.cpu_count()} CPUs, {args.threads} torch thread(s), {args.repeats} rounds",
          flush=True)
    runs: dict[str, list[float]] = {}
    for k in range(args.repeats):
        for name in ("sb3", "ale", "bare"):
            runs.setdefault(f"env_{name}", []).append(env_rate(name, args.seconds))
            print(f"  round {k + 1} env steps/s, random actions, {name:>4}: {runs[f'env_{name}'][-1]:8.0f}", flush=True)
    for k in range(args.repeats):
        for name in ("sb3", "ale"):
            runs.setdefault(f"ppo_{name}", []).append(ppo_rate(name, "cpu", args.ppo_steps, args.threads))
            print(f"  round {k + 1} PPO Pong CPU steps/s,           {name:>4}: {runs[f'ppo_{name}'][-1]:8.0f}",
                  flush=True)
    r = {key: statistics.median(values) for key, values in runs.items()}
    print("medians: " + ", ".join(f"{key} {value:.0f}" for key, value in r.items()))
    print(f"(1) env stepping, ale / sb3: {r['env_ale'] / r['env_sb3']:.2f}x (target >= 2.5x); "
          f"adapter keeps {r['env_ale'] / r['env_bare']:.0%} of the bare AtariVectorEnv rate")
    print(f"(2) PPO Pong end to end on CPU, ale / sb3: {r['ppo_ale'] / r['ppo_sb3']:.2f}x")
    return r


def gpu(args: argparse.Namespace) -> dict[str, float]:
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run without --gpu for the CPU benchmark")
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {os.cpu_count()} CPUs", flush=True)
    r: dict[str, float] = {}
    r["ppo_ale_cuda"] = ppo_rate("ale", "cuda", args.gpu_steps, args.threads)
    print(f"  PPO Pong ale cuda: {r['ppo_ale_cuda']:8.0f} steps/s", flush=True)
    r["ppo_ale_cpu"] = ppo_rate("ale", "cpu", args.ppo_steps, args.threads)
    print(f"  PPO Pong ale cpu ({args.threads} thread(s)): {r['ppo_ale_cpu']:8.0f} steps/s", flush=True)
    r[f"ppo_ale_cuda_shared_x{args.share}"] = shared(args.share, args.gpu_steps // 2, args.threads)
    agg = r[f"ppo_ale_cuda_shared_x{args.share}"]
    print(f"  {args.share} runs sharing the GPU: {agg:8.0f} steps/s in all", flush=True)
    print(f"(3) PPO Pong ale cuda / 2-core CPU reference ({CPU_2CORE_PONG:.0f} steps/s, sb3 pipeline): "
          f"{r['ppo_ale_cuda'] / CPU_2CORE_PONG:.1f}x (target >= 5x)")
    print(f"    PPO Pong ale cuda / this machine's cpu: {r['ppo_ale_cuda'] / r['ppo_ale_cpu']:.1f}x")
    print(f"    {args.share} runs sharing one GPU / one run: {agg / r['ppo_ale_cuda']:.2f}x (target >= 3x)")
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per env-stepping measurement")
    parser.add_argument("--ppo-steps", type=int, default=4096, help="PPO timesteps measured on CPU")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--repeats", type=int, default=2, help="alternated rounds of the CPU measurements")
    parser.add_argument("--gpu", action="store_true", help="measure (3) on a CUDA machine instead")
    parser.add_argument("--gpu-steps", type=int, default=40_960, help="PPO timesteps measured on cuda")
    parser.add_argument("--share", type=int, default=4, help="runs sharing the GPU")
    args = parser.parse_args()
    results = gpu(args) if args.gpu else cpu(args)
    print(json.dumps({k: round(v, 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
