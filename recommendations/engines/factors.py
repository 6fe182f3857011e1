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


def advise_random(array: np.ndarray) -> bool:
    """Ask the kernel to read only the pages touched of a memory-mapped array, without read-ahead.

    For arrays indexed by customer in a bundle far larger than one request reads, read-ahead
    brings in ~128 KiB around every page a lookup faults on. Return False when the array is
    not memory-mapped (nothing to advise).
    """
    base = array
    while base is not None:
        mapping = getattr(base, "_mmap", None)
        if mapping is not None:
            mapping.madvise(mmap.MADV_RANDOM)
            return True
        base = getattr(base, "base", None)
    return False
