"""Assignment over 100,000 customer ids: the arms get their shares, and every process agrees."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from recommendations.experiments.assignment import Assignment

SHARES = (0.5, 0.3, 0.2)
IDS = [f"customer-{i}" for i in range(100_000)]
# 3 standard deviations of a share of 100,000 draws at p = 0.5 is 0.0047: the stated tolerance.
TOLERANCE = 0.005
ROOT = Path(__file__).resolve().parents[2]


def arms(experiment_id):
    assignment = Assignment(experiment_id, SHARES)
    return np.array([assignment.arm_index(customer_id) for customer_id in IDS])


def test_assignment_follows_the_shares_within_half_a_point_over_100_000_ids():
    for experiment_id in (1, 2, 3):
        observed = np.bincount(arms(experiment_id), minlength=len(SHARES)) / len(IDS)
        assert np.abs(observed - SHARES).max() <= TOLERANCE, (experiment_id, observed)


def test_another_process_with_another_hash_seed_assigns_every_customer_alike():
    script = (
        "import hashlib\n"
        "from recommendations.experiments.assignment import Assignment\n"
        f"a = Assignment(7, {SHARES!r})\n"
        "ids = [f'customer-{i}' for i in range(100_000)]\n"
        "print(hashlib.sha256(bytes(a.arm_index(c) for c in ids)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == hashlib.sha256(bytes(arms(7).tolist())).hexdigest()


def test_a_new_experiment_reshuffles_customers():
    assert 0.3 < np.mean(arms(1) != arms(2)) < 0.8
