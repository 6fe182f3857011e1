"""Read a saved Spark MLlib ``ALSModel`` directory with pyarrow, without Spark.

``model.write().save(DIR)`` leaves ``DIR/metadata/`` (one JSON line naming the class and
the rank) and ``DIR/userFactors/``, ``DIR/itemFactors/`` (Parquet: ``id`` int, ``features``
list of float). Spark's integer ids become the original ids through an index:

- a saved ``StringIndexerModel`` directory (its ``data/`` Parquet holds ``labelsArray``;
  index i is label i), one model per id column, or
- a Parquet file or directory with the columns ``index`` (int) and ``id``.

Without an index the integer ids are the ids. ``write_als_artifacts`` turns the model into
a CF artifacts folder that the registry builds like any other.

The folders are untrusted: a link inside one that leads outside it is refused, and what the
Parquet footers and the metadata's rank claim is charged to ``Limits.max_bytes`` before the
factors are read or the recommendations computed.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .exceptions import CorruptBundle, IncompatibleBundle
from .filebudget import read_parquet_table, refuse_links_outside
from .layout import id_array
from .limits import DEFAULT_LIMITS, MIB, Budget

ALS_CLASS = "org.apache.spark.ml.recommendation.ALSModel"
INDEXER_CLASS = "org.apache.spark.ml.feature.StringIndexerModel"
DEFAULT_TOP_N = 50
TOP_N_BATCH_USERS = 4096
# Most bytes one batch of scores may hold while it is ranked (scores, their negation, the
# partition's int64 rows, the tie masks): the batch shrinks with the number of items.
TOP_N_WORK_BYTES = 256 * MIB
TOP_N_BYTES_PER_SCORE = 24
# Spark's metadata is one JSON line of a few hundred bytes.
MAX_METADATA_BYTES = 64 * 1024


@dataclass
class ALSFactors:
    """Factors of a saved ALSModel: ids (n,) text, factors float32 (n, rank)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    rank: int
    spark_version: str


def read_spark_metadata(path):
    """Return the JSON metadata line Spark wrote to ``path/metadata/``."""
    folder = Path(path) / "metadata"
    parts = sorted(p for p in folder.glob("part-*") if p.is_file()) if folder.is_dir() else []
    if not parts:
        raise IncompatibleBundle(f"{Path(path).name}/ is not a saved Spark model (no metadata/part-* file)")
    try:
        with parts[0].open("rb") as handle:
            line = handle.readline(MAX_METADATA_BYTES + 1)
        if len(line) > MAX_METADATA_BYTES:
            raise CorruptBundle(f"{Path(path).name}/metadata has a line over {MAX_METADATA_BYTES:,} bytes")
        return json.loads(line)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise CorruptBundle(f"{Path(path).name}/metadata is not Spark's JSON: {exc}") from exc


def _parquet(path, columns, budget):
    table = read_parquet_table(path, budget)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise CorruptBundle(
            f"{Path(path).name} lacks column(s) {', '.join(missing)} (found: {', '.join(table.column_names)})"
        )
    return table


def _factors(path, rank, budget):
    """Return ``(ids int64 (n,), factors float32 (n, rank))`` from a factors Parquet folder."""
    import pyarrow as pa

    table = _parquet(path, ("id", "features"), budget)
    # Converted: ids and their order (int64), the values flattened, cast, reshaped and ordered.
    budget.charge(table.num_rows * (3 * 8 + 3 * 4 * rank), f"{Path(path).name} as {rank}-wide factors")
    ids = table.column("id").to_numpy().astype(np.int64)
    features = table.column("features").combine_chunks()
    if not pa.types.is_list(features.type) and not pa.types.is_large_list(features.type):
        raise CorruptBundle(f"{Path(path).name}: features is {features.type}, not a list of floats")
    if features.null_count:
        raise CorruptBundle(f"{Path(path).name}: {features.null_count} rows have no features")
    lengths = np.diff(features.offsets.to_numpy())
    if len(lengths) and (lengths != rank).any():
        raise CorruptBundle(f"{Path(path).name}: factor rows are not all {rank} long (the model's rank)")
    values = features.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = values.reshape(len(ids), rank)
    if not np.isfinite(matrix).all():
        raise CorruptBundle(f"{Path(path).name} holds NaN or infinite factors")
    if len(np.unique(ids)) != len(ids) or (len(ids) and ids.min() < 0):
        raise CorruptBundle(f"{Path(path).name}: ids are not distinct non-negative integers")
    order = np.argsort(ids, kind="stable")
    return ids[order], np.ascontiguousarray(matrix[order])


def read_index(path, *, limits=DEFAULT_LIMITS):
    """Return ``(index int64 (n,), ids text (n,))``: Spark's integer ``index[i]`` stands for ``ids[i]``."""
    path = Path(path)
    budget = Budget(limits.max_bytes)
    if path.is_dir():
        refuse_links_outside(path)
    if (path / "metadata").is_dir():
        meta = read_spark_metadata(path)
        if meta.get("class") != INDEXER_CLASS:
            raise IncompatibleBundle(f"{path.name}/ is a {meta.get('class')}, not a {INDEXER_CLASS}")
        labels = _parquet(path / "data", ("labelsArray",), budget).column("labelsArray").to_pylist()
        if len(labels) != 1 or len(labels[0]) != 1:
            raise IncompatibleBundle(
                f"{path.name}/ indexes several columns: save one StringIndexerModel per id column"
            )
        ids = id_array(labels[0][0])
        return np.arange(len(ids), dtype=np.int64), ids
    if not path.exists():
        raise IncompatibleBundle(f"index {path} does not exist")
    table = _parquet(path, ("index", "id"), budget)
    if table.column("index").null_count or table.column("id").null_count:
        raise CorruptBundle(f"{path.name}: index or id values are missing")
    index = table.column("index").to_numpy().astype(np.int64)
    return index, id_array(table.column("id").to_pylist())


def _named(rows, index, kind):
    """Return the ids of Spark's integer ``rows`` through ``index`` (from ``read_index``), or as text."""
    if index is None:
        return id_array(rows.tolist())
    numbers, ids = index
    order = np.argsort(numbers, kind="stable")
    numbers, ids = numbers[order], ids[order]
    if len(np.unique(numbers)) != len(numbers):
        raise CorruptBundle(f"the {kind} index names a Spark id twice")
    at = np.minimum(np.searchsorted(numbers, rows), max(len(numbers) - 1, 0))
    unnamed = rows[(numbers[at] != rows) if len(numbers) else np.ones(len(rows), bool)]
    if len(unnamed):
        raise CorruptBundle(
            f"the {kind} index names no id for {len(unnamed)} of Spark's {kind}s, e.g. {int(unnamed[0])}"
        )
    return ids[at]


def read_als_model(model_dir, *, user_index=None, item_index=None, limits=DEFAULT_LIMITS):
    """Return the ``ALSFactors`` of a saved ALSModel, ids named through the optional indexes.

    The factors of both kinds are charged to one budget of ``limits.max_bytes``.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise IncompatibleBundle(f"Spark model folder {model_dir} does not exist or is not a folder")
    refuse_links_outside(model_dir)
    meta = read_spark_metadata(model_dir)
    if meta.get("class") != ALS_CLASS:
        raise IncompatibleBundle(f"{model_dir.name}/ is a {meta.get('class')}, not a {ALS_CLASS}")
    rank = meta.get("rank")
    if not isinstance(rank, int) or rank < 1:
        raise CorruptBundle(f"{model_dir.name}/metadata has no usable rank ({rank!r})")
    budget = Budget(limits.max_bytes)
    user_rows, user_factors = _factors(model_dir / "userFactors", rank, budget)
    item_rows, item_factors = _factors(model_dir / "itemFactors", rank, budget)
    if not len(user_rows) or not len(item_rows):
        raise CorruptBundle(f"{model_dir.name}/ has no user or no item factors")
    user_ids = _named(user_rows, read_index(user_index, limits=limits) if user_index else None, "user")
    item_ids = _named(item_rows, read_index(item_index, limits=limits) if item_index else None, "item")
    for kind, ids in (("user", user_ids), ("item", item_ids)):
        if len(np.unique(ids)) != len(ids):
            raise CorruptBundle(f"the {kind} index gives two Spark ids the same name")
    return ALSFactors(
        user_ids=user_ids,
        item_ids=item_ids,
        user_factors=user_factors,
        item_factors=item_factors,
        rank=rank,
        spark_version=str(meta.get("sparkVersion", "")),
    )


def top_n_items(user_factors, item_factors, *, n, batch_users=TOP_N_BATCH_USERS):
    """Return every user's best ``n`` items by dot product: ``(item_rows int32 (users, n), scores float32)``.

    Nothing is left out (a saved ALSModel carries no interactions), as Spark's
    ``recommendForAllUsers`` does. Ties go to the lower item row. Users are scored in
    batches of at most ``TOP_N_WORK_BYTES`` of working memory, whatever the number of items.
    """
    n_items = item_factors.shape[0]
    n = min(int(n), n_items)
    n_users = user_factors.shape[0]
    batch_users = max(1, min(int(batch_users), TOP_N_WORK_BYTES // max(1, n_items * TOP_N_BYTES_PER_SCORE)))
    rows = np.empty((n_users, n), dtype=np.int32)
    scores = np.empty((n_users, n), dtype=np.float32)
    for start in range(0, n_users, batch_users):
        stop = min(start + batch_users, n_users)
        batch = user_factors[start:stop] @ item_factors.T
        best = _best_rows(batch, n)
        rows[start:stop] = best
        scores[start:stop] = np.take_along_axis(batch, best, axis=1)
    return rows, scores


def _best_rows(batch, n):
    """Return the rows of each row's ``n`` highest scores, highest first, ties to the lower row."""
    if n == batch.shape[1] or not np.isfinite(batch).all():
        # A stable sort of the negated scores keeps ties in item order.
        return np.argsort(-batch, axis=1, kind="stable")[:, :n]
    # The n-th highest score of each row, found in linear time; every score above it is in,
    # and of the scores equal to it the lowest rows fill what is left.
    threshold = -np.partition(-batch, n - 1, axis=1)[:, n - 1 : n]
    above = batch > threshold
    tied = batch == threshold
    room = n - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= room))
    picked = np.nonzero(chosen)[1].reshape(batch.shape[0], n)  # in item order
    order = np.argsort(-np.take_along_axis(batch, picked, axis=1), axis=1, kind="stable")
    return np.take_along_axis(picked, order, axis=1)


def write_als_artifacts(
    model_dir, out_dir, *, user_index=None, item_index=None, top_n=DEFAULT_TOP_N, limits=DEFAULT_LIMITS
):
    """Write a CF artifacts folder for a saved ALSModel to ``out_dir`` (a new folder); return its path.

    The model is read within ``limits``, and the recommendations it will hold are charged to
    the same budget before they are computed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = read_als_model(model_dir, user_index=user_index, item_index=item_index, limits=limits)
    _charge_recommendations(model, top_n, limits)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    np.save(out_dir / "user_factors.npy", model.user_factors)
    np.save(out_dir / "item_factors.npy", model.item_factors)
    for name, ids in (("customer_mapping.json", model.user_ids), ("item_mapping.json", model.item_ids)):
        (out_dir / name).write_text(json.dumps(dict(zip(ids.tolist(), range(len(ids)), strict=True))))
    rows, scores = top_n_items(model.user_factors, model.item_factors, n=top_n)
    n_users, n = rows.shape
    recs = pa.table(
        {
            "customer_id": pa.array(np.repeat(model.user_ids, n)),
            "item_id": pa.array(model.item_ids[rows.reshape(-1)]),
            "score": pa.array(scores.reshape(-1)),
            "rank": pa.array(np.tile(np.arange(1, n + 1, dtype=np.int32), n_users)),
        }
    )
    pq.write_table(recs, out_dir / "recommendations.parquet")
    metadata = {
        "kind": "cf",
        "source": {"spark_als": os.path.basename(os.path.abspath(model_dir))},
        "params": {"algorithm": "spark.ml.ALS", "factors": model.rank, "top_n": n},
        "library_versions": {"pyspark": model.spark_version},
        "named_by_index": {"users": user_index is not None, "items": item_index is not None},
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return out_dir


def _charge_recommendations(model, top_n, limits):
    """Refuse a model whose top-n table would pass the budget, before any of it is computed."""
    n_users, n = model.user_factors.shape[0], min(int(top_n), model.item_factors.shape[0])
    id_bytes = model.user_ids.dtype.itemsize + model.item_ids.dtype.itemsize
    # Rows and scores, the repeated ids as numpy text and as Arrow strings, rank, and the
    # mappings written as JSON: twice over, for the copies on the way to the Parquet file.
    per_row = 2 * (4 + 4 + id_bytes + id_bytes // 4 + 8 + 4)
    budget = Budget(limits.max_bytes)
    budget.charge(model.user_factors.nbytes + model.item_factors.nbytes, "the factors")
    budget.charge(
        TOP_N_WORK_BYTES + n_users * n * per_row,
        f"the top {n} of {model.item_factors.shape[0]:,} items for {n_users:,} users",
    )
