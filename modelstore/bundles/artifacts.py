"""Read seed-layout artifact folders ("individual files") into array sets.

CF folder: ``user_factors.npy``, ``item_factors.npy``, ``customer_mapping.pkl|json``,
``item_mapping.pkl|json``, ``recommendations.parquet|csv`` or ``recs_df.pkl``, optional
``item_similarity.npy``, ``interactions.npz``, ``item_popularity.npy``, ``metadata.json``.

CB folder: ``item_embeddings.npy`` (or sparse ``item_features.npz``), ``item_mapping.pkl|json``,
optional ``items.csv|parquet``, ``item_similarity.npy``, ``metadata.json``.

Every file is untrusted: ``.npy`` and ``.npz`` load with ``allow_pickle=False``, pickles
through the allow-list unpickler.
"""

import json
from pathlib import Path

import numpy as np

from .exceptions import BundleError, CorruptBundle, IncompatibleBundle
from .layout import cb_arrays, id_array, l2_normalise, top_neighbors
from .safe import BUILTIN_GLOBALS, SEED_GLOBALS, safe_joblib_load, safe_pickle_load
from .seed import _jsonable, cf_from_parts, id_column, ids_from_mapping

CB_NEIGHBORS = 50
# Sparse CB features wider than this are reduced with TruncatedSVD rather than densified.
CB_MAX_DENSE_FEATURES = 1024
CB_REDUCED_COMPONENTS = 128
# Mapping pickles hold builtins; numpy integer rows appear as numpy scalars.
MAPPING_GLOBALS = BUILTIN_GLOBALS | {
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


def _first(folder, names, label, *, required=True):
    for name in names:
        if (folder / name).is_file():
            return folder / name
    if required:
        raise IncompatibleBundle(f"{folder.name}/ has no {label} (looked for {', '.join(names)})")
    return None


def _npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CorruptBundle(f"{path.name} holds Python objects, which are refused") from exc
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc


def _sparse(path):
    import scipy.sparse

    try:
        return scipy.sparse.load_npz(path)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise CorruptBundle(f"{path.name} holds Python objects, which are refused") from exc
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc
    except (OSError, EOFError, KeyError) as exc:
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc


def _mapping(folder, stem):
    path = _first(folder, (f"{stem}.pkl", f"{stem}.json"), f"{stem} (.pkl or .json)")
    if path.suffix == ".json":
        try:
            mapping = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptBundle(f"{path.name} is not valid JSON: {exc}") from exc
    else:
        mapping = safe_pickle_load(path, allowed=MAPPING_GLOBALS)
    if not isinstance(mapping, dict):
        raise CorruptBundle(f"{path.name} holds a {type(mapping).__name__}, not a dict of id → row")
    try:
        return {key: int(value) for key, value in mapping.items()}
    except (TypeError, ValueError):
        raise CorruptBundle(f"{path.name} maps ids to values that are not row numbers") from None


def _table(path):
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype={"customer_id": str, "item_id": str})
        # pandas' to_pickle writes a plain pickle, joblib.dump its own stream: read both.
        return safe_joblib_load(path, allowed=SEED_GLOBALS)
    except BundleError:
        raise
    except Exception as exc:  # parquet and CSV readers raise many kinds; all mean "unreadable"
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc


def _metadata(folder):
    path = folder / "metadata.json"
    if not path.is_file():
        return {}
    try:
        return _jsonable(json.loads(path.read_text()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptBundle(f"metadata.json is not valid JSON: {exc}") from exc


def _folder(path):
    folder = Path(path)
    if not folder.is_dir():
        raise IncompatibleBundle(f"artifacts folder {folder} does not exist or is not a folder")
    return folder


def read_cf_artifacts(path):
    """Return ``(arrays, metadata)`` for a CF artifacts folder."""
    folder = _folder(path)
    recs_path = _first(
        folder,
        ("recommendations.parquet", "recommendations.csv", "recs_df.pkl"),
        "recommendations",
        required=False,
    )
    interactions_path = _first(folder, ("interactions.npz",), "interactions", required=False)
    similarity_path = _first(folder, ("item_similarity.npy",), "item similarity", required=False)
    popularity_path = _first(folder, ("item_popularity.npy",), "item popularity", required=False)
    arrays = cf_from_parts(
        customer_mapping=_mapping(folder, "customer_mapping"),
        item_mapping=_mapping(folder, "item_mapping"),
        user_factors=_npy(_first(folder, ("user_factors.npy",), "user_factors.npy")),
        item_factors=_npy(_first(folder, ("item_factors.npy",), "item_factors.npy")),
        recs=_table(recs_path) if recs_path else None,
        interactions=_sparse(interactions_path) if interactions_path else None,
        item_popularity=_npy(popularity_path) if popularity_path else None,
        item_similarity=_npy(similarity_path) if similarity_path else None,
    )
    return arrays, {"source_layout": "cf-artifacts", "source_metadata": _metadata(folder)}


def _cb_vectors(folder):
    dense = _first(folder, ("item_embeddings.npy",), "item_embeddings.npy", required=False)
    if dense is not None:
        vectors = _npy(dense)
        if vectors.ndim != 2 or vectors.dtype.kind not in "fiu":
            raise CorruptBundle("item_embeddings.npy must be a 2-d numeric array")
        return vectors
    sparse_path = _first(folder, ("item_features.npz",), "item_embeddings.npy or item_features.npz")
    features = _sparse(sparse_path).tocsr().astype(np.float32)
    if features.shape[1] <= CB_MAX_DENSE_FEATURES:
        return features.toarray()
    from sklearn.decomposition import TruncatedSVD

    components = min(CB_REDUCED_COMPONENTS, features.shape[1] - 1, max(features.shape[0] - 1, 1))
    return TruncatedSVD(n_components=components, random_state=0).fit_transform(features)


def _titles(folder, item_ids):
    path = _first(folder, ("items.parquet", "items.csv"), "items table", required=False)
    if path is None:
        return None
    import pandas as pd

    table = _table(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"item_id": str})
    if "item_id" not in table.columns or "title" not in table.columns:
        raise CorruptBundle(f"{path.name} needs the columns item_id and title")
    titles = pd.Series(table["title"].astype(str).to_numpy(), index=id_column(table["item_id"]))
    titles = titles[~titles.index.duplicated()]
    return titles.reindex(item_ids).fillna("").to_numpy(dtype=str)


def read_cb_artifacts(path):
    """Return ``(arrays, metadata)`` for a CB artifacts folder."""
    folder = _folder(path)
    vectors = l2_normalise(_cb_vectors(folder))
    if not np.isfinite(vectors).all():
        raise CorruptBundle("item vectors hold NaN or infinite values")
    item_ids = ids_from_mapping(_mapping(folder, "item_mapping"), vectors.shape[0], "item")
    similarity_path = _first(folder, ("item_similarity.npy",), "item similarity", required=False)
    if similarity_path is not None:
        similarity = _npy(similarity_path)
        if similarity.shape != (len(item_ids), len(item_ids)):
            raise CorruptBundle(f"item_similarity.npy is {similarity.shape}, expected items × items")
        neighbor_indices, neighbor_scores = top_neighbors(similarity, CB_NEIGHBORS)
    else:
        neighbor_indices = neighbor_scores = None
    arrays = cb_arrays(
        item_ids=item_ids,
        item_vectors=vectors,
        item_titles=_titles(folder, id_array(item_ids)),
        neighbor_indices=neighbor_indices,
        neighbor_scores=neighbor_scores,
        normalise=False,
    )
    return arrays, {"source_layout": "cb-artifacts", "source_metadata": _metadata(folder)}
