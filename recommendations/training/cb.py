"""Content-based item vectors: TF-IDF over item texts, optionally reduced by truncated SVD, L2-normalised.

By default the TF-IDF terms are kept as they are (dense, up to ``DEFAULT_MAX_TERMS`` of the
most frequent terms): short retail titles share few words, and an SVD to 64 components blurs
exactly the word overlaps that make two products alike (see docs/EVALUATION.md). With
``n_components`` the rows are projected onto that many SVD components instead, for a
smaller bundle.

Items whose text is empty, or whose text the reduced space cannot place (every term is
unique to it, so the projection is ~0), are left out of the CB model rather than given
a zero row: a zero vector has no cosine with anything, and every row the model keeps is
a unit vector. They are listed in ``CBModel.skipped_item_ids``; CF still serves them.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse

from .exceptions import TrainingError

# None: no reduction, the TF-IDF terms are the dimensions.
DEFAULT_COMPONENTS = None
# Caps the dimensions (and the bundle: n_items x terms float32) when there is no reduction.
DEFAULT_MAX_TERMS = 4096
# What ``reduce_features`` projects sparse features wider than a bundle takes onto.
DEFAULT_REDUCED_COMPONENTS = 128
# A row whose projection keeps less than this share of its (unit) TF-IDF length has no
# usable direction in the reduced space.
MIN_PROJECTED_NORM = 1e-3


@dataclass
class CBModel:
    """``item_vectors`` float32 (n_items, d), L2-normalised rows, one per ``item_ids`` entry."""

    item_ids: np.ndarray
    item_vectors: np.ndarray
    skipped_item_ids: np.ndarray
    params: dict = field(default_factory=dict)


def item_texts(items):
    """Return one text per item: the title and every other text column, joined by spaces."""
    if "item_id" not in items.columns or "title" not in items.columns:
        raise TrainingError(
            f"items needs item_id and title columns (found: {', '.join(map(str, items.columns))})."
        )
    columns = ["title"] + [
        c
        for c in items.columns
        if c not in ("item_id", "title")
        and (pd.api.types.is_string_dtype(items[c]) or pd.api.types.is_object_dtype(items[c]))
    ]
    parts = [items[c].astype("string").fillna("").str.strip() for c in columns]
    text = parts[0]
    for part in parts[1:]:
        text = text.str.cat(part, sep=" ")
    return text.str.strip().astype(object)


def train_tfidf(items, *, n_components=DEFAULT_COMPONENTS, max_terms=DEFAULT_MAX_TERMS, random_state=0):
    """Fit TF-IDF (and, with ``n_components``, truncated SVD) on ``items`` (item_id, title, ...).

    Return a ``CBModel``. Without ``n_components`` the vectors are the TF-IDF rows over the
    ``max_terms`` most frequent terms. ``n_components`` is capped below the vocabulary size
    and the item count; with fewer than three items or terms the TF-IDF rows are used as
    they are.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    if n_components is not None and int(n_components) < 1:
        raise TrainingError(f"n_components={n_components!r} must be at least 1.")
    if int(max_terms) < 1:
        raise TrainingError(f"max_terms={max_terms!r} must be at least 1.")
    items = items.drop_duplicates("item_id")
    item_ids = items["item_id"].astype(str).to_numpy()
    texts = item_texts(items).to_numpy()
    has_text = np.array([bool(t) for t in texts], dtype=bool)
    if not has_text.any():
        raise TrainingError("No item has any text to build content vectors from.")

    vectorizer = TfidfVectorizer(
        lowercase=True,
        sublinear_tf=True,
        token_pattern=r"(?u)\b\w+\b",
        max_features=int(max_terms),
        dtype=np.float32,
    )
    try:
        tfidf = vectorizer.fit_transform(texts[has_text])
    except ValueError as exc:  # an empty vocabulary
        raise TrainingError(f"Cannot build content vectors: {exc}.") from None
    n_docs, n_terms = tfidf.shape
    components = None if n_components is None else min(int(n_components), n_terms - 1, n_docs - 1)
    if components is not None and components >= 2:
        svd = TruncatedSVD(
            n_components=components, algorithm="randomized", n_iter=7, random_state=random_state
        )
        vectors = svd.fit_transform(tfidf).astype(np.float32)
        explained = float(svd.explained_variance_ratio_.sum())
        algorithm = "tfidf+truncated_svd"
    else:
        vectors = tfidf.toarray().astype(np.float32)
        components, explained, algorithm = n_terms, 1.0, "tfidf"
    norms = np.linalg.norm(vectors, axis=1)
    placed = norms >= MIN_PROJECTED_NORM
    vectors = vectors[placed] / norms[placed, None]

    kept = np.flatnonzero(has_text)[placed]
    skipped = np.setdiff1d(np.arange(len(item_ids)), kept)
    params = {
        "algorithm": algorithm,
        "n_components": int(components),
        "requested_components": None if n_components is None else int(n_components),
        "max_terms": int(max_terms),
        "vocabulary_size": int(n_terms),
        "explained_variance": round(explained, 6),
        "random_state": random_state,
        "items_skipped": len(skipped),
    }
    return CBModel(
        item_ids=item_ids[kept],
        item_vectors=np.ascontiguousarray(vectors, dtype=np.float32),
        skipped_item_ids=item_ids[skipped],
        params=params,
    )


def reduce_features(features, *, n_components=DEFAULT_REDUCED_COMPONENTS, random_state=0):
    """Return sparse item features (n_items, n_features) projected onto truncated-SVD components.

    The result is float32 (n_items, d) with d at most ``n_components`` (and below both sides of
    ``features``), rows in the order given: an ``item_embeddings.npy`` for a CB artifacts folder
    whose ``item_features.npz`` is wider than a bundle takes as it is.
    """
    from sklearn.decomposition import TruncatedSVD

    n_items, n_features = features.shape
    components = min(n_components, n_features - 1, max(n_items - 1, 1))
    return (
        TruncatedSVD(n_components=components, random_state=random_state)
        .fit_transform(features)
        .astype(np.float32)
    )


def reduce_feature_folder(folder, *, n_components=DEFAULT_REDUCED_COMPONENTS):
    """Replace a CB artifacts folder's ``item_features.npz`` by the ``item_embeddings.npy`` it reduces to."""
    folder = Path(folder)
    features = scipy.sparse.load_npz(folder / "item_features.npz").tocsr().astype(np.float32)
    np.save(folder / "item_embeddings.npy", reduce_features(features, n_components=n_components))
    (folder / "item_features.npz").unlink()
