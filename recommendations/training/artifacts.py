"""Write CF and CB artifact folders in the seed layout ("individual files").

A folder is written under a temporary name beside its final place and renamed into
place once complete, so an interrupted run never leaves a half-written folder under
the final name. An existing folder of the same name is replaced.

Files written (see docs/ARCHITECTURE.md for what the converter makes of them):

CF folder
    ``user_factors.npy``        float32 (n_users, f)
    ``item_factors.npy``        float32 (n_items, f)
    ``customer_mapping.pkl``    dict customer id (str) -> row (int); or ``.json``
    ``item_mapping.pkl``        dict item id (str) -> row (int); or ``.json``
    ``recommendations.parquet`` customer_id (str), item_id (str), score (float32), rank (int32,
                                1 = best); or ``recommendations.csv``, or ``recs_df.pkl``
    ``interactions.npz``        optional, scipy CSR float32 (n_users, n_items)
    ``item_popularity.npy``     optional, float32 (n_items,): customers per item
    ``metadata.json``

CB folder
    ``item_embeddings.npy``     float32 (n_items, d), L2-normalised rows
    ``item_mapping.pkl``        as above; or ``.json``
    ``items.csv``               optional, item_id, title, ...; or ``items.parquet``
    ``metadata.json``

Pickles hold only builtins (a dict of str -> int, or a DataFrame of object columns for
``recs_df.pkl``), so an allow-list unpickler can read them back.
"""

import datetime as dt
import json
import os
import pickle
import shutil
import uuid
from pathlib import Path

import numpy as np

from .exceptions import TrainingError

RECS_FORMATS = ("parquet", "csv", "pkl")
MAPPING_FORMATS = ("pkl", "json")
ITEMS_FORMATS = ("csv", "parquet")
RECS_COLUMNS = ("customer_id", "item_id", "score", "rank")
NORM_TOLERANCE = 1e-3


def write_cf_artifacts(
    out_dir,
    *,
    user_ids,
    item_ids,
    user_factors,
    item_factors,
    recommendations,
    interactions=None,
    item_popularity=None,
    metadata,
    recs_format="parquet",
    mapping_format="pkl",
):
    """Write a CF artifacts folder to ``out_dir`` and return its path.

    ``user_ids`` (n_users,) and ``item_ids`` (n_items,) name the factor rows.
    ``recommendations`` is a DataFrame with columns customer_id, item_id, score[, rank].
    ``interactions`` is a scipy sparse matrix (n_users, n_items) or None.
    """
    _check_choice("recs_format", recs_format, RECS_FORMATS)
    _check_choice("mapping_format", mapping_format, MAPPING_FORMATS)
    user_ids = _check_ids("user_ids", user_ids)
    item_ids = _check_ids("item_ids", item_ids)
    user_factors = _as_float32_matrix("user_factors", user_factors, rows=len(user_ids))
    item_factors = _as_float32_matrix("item_factors", item_factors, rows=len(item_ids))
    if user_factors.shape[1] != item_factors.shape[1]:
        raise TrainingError(
            f"user_factors has {user_factors.shape[1]} factors but item_factors has {item_factors.shape[1]}."
        )
    recs = _check_recommendations(recommendations)
    if interactions is not None:
        interactions = _check_interactions(interactions, (len(user_ids), len(item_ids)))
    if item_popularity is not None:
        item_popularity = np.asarray(item_popularity, dtype=np.float32)
        if item_popularity.shape != (len(item_ids),):
            raise TrainingError(
                f"item_popularity has shape {item_popularity.shape}, expected ({len(item_ids)},)."
            )

    counts = {
        "n_users": len(user_ids),
        "n_items": len(item_ids),
        "factors": int(user_factors.shape[1]),
        "n_recommendations": len(recs),
        "n_interactions": None if interactions is None else int(interactions.nnz),
    }

    def write(tmp):
        np.save(tmp / "user_factors.npy", user_factors)
        np.save(tmp / "item_factors.npy", item_factors)
        _write_mapping(tmp / f"customer_mapping.{mapping_format}", user_ids)
        _write_mapping(tmp / f"item_mapping.{mapping_format}", item_ids)
        _write_recommendations(tmp, recs, recs_format)
        if interactions is not None:
            import scipy.sparse

            scipy.sparse.save_npz(tmp / "interactions.npz", interactions, compressed=True)
        if item_popularity is not None:
            np.save(tmp / "item_popularity.npy", item_popularity)
        _write_metadata(tmp, "cf", metadata, counts)

    return _write_folder(out_dir, write)


def write_cb_artifacts(
    out_dir, *, item_ids, item_vectors, items=None, metadata, mapping_format="pkl", items_format="csv"
):
    """Write a CB artifacts folder to ``out_dir`` and return its path.

    ``item_vectors`` is (n_items, d) with L2-normalised rows, one per ``item_ids`` entry.
    ``items`` is a DataFrame with an item_id column (title, ... optional) or None; it is
    written in ``item_ids`` order, one row per item.
    """
    _check_choice("mapping_format", mapping_format, MAPPING_FORMATS)
    _check_choice("items_format", items_format, ITEMS_FORMATS)
    item_ids = _check_ids("item_ids", item_ids)
    item_vectors = _as_float32_matrix("item_vectors", item_vectors, rows=len(item_ids))
    norms = np.linalg.norm(item_vectors, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if len(bad):
        raise TrainingError(
            f"item_vectors rows must be L2-normalised; {len(bad)} are not "
            f"(first: item {item_ids[bad[0]]!r}, norm {norms[bad[0]]:.4g})."
        )
    if items is not None:
        if "item_id" not in items.columns:
            raise TrainingError(f"items has no item_id column (found: {', '.join(map(str, items.columns))}).")
        items = (
            items.astype({"item_id": str})
            .drop_duplicates("item_id")
            .set_index("item_id")
            .reindex(item_ids)
            .rename_axis("item_id")
            .reset_index()
        )
    counts = {"n_items": len(item_ids), "dimensions": int(item_vectors.shape[1])}

    def write(tmp):
        np.save(tmp / "item_embeddings.npy", item_vectors)
        _write_mapping(tmp / f"item_mapping.{mapping_format}", item_ids)
        if items is not None:
            if items_format == "csv":
                items.to_csv(tmp / "items.csv", index=False)
            else:
                items.to_parquet(tmp / "items.parquet", index=False)
        _write_metadata(tmp, "cb", metadata, counts)

    return _write_folder(out_dir, write)


def _write_folder(out_dir, write):
    """Run ``write(tmp_dir)`` in a sibling temporary folder, then rename it to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainingError(f"{out_dir} exists and is not a folder.")
    token = uuid.uuid4().hex[:12]
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{token}")
    old = out_dir.with_name(f".{out_dir.name}.old-{token}")
    tmp.mkdir()
    try:
        write(tmp)
        if out_dir.exists():
            # Two renames: the final name is briefly absent but never half-written.
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out_dir.exists():
            os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}.")


def _check_ids(name, ids):
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise TrainingError(f"{name} must be one-dimensional, got shape {ids.shape}.")
    ids = ids.astype(str)
    if len(np.unique(ids)) != len(ids):
        raise TrainingError(f"{name} contains duplicates.")
    return ids


def _as_float32_matrix(name, array, *, rows):
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != rows:
        raise TrainingError(f"{name} has shape {array.shape}, expected ({rows}, d).")
    if not np.isfinite(array).all():
        raise TrainingError(f"{name} contains NaN or infinite values.")
    return array


def _check_recommendations(recs):
    missing = [c for c in RECS_COLUMNS[:3] if c not in recs.columns]
    if missing:
        raise TrainingError(
            f"recommendations lacks column(s) {', '.join(missing)} (found: {', '.join(map(str, recs.columns))})."
        )
    recs = recs.loc[:, [c for c in RECS_COLUMNS if c in recs.columns]].copy()
    recs["customer_id"] = recs["customer_id"].astype(str)
    recs["item_id"] = recs["item_id"].astype(str)
    recs["score"] = recs["score"].astype(np.float32)
    if "rank" in recs.columns:
        recs["rank"] = recs["rank"].astype(np.int32)
    return recs.reset_index(drop=True)


def _check_interactions(interactions, shape):
    import scipy.sparse

    if not scipy.sparse.issparse(interactions):
        raise TrainingError(f"interactions must be a scipy sparse matrix, got {type(interactions).__name__}.")
    if interactions.shape != shape:
        raise TrainingError(f"interactions has shape {interactions.shape}, expected {shape}.")
    csr = scipy.sparse.csr_matrix(interactions, dtype=np.float32)
    csr.sum_duplicates()
    csr.sort_indices()
    return csr


def _write_mapping(path, ids):
    # .tolist() gives builtin str and int: the pickle then names no numpy globals.
    mapping = dict(zip(ids.tolist(), range(len(ids)), strict=True))
    if path.suffix == ".json":
        path.write_text(json.dumps(mapping))
    else:
        with open(path, "wb") as fh:
            pickle.dump(mapping, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _write_recommendations(folder, recs, recs_format):
    if recs_format == "parquet":
        recs.to_parquet(folder / "recommendations.parquet", index=False)
    elif recs_format == "csv":
        recs.to_csv(folder / "recommendations.csv", index=False)
    else:
        # Object columns (not pandas 3's pyarrow strings) keep the pickle's globals to
        # numpy and core pandas classes, the same shape a pandas 2 seed file has.
        import pandas as pd

        recs = recs.astype({"customer_id": object, "item_id": object})
        recs.columns = pd.Index(list(recs.columns), dtype=object)
        with open(folder / "recs_df.pkl", "wb") as fh:
            pickle.dump(recs, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _write_metadata(folder, kind, metadata, counts):
    meta = dict(metadata or {})
    meta.update(counts)
    meta["kind"] = kind
    meta["layout"] = "seed-artifacts"
    meta.setdefault("created_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    meta.setdefault("library_versions", library_versions())
    meta["files"] = sorted([p.name for p in folder.iterdir()] + ["metadata.json"])
    (folder / "metadata.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n"
    )


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def library_versions():
    """Return the versions of the libraries that shaped the artifacts."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("numpy", "pandas", "scipy", "scikit-learn", "implicit", "pyarrow"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions
