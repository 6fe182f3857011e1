"""Assignment: stable, in proportion to the shares, the same in another process.

Tolerance: over n ids an arm with share p gets a binomial count with sd sqrt(n p (1 - p)); the
test allows 4.5 sd (at n = 100,000 and p = 0.5: ±711 ids, ±0.71 %). A correct hash fails that
with probability about 7e-6 per arm, and the ids are fixed, so the test is deterministic.
"""

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from recommendations.experiments.assignment import Assignment, unit_interval

N = 100_000
SD_ALLOWED = 4.5
IDS = [f"C{i:07d}" for i in range(N)]


def within_tolerance(counts, shares, n):
    for index, share in enumerate(shares):
        sd = math.sqrt(n * share * (1 - share))
        assert abs(counts[index] - n * share) <= SD_ALLOWED * sd, (index, counts[index], n * share, sd)


@pytest.mark.parametrize("shares", [[0.5, 0.5], [0.9, 0.1], [0.5, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25]])
def test_arms_get_their_shares_of_100000_ids(shares):
    assignment = Assignment(7, shares)
    counts = Counter(assignment.arm_index(customer_id) for customer_id in IDS)
    assert set(counts) == set(range(len(shares)))
    within_tolerance(counts, shares, N)


def test_a_customer_keeps_the_arm_and_another_experiment_reshuffles():
    first, again, other = Assignment(1, [0.5, 0.5]), Assignment(1, [0.5, 0.5]), Assignment(2, [0.5, 0.5])
    arms = [first.arm_index(c) for c in IDS[:10_000]]
    assert arms == [again.arm_index(c) for c in IDS[:10_000]]
    moved = sum(a != b for a, b in zip(arms, (other.arm_index(c) for c in IDS[:10_000]), strict=True))
    assert 4_500 < moved < 5_500  # independent experiments: about half the customers change arm


def test_points_are_uniform_and_in_the_unit_interval():
    points = [unit_interval(3, c) for c in IDS[:20_000]]
    assert min(points) >= 0.0 and max(points) < 1.0
    deciles = Counter(int(p * 10) for p in points)
    within_tolerance([deciles[d] for d in range(10)], [0.1] * 10, 20_000)


def test_another_process_assigns_every_customer_alike():
    script = (
        "import json, sys\n"
        "from recommendations.experiments.assignment import Assignment\n"
        "a = Assignment(11, [0.5, 0.3, 0.2])\n"
        "print(json.dumps([a.arm_index(f'C{i:07d}') for i in range(20000)]))\n"
    )
    # A different hash seed in the child: the assignment must not depend on Python's hash().
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    mine = Assignment(11, [0.5, 0.3, 0.2])
    assert json.loads(done.stdout) == [mine.arm_index(c) for c in IDS[:20_000]]


def test_shares_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Assignment(1, [1.0, 0.0])
