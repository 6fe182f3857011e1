"""Content-based recommendations: nearest items by cosine similarity."""

from collections.abc import Iterable, Mapping

import numpy as np

from .arrays import optional, required
from .exceptions import InvalidArrays, UnknownItem
from .ids import IdIndex
from .ranking import as_id_list, blocked_mask, check_k, top_k
from .results import Recommendations


class CBEngine:
    """Find items similar to an item, or to a set of items, from a CB array set.

    arrays: the CB arrays of docs/ARCHITECTURE.md. ``item_vectors`` rows are
    L2-normalised, so cosine similarity is a dot product. ``neighbor_*`` and
    ``item_titles`` may be absent; a negative neighbour index is padding.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.items = IdIndex(
            required(arrays, "item_ids"),
            optional(arrays, "item_ids_sorted"),
            optional(arrays, "item_ids_order"),
        )
        n_items = len(self.items)
        self.item_vectors = required(arrays, "item_vectors")
        if self.item_vectors.ndim != 2 or self.item_vectors.shape[0] != n_items:
            raise InvalidArrays(f"item_vectors has shape {self.item_vectors.shape}, expected ({n_items}, d)")
        self.neighbor_indices = optional(arrays, "neighbor_indices")
        self.neighbor_scores = optional(arrays, "neighbor_scores")
        if (self.neighbor_indices is None) != (self.neighbor_scores is None):
            raise InvalidArrays("neighbor_indices and neighbor_scores must be given together")
        if self.neighbor_indices is not None and (
            self.neighbor_indices.ndim != 2
            or self.neighbor_indices.shape[0] != n_items
            or self.neighbor_scores.shape != self.neighbor_indices.shape
        ):
            raise InvalidArrays(
                f"neighbor_indices {self.neighbor_indices.shape} and neighbor_scores "
                f"{self.neighbor_scores.shape} must both have shape ({n_items}, k)"
            )
        self.item_titles = optional(arrays, "item_titles")
        if self.item_titles is not None and self.item_titles.shape != (n_items,):
            raise InvalidArrays(f"item_titles has shape {self.item_titles.shape}, expected ({n_items},)")

    @property
    def n_items(self) -> int:
        return len(self.items)

    def describe_counts(self) -> dict[str, int]:
        """Return the sizes health reports: items and vector dimensions."""
        return {"n_items": self.n_items, "n_dimensions": int(self.item_vectors.shape[1])}

    def warm_up(self) -> None:
        """Find one item's neighbours, touching the pages a first request reads."""
        if self.n_items:
            self.similar_items(str(self.items.ids[0]), 10)

    def has_item(self, item_id: str) -> bool:
        """Return True if the bundle has a vector for ``item_id``."""
        return item_id in self.items

    def title(self, item_id: str) -> str | None:
        """Return the display title of ``item_id``, or None when the bundle has no titles."""
        row = self._row(item_id)
        return None if self.item_titles is None else str(self.item_titles[row])

    def titles(self, item_ids):
        """Return one title (or None) per item id; unknown ids get None."""
        item_ids = as_id_list(item_ids)
        if self.item_titles is None or not item_ids:
            return [None] * len(item_ids)
        rows, found = self.items.rows(item_ids)
        names = self.item_titles[rows].tolist()
        return [name if known else None for name, known in zip(names, found.tolist(), strict=True)]

    def similar_items(self, item_id: str, k: int = 10, exclude: Iterable[str] = ()) -> Recommendations:
        """Return the ``k`` items most similar to ``item_id``, leaving out the item itself and ``exclude``.

        Uses the precomputed neighbours when enough of them survive the
        exclusions, otherwise scores every item; ties by lower item row.
        """
        k = check_k(k)
        row = self._row(item_id)
        blocked = blocked_mask(self.n_items, self.items.known_rows(exclude), np.array([row]))
        wanted = min(k, self.n_items - int(np.count_nonzero(blocked)))
        if self.neighbor_indices is not None:
            neighbors = self.neighbor_indices[row]
            keep = neighbors >= 0
            keep[keep] = ~blocked[neighbors[keep]]
            if np.count_nonzero(keep) >= wanted:
                rows = neighbors[keep][:wanted].astype(np.int64)
                return Recommendations.of_rows(self.items.ids, rows, self.neighbor_scores[row][keep][:wanted])
        scores = self.item_vectors @ self.item_vectors[row]
        rows = top_k(scores, k, blocked)
        return Recommendations.of_rows(self.items.ids, rows, scores[rows])

    def for_items(self, item_ids: Iterable[str], k: int = 10, exclude: Iterable[str] = ()) -> Recommendations:
        """Return the ``k`` items nearest the mean vector of ``item_ids``, leaving those out.

        Ids unknown to this bundle are skipped; when none is known the result
        is empty and choosing a fallback is the caller's job.
        """
        k = check_k(k)
        rows = self.items.known_rows(item_ids)
        if rows.size == 0:
            return Recommendations.empty()
        query = self.item_vectors[rows].mean(axis=0, dtype=np.float64)
        norm = np.linalg.norm(query)
        # Re-normalising keeps the scores cosines; a zero mean (opposite
        # vectors) scores every item 0, which still ranks deterministically.
        if norm > 0:
            query /= norm
        scores = self.item_vectors @ query.astype(self.item_vectors.dtype)
        top = top_k(scores, k, blocked_mask(self.n_items, self.items.known_rows(exclude), rows))
        return Recommendations.of_rows(self.items.ids, top, scores[top])

    def _row(self, item_id):
        row = self.items.row(item_id)
        if row is None:
            raise UnknownItem(item_id)
        return row
