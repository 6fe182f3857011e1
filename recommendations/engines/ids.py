"""Id lookup over fixed-width unicode arrays."""

import numpy as np

from .exceptions import InvalidArrays


class IdIndex:
    """Map string ids to array rows through a sorted copy and ``np.searchsorted``.

    ids: ``<U`` (n,) in row order; ids_sorted: ``<U`` (n,); order: int64 (n,)
    with ``ids[order] == ids_sorted``. When the sorted copy is not given it is
    computed here, which costs O(n log n) once.
    """

    def __init__(self, ids, ids_sorted=None, order=None):
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind != "U":
            raise InvalidArrays(f"ids must be a 1-d fixed-width unicode array, got {ids.dtype} {ids.shape}")
        if ids_sorted is None or order is None:
            order = np.argsort(ids, kind="stable").astype(np.int64)
            ids_sorted = ids[order]
        ids_sorted = np.asarray(ids_sorted)
        order = np.asarray(order)
        if ids_sorted.shape != ids.shape or order.shape != ids.shape:
            raise InvalidArrays(
                f"sorted ids {ids_sorted.shape} and their order {order.shape} must match ids {ids.shape}"
            )
        self.ids = ids
        self.ids_sorted = ids_sorted
        self.order = order
        self.width = ids_sorted.dtype.itemsize // np.dtype("<U1").itemsize

    def __len__(self):
        return self.ids.shape[0]

    def __contains__(self, id_):
        return isinstance(id_, str) and self.row(id_) is not None

    def row(self, id_):
        """Return the row of ``id_``, or None when it is not present."""
        if not isinstance(id_, str):
            raise TypeError(f"ids are strings, got {type(id_).__name__} {id_!r}")
        # An id wider than the array can never be stored in it; searching for
        # one would also make numpy cast the whole sorted array to the wider
        # dtype on every call.
        if len(id_) > self.width:
            return None
        n = self.ids_sorted.shape[0]
        pos = int(np.searchsorted(self.ids_sorted, id_))
        # Comparing as Python str is exact: an id with trailing NULs never
        # equals the stored id numpy would have stripped them from.
        if pos < n and str(self.ids_sorted[pos]) == id_:
            return int(self.order[pos])
        return None

    def rows(self, ids):
        """Return ``(rows, found)`` for many ids at once.

        ids: sequence or array of str (m,). rows: int64 (m,), -1 where not
        found; found: bool (m,).
        """
        values = np.asarray(ids)
        if values.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
        if values.dtype.kind != "U":
            raise TypeError(f"ids are strings, got an array of {values.dtype}")
        values = values.reshape(-1)
        n = self.ids_sorted.shape[0]
        if n == 0:
            return np.full(values.shape, -1, dtype=np.int64), np.zeros(values.shape, dtype=bool)
        fits = None
        if values.dtype.itemsize > self.ids_sorted.dtype.itemsize:
            # Blank out ids too wide to be stored, then search at the array's
            # own width so numpy never widens (copies) the sorted array.
            fits = np.strings.str_len(values) <= self.width
            values = np.where(fits, values, "").astype(self.ids_sorted.dtype)
        pos = np.minimum(np.searchsorted(self.ids_sorted, values), n - 1)
        found = self.ids_sorted[pos] == values
        if fits is not None:
            found &= fits
        rows = np.where(found, self.order[pos], -1).astype(np.int64, copy=False)
        return rows, found

    def known_rows(self, ids):
        """Return int64 (m,): the rows of those ``ids`` that are present, in the order given.

        A lone string counts as one id.
        """
        if isinstance(ids, str):
            ids = [ids]
        rows, found = self.rows(list(ids))
        return rows[found]
