"""The red-team run's measurements: a worker's peak growth is seen, and the memory cap holds."""

import subprocess
import sys
import textwrap

from bench.redteam import memory
from tests.support.processes import address_space_limit, wait_until

MiB = 1024**2

# Allocate and touch ``argv[1]`` MiB when told to on stdin, free it, say so, then wait to be ended.
ALLOCATE = textwrap.dedent(
    """
    import sys
    print("ready", flush=True)
    sys.stdin.readline()
    block = bytearray(int(sys.argv[1]) * 1024 * 1024)
    del block
    print("freed", flush=True)
    sys.stdin.readline()
    """
)


def _child(megabytes, **kwargs):
    child = subprocess.Popen(
        [sys.executable, "-c", ALLOCATE, str(megabytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def test_a_peak_that_is_already_freed_is_measured():
    child = _child(150)
    try:
        baseline = memory.reset_peaks([child.pid])
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "freed"

        growth, gone = memory.peak_growth_mb(baseline)

        assert 140 <= growth < 200 and gone == []
    finally:
        child.kill()
        child.wait(10)


def test_a_process_that_exits_is_reported_gone():
    child = _child(1)
    baseline = memory.reset_peaks([child.pid])
    child.kill()
    child.wait(10)

    wait_until(lambda: memory.peak_growth_mb(baseline)[1] == [child.pid], timeout=10)


def test_the_address_space_cap_fails_the_allocation_not_the_machine():
    child = _child(2048, preexec_fn=address_space_limit(1024 * MiB))
    child.stdin.write("go\n")
    child.stdin.flush()
    child.wait(30)

    assert child.returncode != 0
    assert "MemoryError" in child.stderr.read()
