#!/usr/bin/env bash
# Create .venv and install clr-rl with everything the demo and the tests need.
# torch comes first and pinned: on a CPU-only machine of ours that is the CPU wheel on
# disk; elsewhere pip takes PyPI's default build (CUDA on Linux x86_64).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.clr-rl-installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[dev]"
    rm -f .venv/.clr-rl-installed-*
    touch "$stamp"
fi
