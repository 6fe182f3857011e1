"""User factor rows as float32, whatever the bundle stores them as (float32, float16 or int8)."""

import mmap

import numpy as np

from .exceptions import InvalidArrays

STORED_DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int8))


class UserFactors:
    """Read float32 user rows from stored factors, converting only the rows asked for.

    stored: float32, float16 or int8 (n_users, f); scale: float32 (n_users,), required
    with int8 (row ``u`` is ``stored[u] * scale[u]``) and refused otherwise. Nothing is
    converted up front, so a memory-mapped int8 matrix stays a quarter of float32's size
    in memory: each request converts the one row it scores.
    """

    def __init__(self, stored: np.ndarray, scale: np.ndarray | None = None):
        if stored.ndim != 2 or stored.dtype not in STORED_DTYPES:
            raise InvalidArrays(
                f"user_factors must be a float32, float16 or int8 matrix, not {stored.dtype} {stored.shape}"
            )
        if (stored.dtype == np.int8) != (scale is not None):
            raise InvalidArrays("user_factors_scale comes with int8 user_factors, and only with them")
        if scale is not None and (scale.dtype != np.float32 or scale.shape != (stored.shape[0],)):
            raise InvalidArrays(
                f"user_factors_scale has {scale.dtype} {scale.shape}, expected float32 ({stored.shape[0]},)"
            )
        self.stored = stored
        self.scale = scale

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.stored.shape[0]), int(self.stored.shape[1]))

    @property
    def dtype(self) -> np.dtype:
        """Return how the rows are stored (float32, float16 or int8)."""
        return self.stored.dtype

    def row(self, u: int) -> np.ndarray:
        """Return float32 (f,): user row ``u`` (a view when stored as float32)."""
        if self.scale is not None:
            return self.stored[u].astype(np.float32) * self.scale[u]
        return self.stored[u].astype(np.float32, copy=False)

    def rows(self, users) -> np.ndarray:
        """Return float32 (m, f): the user rows ``users`` (int (m,)), in that order."""
        users = np.asarray(users, dtype=np.int64)
        if self.scale is not None:
            return self.stored[users].astype(np.float32) * self.scale[users, None]
        return self.stored[users].astype(np.float32, copy=False)


# Arrays a request reads at its customer's row: in a bundle far larger than the page cache
# holds, the kernel's read-ahead (~128 KiB around each page a lookup faults on) mostly reads
# pages nobody asks for. Measured at 100 M customers (docs/BENCHMARKS.md): MADV_RANDOM took
# the cold p99 from 69 ms to 9 ms and the serving process's RSS from 1.4 GB to 0.2 GB; on a
# 43 MB bundle read-ahead was faster cold, so it stays on below this size.
CUSTOMER_ARRAYS = (
    "user_ids_sorted",
    "user_ids_order",
    "user_factors",
    "user_factors_scale",
    "recs_indptr",
    "recs_indices",
    "recs_scores",
    "interactions_indptr",
    "interactions_indices",
)
RANDOM_ACCESS_MIN_BYTES = 1 << 30


def advise(array: np.ndarray, advice: int) -> bool:
    """Give the kernel ``advice`` (``mmap.MADV_RANDOM``, ``MADV_NORMAL``) for a memory-mapped array.

    Return False when the array is not memory-mapped (nothing to advise).
    """
    base: object = array
    while base is not None:
        mapping = getattr(base, "_mmap", None)
        if mapping is not None:
            mapping.madvise(advice)
            return True
        base = getattr(base, "base", None)
    return False


def advise_customer_arrays(arrays, *, advice=None, min_bytes=None) -> bool:
    """Turn read-ahead off (MADV_RANDOM) for the memory-mapped arrays indexed by customer.

    Only when they add up to ``min_bytes`` (``RANDOM_ACCESS_MIN_BYTES``) or more, unless an
    ``advice`` is given, which is then applied whatever the size. Return True if any array was
    advised.
    """
    present = [arrays[name] for name in CUSTOMER_ARRAYS if arrays.get(name) is not None]
    if advice is None:
        limit = RANDOM_ACCESS_MIN_BYTES if min_bytes is None else min_bytes
        if sum(array.nbytes for array in present) < limit:
            return False
        advice = mmap.MADV_RANDOM
    advised = [advise(array, advice) for array in present]  # every one, not up to the first
    return any(advised)
