"""make_demo_data: synthetic seed-layout CF and CB folders with a realistic shape."""

import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from django.core.management import CommandError, call_command


class BuiltinsOnly(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


def load_mapping(path):
    with open(path, "rb") as fh:
        return BuiltinsOnly(fh).load()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(
        "make_demo_data", str(out), "--users", "500", "--items", "120", "--factors", "16",
        "--seed", "7", "--recs-share", "0.4", "--top-n", "10",
        stdout=stdout, stderr=stderr,
    )  # fmt: skip
    return out, stdout.getvalue(), stderr.getvalue()


def test_writes_seed_layout_folders(demo):
    out, stdout, _ = demo
    assert sorted(p.name for p in (out / "cf").iterdir()) == [
        "customer_mapping.pkl",
        "interactions.npz",
        "item_factors.npy",
        "item_mapping.pkl",
        "item_popularity.npy",
        "metadata.json",
        "recommendations.parquet",
        "user_factors.npy",
    ]
    assert sorted(p.name for p in (out / "cb").iterdir()) == [
        "item_embeddings.npy",
        "item_mapping.pkl",
        "items.csv",
        "metadata.json",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["cb", "cf", "interactions.csv", "items.csv"]
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Wrote demo data: 500 users, 120 items")
    assert "interactions.csv, items.csv" in lines[0]


def test_cf_shapes_dtypes_and_ids(demo):
    cf = demo[0] / "cf"
    user_factors = np.load(cf / "user_factors.npy")
    item_factors = np.load(cf / "item_factors.npy")
    assert user_factors.dtype == np.float32 and user_factors.shape == (500, 16)
    assert item_factors.dtype == np.float32 and item_factors.shape == (120, 16)
    customers = load_mapping(cf / "customer_mapping.pkl")
    items = load_mapping(cf / "item_mapping.pkl")
    assert len(customers) == 500 and customers["C000000"] == 0 and customers["C000499"] == 499
    assert sorted(items.values()) == list(range(120))
    assert all(len(item) in (5, 6) and item[:5].isdigit() for item in items)
    meta = json.loads((cf / "metadata.json").read_text())
    assert meta["synthetic"] is True and meta["n_users"] == 500 and meta["factors"] == 16


def test_interactions_and_popularity_are_skewed(demo):
    cf = demo[0] / "cf"
    interactions = scipy.sparse.load_npz(cf / "interactions.npz")
    assert interactions.format == "csr" and interactions.shape == (500, 120)
    per_customer = np.diff(interactions.indptr)
    assert per_customer.min() >= 1 and per_customer.max() <= 60 and 3 <= np.median(per_customer) <= 12
    popularity = np.load(cf / "item_popularity.npy")
    assert popularity.dtype == np.float32
    np.testing.assert_array_equal(popularity, np.bincount(interactions.indices, minlength=120))
    top_tenth = np.sort(popularity)[::-1][:12].sum() / popularity.sum()
    assert top_tenth > 0.25  # the 10 % most popular items take a large share


def test_recommendations_cover_part_of_customers_and_skip_owned_items(demo):
    cf = demo[0] / "cf"
    recs = pd.read_parquet(cf / "recommendations.parquet")
    assert list(recs.columns) == ["customer_id", "item_id", "score", "rank"]
    assert recs["customer_id"].nunique() == 200  # --recs-share 0.4 of 500
    assert recs.groupby("customer_id").size().max() == 10
    customers = load_mapping(cf / "customer_mapping.pkl")
    items = load_mapping(cf / "item_mapping.pkl")
    interactions = scipy.sparse.load_npz(cf / "interactions.npz")
    rows = recs["customer_id"].map(customers).to_numpy()
    cols = recs["item_id"].map(items).to_numpy()
    assert (np.asarray(interactions[rows, cols]).ravel() == 0).all()
    # The precomputed lists are the exact top of user_factors @ item_factors.T.
    user_factors = np.load(cf / "user_factors.npy")
    item_factors = np.load(cf / "item_factors.npy")
    np.testing.assert_allclose(
        recs["score"].to_numpy(),
        np.einsum("ij,ij->i", user_factors[rows], item_factors[cols]),
        rtol=1e-4,
        atol=1e-5,
    )
    first = recs[recs["customer_id"] == recs["customer_id"].iloc[0]]
    row = customers[first["customer_id"].iloc[0]]
    scores = user_factors[row] @ item_factors.T
    scores[interactions[row].indices] = -np.inf
    assert first["item_id"].map(items).tolist() == np.argsort(-scores)[:10].tolist()


def test_scores_follow_popularity(demo):
    cf = demo[0] / "cf"
    scores = np.load(cf / "user_factors.npy") @ np.load(cf / "item_factors.npy").T
    popularity = np.load(cf / "item_popularity.npy")
    assert np.corrcoef(scores.mean(axis=0), np.log1p(popularity))[0, 1] > 0.3


def test_cb_has_product_names_and_unit_vectors(demo):
    cb = demo[0] / "cb"
    vectors = np.load(cb / "item_embeddings.npy")
    assert vectors.dtype == np.float32 and vectors.shape[0] == 120 and vectors.shape[1] <= 16
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    items = pd.read_csv(cb / "items.csv", dtype=str)
    assert list(items.columns) == ["item_id", "title"]
    assert items["title"].str.fullmatch(r"[A-Z0-9 -]+").all()
    assert load_mapping(cb / "item_mapping.pkl") == load_mapping(demo[0] / "cf" / "item_mapping.pkl")


def test_csvs_hold_the_purchases_and_the_catalogue(demo):
    out = demo[0]
    events = pd.read_csv(out / "interactions.csv", dtype={"customer_id": str, "item_id": str})
    assert list(events.columns) == ["customer_id", "item_id", "weight", "timestamp"]
    interactions = scipy.sparse.load_npz(out / "cf" / "interactions.npz")
    assert len(events) == interactions.nnz and not events.duplicated(["customer_id", "item_id"]).any()
    customers = load_mapping(out / "cf" / "customer_mapping.pkl")
    items = load_mapping(out / "cf" / "item_mapping.pkl")
    rebuilt = scipy.sparse.csr_matrix(
        (events["weight"], (events["customer_id"].map(customers), events["item_id"].map(items))),
        shape=interactions.shape,
    )
    assert (rebuilt != interactions).nnz == 0  # the same purchases, weights are the counts
    dates = pd.to_datetime(events["timestamp"], format="%Y-%m-%d")
    assert dates.dt.year.unique().tolist() == [2024] and dates.nunique() > 100
    catalogue = pd.read_csv(out / "items.csv", dtype=str)
    assert list(catalogue.columns) == ["item_id", "title"]
    assert (
        catalogue["item_id"].tolist() == pd.read_csv(out / "cb" / "items.csv", dtype=str)["item_id"].tolist()
    )
    assert set(catalogue["item_id"]) == set(items)


@pytest.mark.django_db
def test_demo_csvs_train_and_bundle(demo, tmp_path):
    """What ``make demo`` runs: make_demo_data, then train_models on its CSVs, then bundle_models."""
    from modelstore.models import ModelVersion

    out = demo[0]
    stdout = io.StringIO()
    call_command(
        "train_models", "--interactions", str(out / "interactions.csv"), "--items", str(out / "items.csv"),
        "--split-date", "2024-11-01", "--out", str(tmp_path / "trained"), "--factors", "8",
        stdout=stdout, stderr=io.StringIO(),
    )  # fmt: skip
    assert stdout.getvalue().startswith("Trained ") and "; CB 120 items; ndcg@10 " in stdout.getvalue()
    call_command(
        "bundle_models", "--cf-artifacts", str(tmp_path / "trained" / "cf"),
        "--cb-artifacts", str(tmp_path / "trained" / "cb"), "--activate",
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    active = {v.kind: v for v in ModelVersion.objects.filter(is_active=True)}
    assert set(active) == {"cf", "cb"} and all(v.status == "ready" for v in active.values())
    assert active["cf"].n_factors == 8 and active["cb"].n_items == 120


def test_same_seed_same_data(tmp_path, demo):
    call_command(
        "make_demo_data", str(tmp_path / "again"), "--users", "500", "--items", "120", "--factors", "16",
        "--seed", "7", "--recs-share", "0.4", "--top-n", "10", stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    for name in ("cf/user_factors.npy", "cf/item_factors.npy", "cb/item_embeddings.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / "again" / name), np.load(demo[0] / name))
    for name in ("interactions.csv", "items.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (demo[0] / name).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--items", "1"], "at least 1 user and 2 items"), (["--recs-share", "1.5"], "between 0 and 1")],
)
def test_bad_arguments_are_command_errors(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "make_demo_data", str(tmp_path / "bad"), *args, stdout=io.StringIO(), stderr=io.StringIO()
        )
