#!/usr/bin/env bash
# GPU check for a CUDA machine without network access (Python 3.12 with torch already installed).
# 1. On a machine with network: bash benchmarks/gpu/fetch_wheels.sh   (fills benchmarks/gpu/wheels/)
# 2. Copy the repo (with wheels/) to the GPU machine and run: bash benchmarks/gpu/gpu_check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/clr-site \
    "$here"/wheels/*.whl
export PYTHONPATH=/tmp/clr-site${PYTHONPATH:+:$PYTHONPATH}
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
timeout 540 python3 "$here/gpu_check.py" "$@"
