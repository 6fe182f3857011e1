"""The numpy engines against brute-force numpy (and implicit) on small arrays."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommendations.engines import (
    POPULAR,
    CBEngine,
    CFEngine,
    EngineError,
    HybridEngine,
    IdIndex,
    InvalidArrays,
    Recommendations,
    UnknownCustomer,
    UnknownItem,
)
from recommendations.engines.ranking import top_k

# ---------------------------------------------------------------------------
# Helpers: valid array sets from plain inputs, and brute-force references.


def id_arrays(prefix, ids):
    """Return ``{prefix}_ids`` with its sorted copy and order, as a bundle carries them."""
    ids = np.asarray(ids)
    order = np.argsort(ids, kind="stable").astype(np.int64)
    return {f"{prefix}_ids": ids, f"{prefix}_ids_sorted": ids[order], f"{prefix}_ids_order": order}


def csr_arrays(prefix, lists, with_scores=False):
    """Return ``{prefix}_indptr/_indices[/_scores]`` from per-row lists of rows or ``(row, score)`` pairs."""
    lengths = [len(row_list) for row_list in lists]
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    flat = [entry for row_list in lists for entry in row_list]
    if with_scores:
        indices = np.array([row for row, _ in flat], dtype=np.int32)
        scores = np.array([score for _, score in flat], dtype=np.float32)
        return {f"{prefix}_indptr": indptr, f"{prefix}_indices": indices, f"{prefix}_scores": scores}
    indices = np.array(flat, dtype=np.int32)
    return {f"{prefix}_indptr": indptr, f"{prefix}_indices": indices}


def make_cf(
    user_factors, item_factors, *, recs=None, interactions=None, popularity=None, user_ids=None, item_ids=None
):
    """Return a valid CF array dict.

    recs: per-user lists of ``(item_row, score)``, best first; interactions:
    per-user lists of item rows. Default ids are shuffled so row order and
    sorted order differ.
    """
    user_factors = np.asarray(user_factors, dtype=np.float32)
    item_factors = np.asarray(item_factors, dtype=np.float32)
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    rng = np.random.default_rng(7)
    if user_ids is None:
        user_ids = [f"cust-{i}" for i in rng.permutation(n_users)]
    if item_ids is None:
        item_ids = [f"item-{i}" for i in rng.permutation(n_items)]
    arrays = {
        **id_arrays("user", user_ids),
        **id_arrays("item", item_ids),
        "user_factors": user_factors,
        "item_factors": item_factors,
    }
    if recs is None:
        recs = [[] for _ in range(n_users)]
    arrays.update(csr_arrays("recs", recs, with_scores=True))
    if interactions is not None:
        arrays.update(csr_arrays("interactions", [sorted(rows) for rows in interactions]))
    if popularity is None:
        counts = np.zeros(n_items, dtype=np.float32)
        for rows in interactions or []:
            counts[list(rows)] += 1
        popularity = counts
    arrays["item_popularity"] = np.asarray(popularity, dtype=np.float32)
    return arrays


def make_cb(vectors, *, item_ids=None, neighbors=None, titles=None):
    """Return a valid CB array dict; ``neighbors`` = k adds brute-force top-k neighbours."""
    vectors = np.asarray(vectors, dtype=np.float32)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    n_items = vectors.shape[0]
    if item_ids is None:
        item_ids = [f"item-{i}" for i in np.random.default_rng(7).permutation(n_items)]
    arrays = {**id_arrays("item", item_ids), "item_vectors": vectors}
    if neighbors:
        indices = np.empty((n_items, neighbors), dtype=np.int32)
        for row in range(n_items):
            ranked = [r for r in brute_rank(vectors @ vectors[row]) if r != row]
            indices[row] = ranked[:neighbors]
        arrays["neighbor_indices"] = indices
        arrays["neighbor_scores"] = np.take_along_axis(vectors @ vectors.T, indices, axis=1)
    if titles is not None:
        arrays["item_titles"] = np.asarray(titles)
    return arrays


def brute_rank(scores):
    """Return every row, best score first, ties by lower row."""
    return np.lexsort((np.arange(scores.shape[0]), -scores)).tolist()


def brute_top(scores, k, leave_out=()):
    """Return the top ``k`` rows of ``scores`` outside ``leave_out``, ties by lower row."""
    leave_out = set(leave_out)
    return [row for row in brute_rank(scores) if row not in leave_out][:k]


def rows_of(engine_ids, result):
    """Return the rows (in ``engine_ids``) of a result's item ids."""
    position = {item_id: row for row, item_id in enumerate(engine_ids.tolist())}
    return [position[item_id] for item_id in result.item_ids.tolist()]


@pytest.fixture
def tied():
    """Return small CF arrays whose integer factors make many exact score ties."""
    rng = np.random.default_rng(3)
    user_factors = rng.integers(-2, 3, size=(12, 3))
    item_factors = rng.integers(-2, 3, size=(9, 3))
    interactions = [sorted(rng.choice(9, size=rng.integers(0, 4), replace=False).tolist()) for _ in range(12)]
    interactions[0] = []
    interactions[1] = list(range(9))
    return make_cf(user_factors, item_factors, interactions=interactions), interactions


# ---------------------------------------------------------------------------
# IdIndex


def test_id_index_finds_every_id_and_nothing_else():
    ids = np.array(["b", "a", "dd", "c"])
    index = IdIndex(ids)
    assert [index.row(i) for i in ["a", "b", "c", "dd"]] == [1, 0, 3, 2]
    assert index.row("d") is None
    assert index.row("") is None
    assert "dd" in index and "e" not in index and 3 not in index
    assert len(index) == 4
    rows, found = index.rows(["c", "zz", "a", "b"])
    assert rows.tolist() == [3, -1, 1, 0]
    assert found.tolist() == [True, False, True, True]
    assert index.ids[rows[found]].tolist() == ["c", "a", "b"]


def test_id_index_uses_the_given_sorted_copy():
    arrays = id_arrays("item", ["x2", "x10", "x1"])
    index = IdIndex(arrays["item_ids"], arrays["item_ids_sorted"], arrays["item_ids_order"])
    assert index.ids_sorted is arrays["item_ids_sorted"]
    assert [index.row(i) for i in ["x2", "x10", "x1"]] == [0, 1, 2]


def test_id_longer_than_the_width_never_matches():
    index = IdIndex(np.array(["abc", "abd"], dtype="<U3"))
    # numpy would store "abcd" truncated to "abc" in a <U3 array; it must not match.
    assert index.row("abcd") is None
    assert "abdx" not in index
    rows, found = index.rows(["abcd", "abc", "abdxyz", "abd"])
    assert found.tolist() == [False, True, False, True]
    assert rows.tolist() == [-1, 0, -1, 1]
    assert index.rows(np.array(["abcd"], dtype="<U4"))[1].tolist() == [False]


def test_id_index_edge_cases():
    empty = IdIndex(np.array([], dtype="<U5"))
    assert empty.row("a") is None
    assert empty.rows(["a", "b"])[1].tolist() == [False, False]
    index = IdIndex(np.array(["a"]))
    assert index.rows([])[0].shape == (0,)
    assert index.known_rows("a").tolist() == [0]
    with pytest.raises(TypeError):
        index.row(1)
    with pytest.raises(TypeError):
        index.rows([1, 2])
    with pytest.raises(InvalidArrays):
        IdIndex(np.array([1, 2]))
    with pytest.raises(InvalidArrays):
        IdIndex(np.array(["a", "b"]), np.array(["a"]), np.array([0]))


# ---------------------------------------------------------------------------
# top-k selection


@pytest.mark.parametrize("seed", range(20))
def test_top_k_breaks_ties_by_lower_row(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    scores = rng.integers(0, 4, size=n).astype(np.float32)
    blocked = rng.random(n) < 0.3
    for k in (1, 2, 5, n, n + 3):
        expected = brute_top(scores, k, np.flatnonzero(blocked))
        assert top_k(scores.copy(), k, blocked.copy()).tolist() == expected
        assert top_k(scores.copy(), k).tolist() == brute_top(scores, k)


# ---------------------------------------------------------------------------
# CF: on-the-fly scoring


def test_cf_on_the_fly_matches_implicit_for_every_user():
    sparse = pytest.importorskip("scipy.sparse")
    pytest.importorskip("implicit")
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    dense = (rng.random((n_users, n_items)) < 0.15).astype(np.float32)
    # Every user has a history: a user with none gets zero factors, where all
    # items tie and implicit's order among exact ties is its heap's.
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1
    dense[0] = 1  # one customer has everything: nothing left to recommend
    user_items = sparse.csr_matrix(dense)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=8, iterations=5, random_state=1)
        model.fit(user_items, show_progress=False)
    interactions = [user_items[u].indices.tolist() for u in range(n_users)]
    user_ids = [f"u{u}" for u in range(n_users)]
    item_ids = [f"i{i}" for i in range(n_items)]
    engine = CFEngine(
        make_cf(
            model.user_factors,
            model.item_factors,
            interactions=interactions,
            user_ids=user_ids,
            item_ids=item_ids,
        )
    )

    filtered = -np.finfo(np.float32).max
    for k in (1, 10, n_items, n_items + 5):
        batch = engine.recommend_batch(user_ids, k)
        for u in range(n_users):
            ids, scores = model.recommend(u, user_items[u], N=k, filter_already_liked_items=True)
            # implicit pads with filtered items (score -FLT_MAX) and, past the
            # catalogue, with zeros; the engine returns only real items.
            keep = scores[:n_items] > filtered
            expected_ids, expected_scores = ids[:n_items][keep], scores[:n_items][keep]
            result = engine.recommend(user_ids[u], k)
            assert result.item_ids.tolist() == [item_ids[i] for i in expected_ids], (k, u)
            np.testing.assert_allclose(result.scores, expected_scores, rtol=1e-6, atol=1e-6)
            assert result.fallback is None
            assert batch[u].item_ids.tolist() == result.item_ids.tolist()
            np.testing.assert_allclose(batch[u].scores, result.scores, rtol=1e-5, atol=1e-6)
        assert len(engine.recommend("u0", k)) == 0


def test_cf_on_the_fly_ties_match_brute_force(tied):
    arrays, interactions = tied
    engine = CFEngine(arrays)
    ids = arrays["user_ids"]
    scores = arrays["user_factors"] @ arrays["item_factors"].T
    for u in range(len(ids)):
        for k in (1, 3, 9, 20):
            expected = brute_top(scores[u], k, interactions[u])
            result = engine.recommend(str(ids[u]), k)
            assert rows_of(arrays["item_ids"], result) == expected
            assert result.scores.tolist() == scores[u][expected].tolist()
            assert result.scores.dtype == np.float32


def test_cf_empty_history_and_full_history(tied):
    arrays, _ = tied
    engine = CFEngine(arrays)
    nobody, everybody = str(arrays["user_ids"][0]), str(arrays["user_ids"][1])
    assert engine.customer_items(nobody).tolist() == []
    assert len(engine.recommend(nobody, 100)) == engine.n_items
    assert len(engine.recommend(everybody, 5)) == 0
    assert len(engine.recommend(everybody, 5, filter_already_liked=False)) == 5


def test_cf_k_larger_than_catalogue_returns_what_there_is(tied):
    arrays, interactions = tied
    engine = CFEngine(arrays)
    u = 5
    result = engine.recommend(str(arrays["user_ids"][u]), 1000)
    assert len(result) == engine.n_items - len(interactions[u])
    assert len(set(result.item_ids.tolist())) == len(result)


def test_cf_exclusions_and_unknown_excluded_ids(tied):
    arrays, interactions = tied
    engine = CFEngine(arrays)
    item_ids = arrays["item_ids"].tolist()
    scores = arrays["user_factors"] @ arrays["item_factors"].T
    u = 4
    first_two = brute_top(scores[u], 2, interactions[u])
    exclude = [item_ids[r] for r in first_two] + ["no-such-item", "item-" + "9" * 40]
    result = engine.recommend(str(arrays["user_ids"][u]), 4, exclude=exclude)
    assert rows_of(arrays["item_ids"], result) == brute_top(scores[u], 4, interactions[u] + first_two)
    # A lone string is one id, not a sequence of characters.
    single = engine.recommend(str(arrays["user_ids"][u]), 4, exclude=item_ids[first_two[0]])
    assert item_ids[first_two[0]] not in single.item_ids.tolist()


def test_cf_filter_already_liked_false_keeps_owned_items(tied):
    arrays, _ = tied
    engine = CFEngine(arrays)
    scores = arrays["user_factors"] @ arrays["item_factors"].T
    result = engine.recommend(str(arrays["user_ids"][3]), 9, filter_already_liked=False)
    assert rows_of(arrays["item_ids"], result) == brute_rank(scores[3])


def test_cf_without_interactions_leaves_nothing_out():
    rng = np.random.default_rng(1)
    arrays = make_cf(rng.standard_normal((3, 4)), rng.standard_normal((6, 4)))
    engine = CFEngine(arrays)
    assert engine.interactions is None
    scores = arrays["user_factors"] @ arrays["item_factors"].T
    assert rows_of(arrays["item_ids"], engine.recommend(str(arrays["user_ids"][2]), 6)) == brute_rank(
        scores[2]
    )
    assert engine.customer_items(str(arrays["user_ids"][2])).tolist() == []


# ---------------------------------------------------------------------------
# CF: precomputed recommendations


@pytest.fixture
def with_recs():
    """Return CF arrays where user 0 has a precomputed list, user 1 an empty one."""
    rng = np.random.default_rng(5)
    user_factors = rng.standard_normal((3, 4))
    item_factors = rng.standard_normal((8, 4))
    # Deliberately not the factors' ranking, to show the list is what is served.
    recs = [[(6, 0.9), (2, 0.8), (0, 0.7), (5, 0.6)], [], [(1, 0.5)]]
    interactions = [[0, 3], [1], []]
    arrays = make_cf(user_factors, item_factors, recs=recs, interactions=interactions)
    return arrays, recs, interactions


def test_cf_serves_precomputed_list_in_its_order(with_recs):
    arrays, _, _ = with_recs
    engine = CFEngine(arrays)
    item_ids = arrays["item_ids"]
    result = engine.recommend(str(arrays["user_ids"][0]), 2)
    assert result.item_ids.tolist() == [item_ids[6], item_ids[2]]
    assert result.scores.tolist() == pytest.approx([0.9, 0.8])


def test_cf_precomputed_drops_owned_and_excluded_then_tops_up(with_recs):
    arrays, _, interactions = with_recs
    engine = CFEngine(arrays)
    item_ids = arrays["item_ids"]
    scores = arrays["user_factors"] @ arrays["item_factors"].T
    result = engine.recommend(str(arrays["user_ids"][0]), 5, exclude=[str(item_ids[2])])
    rows = rows_of(item_ids, result)
    # Item 0 is owned and item 2 excluded; 6 and 5 stay, in the list's order,
    # then the best of the rest by the factors.
    kept = [6, 5]
    assert rows[:2] == kept
    assert rows[2:] == brute_top(scores[0], 3, [*interactions[0], 2, *kept])
    assert len(set(rows)) == len(rows)
    assert result.scores[:2].tolist() == pytest.approx([0.9, 0.6])
    np.testing.assert_allclose(result.scores[2:], scores[0][rows[2:]], rtol=1e-6)


def test_cf_empty_precomputed_row_scores_on_the_fly(with_recs):
    arrays, _, interactions = with_recs
    engine = CFEngine(arrays)
    scores = arrays["user_factors"] @ arrays["item_factors"].T
    result = engine.recommend(str(arrays["user_ids"][1]), 3)
    assert rows_of(arrays["item_ids"], result) == brute_top(scores[1], 3, interactions[1])


def test_cf_batch_equals_single_calls(with_recs):
    arrays, _, _ = with_recs
    engine = CFEngine(arrays)
    customers = [*arrays["user_ids"].tolist(), "stranger", str(arrays["user_ids"][0])]
    for k in (1, 3, 8):
        batch = engine.recommend_batch(customers, k, exclude=[str(arrays["item_ids"][6])])
        single = [engine.recommend(c, k, exclude=[str(arrays["item_ids"][6])]) for c in customers]
        assert [r.item_ids.tolist() for r in batch] == [r.item_ids.tolist() for r in single]
        assert [r.fallback for r in batch] == [r.fallback for r in single]
    assert engine.recommend_batch([], 3) == []


# ---------------------------------------------------------------------------
# CF: cold start, arguments, construction


def test_unknown_customer_gets_popular_items_flagged(tied):
    arrays, _ = tied
    arrays["item_popularity"] = np.array([3, 9, 1, 9, 0, 5, 9, 2, 2], dtype=np.float32)
    engine = CFEngine(arrays)
    item_ids = arrays["item_ids"]
    assert not engine.has_customer("stranger")
    result = engine.recommend("stranger", 4)
    assert result.fallback == POPULAR
    # Equal popularity: lower row first.
    assert rows_of(item_ids, result) == [1, 3, 6, 5]
    # Scores on the 0..1 scale of model scores: a share of the most popular item's count.
    assert result.scores.tolist() == pytest.approx([1, 1, 1, 5 / 9])
    excluded = engine.recommend("stranger", 4, exclude=[str(item_ids[3]), "unknown"])
    assert rows_of(item_ids, excluded) == [1, 6, 5, 0]
    assert rows_of(item_ids, engine.popular(100)) == brute_rank(arrays["item_popularity"])
    assert engine.popular(2).fallback is None


def test_customer_items_and_unknown_customer(tied):
    arrays, interactions = tied
    engine = CFEngine(arrays)
    u = 7
    assert (
        engine.customer_items(str(arrays["user_ids"][u])).tolist()
        == arrays["item_ids"][interactions[u]].tolist()
    )
    with pytest.raises(UnknownCustomer) as raised:
        engine.customer_items("stranger")
    assert isinstance(raised.value, KeyError)
    assert "stranger" in str(raised.value)


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", None])
def test_bad_k_is_refused(tied, k):
    arrays, _ = tied
    engine = CFEngine(arrays)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        engine.recommend(str(arrays["user_ids"][2]), k)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        engine.popular(k)


def test_cf_counts_and_numpy_integer_k(tied):
    arrays, _ = tied
    engine = CFEngine(arrays)
    assert (engine.n_users, engine.n_items, engine.n_factors) == (12, 9, 3)
    assert len(engine.recommend(str(arrays["user_ids"][0]), np.int64(2))) == 2


def test_cf_refuses_arrays_that_do_not_fit(tied):
    arrays, _ = tied
    for broken in (
        {k: v for k, v in arrays.items() if k != "item_factors"},
        {**arrays, "item_factors": arrays["item_factors"][:, :2]},
        {**arrays, "item_popularity": arrays["item_popularity"][:3]},
        {**arrays, "recs_indptr": arrays["recs_indptr"][:-1]},
        {k: v for k, v in arrays.items() if k != "interactions_indices"},
    ):
        with pytest.raises(InvalidArrays):
            CFEngine(broken)
    assert issubclass(InvalidArrays, EngineError)


def test_cf_works_on_memory_mapped_arrays(tmp_path, with_recs):
    arrays, _, _ = with_recs
    for name, value in arrays.items():
        np.save(tmp_path / f"{name}.npy", value)
    mapped = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in arrays}
    customers = arrays["user_ids"].tolist()
    expected = [r.item_ids.tolist() for r in CFEngine(arrays).recommend_batch(customers, 5)]
    engine = CFEngine(mapped)
    assert [engine.recommend(c, 5).item_ids.tolist() for c in customers] == expected


# ---------------------------------------------------------------------------
# CB


@pytest.fixture
def cb_arrays():
    rng = np.random.default_rng(11)
    return make_cb(rng.standard_normal((10, 5)), titles=[f"Title {i}" for i in range(10)])


def test_cb_similar_items_matches_brute_force_without_the_item(cb_arrays):
    engine = CBEngine(cb_arrays)
    vectors, item_ids = cb_arrays["item_vectors"], cb_arrays["item_ids"]
    for row in range(engine.n_items):
        for k in (1, 4, 50):
            result = engine.similar_items(str(item_ids[row]), k)
            assert rows_of(item_ids, result) == brute_top(vectors @ vectors[row], k, [row])
            np.testing.assert_allclose(
                result.scores, (vectors @ vectors[row])[rows_of(item_ids, result)], rtol=1e-6
            )


def test_cb_similar_items_exclusions(cb_arrays):
    engine = CBEngine(cb_arrays)
    vectors, item_ids = cb_arrays["item_vectors"], cb_arrays["item_ids"]
    scores = vectors @ vectors[2]
    best = brute_top(scores, 3, [2])
    result = engine.similar_items(str(item_ids[2]), 3, exclude=[str(item_ids[best[0]]), "nope"])
    assert rows_of(item_ids, result) == brute_top(scores, 3, [2, best[0]])


def test_cb_uses_precomputed_neighbours_when_enough_remain():
    rng = np.random.default_rng(11)
    arrays = make_cb(rng.standard_normal((10, 5)), neighbors=3)
    # Mark the stored scores so the test can tell which path answered.
    arrays["neighbor_scores"] = np.full_like(arrays["neighbor_scores"], 7.0)
    engine = CBEngine(arrays)
    item_ids, vectors = arrays["item_ids"], arrays["item_vectors"]
    stored = engine.similar_items(
        str(item_ids[4]), 2, exclude=[str(item_ids[arrays["neighbor_indices"][4][0]])]
    )
    assert stored.scores.tolist() == [7.0, 7.0]
    assert rows_of(item_ids, stored) == arrays["neighbor_indices"][4][1:].tolist()
    computed = engine.similar_items(str(item_ids[4]), 5)
    assert rows_of(item_ids, computed) == brute_top(vectors @ vectors[4], 5, [4])
    assert 7.0 not in computed.scores.tolist()


def test_cb_unknown_item(cb_arrays):
    engine = CBEngine(cb_arrays)
    for item_id in ("nope", "item-1" + "0" * 30):
        with pytest.raises(UnknownItem) as raised:
            engine.similar_items(item_id)
        assert isinstance(raised.value, KeyError)
        assert item_id in str(raised.value)
    with pytest.raises(TypeError):
        engine.similar_items(3)
    with pytest.raises(KeyError):
        engine.title("nope")


def test_cb_for_items_is_nearest_to_the_mean(cb_arrays):
    engine = CBEngine(cb_arrays)
    vectors, item_ids = cb_arrays["item_vectors"], cb_arrays["item_ids"]
    chosen = [1, 6, 8]
    mean = vectors[chosen].astype(np.float64).mean(axis=0)
    scores = vectors.astype(np.float64) @ (mean / np.linalg.norm(mean))
    result = engine.for_items(
        [str(item_ids[r]) for r in chosen] + ["unknown-to-cb"], 4, exclude=[str(item_ids[0])]
    )
    assert rows_of(item_ids, result) == brute_top(scores, 4, [*chosen, 0])
    np.testing.assert_allclose(result.scores, scores[rows_of(item_ids, result)], rtol=1e-5)
    assert len(engine.for_items([str(item_ids[r]) for r in chosen], 100)) == engine.n_items - 3


def test_cb_for_items_with_nothing_known_is_empty(cb_arrays):
    engine = CBEngine(cb_arrays)
    for item_ids in ([], ["unknown"]):
        result = engine.for_items(item_ids, 5)
        assert len(result) == 0 and result.fallback is None


def test_cb_titles(cb_arrays):
    engine = CBEngine(cb_arrays)
    item_ids = cb_arrays["item_ids"]
    assert engine.title(str(item_ids[3])) == "Title 3"
    assert engine.titles([str(item_ids[3]), "nope"]) == ["Title 3", None]
    untitled = CBEngine({k: v for k, v in cb_arrays.items() if k != "item_titles"})
    assert untitled.title(str(item_ids[3])) is None


def test_cb_refuses_arrays_that_do_not_fit(cb_arrays):
    with pytest.raises(InvalidArrays):
        CBEngine({**cb_arrays, "item_vectors": cb_arrays["item_vectors"][:4]})
    with pytest.raises(InvalidArrays):
        CBEngine({**cb_arrays, "neighbor_indices": np.zeros((10, 2), dtype=np.int32)})


# ---------------------------------------------------------------------------
# Hybrid


@pytest.fixture
def hybrid_parts():
    """Return (cf arrays, cb arrays, interactions) over one 30-item catalogue."""
    rng = np.random.default_rng(21)
    n_users, n_items = 6, 30
    item_ids = [f"sku-{i}" for i in rng.permutation(n_items)]
    interactions = [sorted(rng.choice(n_items, size=3, replace=False).tolist()) for _ in range(n_users)]
    interactions[5] = []
    cf_arrays = make_cf(
        rng.standard_normal((n_users, 4)),
        rng.standard_normal((n_items, 4)),
        interactions=interactions,
        item_ids=item_ids,
    )
    # CB knows only part of the catalogue, in another row order.
    cb_ids = item_ids[5:][::-1]
    cb_arrays = make_cb(rng.standard_normal((len(cb_ids), 6)), item_ids=cb_ids)
    return cf_arrays, cb_arrays


def test_hybrid_weight_one_is_cf_and_zero_is_cb(hybrid_parts):
    cf_arrays, cb_arrays = hybrid_parts
    cf, cb = CFEngine(cf_arrays), CBEngine(cb_arrays)
    hybrid = HybridEngine(cf, cb)
    for customer in cf_arrays["user_ids"].tolist()[:5]:
        for k in (1, 5, 12):
            assert (
                hybrid.recommend(customer, k, weight=1).item_ids.tolist()
                == cf.recommend(customer, k).item_ids.tolist()
            )
            by_cb = cb.for_items(cf.customer_items(customer), k)
            assert hybrid.recommend(customer, k, weight=0).item_ids.tolist() == by_cb.item_ids.tolist()


def test_hybrid_weight_one_keeps_a_topped_up_precomputed_list_in_order(with_recs):
    arrays, _, _ = with_recs
    cf = CFEngine(arrays)
    rng = np.random.default_rng(2)
    cb = CBEngine(make_cb(rng.standard_normal((cf.n_items, 3)), item_ids=arrays["item_ids"].tolist()))
    customer = str(arrays["user_ids"][0])
    # The list's stored scores (0.9 .. 0.6) sit below the factor scores of the
    # items topping it up; the blend must not re-order CF's answer.
    expected = cf.recommend(customer, 6)
    assert expected.scores[3:].max() > expected.scores[:3].max()
    assert (
        HybridEngine(cf, cb).recommend(customer, 6, weight=1).item_ids.tolist() == expected.item_ids.tolist()
    )


def test_hybrid_half_blends_normalised_scores(hybrid_parts):
    cf_arrays, cb_arrays = hybrid_parts
    cf, cb = CFEngine(cf_arrays), CBEngine(cb_arrays)
    hybrid = HybridEngine(cf, cb)
    customer = cf_arrays["user_ids"].tolist()[2]
    exclude = [cf_arrays["item_ids"].tolist()[0]]
    cf_list = cf.recommend(customer, 50, exclude=exclude)
    cb_list = cb.for_items(cf.customer_items(customer), 50, exclude=exclude)

    def normalised(result):
        scores = result.scores.astype(np.float64)
        scaled = (scores - scores.min()) / (scores.max() - scores.min())
        return dict(zip(result.item_ids.tolist(), scaled.tolist(), strict=True))

    cf_norm, cb_norm = normalised(cf_list), normalised(cb_list)
    blended = {i: 0.5 * cf_norm.get(i, 0.0) + 0.5 * cb_norm.get(i, 0.0) for i in {*cf_norm, *cb_norm}}
    cf_rank = {i: r for r, i in enumerate(cf_list.item_ids.tolist())}
    expected = sorted(blended, key=lambda i: (-blended[i], cf_rank.get(i, np.inf)))[:7]
    result = hybrid.recommend(customer, 7, weight=0.5, exclude=exclude)
    assert result.item_ids.tolist() == expected
    np.testing.assert_allclose(result.scores, [blended[i] for i in expected], rtol=1e-6)
    assert exclude[0] not in result.item_ids.tolist()
    assert result.fallback is None


def test_hybrid_fallbacks(hybrid_parts):
    cf_arrays, cb_arrays = hybrid_parts
    cf, cb = CFEngine(cf_arrays), CBEngine(cb_arrays)
    stranger = HybridEngine(cf, cb).recommend("stranger", 4)
    assert stranger.fallback == POPULAR
    assert stranger.item_ids.tolist() == cf.popular(4).item_ids.tolist()
    customer = cf_arrays["user_ids"].tolist()[1]
    assert HybridEngine(cf).recommend(customer, 6, weight=0.2).item_ids.tolist() == (
        cf.recommend(customer, 6).item_ids.tolist()
    )
    # No history to find neighbours of: the CF candidates alone decide.
    no_history = cf_arrays["user_ids"].tolist()[5]
    assert HybridEngine(cf, cb).recommend(no_history, 6, weight=0.2).item_ids.tolist() == (
        cf.recommend(no_history, 6).item_ids.tolist()
    )


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), "heavy", None])
def test_hybrid_refuses_bad_weight(hybrid_parts, weight):
    cf_arrays, cb_arrays = hybrid_parts
    hybrid = HybridEngine(CFEngine(cf_arrays), CBEngine(cb_arrays))
    with pytest.raises(ValueError, match=r"weight must be a number in \[0, 1\]"):
        hybrid.recommend(cf_arrays["user_ids"].tolist()[0], 5, weight=weight)


# ---------------------------------------------------------------------------
# Package boundaries


def test_recommendations_value():
    result = Recommendations(np.array(["a", "b"]), np.array([2.0, 1.0], dtype=np.float32))
    assert len(result) == 2
    assert result.as_pairs() == [("a", 2.0), ("b", 1.0)]
    assert len(Recommendations.empty()) == 0
    with pytest.raises(AttributeError):
        result.fallback = "x"


def test_engines_import_only_numpy():
    code = (
        "import sys, recommendations.engines\n"
        "heavy = {'django', 'pandas', 'sklearn', 'implicit', 'scipy', 'rest_framework'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"
