"""Train CF and CB from interaction files and write their artifact folders: the command's service."""

import os
import time
from pathlib import Path

import numpy as np

from . import cb, cf
from .artifacts import write_cb_artifacts, write_cf_artifacts
from .data import load_dataset
from .metrics import ranking_metrics

EVALUATION_K = 10


def train_models(
    *,
    interactions_path,
    out_dir,
    items_path=None,
    data_format="generic",
    split_date=None,
    split_end=None,
    factors=cf.DEFAULT_FACTORS,
    iterations=cf.DEFAULT_ITERATIONS,
    regularization=cf.DEFAULT_REGULARIZATION,
    alpha=cf.DEFAULT_ALPHA,
    top_n=cf.DEFAULT_TOP_N,
    cb_components=cb.DEFAULT_COMPONENTS,
    seed=0,
    recs_format="parquet",
    mapping_format="pkl",
    progress=None,
    show_progress_bars=False,
    engine="implicit",
    spark_master=None,
    spark_work_dir=None,
    limits=None,
):
    """Write ``out_dir/cf``, ``out_dir/cb`` (when there are item texts) and, with a split, ``out_dir/test.csv``.

    With ``split_date`` the models are trained on the interactions before it and the CF
    metadata carries offline metrics at k=10 on the held-out pairs (CF and a
    most-popular baseline); the CB model then covers only items known before the split,
    as CF does. ``split_end`` ends the held-out period (a validation window). Return a
    summary dict (counts, metrics, seconds, paths). ``engine="spark"`` fits CF with Spark
    MLlib's ALS on ``spark_master`` instead of implicit's (see ``training/spark.py``).
    """
    say = progress or (lambda message: None)
    started = time.perf_counter()
    out_dir = Path(out_dir)

    say(f"reading {Path(interactions_path).name} ({data_format})")
    dataset = load_dataset(
        interactions_path,
        items_path=items_path,
        data_format=data_format,
        split_date=split_date,
        split_end=split_end,
        **({"limits": limits} if limits is not None else {}),
    )
    stats = dataset.stats
    say(
        f"  {dataset.n_users} customers, {dataset.n_items} items, {dataset.train.nnz} customer-item pairs"
        + (
            f"; test: {stats['test_pairs']} new pairs for {stats['test_users']} customers "
            f"(dropped {stats['test_dropped_unknown_customer']} of unknown customers, "
            f"{stats['test_dropped_unknown_item']} of unknown items)"
            if dataset.test is not None
            else ""
        )
    )

    if engine == "spark":
        from .spark import train_spark_als

        say(
            f"training Spark ALS ({factors} factors, {iterations} iterations) on {spark_master or 'the default master'}"
        )
        model, item_rows, scores = train_spark_als(
            dataset,
            factors=factors,
            iterations=iterations,
            regularization=regularization,
            alpha=alpha,
            top_n=top_n,
            random_state=seed,
            master=spark_master,
            work_dir=spark_work_dir,
        )
        say(f"  fitted in {model.fit_seconds:.1f} s; top {top_n} for every customer ranked in Spark")
    else:
        say(f"training ALS ({factors} factors, {iterations} iterations)")
        model = cf.train_als(
            dataset.train,
            factors=factors,
            iterations=iterations,
            regularization=regularization,
            alpha=alpha,
            random_state=seed,
            show_progress=show_progress_bars,
        )
        say(f"  fitted in {model.fit_seconds:.1f} s; precomputing top {top_n} for every customer")
        item_rows, scores = cf.recommend_all(model, dataset.train, top_n=top_n)
    popularity = cf.item_popularity(dataset.train)

    metrics = None
    if dataset.test is not None and dataset.test.nnz:
        metrics = _evaluate(model, dataset, item_rows, popularity)
        say(
            f"  test @{EVALUATION_K}: ndcg {metrics['cf']['ndcg']:.4f} (popularity {metrics['popularity']['ndcg']:.4f}), "
            f"precision {metrics['cf']['precision']:.4f} (popularity {metrics['popularity']['precision']:.4f})"
        )

    source = {"interactions": Path(interactions_path).name, "format": data_format}
    if items_path is not None:
        source["items"] = Path(items_path).name
    cf_dir = write_cf_artifacts(
        out_dir / "cf",
        user_ids=dataset.user_ids,
        item_ids=dataset.item_ids,
        user_factors=model.user_factors,
        item_factors=model.item_factors,
        recommendations=cf.recommendations_frame(dataset.user_ids, dataset.item_ids, item_rows, scores),
        interactions=dataset.train,
        item_popularity=popularity,
        metadata={
            "source": source,
            "params": {**model.params, "top_n": int(top_n)},
            "data": stats,
            "offline_metrics": metrics,
            "fit_seconds": round(model.fit_seconds, 3),
        },
        recs_format=recs_format,
        mapping_format=mapping_format,
    )
    say(f"  wrote {cf_dir}")

    cb_dir, cb_items = None, 0
    if dataset.items is not None:
        say(
            "building content vectors (TF-IDF"
            + (f" + SVD, {cb_components} components)" if cb_components else ", terms as dimensions)")
        )
        items = dataset.items
        if dataset.test is not None:
            # Items first sold after the split did not exist when the models were trained.
            items = items[items["item_id"].astype(str).isin(dataset.item_ids)]
        content = cb.train_tfidf(items, n_components=cb_components, random_state=seed)
        cb_dir = write_cb_artifacts(
            out_dir / "cb",
            item_ids=content.item_ids,
            item_vectors=content.item_vectors,
            items=items,
            metadata={
                "source": source,
                "params": content.params,
                "items_not_in_training": int(len(dataset.items) - len(items)),
            },
            mapping_format=mapping_format,
        )
        cb_items = len(content.item_ids)
        say(
            f"  {cb_items} items ({len(content.skipped_item_ids)} without usable text left out); wrote {cb_dir}"
        )
    else:
        say("no item texts (--items): content-based model skipped")

    test_path = None
    if dataset.test is not None:
        test_path = out_dir / "test.csv"
        tmp = test_path.with_name(f".{test_path.name}.tmp-{os.getpid()}")
        dataset.test_pairs().to_csv(tmp, index=False)
        os.replace(tmp, test_path)

    return {
        "users": dataset.n_users,
        "items": dataset.n_items,
        "interactions": int(dataset.train.nnz),
        "factors": int(factors),
        "cb_items": cb_items,
        "fit_seconds": model.fit_seconds,
        "test_pairs": int(dataset.test.nnz) if dataset.test is not None else None,
        "metrics": metrics,
        "cf_dir": cf_dir,
        "cb_dir": cb_dir,
        "test_path": test_path,
        "seconds": time.perf_counter() - started,
    }


def _evaluate(model, dataset, item_rows, popularity):
    """Return CF and most-popular metrics at k=10 on the held-out pairs, training items left out."""
    k = EVALUATION_K
    if item_rows.shape[1] < min(k, dataset.n_items):
        item_rows, _ = cf.recommend_all(model, dataset.train, top_n=k)
    popular_rows, _ = cf.popularity_recommendations(popularity, dataset.train, top_n=k)
    return {
        "k": k,
        "users": int(np.count_nonzero(np.diff(dataset.test.indptr))),
        "cf": ranking_metrics(item_rows[:, :k], dataset.test, k, n_items=dataset.n_items),
        "popularity": ranking_metrics(popular_rows, dataset.test, k, n_items=dataset.n_items),
    }
