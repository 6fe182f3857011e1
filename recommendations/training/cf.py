"""Collaborative filtering: implicit ALS on a users x items matrix, and its precomputed top-N."""

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse

from .exceptions import TrainingError
from .options import (
    DEFAULT_ALPHA,
    DEFAULT_FACTORS,
    DEFAULT_ITERATIONS,
    DEFAULT_REGULARIZATION,
    DEFAULT_TOP_N,
)

RECOMMEND_BATCH_USERS = 4096


@dataclass
class CFModel:
    """Trained factors: ``user_factors`` float32 (n_users, f), ``item_factors`` float32 (n_items, f)."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    params: dict = field(default_factory=dict)
    fit_seconds: float = 0.0
    als: object = None  # the implicit model, kept for its recommend() and evaluation

    def recommend(self, user_rows, user_items, *, n, filter_already_liked_items=True):
        """Return ``(item_rows int32 (len(user_rows), n), scores float32)`` with implicit's call shape."""
        return self.als.recommend(
            np.asarray(user_rows, dtype=np.int32),
            user_items,
            N=n,
            filter_already_liked_items=filter_already_liked_items,
        )


def train_als(
    user_items,
    *,
    factors=DEFAULT_FACTORS,
    iterations=DEFAULT_ITERATIONS,
    regularization=DEFAULT_REGULARIZATION,
    alpha=DEFAULT_ALPHA,
    random_state=0,
    num_threads=0,
    show_progress=False,
):
    """Fit implicit's CPU ALS on ``user_items`` (CSR float32 users x items of weights); return a ``CFModel``.

    Confidence is ``1 + alpha * weight`` (implicit 0.7's ``alpha``). BLAS is held to one
    thread during the fit: implicit parallelises itself and warns otherwise.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    user_items = _check_user_items(user_items)
    for name, value in (("factors", factors), ("iterations", iterations)):
        if int(value) < 1:
            raise TrainingError(f"{name}={value!r} must be at least 1.")
    for name, value in (("regularization", regularization), ("alpha", alpha)):
        if not float(value) > 0:
            raise TrainingError(f"{name}={value!r} must be positive.")

    started = time.perf_counter()
    # The constructor checks the BLAS thread count too, so it runs inside the limit.
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=int(factors),
            iterations=int(iterations),
            regularization=float(regularization),
            alpha=float(alpha),
            dtype=np.float32,
            random_state=random_state,
            num_threads=int(num_threads),
        )
        als.fit(user_items, show_progress=show_progress)
    fit_seconds = time.perf_counter() - started
    params = {
        "algorithm": "implicit.als",
        "factors": int(factors),
        "iterations": int(iterations),
        "regularization": float(regularization),
        "alpha": float(alpha),
        "random_state": random_state,
    }
    return CFModel(
        user_factors=np.ascontiguousarray(als.user_factors, dtype=np.float32),
        item_factors=np.ascontiguousarray(als.item_factors, dtype=np.float32),
        params=params,
        fit_seconds=fit_seconds,
        als=als,
    )


def recommend_all(model, user_items, *, top_n=DEFAULT_TOP_N, batch_users=RECOMMEND_BATCH_USERS):
    """Return the top-N unseen items of every user: ``(item_rows int32 (n_users, N), scores float32)``.

    N is ``min(top_n, n_items)``. Users with fewer than N unseen items get -1 rows and
    -inf scores in the tail.
    """
    user_items = _check_user_items(user_items)
    n_users, n_items = user_items.shape
    n = min(int(top_n), n_items)
    ids = np.empty((n_users, n), dtype=np.int32)
    scores = np.empty((n_users, n), dtype=np.float32)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        for start in range(0, n_users, batch_users):
            rows = np.arange(start, min(start + batch_users, n_users), dtype=np.int32)
            batch_ids, batch_scores = model.recommend(rows, user_items[rows], n=n)
            ids[rows] = batch_ids
            scores[rows] = batch_scores
    padded = unranked(scores)
    ids[padded] = -1
    scores[padded] = -np.inf
    return ids, scores


def unranked(scores):
    """Return True where implicit's top-k had nothing left to rank (filtered items score -FLT_MAX)."""
    return ~(np.asarray(scores) > np.finfo(np.float32).min)


def recommendations_frame(user_ids, item_ids, item_rows, scores):
    """Return the top-N as a DataFrame customer_id, item_id, score (float32), rank (int32, 1 = best).

    ``item_rows``/``scores`` are (n_users, N) as from ``recommend_all``; -1 rows are left out.
    """
    item_rows = np.asarray(item_rows)
    valid = item_rows >= 0
    users, ranks = np.nonzero(valid)
    return pd.DataFrame(
        {
            "customer_id": np.asarray(user_ids)[users],
            "item_id": np.asarray(item_ids)[item_rows[valid]],
            "score": np.asarray(scores, dtype=np.float32)[valid],
            "rank": (ranks + 1).astype(np.int32),
        }
    )


def item_popularity(user_items):
    """Return the number of customers who have each item: float32 (n_items,)."""
    user_items = scipy.sparse.csr_matrix(user_items)
    return np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(np.float32)


def popularity_recommendations(popularity, user_items, *, top_n):
    """Return the most popular items each user does not have yet: ``(item_rows int32 (n_users, N), scores)``.

    The baseline CF has to beat; ties go to the lower item row.
    """
    user_items = _check_user_items(user_items)
    popularity = np.asarray(popularity, dtype=np.float32)
    n_users, n_items = user_items.shape
    n = min(int(top_n), n_items)
    # Nobody owns more than max_owned items, so the first n + max_owned by popularity suffice.
    max_owned = int(np.diff(user_items.indptr).max(initial=0))
    candidates = np.argsort(-popularity, kind="stable")[: n + max_owned].astype(np.int32)
    rank_of = np.full(n_items, -1, dtype=np.int64)
    rank_of[candidates] = np.arange(len(candidates))
    owned = np.zeros((n_users, len(candidates)), dtype=bool)
    owned_users = np.repeat(np.arange(n_users), np.diff(user_items.indptr))
    owned_ranks = rank_of[user_items.indices]
    hit = owned_ranks >= 0
    owned[owned_users[hit], owned_ranks[hit]] = True
    # Stable sort of "owned" (False first) keeps popularity order among the unowned.
    order = np.argsort(owned, axis=1, kind="stable")[:, :n]
    ids = candidates[order]
    ids[np.take_along_axis(owned, order, axis=1)] = -1
    scores = np.where(ids >= 0, popularity[np.maximum(ids, 0)], -np.inf).astype(np.float32)
    return ids, scores


def _check_user_items(user_items):
    if not scipy.sparse.issparse(user_items):
        raise TrainingError(f"user_items must be a scipy sparse matrix, got {type(user_items).__name__}.")
    user_items = scipy.sparse.csr_matrix(user_items, dtype=np.float32)
    if user_items.nnz == 0:
        raise TrainingError("user_items has no interactions to train on.")
    return user_items
