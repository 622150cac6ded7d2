"""GPU check: PPO steps/s on cuda vs cpu for an Atari CNN and a MuJoCo MLP, and GPU sharing.

Runs the library's own path (clr_rl.run.envs.make_env + clr_rl.run.agents.build_model with the agents/ defaults:
Zoo Atari PPO, 8 envs; Zoo HalfCheetah PPO) for a fixed number of timesteps each, with a cyclical LR:
1. PPO PongNoFrameskip-v4 (CnnPolicy) on cuda, and on cpu with 2 torch threads (a 2-core CPU measured
   ~235 steps/s, ../../../shared/FACTS.md; target: cuda >= 5x that);
2. PPO HalfCheetah-v5 (MlpPolicy) on cuda and on cpu (1 thread): which default is right for MLPs;
3. K Pong runs at once sharing the one GPU (separate processes): aggregate steps/s.
Prints steps/s and the ratios; finishes in a few minutes. `--smoke` runs tiny budgets on cpu only
(to check the script itself on a machine without a GPU).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's clr_rl, no install needed

CPU_2CORE_PONG = 235.0  # PPO Pong CNN, 8 envs, 1 thread, on the 2-core CPU machine (FACTS.md)


def measure(env_id: str, device: str, timesteps: int, threads: int, queue: object = None) -> float:
    import torch

    torch.set_num_threads(threads)
    from clr_rl.run.agents import agent_config, build_model
    from clr_rl.run.envs import env_family, make_env
    from clr_rl.schedules import Triangular2

    family = env_family(env_id)
    agent = agent_config("ppo", env_id, family)
    env = make_env(env_id, n_envs=agent.n_envs, seed=0, normalize=agent.normalize,
                   gamma=float(agent.hyperparams.get("gamma", 0.99)))
    model = build_model(agent, env, Triangular2(base_lr=1e-4, max_lr=1e-3, cycles=2), seed=0, device=device)
    rollout = int(agent.hyperparams.get("n_steps", 2048)) * agent.n_envs
    model.learn(rollout)  # warm-up: CUDA context, cuDNN autotune, first rollout
    start, t0 = model.num_timesteps, time.perf_counter()
    model.learn(timesteps, reset_num_timesteps=False)
    sps = (model.num_timesteps - start) / (time.perf_counter() - t0)
    env.close()
    if queue is not None:
        queue.put(sps)  # type: ignore[attr-defined]
    return sps


def shared(k: int, timesteps: int) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=measure, args=("PongNoFrameskip-v4", "cuda", timesteps, 1, queue)) for _ in range(k)]
    for p in procs:
        p.start()
    rates = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, cpu only")
    parser.add_argument("--share", type=int, default=4, help="runs sharing the GPU")
    args = parser.parse_args()
    import torch

    results: dict[str, float] = {}
    if args.smoke:
        results["pong_cpu2"] = measure("PongNoFrameskip-v4", "cpu", 1024, 2)
        results["cheetah_cpu1"] = measure("HalfCheetah-v5", "cpu", 1024, 1)
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA device: run with --smoke, or on a GPU machine")
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
        results["pong_cuda"] = measure("PongNoFrameskip-v4", "cuda", 40_960, 2)
        results["pong_cpu2"] = measure("PongNoFrameskip-v4", "cpu", 8_192, 2)
        results["cheetah_cuda"] = measure("HalfCheetah-v5", "cuda", 8_192, 1)
        results["cheetah_cpu1"] = measure("HalfCheetah-v5", "cpu", 8_192, 1)
        results[f"pong_cuda_shared_x{args.share}"] = shared(args.share, 20_480)
    for key, sps in results.items():
        print(f"{key:>24}: {sps:8.0f} steps/s")
    if "pong_cuda" in results:
        print(f"Atari PPO cuda / 2-core CPU reference ({CPU_2CORE_PONG:.0f} steps/s): "
              f"{results['pong_cuda'] / CPU_2CORE_PONG:.1f}x (target >= 5x)")
        print(f"Atari PPO cuda / this machine's cpu (2 threads): {results['pong_cuda'] / results['pong_cpu2']:.1f}x")
        print(f"MuJoCo MLP PPO cuda / cpu (1 thread): {results['cheetah_cuda'] / results['cheetah_cpu1']:.2f}x "
              "(< 1 means the CPU default for MLPs is right)")
        key = f"pong_cuda_shared_x{args.share}"
        print(f"{args.share} Pong runs sharing the GPU: {results[key]:.0f} steps/s in all, "
              f"{results[key] / results['pong_cuda']:.2f}x one run")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
