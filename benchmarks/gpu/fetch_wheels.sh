#!/usr/bin/env bash
# Download the wheels gpu_check.sh installs (CPython 3.12, manylinux x86_64), without their
# dependencies: torch, numpy, matplotlib, tensorboard, pandas, cloudpickle ... are already on the
# GPU image. Writes benchmarks/gpu/wheels/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$here/wheels"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
for pkg in stable-baselines3==2.9.2 gymnasium==1.4.0 ale-py==0.12.1 mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 \
           farama-notifications glfw pyopengl absl-py etils; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${plat[@]}" -d "$here/wheels" "$pkg"
done
ls -1 "$here/wheels"
