"""Run every benchmark module (`bench_*.py`) in this folder, or those named on the command line.

The process is pinned as the stages are (compute.cpu_isa: determinism.py), so that it computes
with the kernels and BLAS threads the pipeline computes with.
"""

import importlib
import sys
from pathlib import Path

from avemo.determinism import pin_process
from avemo.params import load_params

pin_process(load_params().compute.cpu_isa)

names = sys.argv[1:] or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
if not names:
    print("no benchmarks yet")
for name in names:
    print(f"== {name}")
    importlib.import_module(f"benchmarks.{name}").main()
