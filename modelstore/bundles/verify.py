"""Deep verification of a bundle: structure, dtypes, shapes, ids, values, content hash."""

from typing import NoReturn

import numpy as np

from .exceptions import CorruptBundle
from .format import Bundle, content_hash
from .layout import CB, CF, FACTORS_DTYPES, INT8, OPTIONAL, REQUIRED, counts, factors_dtype_of
from .types import ArraySet

# Rows checked at a time for NaN and infinities: a check never allocates a mask the size of
# a matrix larger than memory.
FINITE_CHECK_ROWS = 1 << 16


def _fail(message: str) -> NoReturn:
    raise CorruptBundle(message)


def _check_ids(arrays: ArraySet, prefix: str, label: str) -> None:
    ids, ids_sorted, order = (
        arrays[f"{prefix}_ids"],
        arrays[f"{prefix}_ids_sorted"],
        arrays[f"{prefix}_ids_order"],
    )
    for name in (f"{prefix}_ids", f"{prefix}_ids_sorted"):
        if arrays[name].dtype.kind != "U" or arrays[name].ndim != 1:
            _fail(f"{name} must be a 1-d unicode array, not {arrays[name].dtype} {arrays[name].shape}")
    if order.dtype.kind not in "iu" or order.shape != ids.shape or ids_sorted.shape != ids.shape:
        _fail(f"{prefix}_ids_order and {prefix}_ids_sorted must have the shape of {prefix}_ids {ids.shape}")
    if ids.size and (order.min() < 0 or order.max() >= ids.size):
        _fail(f"{prefix}_ids_order points outside {prefix}_ids")
    if not np.array_equal(ids[order], ids_sorted):
        _fail(f"{prefix}_ids_sorted is not {prefix}_ids in sorted order")
    if ids.size > 1:
        duplicate = ids_sorted[1:] == ids_sorted[:-1]
        if duplicate.any():
            example = ids_sorted[1:][duplicate][0]
            _fail(f"{label} ids are not unique: {int(duplicate.sum())} repeated, e.g. {str(example)!r}")
    if ids.size and (ids == "").any():
        _fail(f"{label} ids contain an empty id")


def _all_finite(array: np.ndarray) -> bool:
    """Return True if a float array has no NaN or infinity, reading it a block of rows at a time."""
    return all(
        np.isfinite(array[start : start + FINITE_CHECK_ROWS]).all()
        for start in range(0, array.shape[0], FINITE_CHECK_ROWS)
    )


def _check_matrix(arrays: ArraySet, name: str, rows: int, label: str) -> None:
    matrix = arrays[name]
    if matrix.dtype != np.float32 or matrix.ndim != 2:
        _fail(f"{name} must be a float32 matrix, not {matrix.dtype} with {matrix.ndim} dimensions")
    if matrix.shape[0] != rows:
        _fail(f"{name} has {matrix.shape[0]} rows but there are {rows} {label}")
    if not _all_finite(matrix):
        _fail(f"{name} holds NaN or infinite values")


def _check_user_factors(arrays: ArraySet, n_users: int) -> None:
    """Check ``user_factors`` as stored: float32, float16, or int8 with one finite scale per row."""
    factors = arrays["user_factors"]
    stored = factors_dtype_of(arrays)
    if stored not in FACTORS_DTYPES or factors.ndim != 2:
        _fail(
            f"user_factors must be a {', '.join(FACTORS_DTYPES)} matrix, "
            f"not {factors.dtype} with {factors.ndim} dimensions"
        )
    if factors.shape[0] != n_users:
        _fail(f"user_factors has {factors.shape[0]} rows but there are {n_users} customers")
    scale = arrays.get("user_factors_scale")
    if stored != INT8:
        if scale is not None:
            _fail(f"user_factors_scale belongs to int8 user_factors, not {stored}")
        if not _all_finite(factors):
            _fail("user_factors holds NaN or infinite values")
        return
    if scale is None:
        _fail("int8 user_factors need user_factors_scale (one float32 scale per customer)")
    if scale.dtype != np.float32 or scale.shape != (n_users,):
        _fail(f"user_factors_scale must be float32 of shape ({n_users},), not {scale.dtype} {scale.shape}")
    if not _all_finite(scale) or (scale < 0).any():
        _fail("user_factors_scale holds NaN, infinite or negative values")


def _check_csr(arrays: ArraySet, prefix: str, n_rows: int, n_columns: int, has_scores: bool) -> None:
    indptr, indices = arrays[f"{prefix}_indptr"], arrays[f"{prefix}_indices"]
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        _fail(f"{prefix}_indptr and {prefix}_indices must be integer arrays")
    if indptr.shape != (n_rows + 1,):
        _fail(f"{prefix}_indptr has shape {indptr.shape}, expected ({n_rows + 1},)")
    if indptr[0] != 0 or indptr[-1] != indices.shape[0] or (np.diff(indptr) < 0).any():
        _fail(f"{prefix}_indptr is not a valid CSR index pointer for {indices.shape[0]} entries")
    if indices.size and (indices.min() < 0 or indices.max() >= n_columns):
        _fail(f"{prefix}_indices names items outside the {n_columns} known items")
    if has_scores:
        scores = arrays[f"{prefix}_scores"]
        if scores.shape != indices.shape or scores.dtype.kind != "f":
            _fail(f"{prefix}_scores must be a float array shaped like {prefix}_indices")
        if not np.isfinite(scores).all():
            _fail(f"{prefix}_scores holds NaN or infinite values")


def verify_arrays(kind: str, arrays: ArraySet) -> dict[str, int]:
    """Raise ``CorruptBundle`` naming the first problem; return the counts when all is well."""
    missing = REQUIRED[kind] - set(arrays)
    if missing:
        _fail(f"{kind} bundle lacks arrays: {', '.join(sorted(missing))}")
    unknown = set(arrays) - REQUIRED[kind] - OPTIONAL[kind]
    if unknown:
        _fail(f"{kind} bundle has unknown arrays: {', '.join(sorted(unknown))}")
    n_items = arrays["item_ids"].shape[0]
    _check_ids(arrays, "item", "item")
    if kind == CF:
        n_users = arrays["user_ids"].shape[0]
        _check_ids(arrays, "user", "customer")
        _check_user_factors(arrays, n_users)
        _check_matrix(arrays, "item_factors", n_items, "items")
        if arrays["user_factors"].shape[1] != arrays["item_factors"].shape[1]:
            _fail(
                f"user_factors has {arrays['user_factors'].shape[1]} factors but item_factors has "
                f"{arrays['item_factors'].shape[1]}"
            )
        _check_csr(arrays, "recs", n_users, n_items, has_scores=True)
        if ("interactions_indptr" in arrays) != ("interactions_indices" in arrays):
            _fail("interactions_indptr and interactions_indices come together")
        if "interactions_indptr" in arrays:
            _check_csr(arrays, "interactions", n_users, n_items, has_scores=False)
        popularity = arrays["item_popularity"]
        if popularity.shape != (n_items,) or not np.isfinite(popularity).all():
            _fail(f"item_popularity must be {n_items} finite numbers")
        if "item_similarity" in arrays:
            _check_matrix(arrays, "item_similarity", n_items, "items")
            if arrays["item_similarity"].shape[1] != n_items:
                _fail("item_similarity must be items × items")
    elif kind == CB:
        _check_matrix(arrays, "item_vectors", n_items, "items")
        norms = np.linalg.norm(arrays["item_vectors"], axis=1)
        if not (np.isclose(norms, 1.0, atol=1e-3) | (norms == 0)).all():
            _fail("item_vectors rows are not L2-normalised")
        if ("neighbor_indices" in arrays) != ("neighbor_scores" in arrays):
            _fail("neighbor_indices and neighbor_scores come together")
        if "neighbor_indices" in arrays:
            indices = arrays["neighbor_indices"]
            if (
                indices.ndim != 2
                or indices.shape[0] != n_items
                or arrays["neighbor_scores"].shape != indices.shape
            ):
                _fail("neighbor_indices and neighbor_scores must both be items × k")
            if indices.size and (indices.min() < 0 or indices.max() >= n_items):
                _fail("neighbor_indices names items outside the known items")
        if "item_titles" in arrays and arrays["item_titles"].shape != (n_items,):
            _fail(f"item_titles must hold one title per item ({n_items})")
    return counts(kind, arrays)


def verify_bundle(bundle: Bundle) -> dict[str, int]:
    """Verify an opened bundle deeply, including the content hash its metadata records."""
    result = verify_arrays(bundle.kind, bundle.arrays)
    claimed = bundle.metadata.get("factors_dtype")
    if bundle.kind == CF and claimed is not None and claimed != factors_dtype_of(bundle.arrays):
        _fail(
            f"metadata says the user factors are {claimed!r}, but they are {factors_dtype_of(bundle.arrays)}"
        )
    recorded = bundle.metadata.get("content_sha256")
    if not recorded:
        _fail("bundle metadata has no content_sha256")
    actual = content_hash(bundle.arrays)
    if actual != recorded:
        _fail(
            f"array contents hash to {actual[:12]}… but the metadata records {recorded[:12]}…: "
            "the bundle was re-packed with other data"
        )
    return result
