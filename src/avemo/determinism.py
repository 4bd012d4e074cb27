"""What makes a training's numbers the same on another machine, and a record of it.

Measured here (README, "Reproducibility"): with the same seed and data, CPU training weights
change with the intra-op thread count and with the instruction set that oneDNN (convolutions)
and MKL (matrix products) pick for the CPU at hand (AVX-512 on one machine, AVX2 on the next).
A stage therefore fixes both before its first tensor operation: `train.threads` intra-op
threads, whatever OMP_NUM_THREADS says, and the `train.cpu_isa` code path for oneDNN, MKL
(conditional numerical reproducibility) and ATen, overriding the environment. Both are read
by those libraries when first used, so this must run before any convolution in the process.
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
import torch

ISAS = ("avx2", "avx512", "native")


def pin_cpu(threads: int, isa: str) -> None:
    """Fix the intra-op thread count and the CPU code path; ask torch for deterministic kernels."""
    if isa not in ISAS:
        raise ValueError(f"train.cpu_isa must be one of {ISAS}, not {isa!r}")
    if isa != "native":
        os.environ["ONEDNN_MAX_CPU_ISA"] = {"avx2": "AVX2", "avx512": "AVX512_CORE"}[isa]
        os.environ["MKL_CBWR"] = f"{isa.upper()},STRICT"
        os.environ["ATEN_CPU_CAPABILITY"] = isa
    if threads < 1:
        raise ValueError(f"train.threads must be at least 1, not {threads}")
    torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS on GPUs
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def environment(device: torch.device) -> dict[str, str]:
    """What determines the numbers besides seeds and data: recorded as tags on every run."""
    return {
        "env.torch": torch.__version__, "env.numpy": np.__version__, "env.python": sys.version.split()[0],
        "env.threads": str(torch.get_num_threads()), "env.device": str(device),
        "env.cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env.onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
        "env.mkl_cbwr": os.environ.get("MKL_CBWR", "native"), "env.machine": platform.machine(),
        "env.cuda": torch.version.cuda or "none",
    }
