"""Spark MLlib ALS in, bundles out: train in local[2], register, serve, and compare with Spark itself.

One JVM for the module: the session is opened once and ``train_models --engine spark`` uses
it (a session already active in the process is used as it is).
"""

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from modelstore.bundles import open_bundle
from modelstore.models import ModelVersion
from recommendations.services import HybridRecommendationService
from recommendations.training.data import load_dataset
from recommendations.training.spark import spark_available, spark_session
from tests.conftest import skip_or_fail

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

SPLIT_DATE = "2024-02-20"
TOP_N = 5
N_USERS, N_ITEMS = 120, 40
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spark():
    missing = spark_available()
    if missing:
        skip_or_fail(missing)
    with spark_session("local[2]") as session:
        yield session


def write_interactions(path):
    """Two tastes: even customers buy from the first half of the items, odd ones from the second."""
    rng = np.random.default_rng(0)
    rows = []
    half = N_ITEMS // 2
    for user in range(N_USERS):
        offset = 0 if user % 2 == 0 else half
        for item in rng.choice(half, size=8, replace=False):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 60)))
            rows.append((f"c{user:03d}", f"i{offset + item:02d}", int(rng.integers(1, 4)), day.isoformat()))
    pd.DataFrame(rows, columns=["customer_id", "item_id", "weight", "timestamp"]).to_csv(path, index=False)


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """Train with the command in local[2]; return the folders it wrote."""
    root = tmp_path_factory.mktemp("spark")
    interactions = root / "interactions.csv"
    write_interactions(interactions)
    out = io.StringIO()
    call_command(
        "train_models", "--engine", "spark", "--spark-master", "local[2]", "--interactions", str(interactions),
        "--split-date", SPLIT_DATE, "--out", str(root / "run"), "--spark-work-dir", str(root / "work"),
        "--factors", "8", "--iterations", "8", "--regularization", "5", "--alpha", "5", "--top-n", str(TOP_N),
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    dataset = load_dataset(interactions, split_date=dt.date.fromisoformat(SPLIT_DATE))
    return {
        "root": root,
        "run": root / "run",
        "work": root / "work",
        "dataset": dataset,
        "line": out.getvalue(),
    }


def spark_top(spark, work, customers, k):
    """Return Spark's own ``recommendForUserSubset`` answer: {customer: [(item, score), ...]}."""
    from pyspark.ml.feature import StringIndexerModel
    from pyspark.ml.recommendation import ALSModel

    model = ALSModel.load(work.joinpath("als").as_uri())
    user_index = StringIndexerModel.load(work.joinpath("user_index").as_uri())
    item_labels = StringIndexerModel.load(work.joinpath("item_index").as_uri()).labelsArray[0]
    subset = user_index.transform(spark.createDataFrame([(c,) for c in customers], ["customer_id"]))
    rows = model.recommendForUserSubset(subset.selectExpr("cast(user as int) as user"), k).collect()
    labels = user_index.labelsArray[0]
    return {labels[row.user]: [(item_labels[r.item], r.rating) for r in row.recommendations] for row in rows}


@pytest.mark.django_db
def test_a_spark_trained_bundle_serves_sparks_own_answers(spark, trained):
    dataset = trained["dataset"]
    assert trained["line"].startswith(f"Trained {N_USERS} users, {N_ITEMS} items")
    meta = json.loads((trained["run"] / "cf" / "metadata.json").read_text())
    assert meta["params"]["algorithm"] == "spark.ml.ALS" and meta["params"]["factors"] == 8

    call_command("bundle_models", "--cf-artifacts", str(trained["run"] / "cf"), "--label", "sp", "--activate")
    version = ModelVersion.objects.get(label="sp-cf")
    assert version.status == ModelVersion.Status.READY and version.is_active
    assert (version.n_users, version.n_items) == (N_USERS, N_ITEMS)

    customers = ["c000", "c001", "c052", "c119"]
    # All items ranked by Spark, then what the customer had before the split left out, as served.
    spark_answers = spark_top(spark, trained["work"], customers, N_ITEMS)
    service = HybridRecommendationService()
    for customer in customers:
        owned = set(dataset.item_ids[dataset.train[np.searchsorted(dataset.user_ids, customer)].indices])
        expected = [(item, score) for item, score in spark_answers[customer] if item not in owned][:TOP_N]
        served = service.get_personalized_cf(customer, k=TOP_N)
        assert [item["item_id"] for item in served] == [item for item, _ in expected]
        np.testing.assert_allclose([item["score"] for item in served], [s for _, s in expected], rtol=1e-4)
        # The two tastes come through: even customers get first-half items.
        first_half = int(customer[1:]) % 2 == 0
        assert all((int(item["item_id"][1:]) < N_ITEMS // 2) == first_half for item in served)


@pytest.mark.django_db
def test_evaluate_model_on_a_spark_version_gives_the_metrics_table(trained):
    call_command("bundle_models", "--cf-artifacts", str(trained["run"] / "cf"), "--label", "sp")
    out = io.StringIO()
    call_command(
        "evaluate_model", "sp-cf", "--test", str(trained["run"] / "test.csv"), "--k", "10", stdout=out
    )

    lines = out.getvalue().splitlines()
    assert lines[1].split() == [
        "strategy", "precision@10", "recall@10", "ndcg@10", "map@10", "coverage", "fallback_share",
    ]  # fmt: skip
    rows = {line.split()[0]: [float(value) for value in line.split()[1:]] for line in lines[2:4]}
    assert list(rows) == ["cf", "popular"]
    # Two clear tastes: Spark's factors beat the most popular items on NDCG.
    assert rows["cf"][2] > rows["popular"][2]


def bundle_without_pyspark(tmp_path, *args):
    """Run ``bundle_models --from-spark-als ... --out`` in a process where pyspark cannot be imported."""
    out = tmp_path / "spark.joblib"
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'hybridrec.settings'; django.setup()\n"
        "from django.core.management import call_command\n"
        f"call_command('bundle_models', *{[str(a) for a in args]!r}, '--out', {str(out)!r})\n"
        "assert 'pyspark.sql' not in sys.modules\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )
    return open_bundle(out).arrays


def test_a_saved_als_model_bundles_where_pyspark_cannot_be_imported(spark, trained, tmp_path):
    work = trained["work"]
    named = bundle_without_pyspark(
        tmp_path, "--from-spark-als", work / "als", "--user-index", work / "user_index",
        "--item-index", work / "item_index",
    )  # fmt: skip
    plain = bundle_without_pyspark(tmp_path, "--from-spark-als", work / "als")

    dataset = trained["dataset"]
    assert sorted(named["user_ids"].tolist()) == dataset.user_ids.tolist()
    assert sorted(named["item_ids"].tolist()) == dataset.item_ids.tolist()
    assert sorted(plain["user_ids"].tolist(), key=int) == [str(i) for i in range(N_USERS)]
    # The same factors under either name; precomputed answers are Spark's, nothing left out.
    cf = np.load(trained["run"] / "cf" / "user_factors.npy")
    row = np.searchsorted(dataset.user_ids, "c052")
    named_row = named["user_ids"].tolist().index("c052")
    np.testing.assert_allclose(named["user_factors"][named_row], cf[row])
    start, stop = named["recs_indptr"][named_row : named_row + 2]
    served = named["item_ids"][named["recs_indices"][start:stop]][:TOP_N].tolist()
    assert served == [item for item, _ in spark_top(spark, work, ["c052"], TOP_N)["c052"]]
