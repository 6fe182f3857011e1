"""Offline ranking metrics, numpy only.

Inputs, for n customers:

``recommended``
    int array (n, >= k) of item rows, best first, padded with -1 (or a sequence of
    sequences, padded here). Only the first k columns count; a list is assumed to hold
    no item twice.
``relevant``
    the held-out items of each customer: anything with CSR ``indptr``/``indices``
    (n rows, e.g. a scipy CSR matrix), or a sequence of n iterables of item rows.

Averages are over customers with at least one relevant item (as in implicit and
Microsoft Recommenders); a customer with relevant items and no recommendations counts
as zero. Definitions (binary relevance, ``hits`` = relevant items in the top k):

- ``precision@k`` = hits / k.
- ``recall@k`` = hits / min(k, |relevant|): recall capped at what k slots can hold, so
  a perfect list scores 1 (the denominator implicit uses).
- ``pooled_recall@k`` = sum(hits) / sum(min(k, |relevant|)) over customers: exactly what
  ``implicit.evaluation.precision_at_k`` reports under the name "precision".
- ``ndcg@k`` = DCG / ideal DCG, gains 1 / log2(rank + 1), the ideal putting
  min(k, |relevant|) hits first (implicit's ``ndcg_at_k``).
- ``map@k`` = mean over customers of sum(precision at each hit) / min(k, |relevant|)
  (implicit's ``mean_average_precision_at_k``).
- ``coverage@k`` = distinct items in any top k / catalogue size.
- ``fallback_share`` = share of evaluated customers answered by the fallback.
"""

import numpy as np


def ranking_metrics(recommended, relevant, k, *, n_items=None, fallback=None):
    """Return a dict of every metric at ``k`` plus ``k`` and ``users`` (customers evaluated).

    ``n_items`` (catalogue size) adds ``coverage``; ``fallback`` (bool (n,)) adds
    ``fallback_share``.
    """
    hits, n_relevant = hit_matrix(recommended, relevant, k)
    result = {
        "k": int(k),
        "users": int(np.count_nonzero(n_relevant)),
        "precision": _precision(hits, n_relevant, k),
        "recall": _recall(hits, n_relevant, k),
        "pooled_recall": _pooled_recall(hits, n_relevant, k),
        "ndcg": _ndcg(hits, n_relevant, k),
        "map": _map(hits, n_relevant, k),
    }
    if n_items is not None:
        result["coverage"] = catalogue_coverage(recommended, n_items, k=k)
    if fallback is not None:
        result["fallback_share"] = fallback_share(fallback, n_relevant > 0)
    return result


def precision_at_k(recommended, relevant, k):
    """Return the mean of hits / k."""
    return _precision(*hit_matrix(recommended, relevant, k), k)


def recall_at_k(recommended, relevant, k):
    """Return the mean of hits / min(k, |relevant|)."""
    return _recall(*hit_matrix(recommended, relevant, k), k)


def pooled_recall_at_k(recommended, relevant, k):
    """Return sum(hits) / sum(min(k, |relevant|)): implicit's ``precision_at_k``."""
    return _pooled_recall(*hit_matrix(recommended, relevant, k), k)


def ndcg_at_k(recommended, relevant, k):
    """Return the mean NDCG@k with binary relevance."""
    return _ndcg(*hit_matrix(recommended, relevant, k), k)


def map_at_k(recommended, relevant, k):
    """Return the mean average precision at k, normalised by min(k, |relevant|)."""
    return _map(*hit_matrix(recommended, relevant, k), k)


def catalogue_coverage(recommended, n_items, *, k=None):
    """Return the share of the ``n_items`` catalogue that appears in any customer's top k."""
    if n_items <= 0:
        raise ValueError(f"n_items={n_items!r} must be positive.")
    top = _as_matrix(recommended, k)
    return float(len(np.unique(top[top >= 0])) / n_items)


def fallback_share(fallback, evaluated=None):
    """Return the share of customers (of ``evaluated`` when given) whose list came from the fallback."""
    fallback = np.asarray(fallback, dtype=bool)
    if evaluated is not None:
        fallback = fallback[np.asarray(evaluated, dtype=bool)]
    return float(fallback.mean()) if len(fallback) else 0.0


def hit_matrix(recommended, relevant, k):
    """Return ``(hits bool (n, k), n_relevant int64 (n,))`` for n customers."""
    if int(k) < 1:
        raise ValueError(f"k={k!r} must be at least 1.")
    top = _as_matrix(recommended, k)
    indptr, indices = _as_csr(relevant)
    n_users = len(indptr) - 1
    if top.shape[0] != n_users:
        raise ValueError(f"recommended has {top.shape[0]} rows but relevant has {n_users}.")
    n_relevant = np.diff(indptr).astype(np.int64)
    width = int(max(top.max(initial=-1), indices.max(initial=-1))) + 1
    relevant_codes = np.repeat(np.arange(n_users, dtype=np.int64), n_relevant) * width + indices
    recommended_codes = np.arange(n_users, dtype=np.int64)[:, None] * width + top
    hits = (top >= 0) & np.isin(recommended_codes, relevant_codes)
    return hits, n_relevant


def _precision(hits, n_relevant, k):
    evaluated = n_relevant > 0
    return _mean(hits[evaluated].sum(axis=1) / k)


def _recall(hits, n_relevant, k):
    evaluated = n_relevant > 0
    return _mean(hits[evaluated].sum(axis=1) / np.minimum(k, n_relevant[evaluated]))


def _pooled_recall(hits, n_relevant, k):
    evaluated = n_relevant > 0
    denominator = np.minimum(k, n_relevant[evaluated]).sum()
    return float(hits[evaluated].sum() / denominator) if denominator else 0.0


def _ndcg(hits, n_relevant, k):
    evaluated = n_relevant > 0
    gains = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(gains)[np.minimum(k, n_relevant[evaluated]) - 1]
    return _mean((hits[evaluated] * gains[: hits.shape[1]]).sum(axis=1) / ideal)


def _map(hits, n_relevant, k):
    evaluated = n_relevant > 0
    hits = hits[evaluated]
    precision_at_hit = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1) * hits
    return _mean(precision_at_hit.sum(axis=1) / np.minimum(k, n_relevant[evaluated]))


def _mean(values):
    return float(np.mean(values)) if len(values) else 0.0


def _as_matrix(recommended, k):
    """Return the first k columns as an int64 matrix, padding short lists with -1."""
    if isinstance(recommended, np.ndarray) and recommended.ndim == 2:
        top = recommended[:, :k] if k is not None else recommended
        return top.astype(np.int64, copy=False)
    rows = [np.asarray(r, dtype=np.int64).ravel() for r in recommended]
    width = k if k is not None else max((len(r) for r in rows), default=0)
    top = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        r = r[:width]
        top[i, : len(r)] = r
    return top


def _as_csr(relevant):
    """Return ``(indptr, indices)`` int64 for CSR-like input or a sequence of iterables."""
    if hasattr(relevant, "indptr") and hasattr(relevant, "indices"):
        return np.asarray(relevant.indptr, dtype=np.int64), np.asarray(relevant.indices, dtype=np.int64)
    sets = [np.unique(np.asarray(list(r), dtype=np.int64)) for r in relevant]
    indptr = np.zeros(len(sets) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in sets], out=indptr[1:])
    indices = np.concatenate(sets) if sets else np.empty(0, dtype=np.int64)
    return indptr, indices
