"""Seed layouts with integer ids convert by number, with no text made per recommendation."""

import numpy as np
import pandas as pd
import pytest

from modelstore.bundles import CorruptBundle
from modelstore.bundles.layout import csr_from_rows
from modelstore.bundles.seed import convert_seed_bundle, integers_as_text


def _seed(keys, item_keys, recs):
    rng = np.random.default_rng(3)
    return {
        "recs_df": recs,
        "user_factors": rng.random((len(keys), 4), dtype=np.float32),
        "item_factors": rng.random((len(item_keys), 4), dtype=np.float32),
        "customer_mapping": {key: row for row, key in enumerate(keys)},
        "item_mapping": {key: row for row, key in enumerate(item_keys)},
        "metadata": {},
    }


def _recs(customers, items, rng, shuffle):
    table = pd.DataFrame(
        {
            "customer_id": np.repeat(customers, 3),
            "item_id": [items[i] for i in rng.integers(0, len(items), 3 * len(customers))],
            "score": rng.random(3 * len(customers)),
        }
    ).drop_duplicates(["customer_id", "item_id"])
    return table.sample(frac=1, random_state=1) if shuffle else table


def test_integers_are_spelled_as_python_spells_them():
    numbers = np.array([0, 7, -7, 12346, -100, 10**18, 2**63 - 1, -(2**63) + 1, 42, -(2**63)])
    assert integers_as_text(numbers).tolist() == [str(n) for n in numbers.tolist()]
    same_width = np.arange(10_000_000, 10_000_100)
    assert integers_as_text(same_width).tolist() == [str(n) for n in same_width.tolist()]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("spacing", [7, 1000])  # looked up in a table by number; by binary search
def test_integer_ids_convert_to_the_same_arrays_as_their_text(shuffle, spacing):
    rng = np.random.default_rng(0)
    customers = [12346 + spacing * i for i in range(40)][::-1]
    items = [900 + i for i in range(15)]
    recs = _recs(customers, items, rng, shuffle)
    as_text = recs.assign(customer_id=recs["customer_id"].astype(str), item_id=recs["item_id"].astype(str))
    before = recs.copy()
    by_number = convert_seed_bundle(_seed(customers, items, recs))[1]
    pd.testing.assert_frame_equal(recs, before)  # the caller's table is left as it was
    by_text = convert_seed_bundle(_seed([str(c) for c in customers], [str(i) for i in items], as_text))[1]
    # A CSV read gives integral floats: 12346.0 is customer 12346.
    as_floats = recs.assign(customer_id=recs["customer_id"].astype(float))
    by_float = convert_seed_bundle(_seed(customers, items, as_floats))[1]
    assert by_number.keys() == by_text.keys()
    for name in by_number:
        assert np.array_equal(by_number[name], by_text[name]), name
        assert np.array_equal(by_number[name], by_float[name]), name
    assert by_number["user_ids"][0] == str(12346 + spacing * 39)


def test_an_unknown_integer_customer_is_refused_with_an_example():
    rng = np.random.default_rng(0)
    recs = _recs([1, 2, 3], [10, 11], rng, shuffle=False)
    recs.loc[recs.index[0], "customer_id"] = 99  # beyond the table of numbers 1..3
    with pytest.raises(CorruptBundle, match="1 customers not in the mapping, e.g. np.int64\\(99\\)|e.g. 99"):
        convert_seed_bundle(_seed([1, 2, 3], [10, 11], recs))


@pytest.mark.parametrize("chunk", [2, 3, 4_000_000])  # the order check runs in chunks
def test_triples_already_in_order_group_as_a_sort_would(chunk, monkeypatch):
    monkeypatch.setattr("modelstore.bundles.layout._ORDER_CHUNK", chunk)
    rows = np.array([0, 0, 0, 2, 2, 3])
    columns = np.array([5, 1, 4, 2, 0, 3])
    key = np.array([0.1, 0.2, 0.3, -1.0, 0.0, 9.0])  # ascending within rows
    shuffled = np.array([3, 0, 5, 2, 1, 4])
    in_order = csr_from_rows(rows, columns, 4, values=key, sort_key=key)
    resorted = csr_from_rows(
        rows[shuffled], columns[shuffled], 4, values=key[shuffled], sort_key=key[shuffled]
    )
    for got, want in zip(in_order, resorted, strict=True):
        assert np.array_equal(got, want)
    assert in_order[1].tolist() == [5, 1, 4, 2, 0, 3]
    assert in_order[0].tolist() == [0, 3, 3, 5, 6]
    # Ties keep their order, as the stable sort keeps them.
    tied = np.array([0.1, 0.2, 0.2, -1.0, 0.0, 9.0])
    assert csr_from_rows(rows, columns, 4, sort_key=tied)[1].tolist() == [5, 1, 4, 2, 0, 3]
    # Out of order only across a chunk's edge: still sorted.
    late = np.array([0.1, 0.2, 0.3, 5.0, 0.0, 9.0])
    assert csr_from_rows(rows, columns, 4, sort_key=late)[1].tolist() == [5, 1, 4, 0, 2, 3]


def test_an_unknown_integer_customer_between_known_ones_is_refused():
    rng = np.random.default_rng(0)
    recs = _recs([1, 3, 4], [10, 11], rng, shuffle=False)
    recs.loc[recs.index[0], "customer_id"] = 2  # inside the range of numbers, but no one's
    with pytest.raises(CorruptBundle, match="1 customers not in the mapping"):
        convert_seed_bundle(_seed([1, 3, 4], [10, 11], recs))
