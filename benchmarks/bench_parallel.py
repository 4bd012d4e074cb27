"""The stages' process pool against the standard ones, on the audio stage's own work.

`avemo.parallel.parallel_map` (the parent works too; helpers claim chunks from a shared counter
and inherit the jobs) against `concurrent.futures.ProcessPoolExecutor` (fork, chunksize 8) and
joblib (loky, its default backend), each mapping the audio stage's per-utterance job over the
same `BENCH_CLIPS` 3-second wavs (default 400) with 2 workers, writing into the same
memory-mapped array; best of `BENCH_REPEATS` (default 5) runs, pool start-up included. The
outputs are checked identical. The winner stays in avemo.parallel (its docstring says why).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from avemo.audio import variant
from avemo.audio.segment import SegmentPolicy
from avemo.parallel import parallel_map
from avemo.params import STUDY_SPECTROGRAM
from benchmarks.bench_spectrogram import make_clips

N_CLIPS = int(os.environ.get("BENCH_CLIPS", "400"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
WORKERS = 2


def prepare(folder: Path):
    """The audio stage's jobs and a fresh array for them, as build_variant makes them."""
    utterances = make_clips(folder, N_CLIPS)
    cfg = variant.VariantConfig(SegmentPolicy(), None, STUDY_SPECTROGRAM, workers=WORKERS)
    jobs, _ = variant.plan_jobs(utterances, cfg)
    array = folder / "spectrograms.npy"
    np.lib.format.open_memmap(array, mode="w+", dtype=np.float16, shape=(len(jobs), 200, 300)).flush()
    variant.spectrogram_db(np.zeros(4096, np.float32), 16000, cfg.spectrogram)  # librosa's lazy loading, once
    return jobs, (cfg, None, str(array)), array


def with_parallel_map(jobs, initargs) -> list:
    return list(parallel_map(variant.process, jobs, WORKERS, "parallel_map", variant._init_worker, initargs, chunksize=8))


def with_futures(jobs, initargs) -> list:
    with ProcessPoolExecutor(WORKERS, mp_context=mp.get_context("fork"), initializer=variant._init_worker,
                             initargs=initargs) as pool:
        return list(pool.map(variant.process, jobs, chunksize=8))


def _joblib_job(job, initargs):
    if variant._ARRAY is None:
        variant._init_worker(*initargs)
    return variant.process(job)


def with_joblib(jobs, initargs) -> list:
    from joblib import Parallel, delayed

    return Parallel(n_jobs=WORKERS, batch_size=8)(delayed(_joblib_job)(job, initargs) for job in jobs)


def main() -> None:
    ways = {"avemo.parallel.parallel_map": with_parallel_map, "concurrent.futures (fork)": with_futures,
            "joblib (loky)": with_joblib}
    with tempfile.TemporaryDirectory() as tmp:
        jobs, initargs, array = prepare(Path(tmp))
        times, outputs = {}, {}
        for name, way in ways.items():
            best = float("inf")
            for _ in range(REPEATS):
                start = time.perf_counter()
                outcomes = way(jobs, initargs)
                best = min(best, time.perf_counter() - start)
            assert all(o.written for o in outcomes)
            outputs[name], times[name] = np.load(array).copy(), best
    first = next(iter(outputs.values()))
    assert all(np.array_equal(first, o) for o in outputs.values())  # the same spectrograms every way
    print(f"{N_CLIPS} clips, {WORKERS} workers, best of {REPEATS}")
    for name, seconds in times.items():
        print(f"{name:30s} {seconds:6.3f} s   {N_CLIPS / seconds:7.1f} clips/s")


if __name__ == "__main__":
    main()
