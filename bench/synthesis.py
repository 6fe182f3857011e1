"""Synthetic CF and CB array sets at a chosen scale: random but valid, built with numpy in seconds."""

import numpy as np

SEED_USERS, SEED_ITEMS, SEED_FACTORS = 552_782, 7_214, 64
RECS_PER_USER, INTERACTIONS_PER_USER, NEIGHBORS = 10, 8, 50


def spread_rows(rng, n_rows, per_row, n_items, stride):
    """Return int32 (n_rows, per_row): distinct item rows per row (a random start, a fixed stride)."""
    start = rng.integers(0, n_items, size=(n_rows, 1), dtype=np.int64)
    return ((start + np.arange(per_row) * stride) % n_items).astype(np.int32)


def synth_cf(n_users, n_items, n_factors, seed):
    """Return a CF array set at the given scale, quickly (no training, random but valid)."""
    from modelstore.bundles.layout import cf_arrays

    rng = np.random.default_rng(seed)
    user_ids = np.char.add("C", np.char.zfill(np.arange(n_users).astype("U7"), 7))
    item_ids = np.char.add("I", np.char.zfill(np.arange(n_items).astype("U5"), 5))
    user_factors = rng.standard_normal((n_users, n_factors), dtype=np.float32) * np.float32(0.3)
    item_factors = rng.standard_normal((n_items, n_factors), dtype=np.float32) * np.float32(0.3)
    recs = spread_rows(rng, n_users, RECS_PER_USER, n_items, 97)
    scores = -np.sort(-rng.random((n_users, RECS_PER_USER), dtype=np.float32), axis=1)
    had = np.sort(spread_rows(rng, n_users, INTERACTIONS_PER_USER, n_items, 131), axis=1)
    return cf_arrays(
        user_ids=user_ids,
        item_ids=item_ids,
        user_factors=user_factors,
        item_factors=item_factors,
        recs_indptr=np.arange(0, n_users * RECS_PER_USER + 1, RECS_PER_USER, dtype=np.int64),
        recs_indices=recs.reshape(-1),
        recs_scores=scores.reshape(-1),
        interactions_indptr=np.arange(0, n_users * INTERACTIONS_PER_USER + 1, INTERACTIONS_PER_USER),
        interactions_indices=had.reshape(-1),
    )


def synth_cb(item_ids, dims, seed):
    """Return a CB array set over ``item_ids`` with precomputed neighbours and titles."""
    from modelstore.bundles.layout import cb_arrays, l2_normalise, top_neighbors

    rng = np.random.default_rng(seed)
    vectors = l2_normalise(rng.standard_normal((item_ids.shape[0], dims), dtype=np.float32))
    indices, scores = top_neighbors(vectors @ vectors.T, NEIGHBORS)
    titles = np.char.add("PRODUCT ", np.arange(item_ids.shape[0]).astype("U5"))
    return cb_arrays(
        item_ids=item_ids,
        item_vectors=vectors,
        item_titles=titles,
        neighbor_indices=indices,
        neighbor_scores=scores,
        normalise=False,
    )
