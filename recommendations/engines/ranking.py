"""Top-k selection and argument checks shared by the engines."""

import operator

import numpy as np


def check_k(k):
    """Return ``k`` as an int, refusing anything but a positive integer."""
    try:
        k = operator.index(k)
    except TypeError:
        raise ValueError(f"k must be a positive integer, got {k!r}") from None
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return k


def as_id_list(ids):
    """Return ``ids`` as a list of item ids; a lone string counts as one id."""
    if isinstance(ids, str):
        return [ids]
    return list(ids)


def blocked_mask(n, *row_groups):
    """Return a bool (n,) mask that is True at every row in ``row_groups``.

    row_groups: int arrays of rows in ``[0, n)``; duplicates are fine.
    """
    blocked = np.zeros(n, dtype=bool)
    for rows in row_groups:
        if len(rows):
            blocked[rows] = True
    return blocked


def top_k(scores, k, blocked=None):
    """Return the rows of the ``k`` highest scores, best first.

    scores: float (n,), overwritten with -inf where ``blocked``; blocked:
    bool (n,) or None. Returns int64 (min(k, unblocked),). Ties are broken by
    the lower row first, so the answer is the prefix of
    ``np.lexsort((rows, -scores))`` over the unblocked rows.
    """
    n = scores.shape[0]
    available = n
    if blocked is not None:
        scores[blocked] = -np.inf
        available -= int(np.count_nonzero(blocked))
    k = min(k, available)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(scores, n - k)
        kth = scores[part[n - k]]
        top = part[n - k :]
        # argpartition picks an arbitrary subset of the rows tied at the k-th
        # score; keep the strictly better ones and take the ties by row.
        better = top[scores[top] > kth]
        tied = np.flatnonzero(scores == kth)[: k - better.shape[0]]
        top = np.concatenate((better, tied))
    else:
        top = np.arange(n)
    return top[np.lexsort((top, -scores[top]))].astype(np.int64, copy=False)
