"""Which arm serves a customer: a stable hash of (experiment id, customer id) against cumulative shares.

The hash is blake2b of ``f"{experiment_id}:{customer_id}"`` (UTF-8), its first 8 bytes read as
an unsigned big-endian integer and divided by 2**64: a number in [0, 1) that every process on
every node computes alike (no seed, no ``PYTHONHASHSEED``). The arms, in their ``position``
order, cover [0, 1) in consecutive intervals as long as their shares; the customer belongs to
the arm whose interval holds the number. A customer keeps the arm for as long as the
experiment runs, and a new experiment reshuffles everyone (its id is in the hash).
``python -m bench --only experiments`` measures the cost per call.
"""

from bisect import bisect_right
from collections.abc import Sequence
from hashlib import blake2b
from itertools import accumulate

_SCALE = float(2**64)


def unit_interval(experiment_id: int, customer_id: str) -> float:
    """Return the customer's stable point in [0, 1) for this experiment."""
    digest = blake2b(f"{experiment_id}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Assignment:
    """Map customers to arm positions (0, 1, …) for one experiment by cumulative shares."""

    __slots__ = ("experiment_id", "_bounds")

    def __init__(self, experiment_id: int, shares: Sequence[float]):
        if not shares or any(share <= 0 for share in shares):
            raise ValueError(f"shares must be positive, got {list(shares)!r}")
        self.experiment_id = experiment_id
        # Upper bounds of all arms but the last; the last takes the rest up to 1, so shares
        # that sum to 1 within the tolerance never leave a gap at the top.
        self._bounds = list(accumulate(shares))[:-1]

    def arm_index(self, customer_id: str) -> int:
        """Return the position of the arm that serves ``customer_id``."""
        return bisect_right(self._bounds, unit_interval(self.experiment_id, customer_id))

    def index_of_point(self, point: float) -> int:
        """Return the position of the arm whose interval holds ``point`` in [0, 1)."""
        return bisect_right(self._bounds, point)
