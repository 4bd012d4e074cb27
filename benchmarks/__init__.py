"""Benchmarks: `make bench` runs every `bench_*.py` module here; figures go to docs/benchmarks.md."""
