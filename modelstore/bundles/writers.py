"""Write CF and CB bundles from plain numpy arrays: the public way to bring a model trained elsewhere.

    from modelstore.bundles import write_cf_bundle, write_cb_bundle

Both check the arrays as the registry will (ids unique, shapes agree, factors finite)
before anything is written, and write atomically. No Django is needed.
"""

from typing import Any

import numpy as np

from .artifacts import read_cb_artifacts, read_cf_artifacts
from .exceptions import CorruptBundle
from .format import WrittenBundle, write_bundle
from .layout import (
    CB,
    CF,
    FLOAT32,
    KINDS,
    cb_arrays,
    cf_arrays,
    check_factors_dtype,
    csr_from_rows,
    quantise_factors,
    quantised_cf_arrays,
    top_neighbors,
)
from .types import ArrayInput, Metadata, PathLike
from .verify import verify_arrays

DEFAULT_TOP_N = 100
SCORING_BATCH_USERS = 2048


def write_cf_bundle(
    path: PathLike,
    *,
    user_ids: ArrayInput,
    item_ids: ArrayInput,
    user_factors: ArrayInput,
    item_factors: ArrayInput,
    interactions: Any = None,
    recommendations: tuple[ArrayInput, ArrayInput] | None = None,
    top_n: int = DEFAULT_TOP_N,
    item_popularity: ArrayInput | None = None,
    item_similarity: ArrayInput | None = None,
    metadata: Metadata | None = None,
    compress: str | None = None,
    factors_dtype: str = FLOAT32,
) -> WrittenBundle:
    """Write a CF bundle to ``path`` and return the ``WrittenBundle`` (path, sha256, size, metadata).

    - ``user_ids``: (n_users,) customer ids, any type spelled as text; row order of ``user_factors``.
    - ``item_ids``: (n_items,) item ids; row order of ``item_factors``.
    - ``user_factors``: float (n_users, f); ``item_factors``: float (n_items, f); stored as float32.
    - ``interactions``: optional (n_users, n_items) scipy sparse matrix (or anything with
      ``indptr`` and ``indices``, CSR order) of what each customer already has: those items
      are left out of their recommendations, and their counts give the popularity fallback.
    - ``recommendations``: optional ``(item_rows, scores)``, int (n_users, k) and float
      (n_users, k), best first; a row index of -1 ends a customer's list early. Without
      it the best ``top_n`` per customer are computed as ``user_factors @ item_factors.T``.
    - ``item_popularity``: optional float (n_items,), the cold-start ranking; default: the
      interaction counts (or how often an item is recommended).
    - ``item_similarity``: optional float (n_items, n_items).
    - ``metadata``: a JSON-able dict stored in the bundle (e.g. training parameters).
    - ``compress``: None (memory-mapped, the default) or ``"zlib"``, ``"gzip"``, ``"lz4"``,
      ``"xz"``, optionally with a level (``"lz4:3"``).
    - ``factors_dtype``: how ``user_factors`` are stored: ``"float32"`` (the default),
      ``"float16"`` (half the size) or ``"int8"`` (a quarter, plus one float32 scale per
      customer: ``round(x / s)`` with ``s = max|x| / 127`` per row). Item factors stay
      float32; precomputed recommendations are ranked from the float32 factors given here.
    """
    check_factors_dtype(factors_dtype)
    user_factors = np.asarray(user_factors, dtype=np.float32)
    item_factors = np.asarray(item_factors, dtype=np.float32)
    _check_factors(user_factors, item_factors)
    seen_indptr = seen_indices = None
    if interactions is not None:
        seen_indptr, seen_indices = _interactions_csr(
            interactions, user_factors.shape[0], item_factors.shape[0]
        )
    if recommendations is None:
        item_rows, scores = _top_n(user_factors, item_factors, top_n, seen_indptr, seen_indices)
    else:
        item_rows, scores = (np.asarray(part) for part in recommendations)
        if item_rows.shape != scores.shape or item_rows.ndim != 2:
            raise ValueError(
                f"recommendations must be two (n_users, k) arrays of the same shape, "
                f"not {item_rows.shape} and {scores.shape}"
            )
    recs_indptr, recs_indices, recs_scores = _csr_from_top(item_rows, scores)
    if seen_indptr is not None and seen_indices is not None:
        seen_indices = _sorted_within_rows(seen_indptr, seen_indices)
    stored_factors, factors_scale = quantise_factors(user_factors, factors_dtype)
    arrays = cf_arrays(
        user_ids=user_ids,
        item_ids=item_ids,
        user_factors=stored_factors,
        user_factors_scale=factors_scale,
        item_factors=item_factors,
        recs_indptr=recs_indptr,
        recs_indices=recs_indices,
        recs_scores=recs_scores,
        item_popularity=item_popularity,
        interactions_indptr=seen_indptr,
        interactions_indices=seen_indices,
        item_similarity=item_similarity,
    )
    verify_arrays(CF, arrays)
    return write_bundle(path, kind=CF, arrays=arrays, metadata=metadata, compress=compress)


def write_cb_bundle(
    path: PathLike,
    *,
    item_ids: ArrayInput,
    item_vectors: ArrayInput,
    item_titles: ArrayInput | None = None,
    top_k: int | None = None,
    metadata: Metadata | None = None,
    compress: str | None = None,
) -> WrittenBundle:
    """Write a CB bundle to ``path`` and return the ``WrittenBundle`` (path, sha256, size, metadata).

    - ``item_ids``: (n_items,) item ids, any type spelled as text; row order of ``item_vectors``.
    - ``item_vectors``: float (n_items, d) embeddings or TF-IDF rows (dense); stored as
      float32 and L2-normalised, so a dot product is the cosine similarity.
    - ``item_titles``: optional (n_items,) text shown beside item ids in answers.
    - ``top_k``: optional: precompute each item's ``top_k`` nearest other items (this builds
      the n_items × n_items similarity matrix once, so keep it for up to some ten thousand items).
    - ``metadata``, ``compress``: as for ``write_cf_bundle``.
    """
    item_vectors = np.asarray(item_vectors, dtype=np.float32)
    if item_vectors.ndim != 2:
        raise ValueError(f"item_vectors must be a (n_items, d) matrix, not shape {item_vectors.shape}")
    arrays = cb_arrays(item_ids=item_ids, item_vectors=item_vectors, item_titles=item_titles)
    if top_k:
        vectors = arrays["item_vectors"]
        indices, scores = top_neighbors(vectors @ vectors.T, int(top_k))
        arrays["neighbor_indices"], arrays["neighbor_scores"] = indices, scores
    verify_arrays(CB, arrays)
    return write_bundle(path, kind=CB, arrays=arrays, metadata=metadata, compress=compress)


def write_artifacts_bundle(
    path: PathLike,
    *,
    kind: str,
    artifacts_path: PathLike,
    compress: str | None = None,
    factors_dtype: str = FLOAT32,
) -> WrittenBundle:
    """Write the bundle of a seed-layout CF or CB artifacts folder to ``path``; return the ``WrittenBundle``.

    ``factors_dtype`` stores a CF bundle's user factors as for ``write_cf_bundle``; a CB
    bundle has none and ignores it.
    """
    check_factors_dtype(factors_dtype)
    reader = {CF: read_cf_artifacts, CB: read_cb_artifacts}.get(kind)
    if reader is None:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    arrays, metadata = reader(artifacts_path)
    if kind == CF:
        arrays = quantised_cf_arrays(arrays, factors_dtype)
    verify_arrays(kind, arrays)
    metadata = {key: value for key, value in metadata.items() if key not in ("counts", "content_sha256")}
    return write_bundle(path, kind=kind, arrays=arrays, metadata=metadata, compress=compress)


def _check_factors(user_factors: np.ndarray, item_factors: np.ndarray) -> None:
    """Refuse factor matrices that cannot be scored together, before any scoring."""
    for name, matrix in (("user_factors", user_factors), ("item_factors", item_factors)):
        if matrix.ndim != 2:
            raise CorruptBundle(f"{name} must be a (rows, factors) matrix, not shape {matrix.shape}")
    if user_factors.shape[1] != item_factors.shape[1]:
        raise CorruptBundle(
            f"user_factors has {user_factors.shape[1]} factors but item_factors has {item_factors.shape[1]}"
        )


def _interactions_csr(interactions: Any, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(indptr, indices)`` of a customers × items CSR matrix, or refuse it."""
    if not (hasattr(interactions, "indptr") and hasattr(interactions, "indices")):
        raise CorruptBundle(
            f"interactions must be a scipy sparse matrix (customers × items, CSR), not "
            f"{type(interactions).__module__}.{type(interactions).__qualname__}: pass "
            f"scipy.sparse.csr_matrix(your_array)"
        )
    shape = getattr(interactions, "shape", None)
    if shape is not None and tuple(shape) != (n_users, n_items):
        raise CorruptBundle(f"interactions are {shape[0]} × {shape[1]}, expected {n_users} × {n_items}")
    indptr = np.asarray(interactions.indptr, dtype=np.int64)
    indices = np.asarray(interactions.indices, dtype=np.int32)
    if indptr.shape[0] != n_users + 1:
        raise CorruptBundle(f"interactions has {indptr.shape[0] - 1} rows; user_factors has {n_users}")
    if indices.size and (indices.min() < 0 or indices.max() >= n_items):
        raise CorruptBundle(f"interactions name item columns outside 0..{n_items - 1}")
    return indptr, indices


def _top_n(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    n: int,
    seen_indptr: np.ndarray | None,
    seen_indices: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the best ``n`` item rows per user and their scores, leaving out what each user has."""
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    n = max(0, min(int(n), n_items))
    rows = np.full((n_users, n), -1, dtype=np.int64)
    scores = np.zeros((n_users, n), dtype=np.float32)
    if n == 0 or n_users == 0:
        return rows, scores
    for start in range(0, n_users, SCORING_BATCH_USERS):
        stop = min(start + SCORING_BATCH_USERS, n_users)
        batch = user_factors[start:stop] @ item_factors.T
        if seen_indptr is not None and seen_indices is not None:
            for offset, user in enumerate(range(start, stop)):
                batch[offset, seen_indices[seen_indptr[user] : seen_indptr[user + 1]]] = -np.inf
        best = np.argpartition(-batch, n - 1, axis=1)[:, :n]
        best_scores = np.take_along_axis(batch, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        rows[start:stop] = np.take_along_axis(best, order, axis=1)
        scores[start:stop] = np.take_along_axis(best_scores, order, axis=1)
    rows[~np.isfinite(scores)] = -1  # fewer unseen items than n
    return rows, scores


def _csr_from_top(item_rows: ArrayInput, scores: ArrayInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn (n_users, k) best-first lists, padded with -1, into CSR arrays over users."""
    item_rows = np.asarray(item_rows, dtype=np.int64)
    keep = item_rows >= 0
    users = np.nonzero(keep)[0]
    rank = np.nonzero(keep)[1]
    return csr_from_rows(
        users, item_rows[keep], item_rows.shape[0], values=np.asarray(scores)[keep], sort_key=rank
    )


def _sorted_within_rows(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Return ``indices`` sorted within each CSR row (the bundle's rule for interactions)."""
    rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    return indices[np.lexsort((indices, rows))]
