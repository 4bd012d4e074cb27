"""Map a function over jobs on all cores with a progress bar: one helper for every stage.

Workers are forked on Linux (start-up in milliseconds; stage workers use numpy, OpenCV and
soundfile, never torch), spawned elsewhere. One worker runs in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from avemo.progress import progress


def parallel_map(fn: Callable[[Any], Any], jobs: list, workers: int, description: str,
                 initializer: Callable | None = None, initargs: Iterable = (), ordered: bool = True,
                 chunksize: int = 1) -> Iterator[Any]:
    """Yield fn(job) for each job (in order unless `ordered=False`); `workers=0` means all cores."""
    workers = min(workers or mp.cpu_count(), max(1, len(jobs)))
    with progress(description, total=len(jobs)) as advance:
        if workers == 1:
            if initializer:
                initializer(*initargs)
            for job in jobs:
                result = fn(job)
                advance()
                yield result
            return
        context = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with context.Pool(workers, initializer, tuple(initargs)) as pool:
            mapper = pool.imap if ordered else pool.imap_unordered
            for result in mapper(fn, jobs, chunksize):
                advance()
                yield result
