"""Training: artifact folders, reading and cleaning input, the date split, ALS, TF-IDF + SVD, the command."""

import io
import json
import lzma
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from django.core.management import CommandError, call_command

from recommendations.training import artifacts, cb, cf
from recommendations.training.data import (
    ONLINE_RETAIL_COLUMNS,
    build_dataset,
    load_dataset,
    missing_columns,
    read_interactions_csv,
    read_online_retail,
)
from recommendations.training.exceptions import TrainingError
from tests.support.data import ONLINE_RETAIL_FILE, ONLINE_RETAIL_MISSING


class BuiltinsOnly(pickle.Unpickler):
    """Refuse every global: what a dict of str -> int needs is none."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


class NumpyAndPandasOnly(pickle.Unpickler):
    """Allow numpy, core pandas and builtins; refuse pyarrow and anything else."""

    def find_class(self, module, name):
        if module.split(".")[0] in {"numpy", "pandas", "builtins"}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


def load_pickle(path, unpickler=BuiltinsOnly):
    with open(path, "rb") as fh:
        return unpickler(fh).load()


# --- artifact folders ----------------------------------------------------------------------


def cf_inputs(n_users=6, n_items=4, factors=3):
    rng = np.random.default_rng(0)
    user_ids = np.array([f"C{i:03d}" for i in range(n_users)])
    item_ids = np.array([f"{10000 + i}" for i in range(n_items)])
    recs = pd.DataFrame(
        {
            "customer_id": np.repeat(user_ids[:2], 2),
            "item_id": item_ids[[0, 1, 2, 3]],
            "score": [0.9, 0.5, 0.8, 0.1],
            "rank": [1, 2, 1, 2],
        }
    )
    interactions = scipy.sparse.random(n_users, n_items, density=0.5, format="csr", random_state=0)
    return {
        "user_ids": user_ids,
        "item_ids": item_ids,
        "user_factors": rng.normal(size=(n_users, factors)),
        "item_factors": rng.normal(size=(n_items, factors)),
        "recommendations": recs,
        "interactions": interactions,
        "item_popularity": np.arange(n_items),
        "metadata": {"note": "test"},
    }


@pytest.mark.parametrize(
    ("recs_format", "mapping_format", "recs_file"),
    [
        ("parquet", "pkl", "recommendations.parquet"),
        ("csv", "json", "recommendations.csv"),
        ("pkl", "pkl", "recs_df.pkl"),
    ],
)
def test_cf_folder_has_exactly_the_seed_files(tmp_path, recs_format, mapping_format, recs_file):
    inputs = cf_inputs()
    out = artifacts.write_cf_artifacts(
        tmp_path / "cf", recs_format=recs_format, mapping_format=mapping_format, **inputs
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "user_factors.npy",
            "item_factors.npy",
            f"customer_mapping.{mapping_format}",
            f"item_mapping.{mapping_format}",
            recs_file,
            "interactions.npz",
            "item_popularity.npy",
            "metadata.json",
        ]
    )
    user_factors = np.load(out / "user_factors.npy")
    item_factors = np.load(out / "item_factors.npy")
    assert user_factors.dtype == np.float32 and user_factors.shape == (6, 3)
    assert item_factors.dtype == np.float32 and item_factors.shape == (4, 3)
    popularity = np.load(out / "item_popularity.npy")
    assert popularity.dtype == np.float32 and popularity.tolist() == [0, 1, 2, 3]
    interactions = scipy.sparse.load_npz(out / "interactions.npz")
    assert interactions.format == "csr" and interactions.shape == (6, 4) and interactions.dtype == np.float32

    if mapping_format == "json":
        mapping = json.loads((out / "customer_mapping.json").read_text())
    else:
        mapping = load_pickle(out / "customer_mapping.pkl")
    assert mapping == {f"C{i:03d}": i for i in range(6)}
    assert all(type(k) is str and type(v) is int for k, v in mapping.items())

    if recs_format == "parquet":
        recs = pd.read_parquet(out / recs_file)
    elif recs_format == "csv":
        recs = pd.read_csv(out / recs_file, dtype={"customer_id": str, "item_id": str})
    else:
        recs = load_pickle(out / recs_file, NumpyAndPandasOnly)
    assert list(recs.columns) == ["customer_id", "item_id", "score", "rank"]
    assert recs["item_id"].tolist() == ["10000", "10001", "10002", "10003"]

    meta = json.loads((out / "metadata.json").read_text())
    assert meta["kind"] == "cf" and meta["note"] == "test"
    assert (meta["n_users"], meta["n_items"], meta["factors"], meta["n_recommendations"]) == (6, 4, 3, 4)
    assert meta["n_interactions"] == interactions.nnz
    assert "numpy" in meta["library_versions"]


def test_cf_folder_without_optional_files(tmp_path):
    inputs = cf_inputs() | {"interactions": None, "item_popularity": None}
    out = artifacts.write_cf_artifacts(tmp_path / "cf", **inputs)
    assert "interactions.npz" not in {p.name for p in out.iterdir()}
    assert "item_popularity.npy" not in {p.name for p in out.iterdir()}


def test_cf_writer_validates_before_writing(tmp_path):
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    inputs = cf_inputs()
    with pytest.raises(TrainingError, match="item_factors has shape"):
        artifacts.write_cf_artifacts(tmp_path / "cf", **(inputs | {"item_factors": np.zeros((3, 3))}))
    with pytest.raises(TrainingError, match="duplicates"):
        artifacts.write_cf_artifacts(tmp_path / "cf", **(inputs | {"user_ids": np.array(["a"] * 6)}))
    with pytest.raises(ValueError, match="recs_format='xml'"):
        artifacts.write_cf_artifacts(tmp_path / "cf", recs_format="xml", **inputs)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_the_previous_folder_and_no_temporary_one(tmp_path, monkeypatch):
    tmp_path = tmp_path / "work"
    out = artifacts.write_cf_artifacts(tmp_path / "cf", **cf_inputs())
    before = sorted(p.name for p in out.iterdir())

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "_write_recommendations", fail)
    with pytest.raises(OSError, match="disk full"):
        artifacts.write_cf_artifacts(tmp_path / "cf", **cf_inputs(factors=5))
    assert [p.name for p in tmp_path.iterdir()] == ["cf"]
    assert sorted(p.name for p in out.iterdir()) == before
    assert np.load(out / "user_factors.npy").shape == (6, 3)


def test_rewriting_a_folder_replaces_it(tmp_path):
    tmp_path = tmp_path / "work"
    artifacts.write_cf_artifacts(tmp_path / "cf", recs_format="csv", **cf_inputs())
    out = artifacts.write_cf_artifacts(tmp_path / "cf", recs_format="parquet", **cf_inputs(factors=5))
    assert np.load(out / "user_factors.npy").shape == (6, 5)
    assert not (out / "recommendations.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cf"]


def test_cb_folder_has_exactly_the_seed_files(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = pd.DataFrame({"item_id": ["b", "a", "c", "z"], "title": ["B", "A", "C", "Z"]})
    out = artifacts.write_cb_artifacts(
        tmp_path / "cb", item_ids=["a", "b", "c"], item_vectors=vectors, items=items, metadata={}
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "item_embeddings.npy",
        "item_mapping.pkl",
        "items.csv",
        "metadata.json",
    ]
    embeddings = np.load(out / "item_embeddings.npy")
    assert embeddings.dtype == np.float32 and embeddings.shape == (3, 4)
    assert load_pickle(out / "item_mapping.pkl") == {"a": 0, "b": 1, "c": 2}
    assert pd.read_csv(out / "items.csv")["title"].tolist() == ["A", "B", "C"]  # item_ids order
    assert json.loads((out / "metadata.json").read_text())["dimensions"] == 4


def test_cb_writer_refuses_vectors_that_are_not_unit_length(tmp_path):
    with pytest.raises(TrainingError, match="L2-normalised"):
        artifacts.write_cb_artifacts(
            tmp_path / "cb", item_ids=["a", "b"], item_vectors=np.ones((2, 3)), metadata={}
        )
    assert not (tmp_path / "cb").exists()


# --- reading input -------------------------------------------------------------------------


def write(path, text):
    path.write_text(text)
    return path


def test_generic_csv_sums_weights_and_keeps_ids_as_strings(tmp_path):
    path = write(
        tmp_path / "events.csv",
        "customer_id,item_id,weight\n007,A1,1\n007,A1,2\n8,B2,1\n8,A1,0\n,B2,1\n",
    )
    dataset = load_dataset(path)
    assert dataset.user_ids.tolist() == ["007", "8"]
    assert dataset.item_ids.tolist() == ["A1", "B2"]
    assert dataset.train.toarray().tolist() == [[3.0, 0.0], [0.0, 1.0]]
    assert dataset.stats["dropped_missing_id"] == 1
    assert dataset.stats["dropped_non_positive_weight"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "customer,item_id\n1,2\n",
            r"events\.csv: missing column 'customer_id' \(found: customer, item_id\)",
        ),
        (
            "customer_id,item_id,weight\n1,2,lots\n",
            r"events\.csv: column 'weight' has 1 value\(s\) that are not a number",
        ),
        ("customer_id,item_id,timestamp\n1,2,yesterday\n", r"column 'timestamp' .* not a date"),
        ("", r"events\.csv: the file is empty"),
        ('customer_id,item_id\n1,"2\n', r"events\.csv: cannot read it as CSV"),
    ],
)
def test_bad_generic_csv_names_the_file_and_the_problem(tmp_path, text, message):
    path = write(tmp_path / "events.csv", text)
    with pytest.raises(TrainingError, match=message):
        read_interactions_csv(path)


def test_missing_file_and_missing_timestamp_for_a_split(tmp_path):
    with pytest.raises(TrainingError, match=r"nope\.csv: no such file"):
        load_dataset(tmp_path / "nope.csv")
    path = write(tmp_path / "events.csv", "customer_id,item_id\n1,2\n")
    with pytest.raises(TrainingError, match="needs a 'timestamp' column"):
        load_dataset(path, split_date="2020-01-01")
    with pytest.raises(TrainingError, match="format='xls'"):
        load_dataset(path, data_format="xls")


ONLINE_RETAIL_SAMPLE = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6.0,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2.0,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536370,85123a,CREAM HANGING HEART T-LIGHT HOLDER,1.0,2010-12-02 09:00:00,2.55,17850.0,United Kingdom
536371,85123A,WHITE HANGING HEART T-LIGHT HOLDER,4.0,2010-12-03 10:00:00,2.55,13047.0,United Kingdom
536365,POST,POSTAGE,1.0,2010-12-01 08:26:00,18.0,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6.0,2010-12-01 08:28:00,1.85,13047.0,United Kingdom
C536379,22633,HAND WARMER UNION JACK,-1.0,2010-12-01 09:41:00,1.85,13047.0,United Kingdom
536380,22634,CHILDS BREAKFAST SET,-3.0,2010-12-01 09:45:00,0.0,13047.0,United Kingdom
536381,21730,GLASS STAR FROSTED T-LIGHT HOLDER,6.0,2010-12-01 09:45:00,4.25,,United Kingdom
536382,BANK CHARGES,Bank Charges,1.0,2010-12-01 09:50:00,15.0,13047.0,United Kingdom
536383,gift_0001_40,Dotcomgiftshop Gift Voucher £40.00,1.0,2010-12-01 09:51:00,34.0,13047.0,United Kingdom
536384,DCGS0003,BOXED GLASS ASHTRAY,1.0,2010-12-01 09:52:00,2.0,13047.0,United Kingdom
536385,M,Manual,1.0,2010-12-01 09:53:00,0.85,13047.0,United Kingdom
"""


@pytest.mark.parametrize("compress", [False, True])
def test_online_retail_cleaning(tmp_path, compress):
    if compress:
        path = tmp_path / "retail.csv.xz"
        path.write_bytes(lzma.compress(ONLINE_RETAIL_SAMPLE.encode()))
    else:
        path = write(tmp_path / "retail.csv", ONLINE_RETAIL_SAMPLE)
    events, items, stats = read_online_retail(path)
    assert stats["rows_read"] == 13
    assert stats["dropped_no_customer"] == 1
    assert stats["dropped_cancelled"] == 1
    assert stats["dropped_non_positive_quantity"] == 1
    assert stats["dropped_non_product_code"] == 5  # POST, BANK CHARGES, voucher, DCGS0003, M
    assert set(events["customer_id"]) == {"17850", "13047"}
    assert set(events["item_id"]) == {"85123A", "22633"}
    # Weight = distinct invoices: 17850 bought 85123A on invoices 536365 (two lines) and 536370.
    dataset = build_dataset(events, items=items)
    weights = pd.DataFrame(dataset.train.toarray(), index=dataset.user_ids, columns=dataset.item_ids)
    assert weights.loc["17850", "85123A"] == 2.0
    assert weights.loc["13047", "85123A"] == 1.0
    assert weights.loc["13047", "22633"] == 1.0
    assert dict(zip(items["item_id"], items["title"], strict=True)) == {
        "22633": "HAND WARMER UNION JACK",
        "85123A": "WHITE HANGING HEART T-LIGHT HOLDER",  # the most frequent description
    }


def test_online_retail_missing_column(tmp_path):
    path = write(tmp_path / "retail.csv", "InvoiceNo,StockCode,Quantity\n1,22633,1\n")
    with pytest.raises(
        TrainingError, match=r"retail\.csv: missing column 'Description', 'InvoiceDate', 'CustomerID'"
    ):
        read_online_retail(path)


# --- the date split ------------------------------------------------------------------------


def test_split_holds_out_new_pairs_of_known_customers_and_items(tmp_path):
    path = write(
        tmp_path / "events.csv",
        "customer_id,item_id,timestamp\n"
        "u1,A,2020-01-05\n"
        "u1,B,2020-02-01\n"  # new pair after the split: held out
        "u1,A,2020-02-02\n"  # bought before too: a repeat, not held out
        "u2,A,2020-01-10\n"
        "u2,C,2020-02-03\n"  # C unknown in training: dropped
        "u2,B,2020-01-31 23:59:59\n"  # before the split: training
        "u3,A,2020-02-04\n",  # u3 unknown in training: dropped
    )
    dataset = load_dataset(path, split_date="2020-02-01")
    assert dataset.user_ids.tolist() == ["u1", "u2"]
    assert dataset.item_ids.tolist() == ["A", "B"]
    assert dataset.train.toarray().tolist() == [[1.0, 0.0], [1.0, 1.0]]
    assert dataset.test_pairs().values.tolist() == [["u1", "B"]]
    assert dataset.stats["test_pairs"] == 1
    assert dataset.stats["test_repeat_pairs"] == 1
    assert dataset.stats["test_dropped_unknown_item"] == 1
    assert dataset.stats["test_dropped_unknown_customer"] == 1
    with pytest.raises(TrainingError, match="No interactions before the split date 2019-01-01"):
        load_dataset(path, split_date="2019-01-01")


def test_split_end_closes_the_held_out_period(tmp_path):
    path = write(
        tmp_path / "events.csv",
        "customer_id,item_id,timestamp\n"
        "u1,A,2020-01-05\n"
        "u2,A,2020-01-06\n"
        "u2,B,2020-01-07\n"
        "u1,B,2020-02-10\n"  # in the window: held out
        "u2,C,2020-03-02\n"  # after the window: ignored
        "u1,C,2020-03-05\n",
    )
    dataset = load_dataset(path, split_date="2020-02-01", split_end="2020-03-01")
    assert dataset.item_ids.tolist() == ["A", "B"]
    assert dataset.test_pairs().values.tolist() == [["u1", "B"]]
    assert dataset.stats["dropped_after_split_end"] == 2 and dataset.stats["split_end"] == "2020-03-01"
    with pytest.raises(TrainingError, match="ends .2020-01-01. before it starts"):
        load_dataset(path, split_date="2020-02-01", split_end="2020-01-01")
    with pytest.raises(TrainingError, match="needs a split date"):
        load_dataset(path, split_end="2020-03-01")


@pytest.mark.parametrize(
    ("name", "text", "kind", "expected"),
    [
        ("events.csv", b"customer_id,item_id,weight\n1,2,3\n", "generic", []),
        ("events.csv", b"customer_id,product\n1,2\n", "generic", ["item_id"]),
        ("items.csv.xz", lzma.compress(b"item_id,title\nA,Mug\n"), "items", []),
        ("retail.csv.xz", lzma.compress(ONLINE_RETAIL_SAMPLE.encode()), "online-retail", []),
        ("retail.csv", b"InvoiceNo,StockCode\n1,2\n", "online-retail", list(ONLINE_RETAIL_COLUMNS[2:])),
    ],
)
def test_missing_columns_reads_only_the_header(name, text, kind, expected):
    assert missing_columns(io.BytesIO(text), name=name, kind=kind) == expected


def test_missing_columns_reads_a_header_after_a_byte_order_mark_as_pandas_does():
    text = "\ufeffcustomer_id,item_id\n1,a\n".encode()

    assert missing_columns(io.BytesIO(text), name="events.csv", kind="generic") == []


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("events.xlsx", b"customer_id,item_id\n", r"events\.xlsx: not a CSV file"),
        ("events.csv", b"", r"events\.csv: the file is empty"),
        ("events.csv.xz", b"not xz at all", r"events\.csv\.xz: cannot read it as CSV"),
    ],
)
def test_missing_columns_refuses_what_it_cannot_read(name, text, message):
    with pytest.raises(TrainingError, match=message):
        missing_columns(io.BytesIO(text), name=name, kind="generic")


# --- models --------------------------------------------------------------------------------


def block_interactions(n_users=80, n_items=40, seed=0):
    """Two tastes: even customers buy from the first half of the items, odd ones from the second."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    half = n_items // 2
    for user in range(n_users):
        offset = 0 if user % 2 == 0 else half
        picks = offset + rng.choice(half, size=6, replace=False)
        rows += [user] * 6
        cols += picks.tolist()
    return scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))


def test_als_recommends_unseen_items_of_the_right_taste():
    interactions = block_interactions()
    model = cf.train_als(
        interactions, factors=8, iterations=10, regularization=0.1, alpha=5.0, random_state=0
    )
    assert model.user_factors.dtype == np.float32 and model.user_factors.shape == (80, 8)
    assert model.item_factors.dtype == np.float32 and model.item_factors.shape == (40, 8)
    rows, scores = cf.recommend_all(model, interactions, top_n=5, batch_users=16)
    assert rows.shape == (80, 5) and rows.dtype == np.int32
    for user in range(80):
        owned = set(interactions[user].indices)
        assert not owned & set(rows[user].tolist())
        assert (np.diff(scores[user]) <= 0).all()
    top_half = rows[::2, 0] < 20
    assert top_half.mean() > 0.9  # even customers get first-half items
    assert (rows[1::2, 0] >= 20).mean() > 0.9


def test_recommend_all_pads_when_few_items_are_left():
    interactions = scipy.sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]], np.float32))
    model = cf.train_als(interactions, factors=2, iterations=2, random_state=0)
    rows, scores = cf.recommend_all(model, interactions, top_n=5)
    assert rows.shape == (2, 3)
    assert rows[0].tolist()[0] == 2 and rows[0, 1:].tolist() == [-1, -1]
    frame = cf.recommendations_frame(np.array(["a", "b"]), np.array(["x", "y", "z"]), rows, scores)
    assert frame["customer_id"].tolist() == ["a", "b", "b"]
    assert frame[frame.customer_id == "a"]["item_id"].tolist() == ["z"]
    assert frame["rank"].tolist() == [1, 1, 2]


def test_item_popularity_counts_customers():
    interactions = scipy.sparse.csr_matrix(np.array([[3, 0, 1], [1, 0, 0]], np.float32))
    popularity = cf.item_popularity(interactions)
    assert popularity.dtype == np.float32 and popularity.tolist() == [2, 0, 1]


def test_als_refuses_bad_parameters():
    with pytest.raises(TrainingError, match="factors=0"):
        cf.train_als(block_interactions(), factors=0)
    with pytest.raises(TrainingError, match="no interactions"):
        cf.train_als(scipy.sparse.csr_matrix((3, 3), dtype=np.float32))


def test_tfidf_svd_vectors_are_unit_length_and_group_similar_titles():
    items = pd.DataFrame(
        {
            "item_id": [f"I{i}" for i in range(8)],
            "title": [
                "RED HEART T-LIGHT HOLDER",
                "WHITE HEART T-LIGHT HOLDER",
                "PINK HEART T-LIGHT HOLDER",
                "JUMBO BAG RED RETROSPOT",
                "JUMBO BAG PINK POLKADOT",
                "LUNCH BAG RED RETROSPOT",
                "",
                None,
            ],
            "category": ["candles", "candles", "candles", "bags", "bags", "bags", None, None],
        }
    )
    model = cb.train_tfidf(items, n_components=64)
    assert model.item_ids.tolist() == [f"I{i}" for i in range(6)]
    assert model.skipped_item_ids.tolist() == ["I6", "I7"]  # no text: left out, never a zero row
    assert model.item_vectors.dtype == np.float32
    assert model.item_vectors.shape[1] == model.params["n_components"] < 6  # capped below the item count
    np.testing.assert_allclose(np.linalg.norm(model.item_vectors, axis=1), 1.0, atol=1e-5)
    similarity = model.item_vectors @ model.item_vectors.T
    assert similarity[0, 1] > similarity[0, 4]
    assert similarity[3, 5] > similarity[3, 1]


def test_tfidf_without_reduction_keeps_the_terms():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["RED HEART MUG", "PINK HEART MUG", "JUMBO BAG RED", ""],
        }
    )
    model = cb.train_tfidf(items)
    assert model.params["algorithm"] == "tfidf"
    assert model.item_ids.tolist() == ["a", "b", "c"] and model.skipped_item_ids.tolist() == ["d"]
    # bag, heart, jumbo, mug, pink, red: one dimension per term.
    assert model.item_vectors.shape == (3, 6) and model.params["vocabulary_size"] == 6
    np.testing.assert_allclose(np.linalg.norm(model.item_vectors, axis=1), 1.0, atol=1e-6)
    similarity = model.item_vectors @ model.item_vectors.T
    assert similarity[0, 1] > similarity[0, 2] > 0
    assert similarity[1, 2] == 0  # no word in common


def test_tfidf_max_terms_keeps_the_most_frequent_terms():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["HEART MUG", "HEART BAG", "HEART CUP"]})
    model = cb.train_tfidf(items, max_terms=1)
    assert model.item_vectors.shape == (3, 1) and model.params["vocabulary_size"] == 1
    with pytest.raises(TrainingError, match="max_terms=0"):
        cb.train_tfidf(items, max_terms=0)
    with pytest.raises(TrainingError, match="n_components=0"):
        cb.train_tfidf(items, n_components=0)


def test_item_texts_join_title_and_other_text_columns():
    items = pd.DataFrame({"item_id": ["a"], "title": ["Mug"], "colour": ["red"], "price": [2.5]})
    assert cb.item_texts(items).tolist() == ["Mug red"]


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def small_csvs(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for user in range(60):
        offset = 0 if user % 2 == 0 else 15
        for item in rng.choice(15, size=8, replace=False):
            rows.append((f"c{user:03d}", f"item{offset + item:02d}", rng.integers(1, 60)))
    frame = pd.DataFrame(rows, columns=["customer_id", "item_id", "day"])
    frame["timestamp"] = pd.Timestamp("2021-01-01") + pd.to_timedelta(frame.pop("day"), unit="D")
    interactions = tmp_path / "interactions.csv"
    frame.to_csv(interactions, index=False)
    items = tmp_path / "items.csv"
    pd.DataFrame(
        {
            "item_id": [f"item{i:02d}" for i in range(30)],
            "title": [f"{'RED' if i < 15 else 'BLUE'} {'MUG' if i % 2 else 'BAG'} {i}" for i in range(30)],
        }
    ).to_csv(items, index=False)
    return interactions, items


def test_train_models_writes_cf_cb_and_test_set(tmp_path, small_csvs):
    interactions, items = small_csvs
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "train_models",
        "--interactions", str(interactions),
        "--items", str(items),
        "--split-date", "2021-02-01",
        "--out", str(tmp_path / "run"),
        "--factors", "8",
        "--iterations", "5",
        "--top-n", "5",
        "--cb-components", "4",
        stdout=out,
        stderr=err,
    )  # fmt: skip
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["cb", "cf", "test.csv"]
    assert (run / "cf" / "recommendations.parquet").exists()
    assert np.load(run / "cf" / "user_factors.npy").shape[1] == 8
    assert np.load(run / "cb" / "item_embeddings.npy").shape == (30, 4)
    test = pd.read_csv(run / "test.csv")
    assert list(test.columns) == ["customer_id", "item_id"] and len(test) > 0
    recs = pd.read_parquet(run / "cf" / "recommendations.parquet")
    owned = pd.read_csv(interactions)
    owned = owned[pd.to_datetime(owned["timestamp"]) < "2021-02-01"]
    overlap = recs.merge(owned, on=["customer_id", "item_id"])
    assert overlap.empty  # nothing a customer already had before the split
    meta = json.loads((run / "cf" / "metadata.json").read_text())
    assert meta["offline_metrics"]["k"] == 10 and 0 <= meta["offline_metrics"]["cf"]["ndcg"] <= 1
    assert meta["params"]["factors"] == 8 and meta["source"]["interactions"] == "interactions.csv"
    assert "training ALS" in err.getvalue()
    summary = out.getvalue().strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("Trained 60 users, 30 items")
    assert " s -> " in summary[0]


def test_with_a_split_cb_knows_only_items_sold_before_it(tmp_path, small_csvs):
    interactions, items = small_csvs
    catalogue = pd.read_csv(items)
    pd.concat([catalogue, pd.DataFrame({"item_id": ["new01"], "title": ["RED MUG NEW"]})]).to_csv(
        items, index=False
    )
    from recommendations.training.pipeline import train_models

    summary = train_models(
        interactions_path=interactions,
        items_path=items,
        split_date="2021-02-01",
        out_dir=tmp_path / "run",
        factors=4,
        iterations=2,
    )
    cb_items = load_pickle(tmp_path / "run" / "cb" / "item_mapping.pkl")
    assert "new01" not in cb_items and set(cb_items) == set(
        load_pickle(tmp_path / "run" / "cf" / "item_mapping.pkl")
    )
    assert json.loads((tmp_path / "run" / "cb" / "metadata.json").read_text())["items_not_in_training"] == 1
    assert summary["cb_items"] == 30
    # Without a split the catalogue is everything with a title.
    summary = train_models(
        interactions_path=interactions, items_path=items, out_dir=tmp_path / "all", factors=4
    )
    assert summary["cb_items"] == 31


def test_train_models_validation_window(tmp_path, small_csvs):
    interactions, items = small_csvs
    err = io.StringIO()
    call_command(
        "train_models", "--interactions", str(interactions), "--items", str(items),
        "--split-date", "2021-01-20", "--split-end", "2021-02-01", "--out", str(tmp_path / "run"),
        "--factors", "4", "--iterations", "2", stdout=io.StringIO(), stderr=err,
    )  # fmt: skip
    test = pd.read_csv(tmp_path / "run" / "test.csv")
    owned = pd.read_csv(interactions, parse_dates=["timestamp"])
    window = owned[(owned["timestamp"] >= "2021-01-20") & (owned["timestamp"] < "2021-02-01")]
    assert len(test) > 0
    assert set(map(tuple, test.values)) <= set(zip(window["customer_id"], window["item_id"], strict=True))
    meta = json.loads((tmp_path / "run" / "cf" / "metadata.json").read_text())
    assert meta["data"]["split_end"] == "2021-02-01" and meta["data"]["dropped_after_split_end"] > 0


def test_train_models_without_items_skips_cb(tmp_path, small_csvs):
    interactions, _ = small_csvs
    err = io.StringIO()
    call_command(
        "train_models", "--interactions", str(interactions), "--out", str(tmp_path / "run"),
        "--factors", "4", "--iterations", "2", "--recs-format", "csv", "--mapping-format", "json",
        stdout=io.StringIO(), stderr=err,
    )  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["cf"]
    assert (tmp_path / "run" / "cf" / "customer_mapping.json").exists()
    assert "content-based model skipped" in err.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interactions", "missing.csv"], "missing.csv: no such file"),
        (["--interactions", "{bad}"], "missing column 'item_id'"),
        (["--interactions", "{good}", "--split-date", "01/02/2021"], "is not a date"),
        (["--interactions", "{good}", "--top-n", "0"], "--top-n 0 must be at least 1"),
        (["--interactions", "{good}", "--factors", "0"], "factors=0 must be at least 1"),
        (["--interactions", "{good}", "--split-end", "2021-02-01"], "--split-end needs --split-date"),
        (
            ["--interactions", "{good}", "--split-date", "2021-02-01", "--split-end", "1.3.2021"],
            "--split-end '1.3.2021' is not a date",
        ),
    ],
)
def test_train_models_bad_input_is_a_command_error(tmp_path, small_csvs, args, message):
    bad = write(tmp_path / "bad.csv", "customer_id,product\n1,2\n")
    args = [a.format(bad=bad, good=small_csvs[0]) for a in args]
    with pytest.raises(CommandError, match=message):
        call_command(
            "train_models", *args, "--out", str(tmp_path / "run"), stdout=io.StringIO(), stderr=io.StringIO()
        )
    assert not (tmp_path / "run" / "cf").exists()


# --- the real data set ---------------------------------------------------------------------


@pytest.mark.skipif(not ONLINE_RETAIL_FILE.is_file(), reason=ONLINE_RETAIL_MISSING)
def test_online_retail_trains_and_beats_popularity(tmp_path):
    from recommendations.training.pipeline import train_models

    summary = train_models(
        interactions_path=ONLINE_RETAIL_FILE,
        data_format="online-retail",
        split_date="2011-11-01",
        out_dir=tmp_path / "or",
        iterations=8,
        top_n=10,
    )
    assert summary["users"] == 3970 and summary["items"] == 3607
    metrics = summary["metrics"]
    assert metrics["users"] > 1000
    assert metrics["cf"]["ndcg"] > metrics["popularity"]["ndcg"]
    customer_mapping = load_pickle(tmp_path / "or" / "cf" / "customer_mapping.pkl")
    assert "12346" in customer_mapping  # ids without ".0"
    assert summary["cb_items"] > 3500


def wide_cb_folder(folder, n_items=40, n_features=1500):
    """Write a CB artifacts folder whose sparse features are wider than a bundle takes as they are."""
    folder.mkdir()
    rng = np.random.default_rng(5)
    features = scipy.sparse.random(n_items, n_features, density=0.02, random_state=rng, format="csr")
    features = features + scipy.sparse.eye(n_items, n_features, format="csr")  # no empty row
    scipy.sparse.save_npz(folder / "item_features.npz", features.astype(np.float32).tocsr())
    (folder / "item_mapping.json").write_text(json.dumps({f"I{i:03d}": i for i in range(n_items)}))
    return folder


def test_the_bundle_format_refuses_wide_features_instead_of_fitting_a_model(tmp_path):
    from modelstore.bundles import IncompatibleBundle, read_cb_artifacts

    folder = wide_cb_folder(tmp_path / "cb")
    with pytest.raises(IncompatibleBundle, match="item_features.npz has 1,500 columns.*reduce them first"):
        read_cb_artifacts(folder)


def test_training_reduces_wide_features_into_embeddings_the_format_reads(tmp_path):
    from modelstore.bundles import read_cb_artifacts

    folder = wide_cb_folder(tmp_path / "cb")
    cb.reduce_feature_folder(folder, n_components=16)

    assert not (folder / "item_features.npz").exists()
    arrays, _ = read_cb_artifacts(folder)
    vectors = arrays["item_vectors"]
    assert vectors.shape == (40, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
