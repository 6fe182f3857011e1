"""The value every engine returns."""

from dataclasses import dataclass

import numpy as np

POPULAR = "popular"


@dataclass(frozen=True, eq=False)
class Recommendations:
    """Ranked item ids with their scores, best first.

    item_ids: fixed-width unicode (n,); scores: float32 (n,). ``fallback``
    names what was served instead of what was asked for (``"popular"`` when
    the customer is unknown), or is None.
    """

    item_ids: np.ndarray
    scores: np.ndarray
    fallback: str | None = None

    @classmethod
    def empty(cls, fallback=None):
        """Return a result with no items."""
        return cls(np.empty(0, dtype="<U1"), np.empty(0, dtype=np.float32), fallback)

    @classmethod
    def of_rows(cls, item_ids: np.ndarray, rows: np.ndarray, scores) -> "Recommendations":
        """Return the result naming ``item_ids[rows]`` with ``scores`` (made float32), in that order."""
        return cls(item_ids[rows], np.asarray(scores, dtype=np.float32))

    def __len__(self):
        return len(self.item_ids)

    def as_pairs(self):
        """Return ``[(item_id, score), ...]`` as plain Python values."""
        return list(zip(self.item_ids.tolist(), self.scores.tolist(), strict=True))
