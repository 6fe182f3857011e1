"""Benchmark data: every form of one scale holds the same model, and the product reads each."""

import pickle

import numpy as np
import pytest

from bench.data import Scale, dataset, digits_as_text, int_mapping_opcodes
from bench.report import Context
from modelstore.bundles import load_any, open_bundle, read_artifacts

SMALL = Scale("small", 2_500, 300, factors=8, recs_per_user=5, interactions_per_user=7)


@pytest.fixture
def ctx(tmp_path):
    return Context(
        quick=True, data_dir=tmp_path, out_dir=tmp_path, charts_dir=tmp_path, log=lambda line: None
    )


def test_ids_are_spelled_as_python_spells_them():
    numbers = np.array([10_000_000, 19_999_999, 12_345_678])
    assert digits_as_text(numbers).tolist() == ["10000000", "19999999", "12345678"]
    assert digits_as_text(numbers).dtype == np.dtype("<U8")


def test_the_streamed_mapping_unpickles_to_the_dict_of_ids_to_rows():
    numbers = np.array([105, 101, 2_000_000_000, 7] * 700)[:2503] + np.arange(2503)
    stream = b"".join([pickle.PROTO, bytes([4]), *int_mapping_opcodes(numbers), pickle.STOP])
    assert pickle.loads(stream) == {int(number): row for row, number in enumerate(numbers)}


def test_every_form_is_read_by_the_product_as_the_same_model(ctx):
    native = open_bundle(dataset(SMALL, "native", ctx)).arrays
    others = {
        "lz4": open_bundle(dataset(SMALL, "native-lz4", ctx)).arrays,
        "artifacts": read_artifacts(dataset(SMALL, "artifacts", ctx), "cf").arrays,
        "seed bundle": load_any(dataset(SMALL, "seed-bundle", ctx)).arrays,
    }
    assert native["user_ids"].shape == (2_500,) and native["recs_indices"].shape == (2_500 * 5,)
    assert not np.array_equal(native["user_ids"], native["user_ids_sorted"])  # rows are shuffled
    for form, arrays in others.items():
        # The seed bundle has no interactions, so its popularity comes from the recommendations.
        names = set(native) - ({"item_popularity"} if form == "seed bundle" else set())
        for name in names & set(arrays):
            assert np.array_equal(arrays[name], native[name]), (form, name)
        assert {"user_factors", "recs_scores", "user_ids_sorted"} <= set(arrays), form
    assert {"interactions_indptr", "interactions_indices"} <= set(others["artifacts"])


def test_the_cb_bundle_has_each_items_nearest_others_best_first(ctx, monkeypatch):
    monkeypatch.setattr("bench.data.NEIGHBOR_BLOCK_ROWS", 64)  # several row blocks, the last one short
    arrays = open_bundle(dataset(SMALL, "cb", ctx)).arrays
    vectors = np.asarray(arrays["item_vectors"])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    best = np.sort(similarity, axis=1)[:, ::-1][:, :50]
    assert np.allclose(arrays["neighbor_scores"], best, atol=1e-5)
    assert (arrays["neighbor_indices"] != np.arange(300)[:, None]).all()
