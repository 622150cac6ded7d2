"""The machine a run trained on, as far as it changes floating-point results.

Same code, seed and library versions gave different training results on another CPU (issue 23, 17):
torch picks its kernels by the CPU's vector capability (AVX2, AVX512, ...), and matrix products go
through a BLAS whose blocking differs by build; RL training amplifies the last-bit differences. So
``run.json``'s versions record the CPU model, torch's CPU capability and BLAS, and numpy with its BLAS;
``make reproduce`` demands bit-identity only where :data:`FINGERPRINT_KEYS` match.
"""

from __future__ import annotations

import platform
from functools import cache

__all__ = ["FINGERPRINT_KEYS", "machine"]

FINGERPRINT_KEYS = ("cpu", "torch_cpu_capability", "torch_blas", "numpy", "numpy_blas", "torch")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def _torch_blas() -> str:
    import torch

    for part in torch.__config__.show().replace("\n", ",").split(","):
        if part.strip().startswith("BLAS_INFO="):
            return part.strip().split("=", 1)[1]
    return "?"


def _numpy_blas() -> str:
    import numpy

    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # pragma: no cover - numpy < 2 or an unusual build
        return "?"


@cache
def machine() -> dict[str, str]:
    """CPU model, torch's CPU capability (``torch.backends.cpu.get_cpu_capability()``) and BLAS, numpy
    and its BLAS."""
    import numpy
    import torch

    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:  # pragma: no cover - torch < 2.1
        capability = "?"
    return {"cpu": _cpu_model(), "torch_cpu_capability": capability, "torch_blas": _torch_blas(),
            "numpy": numpy.__version__, "numpy_blas": _numpy_blas()}
