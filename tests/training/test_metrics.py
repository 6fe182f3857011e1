"""Offline metrics: hand-computed examples, a brute-force reference, and implicit's own evaluation."""

import math

import numpy as np
import pytest
import scipy.sparse

from recommendations.training import cf, metrics

# Three customers, k = 3: customer 1 has nothing held out and is not evaluated.
RECOMMENDED = np.array([[1, 2, 3], [4, 5, 6], [7, -1, -1]])
RELEVANT = [{2, 9}, set(), {7}]


def brute_force(recommended, relevant, k):
    """Textbook definitions, one customer at a time."""
    rows = [(list(recs)[:k], set(rel)) for recs, rel in zip(recommended, relevant, strict=True) if rel]
    precision, recall, ndcg, ap, hits_total, denominator = [], [], [], [], 0, 0
    for recs, rel in rows:
        hits = [item in rel for item in recs]
        n_hits = sum(hits)
        cap = min(k, len(rel))
        precision.append(n_hits / k)
        recall.append(n_hits / cap)
        dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
        ndcg.append(dcg / sum(1 / math.log2(rank + 2) for rank in range(cap)))
        seen, total = 0, 0.0
        for rank, hit in enumerate(hits):
            if hit:
                seen += 1
                total += seen / (rank + 1)
        ap.append(total / cap)
        hits_total += n_hits
        denominator += cap
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {
        "precision": mean(precision),
        "recall": mean(recall),
        "ndcg": mean(ndcg),
        "map": mean(ap),
        "pooled_recall": hits_total / denominator,
        "users": len(rows),
    }


def test_hand_example():
    result = metrics.ranking_metrics(RECOMMENDED, RELEVANT, 3, n_items=10, fallback=[False, True, True])
    assert result["users"] == 2
    assert result["precision"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert result["recall"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["pooled_recall"] == pytest.approx(2 / 3)
    first_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert result["ndcg"] == pytest.approx((first_ndcg + 1) / 2)
    assert result["map"] == pytest.approx((0.25 + 1) / 2)
    assert result["coverage"] == pytest.approx(0.7)  # items 1..7 of 10
    assert result["fallback_share"] == pytest.approx(0.5)  # of the two evaluated customers


def test_single_metric_functions_agree_with_the_dict():
    result = metrics.ranking_metrics(RECOMMENDED, RELEVANT, 3)
    assert metrics.precision_at_k(RECOMMENDED, RELEVANT, 3) == result["precision"]
    assert metrics.recall_at_k(RECOMMENDED, RELEVANT, 3) == result["recall"]
    assert metrics.pooled_recall_at_k(RECOMMENDED, RELEVANT, 3) == result["pooled_recall"]
    assert metrics.ndcg_at_k(RECOMMENDED, RELEVANT, 3) == result["ndcg"]
    assert metrics.map_at_k(RECOMMENDED, RELEVANT, 3) == result["map"]


def test_ragged_lists_and_csr_input_give_the_same_answer():
    ragged = [[1, 2, 3], [4, 5, 6], [7]]
    relevant = scipy.sparse.csr_matrix((np.ones(3), ([0, 0, 2], [2, 9, 7])), shape=(3, 10))
    assert metrics.ranking_metrics(ragged, relevant, 3) == metrics.ranking_metrics(RECOMMENDED, RELEVANT, 3)


def test_perfect_lists_score_one():
    recommended = np.array([[5, 6, 1, 2], [3, 0, 1, 2]])
    relevant = [{5, 6}, {0, 3, 1, 2, 4}]
    result = metrics.ranking_metrics(recommended, relevant, 4)
    assert result["recall"] == pytest.approx(1.0)
    assert result["ndcg"] == pytest.approx(1.0)
    assert result["map"] == pytest.approx(1.0)
    assert result["pooled_recall"] == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_random_lists_match_brute_force(k):
    rng = np.random.default_rng(k)
    n_users, n_items = 200, 60
    recommended = np.array([rng.permutation(n_items)[:10] for _ in range(n_users)])
    recommended[rng.random((n_users, 10)) < 0.05] = -1  # some padding
    relevant = [
        set(rng.choice(n_items, size=rng.integers(0, 8), replace=False).tolist()) for _ in range(n_users)
    ]
    expected = brute_force(recommended, relevant, k)
    result = metrics.ranking_metrics(recommended, relevant, k)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-12), name


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="k=0"):
        metrics.ranking_metrics(RECOMMENDED, RELEVANT, 0)
    with pytest.raises(ValueError, match="rows"):
        metrics.ranking_metrics(RECOMMENDED[:2], RELEVANT, 3)
    with pytest.raises(ValueError, match="n_items"):
        metrics.catalogue_coverage(RECOMMENDED, 0)


def test_nobody_to_evaluate_gives_zeros():
    result = metrics.ranking_metrics(RECOMMENDED, [set(), set(), set()], 3)
    assert result["users"] == 0
    assert result["ndcg"] == 0.0 and result["pooled_recall"] == 0.0


def _clustered_interactions(seed=0, n_users=300, n_items=120, groups=4):
    rng = np.random.default_rng(seed)
    group_of_user = rng.integers(0, groups, n_users)
    group_of_item = np.arange(n_items) % groups
    rows, cols = [], []
    for user in range(n_users):
        own = np.flatnonzero(group_of_item == group_of_user[user])
        picks = np.concatenate([rng.choice(own, size=8, replace=False), rng.choice(n_items, size=2)])
        rows += [user] * len(picks)
        cols += picks.tolist()
    matrix = scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    matrix.data[:] = 1.0
    return matrix


@pytest.mark.parametrize("k", [5, 10])
def test_cf_metrics_match_implicit_evaluation(k):
    from implicit.evaluation import ranking_metrics_at_k, train_test_split

    interactions = _clustered_interactions()
    train, test = train_test_split(interactions, train_percentage=0.8, random_state=1)
    model = cf.train_als(train, factors=8, iterations=5, regularization=0.1, alpha=5.0, random_state=0)
    expected = ranking_metrics_at_k(model.als, train, test, K=k, show_progress=False)

    item_rows, _ = cf.recommend_all(model, train, top_n=k)
    result = metrics.ranking_metrics(item_rows, test, k)
    assert result["ndcg"] == pytest.approx(expected["ndcg"], abs=1e-6)
    assert result["pooled_recall"] == pytest.approx(expected["precision"], abs=1e-6)
    assert result["map"] == pytest.approx(expected["map"], abs=1e-6)
    assert result["ndcg"] > 0.1  # the clusters are learnable: the comparison is not between zeros


def test_popularity_baseline_skips_owned_items_and_keeps_popularity_order():
    owned = scipy.sparse.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 0]], np.float32))
    popularity = np.array([50, 40, 30, 20, 10], np.float32)
    rows, scores = cf.popularity_recommendations(popularity, owned, top_n=3)
    assert rows.tolist() == [[1, 2, 3], [0, 1, 2], [4, -1, -1]]
    assert scores[0].tolist() == [40, 30, 20]
    assert np.isneginf(scores[2, 1:]).all()
