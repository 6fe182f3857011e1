"""Read seed-layout artifact folders ("individual files") into array sets.

CF folder: ``user_factors.npy``, ``item_factors.npy``, ``customer_mapping.pkl|json``,
``item_mapping.pkl|json``, ``recommendations.parquet|csv`` or ``recs_df.pkl``, optional
``item_similarity.npy``, ``interactions.npz``, ``item_popularity.npy``, ``metadata.json``.

CB folder: ``item_embeddings.npy`` (or sparse ``item_features.npz``), ``item_mapping.pkl|json``,
optional ``items.csv|parquet``, ``item_similarity.npy``, ``metadata.json``.

Every file is untrusted: ``.npy`` and ``.npz`` load with ``allow_pickle=False``, pickles
through the allow-list unpickler. A folder holding a link that leads outside it is refused;
what each file's header, footer or size claims is charged to one budget for the whole
folder (``Limits.max_bytes``) before it is read (``filebudget``).
"""

import json
import zipfile
from pathlib import Path

import numpy as np

from .exceptions import BundleError, CorruptBundle, IncompatibleBundle, OversizedBundle
from .filebudget import (
    JSON_EXPANSION,
    charge_file,
    charge_npy,
    folder_budget,
    read_csv_frame,
    read_parquet_frame,
    refuse_links_outside,
)
from .layout import cb_arrays, id_array, l2_normalise, top_neighbors
from .limits import DEFAULT_LIMITS
from .metadata import plain_metadata
from .safe import MAPPING_GLOBALS, SEED_GLOBALS, safe_joblib_load, safe_pickle_load
from .seed import cf_from_parts, id_column, ids_from_mapping

CB_NEIGHBORS = 50
# Sparse CB features up to this wide are densified as they are; wider ones must be reduced
# before (training does it: recommendations.training.cb.reduce_features). This package converts
# arrays and never fits a model.
CB_MAX_DENSE_FEATURES = 1024


def _first(folder, names, label, *, required=True):
    for name in names:
        if (folder / name).is_file():
            return folder / name
    if required:
        raise IncompatibleBundle(f"{folder.name}/ has no {label} (looked for {', '.join(names)})")
    return None


def _npy(path, budget):
    # Memory-mapped: a header that claims more than the file holds is refused by numpy, and
    # nothing is allocated until the conversion copies what is really there, once charged.
    try:
        return charge_npy(np.load(path, mmap_mode="r", allow_pickle=False), path.name, budget)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Python objects" in str(exc):
            raise CorruptBundle(f"{path.name} holds Python objects, which are refused") from exc
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc


def _check_npz(path, limits, budget):
    """Refuse an ``.npz`` whose members claim more bytes than the budget, before reading any."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            claimed = sum(member.file_size for member in members)
            if len(members) > 16 or claimed > limits.for_file(path.stat().st_size, compressed=True):
                raise OversizedBundle(
                    f"{path.name} expands to {claimed:,} bytes in {len(members)} members, over the budget "
                    "(HYBRIDREC_MAX_BUNDLE_BYTES, HYBRIDREC_MAX_COMPRESSION_RATIO); nothing was read"
                )
            budget.charge(claimed, f"{path.name} ({len(members)} members)")
            for member in members:
                with archive.open(member) as handle:
                    major, _ = np.lib.format.read_magic(handle)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(handle)
                if dtype.hasobject:
                    raise CorruptBundle(f"{path.name} holds Python objects, which are refused")
                if int(np.prod(shape, dtype=object)) * dtype.itemsize > member.file_size:
                    raise CorruptBundle(f"{path.name}: {member.filename} claims more data than it holds")
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc


def _sparse(path, limits, budget):
    import scipy.sparse

    _check_npz(path, limits, budget)
    try:
        return scipy.sparse.load_npz(path)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise CorruptBundle(f"{path.name} holds Python objects, which are refused") from exc
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc
    except (OSError, EOFError, KeyError) as exc:
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc


def _mapping(folder, stem, limits, budget):
    path = _first(folder, (f"{stem}.pkl", f"{stem}.json"), f"{stem} (.pkl or .json)")
    if path.suffix == ".json":
        charge_file(path, budget, expansion=JSON_EXPANSION)
        try:
            mapping = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptBundle(f"{path.name} is not valid JSON: {exc}") from exc
    else:
        mapping = safe_pickle_load(path, allowed=MAPPING_GLOBALS, limits=limits)
    if not isinstance(mapping, dict):
        raise CorruptBundle(f"{path.name} holds a {type(mapping).__name__}, not a dict of id → row")
    if set(map(type, mapping.values())) <= {int}:
        return mapping  # already id → row; checked in C, no Python loop over ten million ids
    try:
        return {key: int(value) for key, value in mapping.items()}
    except (TypeError, ValueError):
        raise CorruptBundle(f"{path.name} maps ids to values that are not row numbers") from None


def _table(path, limits, budget):
    try:
        if path.suffix == ".parquet":
            return read_parquet_frame(path, budget)
        if path.suffix == ".csv":
            return read_csv_frame(path, limits, budget=budget, dtype={"customer_id": str, "item_id": str})
        # pandas' to_pickle writes a plain pickle, joblib.dump its own stream: read both.
        return safe_joblib_load(path, allowed=SEED_GLOBALS, limits=limits)
    except BundleError:
        raise
    except Exception as exc:  # parquet and CSV readers raise many kinds; all mean "unreadable"
        raise CorruptBundle(f"cannot read {path.name}: {exc}") from exc


def _metadata(folder, budget):
    path = folder / "metadata.json"
    if not path.is_file():
        return {}
    charge_file(path, budget, expansion=JSON_EXPANSION)
    try:
        return plain_metadata(json.loads(path.read_text()))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptBundle(f"metadata.json is not valid JSON: {exc}") from exc


def _folder(path):
    folder = Path(path)
    if not folder.is_dir():
        raise IncompatibleBundle(f"artifacts folder {folder} does not exist or is not a folder")
    refuse_links_outside(folder)
    return folder


def read_cf_artifacts(path, *, limits=DEFAULT_LIMITS):
    """Return ``(arrays, metadata)`` for a CF artifacts folder, reading each file within ``limits``."""
    folder = _folder(path)
    budget = folder_budget(limits)
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
        customer_mapping=_mapping(folder, "customer_mapping", limits, budget),
        item_mapping=_mapping(folder, "item_mapping", limits, budget),
        user_factors=_npy(_first(folder, ("user_factors.npy",), "user_factors.npy"), budget),
        item_factors=_npy(_first(folder, ("item_factors.npy",), "item_factors.npy"), budget),
        recs=_table(recs_path, limits, budget) if recs_path else None,
        interactions=_sparse(interactions_path, limits, budget) if interactions_path else None,
        item_popularity=_npy(popularity_path, budget) if popularity_path else None,
        item_similarity=_npy(similarity_path, budget) if similarity_path else None,
    )
    return arrays, {"source_layout": "cf-artifacts", "source_metadata": _metadata(folder, budget)}


def _cb_vectors(folder, limits, budget):
    dense = _first(folder, ("item_embeddings.npy",), "item_embeddings.npy", required=False)
    if dense is not None:
        vectors = _npy(dense, budget)
        if vectors.ndim != 2 or vectors.dtype.kind not in "fiu":
            raise CorruptBundle("item_embeddings.npy must be a 2-d numeric array")
        return vectors
    sparse_path = _first(folder, ("item_features.npz",), "item_embeddings.npy or item_features.npz")
    features = _sparse(sparse_path, limits, budget).tocsr().astype(np.float32)
    if features.shape[1] > CB_MAX_DENSE_FEATURES:
        raise IncompatibleBundle(
            f"item_features.npz has {features.shape[1]:,} columns, more than the "
            f"{CB_MAX_DENSE_FEATURES:,} a bundle takes as they are: reduce them first (for example to "
            "128 with TruncatedSVD) and give them as item_embeddings.npy"
        )
    # The shape is the file's claim; densified it is rows × columns float32, then normalised.
    budget.charge(2 * 4 * features.shape[0] * features.shape[1], "item_features.npz densified")
    return features.toarray()


def _titles(folder, item_ids, limits, budget):
    path = _first(folder, ("items.parquet", "items.csv"), "items table", required=False)
    if path is None:
        return None
    import pandas as pd

    if path.suffix == ".parquet":
        table = _table(path, limits, budget)
    else:  # what pandas raises on a malformed table is named by read_artifacts' conversion
        table = read_csv_frame(path, limits, budget=budget, dtype={"item_id": str})
    if "item_id" not in table.columns or "title" not in table.columns:
        raise CorruptBundle(f"{path.name} needs the columns item_id and title")
    titles = pd.Series(table["title"].astype(str).to_numpy(), index=id_column(table["item_id"]))
    titles = titles[~titles.index.duplicated()]
    return titles.reindex(item_ids).fillna("").to_numpy(dtype=str)


def read_cb_artifacts(path, *, limits=DEFAULT_LIMITS):
    """Return ``(arrays, metadata)`` for a CB artifacts folder, reading each file within ``limits``."""
    folder = _folder(path)
    budget = folder_budget(limits)
    vectors = l2_normalise(_cb_vectors(folder, limits, budget))
    if not np.isfinite(vectors).all():
        raise CorruptBundle("item vectors hold NaN or infinite values")
    item_ids = ids_from_mapping(_mapping(folder, "item_mapping", limits, budget), vectors.shape[0], "item")
    similarity_path = _first(folder, ("item_similarity.npy",), "item similarity", required=False)
    if similarity_path is not None:
        similarity = _npy(similarity_path, budget)
        if similarity.shape != (len(item_ids), len(item_ids)):
            raise CorruptBundle(f"item_similarity.npy is {similarity.shape}, expected items × items")
        neighbor_indices, neighbor_scores = top_neighbors(similarity, CB_NEIGHBORS)
    else:
        neighbor_indices = neighbor_scores = None
    arrays = cb_arrays(
        item_ids=item_ids,
        item_vectors=vectors,
        item_titles=_titles(folder, id_array(item_ids), limits, budget),
        neighbor_indices=neighbor_indices,
        neighbor_scores=neighbor_scores,
        normalise=False,
    )
    return arrays, {"source_layout": "cb-artifacts", "source_metadata": _metadata(folder, budget)}
