"""Content-based item vectors: TF-IDF over item texts, reduced by truncated SVD, L2-normalised.

Items whose text is empty, or whose text the reduced space cannot place (every term is
unique to it, so the projection is ~0), are left out of the CB model rather than given
a zero row: a zero vector has no cosine with anything, and every row the model keeps is
a unit vector. They are listed in ``CBModel.skipped_item_ids``; CF still serves them.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .exceptions import TrainingError

DEFAULT_COMPONENTS = 64
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


def train_tfidf_svd(items, *, n_components=DEFAULT_COMPONENTS, random_state=0):
    """Fit TF-IDF + truncated SVD on ``items`` (item_id, title, ...); return a ``CBModel``.

    ``n_components`` is capped below the vocabulary size and the item count; with fewer
    than three items or terms the L2-normalised TF-IDF rows are used as they are.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    if int(n_components) < 1:
        raise TrainingError(f"n_components={n_components!r} must be at least 1.")
    items = items.drop_duplicates("item_id")
    item_ids = items["item_id"].astype(str).to_numpy()
    texts = item_texts(items).to_numpy()
    has_text = np.array([bool(t) for t in texts], dtype=bool)
    if not has_text.any():
        raise TrainingError("No item has any text to build content vectors from.")

    vectorizer = TfidfVectorizer(
        lowercase=True, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", dtype=np.float32
    )
    try:
        tfidf = vectorizer.fit_transform(texts[has_text])
    except ValueError as exc:  # an empty vocabulary
        raise TrainingError(f"Cannot build content vectors: {exc}.") from None
    n_docs, n_terms = tfidf.shape
    components = min(int(n_components), n_terms - 1, n_docs - 1)
    if components >= 2:
        svd = TruncatedSVD(
            n_components=components, algorithm="randomized", n_iter=7, random_state=random_state
        )
        vectors = svd.fit_transform(tfidf).astype(np.float32)
        explained = float(svd.explained_variance_ratio_.sum())
    else:
        vectors = tfidf.toarray().astype(np.float32)
        components, explained = n_terms, 1.0
    norms = np.linalg.norm(vectors, axis=1)
    placed = norms >= MIN_PROJECTED_NORM
    vectors = vectors[placed] / norms[placed, None]

    kept = np.flatnonzero(has_text)[placed]
    skipped = np.setdiff1d(np.arange(len(item_ids)), kept)
    params = {
        "algorithm": "tfidf+truncated_svd",
        "n_components": int(components),
        "requested_components": int(n_components),
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
