"""Collaborative filtering with Spark MLlib's ALS: fit, top-N for every customer, factors back as arrays.

The cleaned, split interactions (the same ``Dataset`` the implicit engine trains on) go to
Spark as a Parquet file of (customer_id, item_id, weight). Spark indexes the ids with
``StringIndexer``, fits ``ALS(implicitPrefs=True)``, ranks every customer's items with
``recommendForAllUsers`` (what a customer already has is left out with an anti-join, as
implicit does) and writes the model, the indexers and the ranking as Parquet. Only Parquet
comes back, read with pyarrow into numpy: nothing customer-sized is collected to the driver.

On a cluster, ``work_dir`` must be a folder the driver and every executor see (a shared
mount); the saved ``als/``, ``user_index/`` and ``item_index/`` stay there and can be
registered again with ``bundle_models --from-spark-als``.
"""

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from modelstore.bundles.spark import read_als_model, read_index

from .cf import CFModel
from .exceptions import TrainingError

LOCAL_MASTER_PREFIX = "local"
# Few shuffle partitions: the default 200 is meant for clusters, not local[2].
LOCAL_SHUFFLE_PARTITIONS = 4


def spark_available():
    """Return None when pyspark and a Java runtime are there, else why not."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -r requirements-spark.txt)"
    if shutil.which("java") is None and not _java_home_java():
        return "no Java runtime (java) for Spark: install openjdk-17-jre-headless"
    return None


def _java_home_java():
    import os

    home = os.environ.get("JAVA_HOME")
    return bool(home) and (Path(home) / "bin" / "java").exists()


@contextmanager
def spark_session(master=None, *, app_name="hybridrec-train"):
    """Yield a SparkSession on ``master`` (None: what spark-submit or pyspark defaults to); stop it after.

    A session already active in this process is used as it is and left running. A
    ``local[...]`` master named here stays on loopback with the UI off; without one,
    spark-submit's configuration is left alone.
    """
    missing = spark_available()
    if missing:
        raise TrainingError(f"--engine spark needs Spark: {missing}.")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # e.g. under spark-submit's own session, or a caller's: theirs to stop
        yield active
        return
    builder = SparkSession.builder.appName(app_name).config("spark.ui.showConsoleProgress", "false")
    if master:
        builder = builder.master(master)
    if master and master.startswith(LOCAL_MASTER_PREFIX):
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def train_spark_als(
    dataset,
    *,
    factors,
    iterations,
    regularization,
    alpha,
    top_n,
    random_state=0,
    master=None,
    work_dir=None,
    spark=None,
):
    """Fit MLlib ALS on ``dataset.train``; return ``(CFModel, item_rows int32 (n_users, N), scores float32)``.

    Rows follow ``dataset.user_ids`` / ``dataset.item_ids``; N is ``min(top_n, n_items)``,
    with -1 rows and -inf scores where a customer has fewer unseen items. ``alpha`` is the
    confidence ``1 + alpha * weight`` in both libraries; ``regularization`` has implicit's
    meaning and becomes MLlib's ``regParam`` through ``reg_param``. Without ``work_dir`` a
    temporary folder is used and removed.
    """
    for name, value in (("factors", factors), ("iterations", iterations), ("top_n", top_n)):
        if int(value) < 1:
            raise TrainingError(f"{name}={value!r} must be at least 1.")
    for name, value in (("regularization", regularization), ("alpha", alpha)):
        if not float(value) > 0:
            raise TrainingError(f"{name}={value!r} must be positive.")
    own_dir = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="spark-als-") if own_dir else work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        pairs_path = _write_pairs(dataset, work / "interactions.parquet")
        params = {
            "algorithm": "spark.ml.ALS",
            "factors": int(factors),
            "iterations": int(iterations),
            "regularization": float(regularization),
            "reg_param": reg_param(regularization, dataset.train),
            "alpha": float(alpha),
            "random_state": random_state,
        }
        try:
            if spark is None:
                with spark_session(master) as session:
                    fit_seconds, n = _fit_and_rank(session, pairs_path, work, dataset, params, top_n)
                    params["spark_master"] = session.sparkContext.master
            else:
                fit_seconds, n = _fit_and_rank(spark, pairs_path, work, dataset, params, top_n)
                params["spark_master"] = spark.sparkContext.master
        except TrainingError:
            raise
        except Exception as exc:  # Py4J and PySpark errors have no common base worth naming
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise TrainingError(f"Spark failed: {first.strip()}") from exc
        model = _model_in_dataset_order(work, dataset, params, fit_seconds)
        item_rows, scores = _ranking(work, dataset, n)
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
    return model, item_rows, scores


def reg_param(regularization, user_items):
    """Return MLlib's ``regParam`` for implicit's ``regularization`` on ``user_items``.

    implicit adds ``regularization * |x|^2`` per user and item; MLlib adds ``regParam * n * |x|^2``,
    n being that user's or item's number of ratings. Dividing by the mean n over users and
    items gives the same total penalty, so one ``--regularization`` means the same in both.
    """
    n_users, n_items = user_items.shape
    mean_ratings = 2 * user_items.nnz / (n_users + n_items)
    return float(regularization) / max(mean_ratings, 1.0)


def _uri(path):
    return Path(path).resolve().as_uri()


def _write_pairs(dataset, path):
    """Write the training pairs as Parquet (customer_id, item_id, weight) from the CSR matrix."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    coo = dataset.train.tocoo()
    table = pa.table(
        {
            "customer_id": pa.array(dataset.user_ids[coo.row]),
            "item_id": pa.array(dataset.item_ids[coo.col]),
            "weight": pa.array(coo.data.astype(np.float32)),
        }
    )
    pq.write_table(table, path)
    return path


def _fit_and_rank(spark, pairs_path, work, dataset, params, top_n):
    """Fit in Spark, save model and indexers, write every customer's unseen top-N; return (seconds, N)."""
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if spark.sparkContext.getCheckpointDir() is None:
        # ALS checkpoints every 10 iterations only with a folder for it; without, the lineage of
        # 20 iterations overflows the executors' stacks.
        spark.sparkContext.setCheckpointDir(_uri(work / "checkpoints"))
    pairs = spark.read.parquet(_uri(pairs_path))
    user_indexer = StringIndexer(inputCol="customer_id", outputCol="user", stringOrderType="alphabetAsc")
    item_indexer = StringIndexer(inputCol="item_id", outputCol="item", stringOrderType="alphabetAsc")
    user_index = user_indexer.fit(pairs)
    item_index = item_indexer.fit(pairs)
    indexed = item_index.transform(user_index.transform(pairs)).select(
        F.col("user").cast("int"), F.col("item").cast("int"), "weight"
    )
    als = ALS(
        rank=params["factors"],
        maxIter=params["iterations"],
        regParam=params["reg_param"],
        alpha=params["alpha"],
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="weight",
        seed=int(params["random_state"] or 0),
    )
    if spark.sparkContext.master.startswith(LOCAL_MASTER_PREFIX):
        # One block per core: MLlib's default of 10 is for clusters and only adds tasks here.
        blocks = spark.sparkContext.defaultParallelism
        als.setNumUserBlocks(blocks).setNumItemBlocks(blocks)
    started = time.perf_counter()
    model = als.fit(indexed)
    model.write().overwrite().save(_uri(work / "als"))
    fit_seconds = time.perf_counter() - started
    user_index.write().overwrite().save(_uri(work / "user_index"))
    item_index.write().overwrite().save(_uri(work / "item_index"))

    # Rank enough items that every customer still has N once what they have is left out.
    n = min(int(top_n), dataset.n_items)
    max_owned = int(np.diff(dataset.train.indptr).max(initial=0))
    ranked = model.recommendForAllUsers(min(n + max_owned, dataset.n_items))
    candidates = ranked.select("user", F.explode("recommendations").alias("r")).select(
        "user", F.col("r.item").alias("item"), F.col("r.rating").alias("score")
    )
    unseen = candidates.join(indexed.select("user", "item"), on=["user", "item"], how="left_anti")
    by_score = Window.partitionBy("user").orderBy(F.desc("score"), F.asc("item"))
    (
        unseen.withColumn("rank", F.row_number().over(by_score))
        .where(F.col("rank") <= n)
        .write.mode("overwrite")
        .parquet(_uri(work / "recommendations"))
    )
    return fit_seconds, n


def _model_in_dataset_order(work, dataset, params, fit_seconds):
    """Read the saved factors with pyarrow and put their rows in the dataset's id order."""
    saved = read_als_model(work / "als", user_index=work / "user_index", item_index=work / "item_index")
    if len(saved.user_ids) != dataset.n_users or len(saved.item_ids) != dataset.n_items:
        raise TrainingError(
            f"Spark kept factors for {len(saved.user_ids)} customers and {len(saved.item_ids)} items, "
            f"expected {dataset.n_users} and {dataset.n_items}."
        )
    user_factors = np.empty((dataset.n_users, saved.rank), dtype=np.float32)
    item_factors = np.empty((dataset.n_items, saved.rank), dtype=np.float32)
    user_factors[_rows_of(saved.user_ids, dataset.user_ids, "customer")] = saved.user_factors
    item_factors[_rows_of(saved.item_ids, dataset.item_ids, "item")] = saved.item_factors
    return CFModel(
        user_factors=user_factors,
        item_factors=item_factors,
        params={**params, "pyspark": saved.spark_version},
        fit_seconds=fit_seconds,
        als=_implicit_model(user_factors, item_factors),
    )


def _rows_of(spark_ids, dataset_ids, kind):
    """Return the row in ``dataset_ids`` (sorted or not) of each of ``spark_ids``."""
    order = np.argsort(dataset_ids, kind="stable")
    at = np.minimum(np.searchsorted(dataset_ids, spark_ids, sorter=order), len(dataset_ids) - 1)
    rows = order[at]
    if (dataset_ids[rows] != spark_ids).any():
        raise TrainingError(f"Spark's {kind} ids do not match the training data's.")
    return rows


def _implicit_model(user_factors, item_factors):
    """Return implicit's ALS holding Spark's factors, for the same ``recommend`` the implicit engine has."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=user_factors.shape[1], dtype=np.float32)
    als.user_factors = user_factors
    als.item_factors = item_factors
    return als


def _ranking(work, dataset, n):
    """Read Spark's ranking (Parquet user, item, score, rank) into ``(item_rows (n_users, N), scores)``."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(work / "recommendations"), columns=["user", "item", "score", "rank"])
    # Spark's integer ids -> dataset rows, through the saved indexers.
    user_row_of = _rows_of(read_index(work / "user_index")[1], dataset.user_ids, "customer")
    item_row_of = _rows_of(read_index(work / "item_index")[1], dataset.item_ids, "item")
    users = user_row_of[table.column("user").to_numpy()]
    ranks = table.column("rank").to_numpy().astype(np.int64) - 1
    item_rows = np.full((dataset.n_users, n), -1, dtype=np.int32)
    scores = np.full((dataset.n_users, n), -np.inf, dtype=np.float32)
    item_rows[users, ranks] = item_row_of[table.column("item").to_numpy()]
    scores[users, ranks] = table.column("score").to_numpy()
    return item_rows, scores
