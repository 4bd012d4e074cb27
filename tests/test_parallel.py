"""parallel_map: the helper every stage runs its workers through."""

import os
import subprocess
import sys
import time

import pytest

from avemo.parallel import parallel_map

_OFFSET = 0


def _set_offset(offset: int) -> None:
    global _OFFSET
    _OFFSET = offset


def _square_plus_offset(x: int) -> tuple[int, int]:
    time.sleep(0.002)  # long enough that a forked helper starts before the parent has done every job
    return x * x + _OFFSET, os.getpid()


def _fail_on_seven(x: int) -> int:
    if x == 7:
        raise ValueError(f"job {x} is bad")
    return x


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunksize", [1, 3])
def test_results_come_back_in_job_order_with_the_initializer_applied(workers, chunksize):
    results = list(parallel_map(_square_plus_offset, list(range(50)), workers, "test", _set_offset, (1000,),
                                chunksize=chunksize))
    assert [value for value, _ in results] == [x * x + 1000 for x in range(50)]
    pids = {pid for _, pid in results}  # with 2 workers: the parent and one forked helper
    assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() in pids and len(pids) == 2)


def test_unordered_map_yields_every_result_once():
    results = list(parallel_map(_square_plus_offset, list(range(40)), 2, "test", _set_offset, (0,), ordered=False))
    assert sorted(value for value, _ in results) == [x * x for x in range(40)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_raises_its_own_error_in_the_parent(workers):
    with pytest.raises(ValueError, match="job 7 is bad"):
        list(parallel_map(_fail_on_seven, list(range(20)), workers, "test"))


_PARENT = os.getpid()


def _slow_in_the_parent(x: int) -> int:
    time.sleep(0.3 if os.getpid() == _PARENT else 0)
    return x


@pytest.mark.timeout(20)
def test_the_parent_finishing_last_after_its_helper_ends_does_not_hang():
    assert list(parallel_map(_slow_in_the_parent, list(range(6)), 2, "test")) == list(range(6))


_FAULTS_OF_ITEM_BUFFERS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from avemo.parallel import keep_freed_memory
    keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):  # 50 items, each allocating and freeing four buffers of about 2.4 MB
    buffers = [np.ones(300_000 + 1000 * k) for k in range(4)]
    del buffers
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_item_buffers_are_reused_instead_of_faulted_in_again():
    """Without keep_freed_memory every item maps its buffers afresh: ~50x the page faults."""
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FAULTS_OF_ITEM_BUFFERS, mode], capture_output=True, text=True,
                             check=True)
        return int(out.stdout)

    default, kept = faults("default"), faults("keep")
    assert default > 50 * 4 * 500  # every item faults its ~590 pages per buffer in again
    assert kept < default / 10
