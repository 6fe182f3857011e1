"""Small, real model data for tests: array sets, seed-layout folders and bundles, hostile files."""

import json
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import scipy.sparse

from modelstore.bundles.layout import cb_arrays, cf_arrays, csr_from_rows


def cf_parts(n_users=60, n_items=25, n_factors=6, *, seed=0, recs_per_user=5, recs_share=0.5):
    """Return the seed-layout parts of a small CF model: ids, factors, recs table, interactions."""
    rng = np.random.default_rng(seed)
    user_ids = [f"C{i:04d}" for i in range(n_users)]
    item_ids = [f"I{i:03d}" for i in range(n_items)]
    user_factors = rng.normal(size=(n_users, n_factors)).astype(np.float32)
    item_factors = rng.normal(size=(n_items, n_factors)).astype(np.float32)
    had = rng.random((n_users, n_items)) < 0.15
    interactions = scipy.sparse.csr_matrix(had.astype(np.float32))
    rows = []
    for u in range(int(n_users * recs_share)):
        scores = user_factors[u] @ item_factors.T
        scores[had[u]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:recs_per_user]
        top = top[np.isfinite(scores[top])]
        for rank, i in enumerate(top, start=1):
            rows.append((user_ids[u], item_ids[i], float(scores[i]), rank))
    recs = pd.DataFrame(rows, columns=["customer_id", "item_id", "score", "rank"])
    return {
        "user_ids": user_ids,
        "item_ids": item_ids,
        "user_factors": user_factors,
        "item_factors": item_factors,
        "recs": recs,
        "interactions": interactions,
    }


def cf_array_set(parts=None, **kwargs):
    """Return a native CF array set built from ``cf_parts``."""
    parts = parts or cf_parts(**kwargs)
    user_index = {u: i for i, u in enumerate(parts["user_ids"])}
    item_index = {it: i for i, it in enumerate(parts["item_ids"])}
    recs = parts["recs"]
    indptr, indices, scores = csr_from_rows(
        recs["customer_id"].map(user_index).to_numpy(),
        recs["item_id"].map(item_index).to_numpy(),
        len(parts["user_ids"]),
        values=recs["score"].to_numpy(),
        sort_key=recs["rank"].to_numpy(),
    )
    inter = parts["interactions"]
    return cf_arrays(
        user_ids=parts["user_ids"],
        item_ids=parts["item_ids"],
        user_factors=parts["user_factors"],
        item_factors=parts["item_factors"],
        recs_indptr=indptr,
        recs_indices=indices,
        recs_scores=scores,
        interactions_indptr=inter.indptr,
        interactions_indices=inter.indices,
    )


def cb_array_set(n_items=25, dims=8, *, seed=1, titles=True):
    """Return a native CB array set for items ``I000..``."""
    rng = np.random.default_rng(seed)
    item_ids = [f"I{i:03d}" for i in range(n_items)]
    return cb_arrays(
        item_ids=item_ids,
        item_vectors=rng.normal(size=(n_items, dims)),
        item_titles=[f"PRODUCT {i}" for i in range(n_items)] if titles else None,
    )


def write_cf_folder(
    folder, parts=None, *, mapping_format="pkl", recs_format="parquet", interactions=True, **kwargs
):
    """Write a CF artifacts folder in the seed layout; return its path."""
    parts = parts or cf_parts(**kwargs)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "user_factors.npy", parts["user_factors"])
    np.save(folder / "item_factors.npy", parts["item_factors"])
    for stem, ids in (("customer_mapping", parts["user_ids"]), ("item_mapping", parts["item_ids"])):
        mapping = {key: row for row, key in enumerate(ids)}
        if mapping_format == "json":
            (folder / f"{stem}.json").write_text(json.dumps(mapping))
        else:
            (folder / f"{stem}.pkl").write_bytes(pickle.dumps(mapping))
    if recs_format == "parquet":
        parts["recs"].to_parquet(folder / "recommendations.parquet")
    elif recs_format == "csv":
        parts["recs"].to_csv(folder / "recommendations.csv", index=False)
    elif recs_format == "pandas-pkl":
        parts["recs"].to_pickle(folder / "recs_df.pkl")
    else:
        joblib.dump(parts["recs"], folder / "recs_df.pkl")
    if interactions:
        scipy.sparse.save_npz(folder / "interactions.npz", parts["interactions"])
    (folder / "metadata.json").write_text(
        json.dumps({"model": "test-als", "factors": parts["user_factors"].shape[1]})
    )
    return folder


def write_cb_folder(folder, n_items=25, dims=8, *, seed=1):
    """Write a CB artifacts folder in the seed layout; return its path."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    item_ids = [f"I{i:03d}" for i in range(n_items)]
    np.save(folder / "item_embeddings.npy", rng.normal(size=(n_items, dims)).astype(np.float32))
    (folder / "item_mapping.pkl").write_bytes(pickle.dumps({key: row for row, key in enumerate(item_ids)}))
    pd.DataFrame({"item_id": item_ids, "title": [f"PRODUCT {i}" for i in range(n_items)]}).to_csv(
        folder / "items.csv", index=False
    )
    return folder


def write_seed_bundle(path, parts=None, *, compress=0, **kwargs):
    """Write a seed-layout joblib dict bundle (``recs_df``, factors, mappings, metadata)."""
    parts = parts or cf_parts(**kwargs)
    joblib.dump(
        {
            "recs_df": parts["recs"],
            "user_factors": parts["user_factors"],
            "item_factors": parts["item_factors"],
            "customer_mapping": {key: row for row, key in enumerate(parts["user_ids"])},
            "item_mapping": {key: row for row, key in enumerate(parts["item_ids"])},
            "metadata": {"created": "2024-01-01", "n_factors": np.int64(parts["user_factors"].shape[1])},
        },
        path,
        compress=compress,
    )
    return Path(path)


class Payload:
    """A pickle that creates ``marker`` when unpickled by a loader that runs code."""

    def __init__(self, marker, via="os.system"):
        self.marker = str(marker)
        self.via = via

    def __reduce__(self):
        if self.via == "eval":
            return (eval, (f"open({self.marker!r}, 'w').close()",))
        if self.via == "exec":
            return (exec, (f"open({self.marker!r}, 'w').close()",))
        return (os.system, (f"touch {self.marker}",))
