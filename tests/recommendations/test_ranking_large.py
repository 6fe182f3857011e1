"""Top-k over catalogues large enough for the sampled cut: the same answer as a full numpy sort."""

import numpy as np
import pytest

from recommendations.engines import CFEngine
from recommendations.engines.ranking import SAMPLED_ABOVE, top_k

from .test_engines import make_cf, rows_of

N_ITEMS = 5 * SAMPLED_ABOVE


def brute_top(scores, k, leave_out=()):
    """Return the top ``k`` rows outside ``leave_out`` by a full sort: best first, ties by lower row."""
    ranked = np.lexsort((np.arange(scores.shape[0]), -scores))
    return ranked[~np.isin(ranked, np.asarray(leave_out, dtype=np.int64))][:k].tolist()


def scores_with_ties(rng, n, levels):
    """Return float32 (n,) drawn from ``levels`` distinct values: many exact ties at every rank."""
    return rng.integers(0, levels, size=n).astype(np.float32) / np.float32(levels)


@pytest.mark.parametrize("levels", [7, 1_000, 1_000_000])
@pytest.mark.parametrize("blocked_share", [0.0, 0.01, 0.5, 0.99])
def test_top_k_equals_a_full_sort(levels, blocked_share):
    rng = np.random.default_rng(levels + int(blocked_share * 100))
    scores = scores_with_ties(rng, N_ITEMS, levels)
    blocked = rng.random(N_ITEMS) < blocked_share
    leave_out = np.flatnonzero(blocked)
    for k in (1, 10, 20, 100, 2_000):
        assert top_k(scores.copy(), k, blocked.copy()).tolist() == brute_top(scores, k, leave_out), k
        assert top_k(scores.copy(), k).tolist() == brute_top(scores, k), k


def test_top_k_with_the_best_rows_blocked():
    # The sample's best rows are all blocked: the cut must come from what is left.
    scores = np.linspace(0, 1, N_ITEMS, dtype=np.float32)[::-1].copy()
    blocked = np.zeros(N_ITEMS, dtype=bool)
    blocked[:2_000] = True
    assert top_k(scores.copy(), 10, blocked.copy()).tolist() == list(range(2_000, 2_010))


def test_cf_on_the_fly_over_a_large_catalogue_matches_a_full_sort():
    rng = np.random.default_rng(5)
    n_users = 15
    # Small integer factors: exact score ties all through the catalogue.
    user_factors = rng.integers(-2, 3, size=(n_users, 8))
    item_factors = rng.integers(-2, 3, size=(N_ITEMS, 8))
    interactions = [rng.choice(N_ITEMS, size=20, replace=False).tolist() for _ in range(n_users)]
    arrays = make_cf(user_factors, item_factors, interactions=interactions)
    engine = CFEngine(arrays)
    scores = arrays["user_factors"] @ arrays["item_factors"].T
    user_ids = arrays["user_ids"]
    for u in range(n_users):
        # Leave out the customer's best-scored items too, as the exclude parameter does.
        excluded = brute_top(scores[u], 5)
        for k in (1, 10, 50):
            expected = brute_top(scores[u], k, [*interactions[u], *excluded])
            result = engine.recommend(str(user_ids[u]), k, exclude=arrays["item_ids"][excluded].tolist())
            assert rows_of(arrays["item_ids"], result) == expected, (u, k)
            assert result.scores.tolist() == scores[u][expected].tolist()
    batch = engine.recommend_batch([str(i) for i in user_ids], 10)
    for u in range(n_users):
        assert rows_of(arrays["item_ids"], batch[u]) == brute_top(scores[u], 10, interactions[u])
