"""Convert the seed layout (dict bundles and the parts of artifact folders) to array sets.

This is the conversion path, so pandas is welcome here; it never runs while serving.
"""

import numpy as np

from .exceptions import CorruptBundle, IncompatibleBundle
from .layout import cf_arrays, csr_from_rows, id_array
from .metadata import plain_metadata

# Integer ids spanning at most this many times their count are looked up in a table by number.
DENSE_RANGE_FACTOR = 8
SEED_KEYS = frozenset({"recs_df", "user_factors", "item_factors", "customer_mapping", "item_mapping"})


def is_seed_bundle(obj):
    """Return True if a loaded object looks like a seed-layout dict bundle."""
    return isinstance(obj, dict) and "format" not in obj and bool(SEED_KEYS & set(obj))


def ids_from_mapping(mapping, n_rows, label):
    """Return ids in row order from a ``{id: row}`` mapping covering rows ``0..n_rows-1``."""
    return mapping_ids(mapping, n_rows, label)[0]


def mapping_ids(mapping, n_rows, label):
    """Return ``(ids, numbers)`` in row order from a ``{id: row}`` mapping covering ``0..n_rows-1``.

    ``ids`` is the ``<U`` text of each row's id; ``numbers`` is int64 (n_rows,) when every id is
    an integer (the seed's customer numbers), else None. Keys and rows are read in C
    (``np.fromiter``, ``map``), never by a Python loop over the customers.
    """
    if not isinstance(mapping, dict):
        raise CorruptBundle(f"{label} mapping is a {type(mapping).__name__}, not a dict of id → row")
    if len(mapping) != n_rows:
        raise CorruptBundle(f"{label} mapping has {len(mapping)} ids but the factors have {n_rows} rows")
    key_types = set(map(type, mapping))
    if any(not issubclass(kind, str | int | np.integer) or issubclass(kind, bool) for kind in key_types):
        raise CorruptBundle(f"{label} mapping ids must be text or integers")
    try:
        rows = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
    except (TypeError, ValueError, OverflowError):
        raise CorruptBundle(f"{label} mapping values must be integer row numbers") from None
    if rows.size and (
        rows.min() < 0 or rows.max() >= n_rows or np.bincount(rows, minlength=n_rows).max() != 1
    ):
        raise CorruptBundle(f"{label} mapping rows are not a permutation of 0..{n_rows - 1}")
    numbers = None
    if key_types <= {int, np.int64, np.int32}:
        try:
            numbers = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
        except OverflowError:  # beyond 64 bits: spelled as text below
            numbers = None
    if numbers is not None:
        keys = integers_as_text(numbers)
    elif key_types == {str}:
        keys = np.array(list(mapping), dtype=str)
    else:
        keys = id_array(list(mapping.keys()))
    ids = np.empty(n_rows, dtype=keys.dtype)
    ids[rows] = keys
    if numbers is not None:
        row_numbers = np.empty(n_rows, dtype=np.int64)
        row_numbers[rows] = numbers
        numbers = row_numbers
    return ids, numbers


def integers_as_text(numbers):
    """Return int64 numbers as ``<U`` decimal text (what ``str(int)`` gives), digit by digit in numpy.

    numpy's own int-to-text cast goes through a Python object per value (9 s for ten million).
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return np.empty(0, dtype="<U1")
    negative = numbers < 0
    magnitude = (
        np.abs(numbers.astype(np.float64)) if numbers.min() == np.iinfo(np.int64).min else np.abs(numbers)
    )
    if magnitude.dtype != np.int64:  # -2**63 has no int64 magnitude: spell it the slow, exact way
        return np.array([str(int(value)) for value in numbers.tolist()], dtype=str)
    powers = 10 ** np.arange(19, dtype=np.int64)  # 10**0 .. 10**18
    digits = np.maximum(np.searchsorted(powers, magnitude, side="right"), 1)
    most = int(digits.max())
    # Right-aligned digits (leading zeros for shorter numbers), one column per pass (division by
    # a scalar is numpy's fast path), then each group of the same length and sign moved to the
    # left edge: at most 2 × 19 groups.
    right = np.empty((numbers.shape[0], most), dtype=np.uint32)
    rest = magnitude.copy()
    for column in range(most - 1, -1, -1):
        quotient = rest // 10
        right[:, column] = rest - quotient * 10 + ord("0")
        rest = quotient
    width = most + int(negative.any())
    if not negative.any() and (digits == most).all():
        return right.view(f"<U{width}").reshape(-1)
    codes = np.zeros((numbers.shape[0], width), dtype=np.uint32)
    for count in np.unique(digits).tolist():
        same = digits == count
        for sign in (0, 1):
            chosen = np.nonzero(same & (negative == bool(sign)))[0]
            if chosen.size:
                codes[chosen, sign : sign + count] = right[chosen, most - count :]
    codes[negative, 0] = ord("-")
    return codes.view(f"<U{width}").reshape(-1)


def id_column(values):
    """Spell a DataFrame id column as text the way ``id_array`` does (no trailing ``.0``)."""
    import pandas as pd

    series = pd.Series(values)
    if pd.api.types.is_float_dtype(series) and series.notna().all():
        if (series == series.round()).all():
            series = series.astype(np.int64)
    return series.astype(str).to_numpy(dtype=str)


def factors(value, label):
    """Return a float32 factor matrix, refusing anything that is not a 2-d numeric array."""
    if hasattr(value, "toarray"):
        value = value.toarray()
    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.dtype.kind not in "fiu":
        raise CorruptBundle(f"{label} must be a 2-d numeric array")
    return np.ascontiguousarray(value, dtype=np.float32)


def recs_csr(recs, user_ids, item_ids, *, user_numbers=None, item_numbers=None):
    """Group a ``customer_id, item_id, score[, rank]`` table into CSR arrays over customers.

    With ``user_numbers`` / ``item_numbers`` (the integer ids of each row, from ``mapping_ids``),
    integer id columns are matched by number: no text is made per recommendation.
    """
    import pandas as pd

    if recs is None:
        n = len(user_ids)
        return np.zeros(n + 1, np.int64), np.empty(0, np.int32), np.empty(0, np.float32)
    if not isinstance(recs, pd.DataFrame):
        raise CorruptBundle(f"recommendations must be a DataFrame, not {type(recs).__name__}")
    missing = {"customer_id", "item_id", "score"} - set(recs.columns)
    if missing:
        raise CorruptBundle(f"recommendations lack columns: {', '.join(sorted(missing))}")
    user_rows = _rows_of(recs["customer_id"], user_ids, user_numbers)
    item_rows = _rows_of(recs["item_id"], item_ids, item_numbers)
    for rows, column, label in ((user_rows, "customer_id", "customers"), (item_rows, "item_id", "items")):
        unknown = rows < 0
        if unknown.any():
            example = recs[column].to_numpy()[unknown][0]
            raise CorruptBundle(
                f"recommendations name {int(unknown.sum())} {label} not in the mapping, e.g. {example!r}"
            )
    scores = pd.to_numeric(recs["score"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all():
        raise CorruptBundle("recommendations hold scores that are missing or not numbers")
    values = scores.astype(np.float32)
    if "rank" in recs.columns:
        key = recs["rank"].to_numpy(dtype=np.float64)
    elif scores.flags.writeable and not np.may_share_memory(scores, recs["score"].to_numpy()):
        key = np.negative(scores, out=scores)  # our own copy: one array fewer at 100 M rows
    else:
        key = -scores
    del scores
    return csr_from_rows(user_rows, item_rows, len(user_ids), values=values, sort_key=key)


def _rows_of(column, ids, numbers):
    """Return the row of each id in a DataFrame column (int64, -1 where unknown)."""
    import pandas as pd

    if numbers is not None:
        integral = _integral(column)
        if integral is not None:
            return rows_by_number(numbers, integral)
    return pd.Index(ids).get_indexer(id_column(column))


def _integral(column):
    """Return an id column as int64 when it holds integers (or integral floats), else None."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_integer_dtype(column) and column.notna().all():
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(column) and column.notna().all():
        values = column.to_numpy(dtype=np.float64)
        if (
            np.isfinite(values).all()
            and (values == np.round(values)).all()
            and np.abs(values).max(initial=0) < 2**53
        ):
            return values.astype(np.int64)
    return None


def rows_by_number(numbers, wanted):
    """Return the row of each of ``wanted`` in ``numbers`` (int64, -1 where absent).

    Ids that span a range of at most ``DENSE_RANGE_FACTOR`` × their count (customer numbers
    usually do) are looked up in a table indexed by number; others by binary search.
    """
    if numbers.shape[0] == 0:
        return np.full(wanted.shape[0], -1, dtype=np.int64)
    low, high = int(numbers.min()), int(numbers.max())
    if high - low < DENSE_RANGE_FACTOR * numbers.shape[0]:
        table = np.full(high - low + 1, -1, dtype=np.int64)
        table[numbers - low] = np.arange(numbers.shape[0])
        if wanted.shape[0] and int(wanted.min()) >= low and int(wanted.max()) <= high:
            return table[wanted - low]  # the usual case: every id within the mapping's range
        inside = (wanted >= low) & (wanted <= high)
        rows = np.full(wanted.shape[0], -1, dtype=np.int64)
        rows[inside] = table[wanted[inside] - low]
        return rows
    order = np.argsort(numbers, kind="stable")
    ordered = numbers[order]
    at = np.minimum(np.searchsorted(ordered, wanted), ordered.shape[0] - 1)
    return np.where(ordered[at] == wanted, order[at], -1)


def interactions_csr(matrix, n_users, n_items):
    """Return ``(indptr, indices)`` of a users × items sparse matrix, indices sorted per row."""
    if matrix is None:
        return None, None
    try:
        matrix = matrix.tocsr()
    except AttributeError:
        raise CorruptBundle("interactions must be a scipy sparse matrix") from None
    if matrix.shape != (n_users, n_items):
        raise CorruptBundle(
            f"interactions are {matrix.shape[0]} × {matrix.shape[1]}, expected {n_users} × {n_items}"
        )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32)


def cf_from_parts(
    *,
    customer_mapping,
    item_mapping,
    user_factors,
    item_factors,
    recs=None,
    interactions=None,
    item_popularity=None,
    item_similarity=None,
):
    """Return the CF array set from the seed layout's parts."""
    user_factors = factors(user_factors, "user_factors")
    item_factors = factors(item_factors, "item_factors")
    user_ids, user_numbers = mapping_ids(customer_mapping, user_factors.shape[0], "customer")
    item_ids, item_numbers = mapping_ids(item_mapping, item_factors.shape[0], "item")
    indptr, indices, scores = recs_csr(
        recs, user_ids, item_ids, user_numbers=user_numbers, item_numbers=item_numbers
    )
    inter_indptr, inter_indices = interactions_csr(interactions, len(user_ids), len(item_ids))
    if item_similarity is not None:
        item_similarity = factors(item_similarity, "item_similarity")
    if item_popularity is not None:
        item_popularity = np.asarray(item_popularity, dtype=np.float32).reshape(-1)
        if item_popularity.shape != (len(item_ids),):
            raise CorruptBundle(
                f"item_popularity has {item_popularity.size} values for {len(item_ids)} items"
            )
    return cf_arrays(
        user_ids=user_ids,
        item_ids=item_ids,
        user_factors=user_factors,
        item_factors=item_factors,
        recs_indptr=indptr,
        recs_indices=indices,
        recs_scores=scores,
        item_popularity=item_popularity,
        interactions_indptr=inter_indptr,
        interactions_indices=inter_indices,
        item_similarity=item_similarity,
    )


def convert_seed_bundle(obj):
    """Return ``("cf", arrays, metadata)`` from a loaded seed-layout dict bundle."""
    missing = {"user_factors", "item_factors", "customer_mapping", "item_mapping"} - set(obj)
    if missing:
        raise IncompatibleBundle(f"seed bundle lacks: {', '.join(sorted(missing))}")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CorruptBundle("seed bundle metadata is not a dict")
    arrays = cf_from_parts(
        customer_mapping=obj["customer_mapping"],
        item_mapping=obj["item_mapping"],
        user_factors=obj["user_factors"],
        item_factors=obj["item_factors"],
        recs=obj.get("recs_df"),
        item_similarity=obj.get("item_similarity"),
    )
    return "cf", arrays, {"source_layout": "seed-bundle", "source_metadata": plain_metadata(metadata)}
