"""A saved Spark ALSModel folder becomes a CF bundle without Spark (``bundle_models --from-spark-als``).

The folders here are written with pyarrow in the layout Spark's ``model.write().save()``
leaves; tests/recommendations/test_spark.py does the same with folders Spark itself saved.
"""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from modelstore.bundles import open_bundle
from modelstore.models import ModelVersion


def spark_metadata(folder, cls, **extra):
    (folder / "metadata").mkdir(parents=True)
    (folder / "metadata" / "part-00000").write_text(
        json.dumps({"class": cls, "sparkVersion": "4.3.0", **extra})
    )
    (folder / "metadata" / "_SUCCESS").write_text("")


def factors_parquet(folder, ids, factors):
    folder.mkdir()
    # Spark writes one file per partition, rows in no particular order.
    half = len(ids) // 2
    for part, rows in enumerate((slice(half, None), slice(None, half))):
        table = pa.table(
            {
                "id": pa.array(np.asarray(ids[rows], np.int32)),
                "features": pa.array(
                    [list(map(float, row)) for row in factors[rows]], pa.list_(pa.float32())
                ),
            }
        )
        pq.write_table(table, folder / f"part-0000{part}.snappy.parquet")
    (folder / "_SUCCESS").write_text("")


@pytest.fixture
def als_dir(tmp_path):
    """Return a saved-ALSModel-shaped folder: 5 users x 4 items, rank 3, and its factors."""
    rng = np.random.default_rng(0)
    users = rng.normal(size=(5, 3)).astype(np.float32)
    items = rng.normal(size=(4, 3)).astype(np.float32)
    folder = tmp_path / "als"
    spark_metadata(folder, "org.apache.spark.ml.recommendation.ALSModel", rank=3)
    factors_parquet(folder / "userFactors", np.arange(5), users)
    factors_parquet(folder / "itemFactors", np.arange(4), items)
    return folder, users, items


def string_indexer(folder, labels):
    spark_metadata(folder, "org.apache.spark.ml.feature.StringIndexerModel")
    (folder / "data").mkdir()
    pq.write_table(pa.table({"labelsArray": [[labels]]}), folder / "data" / "part-00000.snappy.parquet")


def build(*args):
    call_command("bundle_models", "--from-spark-als", *map(str, args))
    return ModelVersion.objects.get()


@pytest.mark.django_db
def test_integer_ids_are_the_ids_without_an_index(als_dir):
    folder, users, items = als_dir
    version = build(folder, "--label", "spark")

    assert version.status == ModelVersion.Status.READY and version.label == "spark-cf"
    arrays = open_bundle(version.file.path).arrays
    assert arrays["user_ids"].tolist() == ["0", "1", "2", "3", "4"]
    np.testing.assert_array_equal(arrays["user_factors"], users)
    np.testing.assert_array_equal(arrays["item_factors"], items)
    # Every customer's precomputed items are all items by dot product, best first.
    for user in range(5):
        start, stop = arrays["recs_indptr"][user : user + 2]
        expected = np.argsort(-(items @ users[user]), kind="stable")
        assert arrays["recs_indices"][start:stop].tolist() == expected.tolist()


@pytest.mark.django_db
def test_a_string_indexer_and_an_index_parquet_bring_the_original_ids_back(als_dir, tmp_path):
    folder, users, _ = als_dir
    string_indexer(tmp_path / "user_index", ["C5", "C1", "C4", "C2", "C3"])
    pq.write_table(
        pa.table({"index": [3, 0, 2, 1], "id": ["P3", "P0", "P2", "P1"]}), tmp_path / "items.parquet"
    )
    version = build(
        folder, "--user-index", tmp_path / "user_index", "--item-index", tmp_path / "items.parquet"
    )

    arrays = open_bundle(version.file.path).arrays
    assert arrays["user_ids"].tolist() == ["C5", "C1", "C4", "C2", "C3"]
    assert arrays["item_ids"].tolist() == ["P0", "P1", "P2", "P3"]
    np.testing.assert_array_equal(arrays["user_factors"][1], users[1])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder, tmp: (folder / "metadata" / "part-00000").unlink(), "is not a saved Spark model"),
        (
            lambda folder, tmp: (folder / "metadata" / "part-00000").write_text(
                '{"class": "x.Other", "rank": 3}'
            ),
            "is a x.Other, not a org.apache.spark.ml.recommendation.ALSModel",
        ),
        (
            lambda folder, tmp: pq.write_table(
                pa.table({"index": [0, 1], "id": ["A", "B"]}), tmp / "short.parquet"
            ),
            "the user index names no id for 3 of Spark's users, e.g. 2",
        ),
    ],
)
def test_a_bad_model_folder_or_index_is_a_one_line_error_and_no_row(als_dir, tmp_path, damage, message):
    folder, _, _ = als_dir
    damage(folder, tmp_path)
    args = ["--user-index", tmp_path / "short.parquet"] if (tmp_path / "short.parquet").exists() else []

    with pytest.raises(CommandError, match=message):
        build(folder, *args)
    assert not ModelVersion.objects.exists()


def test_index_options_need_a_spark_model():
    with pytest.raises(CommandError, match="--user-index and --item-index need --from-spark-als"):
        call_command("bundle_models", "--user-index", "x")
