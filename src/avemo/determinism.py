"""What makes a stage's bytes the same on another machine, and a record of it.

Measured (README, "Reproducibility"): with the same inputs and seeds, the CPU at hand changes
the numbers in two places. Data: numpy's OpenBLAS picks its matrix kernels for the CPU when it
loads (the mel projection of a spectrogram is a BLAS product) and splits products over its
threads, and numpy's own loops (log10, exp) dispatch to AVX-512 code where the CPU has it; each
of the three alone gives the `audio` stage other bytes. Training: oneDNN and MKL pick their
instruction set, and the intra-op thread count changes the order of sums.

Every stage therefore runs in a process whose code paths are pinned: the widest instruction set
(`compute.cpu_isa`, AVX2 by default, which every x86 machine of the last decade has), one BLAS
thread (stages parallelise over processes), Python's string hashing (set order), and for
training `train.threads` intra-op threads.
The libraries read these settings once, when they load, so they are set in the environment and
the stage's process is started again with it (`pin_process`) before numpy or torch is imported.
"""

from __future__ import annotations

import os
import platform
import sys

ISAS = ("avx2", "avx512", "native")
#: numpy's dispatch targets above AVX2 (names of numpy 1.26 to 2.4; names a version lacks are ignored).
NUMPY_ABOVE_AVX2 = ("X86_V4", "AVX512_ICL", "AVX512_SPR", "AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM",
                    "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512FP16")
NUMPY_ABOVE_AVX512 = ("AVX512_ICL", "AVX512_SPR", "AVX512_CNL", "AVX512FP16")
#: OpenCV's AVX-512 dispatch targets (its resize and colour conversions gave the same bytes without them, checked).
OPENCV_AVX512 = "AVX512-SKX,AVX512-COMMON,AVX512-CNL,AVX512-CLX,AVX512-ICL"
PINNED = "AVEMO_PINNED"  # set in a pinned process: what it was pinned to


def pinned_environment(isa: str) -> dict[str, str]:
    """The environment that fixes every library's code path and BLAS threads for `isa`."""
    if isa not in ISAS:
        raise ValueError(f"compute.cpu_isa must be one of {ISAS}, not {isa!r}")
    # PYTHONHASHSEED: the iteration order of sets of strings (e.g. the order of tied parameter importances in a
    # search's figure) is otherwise drawn anew by every process.
    env = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0", PINNED: isa}
    if isa == "avx2":
        env.update(OPENBLAS_CORETYPE="Haswell", NPY_DISABLE_CPU_FEATURES=" ".join(NUMPY_ABOVE_AVX2),
                   ONEDNN_MAX_CPU_ISA="AVX2", MKL_CBWR="AVX2,STRICT", ATEN_CPU_CAPABILITY="avx2")
        if _cpu_has("avx512f"):  # OpenCV warns about disabling what the CPU lacks
            env["OPENCV_CPU_DISABLE"] = OPENCV_AVX512
    elif isa == "avx512":
        env.update(OPENBLAS_CORETYPE="SkylakeX", NPY_DISABLE_CPU_FEATURES=" ".join(NUMPY_ABOVE_AVX512),
                   ONEDNN_MAX_CPU_ISA="AVX512_CORE", MKL_CBWR="AVX512,STRICT", ATEN_CPU_CAPABILITY="avx512")
    return env


def is_pinned(isa: str) -> bool:
    return all(os.environ.get(k) == v for k, v in pinned_environment(isa).items())


def pin_process(isa: str) -> None:
    """Start this command again, as it was started, in a pinned process, unless it is one already.

    A process that has already loaded numpy cannot be pinned any more; it runs as it is (tests
    that call a stage in-process).
    """
    if is_pinned(isa) or "numpy" in sys.modules:
        return
    env = {**os.environ, **pinned_environment(isa)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


#: What torch's libraries read lazily, at their first use: these can still be set in a running process.
TORCH_KEYS = ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "ATEN_CPU_CAPABILITY")


def pin_torch(threads: int, isa: str) -> None:
    """Intra-op threads (they change the weights), torch's code path and deterministic kernels, before the first
    tensor operation. A pinned process has the code path already; a process that was not (a stage called from
    Python) gets the part that torch still reads."""
    import torch

    env = pinned_environment(isa)
    os.environ.update({k: env[k] for k in TORCH_KEYS if k in env})
    torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS on GPUs
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def data_environment() -> dict[str, str]:
    """What determines a data stage's bytes besides its inputs, params and code: in its metrics file."""
    import numpy as np
    import scipy

    blas = sorted({f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} x{i.get('num_threads')}"
                   for i in _threadpools() if i.get("user_api") == "blas"})
    return {"pinned": os.environ.get(PINNED, "no"), "numpy": np.__version__, "scipy": scipy.__version__,
            "numpy_simd": _numpy_simd(), "blas": "; ".join(blas), "python": sys.version.split()[0],
            "machine": platform.machine()}


def environment(device) -> dict[str, str]:
    """What determines a training's numbers besides seeds and data: tags on every run."""
    import numpy as np
    import torch

    return {
        "env.torch": torch.__version__, "env.numpy": np.__version__, "env.python": sys.version.split()[0],
        "env.threads": str(torch.get_num_threads()), "env.device": str(device),
        "env.cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env.onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
        "env.mkl_cbwr": os.environ.get("MKL_CBWR", "native"), "env.machine": platform.machine(),
        "env.cuda": torch.version.cuda or "none", "env.pinned": os.environ.get(PINNED, "no"),
        "env.numpy_simd": _numpy_simd(),
    }


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and flag in line.split() for line in f)
    except OSError:
        return False


def _numpy_simd() -> str:
    """The widest of numpy's dispatch targets this process may use."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    usable = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    return usable[-1] if usable else "baseline"


def _threadpools() -> list[dict]:
    from threadpoolctl import threadpool_info

    return threadpool_info()


def pick_device(name: str = "auto"):
    """CUDA (this rank's GPU under torchrun), then Apple MPS, then CPU."""
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
