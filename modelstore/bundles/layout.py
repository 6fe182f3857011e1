"""The CF and CB array sets: their names, dtypes, and how to build them from plain inputs.

Ids are fixed-width unicode arrays with a sorted copy for ``np.searchsorted``; ragged data
is CSR-style. See docs/ARCHITECTURE.md for the table of names.
"""

import numpy as np

CF = "cf"
CB = "cb"
KINDS = (CF, CB)

ID_NAMES = {
    CF: ("user_ids", "item_ids"),
    CB: ("item_ids",),
}

REQUIRED = {
    CF: frozenset(
        {
            "user_ids",
            "user_ids_sorted",
            "user_ids_order",
            "item_ids",
            "item_ids_sorted",
            "item_ids_order",
            "user_factors",
            "item_factors",
            "recs_indptr",
            "recs_indices",
            "recs_scores",
            "item_popularity",
        }
    ),
    CB: frozenset({"item_ids", "item_ids_sorted", "item_ids_order", "item_vectors"}),
}

OPTIONAL = {
    CF: frozenset({"interactions_indptr", "interactions_indices", "item_similarity", "user_factors_scale"}),
    CB: frozenset({"neighbor_indices", "neighbor_scores", "item_titles"}),
}


# How ``user_factors`` may be stored, chosen when a CF bundle is built. int8 holds
# ``round(x / s)`` per row with ``s = max|x| / 127`` in ``user_factors_scale`` (float32,
# one per row); item factors always stay float32, so scoring is one float32 product.
FLOAT32 = "float32"
FLOAT16 = "float16"
INT8 = "int8"
FACTORS_DTYPES = (FLOAT32, FLOAT16, INT8)
INT8_LEVELS = 127
# Rows quantised at a time: bounds the float32 copy a build makes to one chunk.
QUANTISE_CHUNK_ROWS = 1 << 16


def check_factors_dtype(factors_dtype):
    """Return ``factors_dtype`` if it is one of ``FACTORS_DTYPES``, else raise ``ValueError``."""
    if factors_dtype not in FACTORS_DTYPES:
        raise ValueError(f"factors dtype {factors_dtype!r} is not one of {', '.join(FACTORS_DTYPES)}")
    return factors_dtype


def quantise_rows(rows, factors_dtype):
    """Return ``(stored, scale)`` for a block of factor rows (float (m, f)).

    stored: ``factors_dtype`` (m, f); scale: float32 (m,) for int8, else None. A float16
    overflow (|x| > 65504) raises ``ValueError`` rather than storing infinities.
    """
    rows = np.asarray(rows, dtype=np.float32)
    if factors_dtype == FLOAT32:
        return np.ascontiguousarray(rows), None
    if factors_dtype == FLOAT16:
        with np.errstate(over="ignore"):  # overflow is reported below, naming the limit
            stored = rows.astype(np.float16)
        if not np.isfinite(stored).all() and np.isfinite(rows).all():
            raise ValueError("user factors exceed float16's range (65504); store them as float32 or int8")
        return stored, None
    check_factors_dtype(factors_dtype)
    scale = np.abs(rows).max(axis=1) / np.float32(INT8_LEVELS) if rows.shape[1] else np.zeros(len(rows))
    scale = scale.astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    stored = np.rint(rows / safe[:, None]).astype(np.int8)
    return stored, scale


def quantise_factors(factors, factors_dtype, *, chunk_rows=QUANTISE_CHUNK_ROWS):
    """Return ``(stored, scale)`` for a whole factor matrix, quantising ``chunk_rows`` rows at a time.

    factors: float (n, f), e.g. a memory-mapped float32 file larger than memory; only one
    chunk is ever copied as float32. stored: ``factors_dtype`` (n, f); scale: float32 (n,)
    for int8, else None. float32 input asked for as float32 is returned as is.
    """
    check_factors_dtype(factors_dtype)
    factors = np.asarray(factors)
    if factors.ndim != 2:
        raise ValueError(f"factors must be a (n, f) matrix, not shape {factors.shape}")
    if factors_dtype == FLOAT32:
        return np.ascontiguousarray(factors, dtype=np.float32), None
    n_rows = factors.shape[0]
    stored = np.empty(factors.shape, dtype=np.dtype(factors_dtype))
    scale = np.empty(n_rows, dtype=np.float32) if factors_dtype == INT8 else None
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        block, block_scale = quantise_rows(factors[start:stop], factors_dtype)
        stored[start:stop] = block
        if scale is not None:
            scale[start:stop] = block_scale
    return stored, scale


def factors_dtype_of(arrays):
    """Return how a CF array set stores ``user_factors``: "float32", "float16" or "int8"."""
    return str(arrays["user_factors"].dtype)


def storage_facts(kind, arrays):
    """Return what a bundle's metadata records about how its arrays are stored."""
    return {"factors_dtype": factors_dtype_of(arrays)} if kind == CF and "user_factors" in arrays else {}


def quantised_cf_arrays(arrays, factors_dtype):
    """Return a CF array set with ``user_factors`` stored as ``factors_dtype`` (others shared).

    Only float32 factors are re-stored; a set already stored another way is returned as is
    when ``factors_dtype`` matches, and refused otherwise.
    """
    check_factors_dtype(factors_dtype)
    current = factors_dtype_of(arrays)
    if current == factors_dtype:
        return dict(arrays)
    if current != FLOAT32:
        raise ValueError(
            f"user factors are already stored as {current}; they can only be re-stored from float32"
        )
    stored, scale = quantise_factors(arrays["user_factors"], factors_dtype)
    result = {name: array for name, array in arrays.items() if name != "user_factors_scale"}
    result["user_factors"] = stored
    if scale is not None:
        result["user_factors_scale"] = scale
    return result


def id_array(values):
    """Return ids as a fixed-width unicode array (shape (n,), dtype ``<U…``)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        array = values
    else:
        array = np.asarray([_id_text(value) for value in values], dtype=str)
    if array.size == 0:
        return np.empty(0, dtype="<U1")
    return array


def _id_text(value):
    """Spell an id as text; integral floats (12346.0 from a CSV) lose their ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def sorted_ids(ids):
    """Return ``(ids_sorted, order)`` with ``ids[order] == ids_sorted``; order is int64."""
    order = np.argsort(ids, kind="stable").astype(np.int64)
    return ids[order], order


def csr_from_rows(rows, columns, n_rows, *, values=None, sort_key=None):
    """Group ``(row, column[, value])`` triples into CSR arrays over ``n_rows`` rows.

    Within a row entries keep the order of ``sort_key`` ascending (or of ``columns`` when
    no key is given). Returns ``indptr`` (int64, n_rows + 1), ``indices`` (int32) and, when
    ``values`` is given, ``data`` (float32).
    """
    rows = np.asarray(rows, dtype=np.int64)
    columns = np.asarray(columns, dtype=np.int64)
    key = columns if sort_key is None else np.asarray(sort_key)
    order = None if _in_order(rows, key) else np.lexsort((key, rows))
    counts = np.bincount(rows, minlength=n_rows) if rows.size else np.zeros(n_rows, dtype=np.int64)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = (columns if order is None else columns[order]).astype(np.int32)
    if values is None:
        return indptr, indices, None
    values = np.asarray(values, dtype=np.float32)
    return indptr, indices, values if order is None else values[order]


_ORDER_CHUNK = 4_000_000


def _in_order(rows, key):
    """Return True when triples already come grouped by row with ``key`` ascending within each.

    Tables written row by row (the seed's recommendations, best first) need no sort: a check
    that reads both arrays once instead of a lexsort over hundreds of millions of entries.
    """
    # In chunks (overlapping by one entry), so the differences never take more memory than a
    # chunk's: at 100 M recommendations the whole-array temporaries would be gigabytes.
    for start in range(0, max(rows.shape[0] - 1, 0), _ORDER_CHUNK):
        stop = min(start + _ORDER_CHUNK + 1, rows.shape[0])
        step = np.diff(rows[start:stop])
        if (step < 0).any():
            return False
        if (np.diff(key[start:stop])[step == 0] < 0).any():
            return False
    return True


def cf_arrays(
    *,
    user_ids,
    item_ids,
    user_factors,
    item_factors,
    recs_indptr,
    recs_indices,
    recs_scores,
    item_popularity=None,
    interactions_indptr=None,
    interactions_indices=None,
    item_similarity=None,
    user_factors_scale=None,
):
    """Return the CF array set, adding sorted id copies and a popularity fallback.

    ``user_factors`` stored as float16, or int8 with ``user_factors_scale``, are kept so;
    anything else is stored as float32.
    """
    user_ids = id_array(user_ids)
    item_ids = id_array(item_ids)
    user_sorted, user_order = sorted_ids(user_ids)
    item_sorted, item_order = sorted_ids(item_ids)
    if item_popularity is None:
        if interactions_indices is not None:
            item_popularity = np.bincount(np.asarray(interactions_indices), minlength=len(item_ids))
        else:
            item_popularity = np.bincount(np.asarray(recs_indices), minlength=len(item_ids))
    arrays = {
        "user_ids": user_ids,
        "user_ids_sorted": user_sorted,
        "user_ids_order": user_order,
        "item_ids": item_ids,
        "item_ids_sorted": item_sorted,
        "item_ids_order": item_order,
        "user_factors": _stored_factors(user_factors, user_factors_scale),
        "item_factors": np.ascontiguousarray(item_factors, dtype=np.float32),
        "recs_indptr": np.asarray(recs_indptr, dtype=np.int64),
        "recs_indices": np.asarray(recs_indices, dtype=np.int32),
        "recs_scores": np.asarray(recs_scores, dtype=np.float32),
        "item_popularity": np.asarray(item_popularity, dtype=np.float32),
    }
    if interactions_indptr is not None:
        arrays["interactions_indptr"] = np.asarray(interactions_indptr, dtype=np.int64)
        arrays["interactions_indices"] = np.asarray(interactions_indices, dtype=np.int32)
    if item_similarity is not None:
        arrays["item_similarity"] = np.ascontiguousarray(item_similarity, dtype=np.float32)
    if user_factors_scale is not None:
        arrays["user_factors_scale"] = np.asarray(user_factors_scale, dtype=np.float32)
    return arrays


def _stored_factors(user_factors, scale):
    """Return user factors as stored: float16 as is, int8 as is when it has its scale, else float32."""
    user_factors = np.asarray(user_factors)
    if user_factors.dtype == np.float16 or (user_factors.dtype == np.int8 and scale is not None):
        return np.ascontiguousarray(user_factors)
    return np.ascontiguousarray(user_factors, dtype=np.float32)


def l2_normalise(vectors):
    """Return float32 rows scaled to unit length; all-zero rows stay zero."""
    vectors = np.array(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


def top_neighbors(similarity, k):
    """Return the ``k`` most similar other items per row: (indices int32, scores float32)."""
    similarity = np.array(similarity, dtype=np.float32)
    n = similarity.shape[0]
    k = min(k, max(n - 1, 0))
    if k == 0:
        return np.empty((n, 0), dtype=np.int32), np.empty((n, 0), dtype=np.float32)
    np.fill_diagonal(similarity, -np.inf)
    part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(similarity, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    indices = np.take_along_axis(part, order, axis=1).astype(np.int32)
    return indices, np.take_along_axis(part_scores, order, axis=1).astype(np.float32)


def cb_arrays(
    *, item_ids, item_vectors, item_titles=None, neighbor_indices=None, neighbor_scores=None, normalise=True
):
    """Return the CB array set; vectors are L2-normalised unless ``normalise`` is False."""
    item_ids = id_array(item_ids)
    item_sorted, item_order = sorted_ids(item_ids)
    vectors = l2_normalise(item_vectors) if normalise else np.ascontiguousarray(item_vectors, np.float32)
    arrays = {
        "item_ids": item_ids,
        "item_ids_sorted": item_sorted,
        "item_ids_order": item_order,
        "item_vectors": vectors,
    }
    if item_titles is not None:
        arrays["item_titles"] = id_array(item_titles)
    if neighbor_indices is not None:
        arrays["neighbor_indices"] = np.asarray(neighbor_indices, dtype=np.int32)
        arrays["neighbor_scores"] = np.asarray(neighbor_scores, dtype=np.float32)
    return arrays


def counts(kind, arrays):
    """Return the registry's counts for an array set."""
    if kind == CF:
        return {
            "n_users": int(arrays["user_ids"].shape[0]),
            "n_items": int(arrays["item_ids"].shape[0]),
            "n_recommendations": int(arrays["recs_indices"].shape[0]),
            "n_factors": int(arrays["user_factors"].shape[1]) if arrays["user_factors"].ndim == 2 else 0,
        }
    return {
        "n_users": 0,
        "n_items": int(arrays["item_ids"].shape[0]),
        "n_recommendations": int(arrays["neighbor_indices"].size) if "neighbor_indices" in arrays else 0,
        "n_factors": int(arrays["item_vectors"].shape[1]) if arrays["item_vectors"].ndim == 2 else 0,
    }
