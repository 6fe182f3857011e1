"""Collaborative-filtering recommendations from a CF array set."""

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import numpy as np

from .arrays import csr, optional, required
from .exceptions import InvalidArrays, UnknownCustomer
from .factors import UserFactors, advise_customer_arrays
from .ids import IdIndex
from .ranking import as_id_list, blocked_mask, check_k, top_k
from .results import POPULAR, Recommendations

_NO_ROWS = np.empty(0, dtype=np.int64)
_NO_SCORES = np.empty(0, dtype=np.float32)

# Users scored together by one matrix product in ``recommend_batch``; bounds
# the score buffer to this many rows times the catalogue size.
BATCH_USERS = 512


class CFEngine:
    """Recommend items to customers from ALS factors and precomputed lists.

    arrays: the CF arrays of docs/ARCHITECTURE.md; ``recs_*``,
    ``interactions_*`` and ``item_similarity`` may be absent. Arrays are used
    as given, so memory-mapped ones stay mapped and are never copied whole.
    Without ``interactions_*`` nothing can be left out as already had.
    ``user_factors`` may be stored as float16, or int8 with ``user_factors_scale``; each
    request converts only the user row it scores (see ``factors.UserFactors``). Memory-mapped
    arrays indexed by customer that add up to 1 GiB or more are read without read-ahead
    (``factors.advise_customer_arrays``).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.users = IdIndex(
            required(arrays, "user_ids"),
            optional(arrays, "user_ids_sorted"),
            optional(arrays, "user_ids_order"),
        )
        self.items = IdIndex(
            required(arrays, "item_ids"),
            optional(arrays, "item_ids_sorted"),
            optional(arrays, "item_ids_order"),
        )
        self.user_factors = required(arrays, "user_factors")
        self.user_rows = UserFactors(self.user_factors, optional(arrays, "user_factors_scale"))
        self.random_access = advise_customer_arrays(arrays)
        self.item_factors = required(arrays, "item_factors")
        self.item_popularity = required(arrays, "item_popularity")
        n_users, n_items = len(self.users), len(self.items)
        if self.user_factors.ndim != 2 or self.user_factors.shape[0] != n_users:
            raise InvalidArrays(f"user_factors has shape {self.user_factors.shape}, expected ({n_users}, f)")
        if self.item_factors.shape != (n_items, self.user_factors.shape[1]):
            raise InvalidArrays(
                f"item_factors has shape {self.item_factors.shape}, "
                f"expected ({n_items}, {self.user_factors.shape[1]})"
            )
        if self.item_popularity.shape != (n_items,):
            raise InvalidArrays(
                f"item_popularity has shape {self.item_popularity.shape}, expected ({n_items},)"
            )
        self.recs = csr(arrays, "recs", ("indptr", "indices", "scores"), n_users)
        self.interactions = csr(arrays, "interactions", ("indptr", "indices"), n_users)
        # Most popular first, ties by lower row; computed once per bundle.
        self._popular_rows = np.lexsort((np.arange(n_items), -self.item_popularity))
        top = float(self.item_popularity.max()) if n_items else 0.0
        self._popularity_share = (
            (self.item_popularity / top).astype(np.float32) if top > 0 else np.zeros(n_items, np.float32)
        )

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_factors(self) -> int:
        return int(self.item_factors.shape[1])

    def describe_counts(self) -> dict[str, int]:
        """Return the sizes health reports: items, customers and factors."""
        return {"n_items": self.n_items, "n_users": self.n_users, "n_factors": self.n_factors}

    def warm_up(self) -> None:
        """Rank the popular items and one customer's, touching the pages a first request reads."""
        if self.n_items == 0:
            return
        self.popular(10)
        if self.n_users:
            self.recommend(str(self.users.ids[0]), 10)

    def has_customer(self, customer_id: str) -> bool:
        """Return True if the bundle has factors for ``customer_id``."""
        return customer_id in self.users

    def customer_items(self, customer_id: str) -> np.ndarray:
        """Return the item ids ``customer_id`` already has: ``<U`` (n,), empty without interactions."""
        u = self.users.row(customer_id)
        if u is None:
            raise UnknownCustomer(customer_id)
        return self.items.ids[self._had(u)]

    def popular(self, k: int = 10, exclude: Iterable[str] = ()) -> Recommendations:
        """Return the ``k`` most popular items, leaving out ``exclude``.

        Scores are on a 0..1 scale like model scores: each item's popularity as a share of
        the most popular item's (float32 (<=k,)).
        """
        k = check_k(k)
        rows = self._popular_rows
        excluded = self.items.known_rows(exclude)
        if excluded.size:
            rows = rows[~blocked_mask(self.n_items, excluded)[rows]]
        rows = rows[:k]
        return Recommendations.of_rows(self.items.ids, rows, self._popularity_share[rows])

    def recommend(
        self, customer_id: str, k: int = 10, exclude: Iterable[str] = (), filter_already_liked: bool = True
    ) -> Recommendations:
        """Return the top ``k`` items for ``customer_id``.

        Precomputed recommendations are served when the customer has some,
        topped up from the factors when exclusions leave fewer than ``k``;
        otherwise ``item_factors @ user_factors[u]`` ranks every item, ties by
        lower item row. An unknown customer gets popular items with
        ``fallback="popular"``. Fewer than ``k`` come back when the catalogue
        runs out.
        """
        k = check_k(k)
        u = self.users.row(customer_id)
        if u is None:
            return dataclasses.replace(self.popular(k, exclude), fallback=POPULAR)
        blocked = self._blocked(u, self.items.known_rows(exclude), filter_already_liked)
        rows, scores = self._precomputed(u, k, blocked)
        if rows.shape[0] < k:
            rows, scores = self._top_up(rows, scores, k, self._scores(u), blocked)
        return Recommendations.of_rows(self.items.ids, rows, scores)

    def recommend_batch(
        self,
        customer_ids: Sequence[str],
        k: int = 10,
        exclude: Iterable[str] = (),
        filter_already_liked: bool = True,
    ) -> list[Recommendations]:
        """Return one ``recommend`` result per customer id, scoring all factor-ranked customers at once."""
        k = check_k(k)
        customer_ids = as_id_list(customer_ids)
        excluded = self.items.known_rows(exclude)
        user_rows, found = self.users.rows(customer_ids)
        results: list[Recommendations | None] = [None] * len(customer_ids)
        pending = []
        popular = None
        for i, (u, known) in enumerate(zip(user_rows.tolist(), found.tolist(), strict=True)):
            if not known:
                if popular is None:
                    popular = dataclasses.replace(self.popular(k, exclude), fallback=POPULAR)
                results[i] = popular
                continue
            blocked = self._blocked(u, excluded, filter_already_liked)
            rows, scores = self._precomputed(u, k, blocked)
            if rows.shape[0] >= k:
                results[i] = Recommendations.of_rows(self.items.ids, rows, scores)
            else:
                pending.append((i, u, rows, scores, blocked))
        for start in range(0, len(pending), BATCH_USERS):
            chunk = pending[start : start + BATCH_USERS]
            score_rows = self.user_rows.rows([u for _, u, *_ in chunk]) @ self.item_factors.T
            for (i, _, rows, scores, blocked), user_scores in zip(chunk, score_rows, strict=True):
                results[i] = Recommendations.of_rows(
                    self.items.ids, *self._top_up(rows, scores, k, user_scores, blocked)
                )
        return cast(list[Recommendations], results)  # every slot is filled by now

    def _scores(self, u):
        """Return float32 (n_items,): every item's score for user row ``u``."""
        return self.item_factors @ self.user_rows.row(u)

    def _had(self, u):
        """Return int (n,): item rows user row ``u`` already has (a view)."""
        if self.interactions is None:
            return _NO_ROWS
        indptr, indices = self.interactions
        return indices[indptr[u] : indptr[u + 1]]

    def _blocked(self, u, excluded, filter_already_liked):
        """Return bool (n_items,): items user row ``u`` must not be shown."""
        had = self._had(u) if filter_already_liked else _NO_ROWS
        return blocked_mask(self.n_items, excluded, had)

    def _precomputed(self, u, k, blocked):
        """Return ``(rows int64 (<=k,), scores (<=k,))`` from user row ``u``'s precomputed list."""
        if self.recs is None:
            return _NO_ROWS, _NO_SCORES
        indptr, indices, scores = self.recs
        start, end = indptr[u], indptr[u + 1]
        rows = indices[start:end]
        keep = ~blocked[rows]
        return rows[keep][:k].astype(np.int64), scores[start:end][keep][:k]

    def _top_up(self, rows, scores, k, user_scores, blocked):
        """Append the best unblocked items from ``user_scores`` not already in ``rows``, up to ``k``.

        user_scores: float (n_items,) and blocked: bool (n_items,), both
        overwritten. Appended items follow the given ones whatever their
        scores: precomputed lists keep their own order.
        """
        blocked[rows] = True
        more = top_k(user_scores, k - rows.shape[0], blocked)
        return np.concatenate((rows, more)), np.concatenate((scores, user_scores[more]))
