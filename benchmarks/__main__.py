"""Run every benchmark module (`bench_*.py`) in this folder, or those named on the command line."""

import importlib
import sys
from pathlib import Path

names = sys.argv[1:] or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
if not names:
    print("no benchmarks yet")
for name in names:
    print(f"== {name}")
    importlib.import_module(f"benchmarks.{name}").main()
