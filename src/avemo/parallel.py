"""Map a function over jobs on all cores with a progress bar: one helper for every stage.

The parent process is one of the workers; the others are forked on Linux (start-up in
milliseconds; stage workers use numpy, OpenCV and soundfile, never torch), spawned elsewhere.
One worker runs in-process.

Why not `multiprocessing.Pool`: its task, result and worker-handler threads cost the parent
about a tenth of a core, which on a 2-core machine is taken from the workers (the audio
stage's map of 400 clips took 0.30 s with a Pool, 0.25 s like this). Here each worker claims
the next job indices from a shared counter, reads the jobs it inherited (nothing is pickled
out), and sends back one message per chunk.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from avemo.progress import progress


def parallel_map(fn: Callable[[Any], Any], jobs: list, workers: int, description: str,
                 initializer: Callable | None = None, initargs: Iterable = (), ordered: bool = True,
                 chunksize: int = 1) -> Iterator[Any]:
    """Yield fn(job) for each job (in order unless `ordered=False`); `workers=0` means all cores.

    A job that raises stops the map and re-raises in the parent, with the worker's traceback.
    """
    workers = min(workers or mp.cpu_count(), max(1, len(jobs)))
    keep_freed_memory()
    with progress(description, total=len(jobs)) as advance:
        if workers == 1:
            if initializer:
                initializer(*initargs)
            for job in jobs:
                result = fn(job)
                advance()
                yield result
            return
        yield from _map_in_workers(fn, jobs, workers, initializer, tuple(initargs), ordered, max(1, chunksize),
                                   advance)


def keep_freed_memory(trim_mb: int = 256, mmap_mb: int = 32) -> None:
    """Let glibc keep freed buffers for reuse instead of handing them back to the OS.

    Every item allocates the same few large buffers (a decoded 720 x 480 frame is 1 MB, an STFT
    0.5 MB). By default glibc maps each one fresh and unmaps it when freed, so every item pays
    page faults again: the audio stage ran 1.8x slower that way. Raising the mmap and trim
    thresholds (mallopt) keeps them in the heap. Forked helpers inherit the setting; a no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, trim_mb << 20)
    libc.mallopt(m_mmap_threshold, mmap_mb << 20)


def _map_in_workers(fn: Callable, jobs: list, workers: int, initializer: Callable | None, initargs: tuple,
                    ordered: bool, chunksize: int, advance: Callable[[int], None]) -> Iterator[Any]:
    """The parent is one of the workers: it forks `workers - 1` helpers and claims chunks like them."""
    context = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    next_index = context.Value("q", 0)
    helpers: dict[Connection, mp.Process] = {}
    try:
        for _ in range(workers - 1):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_work, daemon=True,
                                      args=(fn, jobs, next_index, chunksize, workers, sender, initializer, initargs))
            process.start()
            sender.close()
            helpers[receiver] = process
        if initializer:
            initializer(*initargs)
        pending: dict[int, Any] = {}
        next_out = 0
        own_chunks = _claim_chunks(fn, jobs, next_index, chunksize, workers)
        while helpers or own_chunks:
            chunk = next(own_chunks, None) if own_chunks else None
            if chunk is None:
                own_chunks = None
            ready = [chunk] if chunk else []
            for pipe in wait(list(helpers), timeout=0 if own_chunks else None) if helpers else []:
                message = _receive(pipe, helpers[pipe])
                if message is None:  # that helper has no jobs left; reap it without waiting for its exit
                    threading.Thread(target=helpers.pop(pipe).join, daemon=True).start()
                else:
                    ready.append(message)
            for message in ready:
                advance(len(message))
                if not ordered:
                    yield from (result for _, result in message)
                    continue
                pending.update(message)
                while next_out in pending:
                    yield pending.pop(next_out)
                    next_out += 1
    finally:
        for process in helpers.values():
            if process.is_alive():
                process.terminate()


def _claim_chunks(fn: Callable, jobs: list, next_index, chunksize: int, workers: int) -> Iterator[list[tuple[int, Any]]]:
    """Claim the next job indices from the shared counter and run them, until none are left.

    Chunks shrink towards the end (at most a share of what is left), so that no worker is left
    running a whole chunk alone while the others have finished.
    """
    while True:
        with next_index.get_lock():
            start = next_index.value
            size = max(1, min(chunksize, (len(jobs) - start) // (2 * workers)))
            next_index.value = start + size
        if start >= len(jobs):
            return
        yield [(i, fn(jobs[i])) for i in range(start, min(start + size, len(jobs)))]


def _receive(pipe: Connection, process: mp.Process) -> list | None:
    """One chunk of (index, result) pairs, None at a worker's end; a worker's error is raised here."""
    try:
        kind, payload = pipe.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"a worker process died without a result (exit code {process.exitcode})") from None
    if kind == "error":
        error, remote_traceback = payload
        raise error from RuntimeError(f"in the worker process:\n{remote_traceback}")
    return payload


def _work(fn: Callable, jobs: list, next_index, chunksize: int, workers: int, pipe: Connection,
          initializer: Callable | None, initargs: tuple) -> None:
    """A helper process: run chunks until none are left, sending each chunk's results."""
    try:
        if initializer:
            initializer(*initargs)
        for chunk in _claim_chunks(fn, jobs, next_index, chunksize, workers):
            pipe.send(("ok", chunk))
        pipe.send(("ok", None))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which re-raises it
        try:
            pipe.send(("error", (exc, traceback.format_exc())))
        except Exception:  # the exception itself does not pickle
            pipe.send(("error", (RuntimeError(f"{type(exc).__name__}: {exc}"), traceback.format_exc())))
    finally:
        pipe.close()
