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


# Above this many scores, a strided sample of every SAMPLE_STEP-th score first finds a value the
# top k must reach, and only the rows at or above it are ranked: at 100,000 items that is a few
# hundred rows instead of a partition of all of them (measured ~10× faster, bench/parts/requests.py).
SAMPLED_ABOVE = 4096
SAMPLE_STEP = 32


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
    rows = _rows_reaching_sample(scores, k) if n > SAMPLED_ABOVE else None
    if rows is None:
        rows = _rows_by_partition(scores, k)
    return rows[np.lexsort((rows, -scores[rows]))][:k].astype(np.int64, copy=False)


def _rows_reaching_sample(scores, k):
    """Return the rows scoring at least the k-th best of a strided sample, or None when that is no help.

    At least k rows reach that value (the sampled ones do), so the k-th best score does too, and
    every row of the answer, ties included, is among those returned.
    """
    sample = scores[::SAMPLE_STEP]
    if sample.shape[0] < k:
        return None
    threshold = np.partition(sample, sample.shape[0] - k)[sample.shape[0] - k]
    if not threshold > -np.inf:  # blocked rows in the sample, or NaN: no cheap cut
        return None
    rows = np.flatnonzero(scores >= threshold)
    return rows if rows.shape[0] <= scores.shape[0] // 8 else None


def _rows_by_partition(scores, k):
    """Return exactly the k rows of the answer, unordered: a partition of every score."""
    n = scores.shape[0]
    if k >= n:
        return np.arange(n)
    part = np.argpartition(scores, n - k)
    kth = scores[part[n - k]]
    top = part[n - k :]
    # argpartition picks an arbitrary subset of the rows tied at the k-th
    # score; keep the strictly better ones and take the ties by row.
    better = top[scores[top] > kth]
    tied = np.flatnonzero(scores == kth)[: k - better.shape[0]]
    return np.concatenate((better, tied))
