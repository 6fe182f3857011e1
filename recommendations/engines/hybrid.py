"""Hybrid recommendations: a weighted blend of normalised CF and CB scores."""

import math
from collections.abc import Iterable

import numpy as np

from .cb import CBEngine
from .cf import CFEngine
from .ranking import check_k
from .results import Recommendations

# Candidates each engine contributes: at least this many, or CANDIDATES_PER_K
# per requested item, capped by the catalogue.
MIN_CANDIDATES = 50
CANDIDATES_PER_K = 5

# CF's share of the blend when none is given (the service passes HYBRIDREC_HYBRID_WEIGHT).
# Chosen on the UCI Online Retail data: the only share at or above CF alone on every
# validation window and on the test period (docs/EVALUATION.md).
DEFAULT_WEIGHT = 0.9


def check_weight(weight):
    """Return ``weight`` as a float, refusing anything outside [0, 1]."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}")
    return value


def normalise(scores):
    """Return float64 (n,): ``scores`` of a ranked list min-max scaled to [0, 1].

    A running minimum first makes the scores follow the list's own order (a
    precomputed list topped up from the factors need not be monotone), so
    the blend never re-orders one engine's list against itself. A list whose
    scores are all equal scales to 1.
    """
    if scores.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    ranked = np.minimum.accumulate(scores.astype(np.float64))
    low, high = ranked[-1], ranked[0]
    if high == low:
        return np.ones_like(ranked)
    return (ranked - low) / (high - low)


class HybridEngine:
    """Blend CF and CB recommendations for a customer.

    Without a CB engine every answer is the CF answer.
    """

    def __init__(self, cf: CFEngine, cb: CBEngine | None = None):
        self.cf = cf
        self.cb = cb

    def recommend(
        self, customer_id: str, k: int = 10, weight: float = DEFAULT_WEIGHT, exclude: Iterable[str] = ()
    ) -> Recommendations:
        """Return the top ``k`` items by ``weight * cf + (1 - weight) * cb``.

        Each engine proposes its top max(5k, 50) items (capped by the
        catalogue); each list's scores are min-max normalised for this request
        and an item missing from a list scores 0 there. Ties go to the better
        rank in the list of the heavier side (CF when weight >= 0.5), so
        weight 1 gives CF's ranking and weight 0 CB's. An unknown customer
        gets CF's popular fallback; a customer with no history known to CB
        gets CF's candidates alone.
        """
        k = check_k(k)
        weight = check_weight(weight)
        cf = self.cf
        if self.cb is None or not cf.has_customer(customer_id):
            return cf.recommend(customer_id, k, exclude=exclude)
        n = min(max(k * CANDIDATES_PER_K, MIN_CANDIDATES), max(cf.n_items, self.cb.n_items))
        cf_list = cf.recommend(customer_id, n, exclude=exclude)
        cb_list = self.cb.for_items(cf.customer_items(customer_id), n, exclude=exclude)
        return blend(cf_list, cb_list, k, weight)


def blend(cf_list, cb_list, k, weight):
    """Return the top ``k`` of two ranked lists by weighted normalised score."""
    n_cf = cf_list.item_ids.shape[0]
    ids, inverse = np.unique(np.concatenate((cf_list.item_ids, cb_list.item_ids)), return_inverse=True)
    cf_at, cb_at = inverse[:n_cf], inverse[n_cf:]
    cf_score = np.zeros(ids.shape[0])
    cb_score = np.zeros(ids.shape[0])
    cf_score[cf_at] = normalise(cf_list.scores)
    cb_score[cb_at] = normalise(cb_list.scores)
    # Rank in each list, past-the-end for items the list does not have.
    cf_rank = np.full(ids.shape[0], math.inf)
    cb_rank = np.full(ids.shape[0], math.inf)
    cf_rank[cf_at] = np.arange(n_cf)
    cb_rank[cb_at] = np.arange(cb_at.shape[0])
    blended = weight * cf_score + (1.0 - weight) * cb_score
    first, second = (cf_rank, cb_rank) if weight >= 0.5 else (cb_rank, cf_rank)
    top = np.lexsort((second, first, -blended))[:k]
    return Recommendations(ids[top], blended[top].astype(np.float32))
