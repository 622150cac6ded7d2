#!/usr/bin/env bash
# GPU check for a CUDA machine without network access (Python 3.12 with torch already installed).
# 1. On a machine with network: bash benchmarks/gpu/fetch_wheels.sh   (fills benchmarks/gpu/wheels/)
# 2. Copy the repo (with wheels/) to the GPU machine and run: bash benchmarks/gpu/gpu_check.sh
#    Part 1 (gpu_check.py): PPO Pong (sb3 pipeline) and HalfCheetah, cuda vs cpu, runs sharing the GPU.
#    Part 2 (../bench_atari.py --gpu): PPO Pong through ALE's vector env (vec_env="ale") on cuda vs this
#    machine's cpu and vs the 2-core CPU figure (target >= 5x), and 4 runs sharing the GPU (target >= 3x).
#    `--smoke`: tiny budgets on cpu for both parts; `--ale-only`: part 2 alone. Each part prints its ratios;
#    the script goes on to part 2 if part 1 fails, and exits non-zero if either failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/clr-site \
    "$here"/wheels/*.whl
export PYTHONPATH=/tmp/clr-site${PYTHONPATH:+:$PYTHONPATH}
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
status=0
if [[ "${1:-}" == "--ale-only" ]]; then
    shift
else
    timeout 540 python3 "$here/gpu_check.py" "$@" || status=$?
fi
if [[ " $* " == *" --smoke "* ]]; then
    timeout 300 python3 "$here/../bench_atari.py" --seconds 2 --ppo-steps 1024 --repeats 1 || status=$?
else
    timeout 420 python3 "$here/../bench_atari.py" --gpu --share 4 || status=$?
fi
exit "$status"
