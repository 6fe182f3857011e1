"""The recommendation facade: the seed's call style over the process model cache.

::

    from recommendations.services import HybridRecommendationService

    service = HybridRecommendationService()
    service.get_personalized_cf("customer_123", k=10)
    # [{"item_id": "85123A", "score": 0.91, "rank": 1}, ...]

The ``get_*`` methods return the list of items as the API's ``items`` (each
``{"item_id", "score", "rank"}``, plus ``"title"`` whenever a loaded CB model has titles,
whatever the strategy). ``recommend``, ``recommend_batch`` and ``similar`` return whole API
answers: the items with the strategy, the fallback used (``None``, ``"popular"`` or
``"cf"``), what the scores are (``score_kind``, see ``SCORE_KINDS``) and the versions that
produced them. The API views call these same methods.

Errors: ``ModelUnavailable`` when no model of a needed kind can be served,
``recommendations.engines.UnknownItem`` for an unknown item, ``ValueError`` for a bad ``k``,
``weight`` or ``strategy``.
"""

import math
from collections.abc import Iterable
from typing import cast

from django.conf import settings

from .engines import POPULAR, CFEngine, HybridEngine
from .engines.hybrid import check_weight
from .engines.ranking import check_k
from .serving import CB, CF, LoadedModel, ModelCache, ModelUnavailable, get_cache

# What an answer's scores are; every one is higher-is-better and, but for "cf", within 0..1.
SCORE_KINDS = {
    "cf": "the customer's factors dot the item's (implicit ALS confidence; about 0..1)",
    "cb": "cosine similarity of the item's content vector to the customer's items or the given item (0..1)",
    "hybrid": "weight × CF score + (1 − weight) × CB score, each scaled to 0..1 within the answer",
    "popular": "the item's purchase count as a share of the most popular item's (0..1)",
}

CF_STRATEGY = "cf"
CB_STRATEGY = "cb"
HYBRID_STRATEGY = "hybrid"
STRATEGIES = (CF_STRATEGY, CB_STRATEGY, HYBRID_STRATEGY)
# What a hybrid answer says when no CB model is available and CF answered alone.
CF_ONLY = "cf"
# Item ids to leave out: one id or several.
Exclude = str | Iterable[str]


class HybridRecommendationService:
    """Answer recommendation questions from the models loaded in this process."""

    def __init__(self, cache: ModelCache | None = None):
        self._cache = cache

    @property
    def cache(self) -> ModelCache:
        return self._cache or get_cache()

    # --- the seed's methods: lists of items -----------------------------------------------

    def get_personalized_cf(
        self, customer_id: str, k: int | None = None, exclude: Exclude = ()
    ) -> list[dict]:
        """Return CF recommendations for a customer (popular items for an unknown one)."""
        return self.recommend(customer_id, k=k, strategy=CF_STRATEGY, exclude=exclude)["items"]

    def get_content_based(self, customer_id: str, k: int | None = None, exclude: Exclude = ()) -> list[dict]:
        """Return items like those the customer already has (popular items when there are none)."""
        return self.recommend(customer_id, k=k, strategy=CB_STRATEGY, exclude=exclude)["items"]

    def get_hybrid(
        self, customer_id: str, k: int | None = None, weight: float | None = None, exclude: Exclude = ()
    ) -> list[dict]:
        """Return a blend of CF and CB recommendations, ``weight`` (0..1) on CF."""
        return self.recommend(customer_id, k=k, strategy=HYBRID_STRATEGY, weight=weight, exclude=exclude)[
            "items"
        ]

    def get_similar_items(self, item_id: str, k: int | None = None, exclude: Exclude = ()) -> list[dict]:
        """Return the items most similar to ``item_id`` by content."""
        return self.similar(item_id, k=k, exclude=exclude)["items"]

    # --- whole answers ----------------------------------------------------------------------

    def recommend(
        self,
        customer_id: str,
        *,
        k: int | None = None,
        strategy: str = CF_STRATEGY,
        weight: float | None = None,
        exclude: Exclude = (),
    ) -> dict:
        """Return ``{"customer_id", "strategy", "items", "fallback", "model"}`` for one customer."""
        k, weight, exclude = self._arguments(k, strategy, weight, exclude)
        cf, cb = self._models(strategy)
        return _recommend(customer_id, strategy, k, weight, exclude, cf, cb, titles=self._titles(cb))

    def recommend_batch(
        self,
        customer_ids: Iterable[str],
        *,
        k: int | None = None,
        strategy: str = CF_STRATEGY,
        weight: float | None = None,
        exclude: Exclude = (),
    ) -> list[dict]:
        """Return one ``recommend`` answer per customer id, in the order given, all from the same models."""
        k, weight, exclude = self._arguments(k, strategy, weight, exclude)
        customer_ids = list(customer_ids)
        cf, cb = self._models(strategy)
        titles = self._titles(cb)
        if strategy != CF_STRATEGY:
            return [
                _recommend(customer_id, strategy, k, weight, exclude, cf, cb, titles=titles)
                for customer_id in customer_ids
            ]
        results = cast(CFEngine, cf.engine).recommend_batch(customer_ids, k, exclude=exclude)
        return [
            _answer(customer_id, strategy, result, result.fallback, cf, None, titles=titles)
            for customer_id, result in zip(customer_ids, results, strict=True)
        ]

    def similar(self, item_id: str, *, k: int | None = None, exclude: Exclude = ()) -> dict:
        """Return ``{"item_id", "strategy", "items", "fallback", "model"}``; raise UnknownItem if unknown."""
        k, _, exclude = self._arguments(k, CB_STRATEGY, None, exclude)
        cb = self.cache.get(CB)
        result = cb.engine.similar_items(item_id, k, exclude=exclude)
        answer = _answer(None, CB_STRATEGY, result, None, None, cb)
        del answer["customer_id"]
        return {"item_id": item_id, **answer}

    def health(self) -> dict:
        """Return the cache's health report (see ``ModelCache.health``)."""
        return self.cache.health()

    # --- helpers ------------------------------------------------------------------------------

    def _arguments(self, k, strategy, weight, exclude):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        k = check_k(settings.HYBRIDREC_DEFAULT_K if k is None else k)
        weight = check_weight(settings.HYBRIDREC_HYBRID_WEIGHT if weight is None else weight)
        exclude = [exclude] if isinstance(exclude, str) else list(exclude or ())
        return k, weight, exclude

    def _titles(self, cb: LoadedModel | None) -> LoadedModel | None:
        """Return the CB model whose titles go into answers: the one in use, else one already loaded."""
        return cb if cb is not None else self.cache.peek(CB)

    def _models(self, strategy: str) -> tuple[LoadedModel, LoadedModel | None]:
        """Return the ``(cf, cb)`` models a strategy needs; hybrid does without CB when there is none."""
        cf = self.cache.get(CF)
        if strategy == CF_STRATEGY:
            return cf, None
        if strategy == CB_STRATEGY:
            return cf, self.cache.get(CB)
        try:
            return cf, self.cache.get(CB)
        except ModelUnavailable:
            return cf, None


def _recommend(customer_id, strategy, k, weight, exclude, cf, cb, *, titles=None):
    if strategy == CF_STRATEGY:
        result = cf.engine.recommend(customer_id, k, exclude=exclude)
        return _answer(customer_id, strategy, result, result.fallback, cf, None, titles=titles)
    if strategy == CB_STRATEGY:
        result, fallback = _content_for_customer(cf, cb, customer_id, k, exclude)
        return _answer(customer_id, strategy, result, fallback, cf, cb, titles=titles)
    engine = HybridEngine(cf.engine, cb.engine if cb else None)
    result = engine.recommend(customer_id, k, weight=weight, exclude=exclude)
    fallback = result.fallback or (None if cb else CF_ONLY)
    return _answer(customer_id, strategy, result, fallback, cf, cb, titles=titles)


def _content_for_customer(cf, cb, customer_id, k, exclude):
    """Return ``(result, fallback)``: CB over the customer's items, else CF's popular items."""
    if cf.engine.has_customer(customer_id):
        result = cb.engine.for_items(cf.engine.customer_items(customer_id), k, exclude=exclude)
        if len(result):
            return result, None
    return cf.engine.popular(k, exclude=exclude), POPULAR


def _score_kind(strategy, fallback):
    """Return which of ``SCORE_KINDS`` an answer's scores are."""
    if fallback == POPULAR:
        return POPULAR
    if fallback == CF_ONLY:
        return CF_STRATEGY
    return strategy


def _answer(customer_id, strategy, result, fallback, cf, cb, *, titles=None):
    titles = titles if titles is not None else cb
    items = _items(result, titles)
    # Every version that contributed is named: a CB version that only gave the titles too.
    named_cb = cb if cb is not None else (titles if any("title" in item for item in items) else None)
    return {
        "customer_id": customer_id,
        "strategy": strategy,
        "items": items,
        "fallback": fallback,
        "score_kind": _score_kind(strategy, fallback),
        "model": {
            "cf": cf.reference() if cf else None,
            "cb": named_cb.reference() if named_cb else None,
        },
    }


def _items(result, cb):
    """Return ``[{"item_id", "score", "rank"[, "title"]}]`` as plain Python values; titles come from ``cb``."""
    ids = result.item_ids.tolist()
    scores = [score if math.isfinite(score) else None for score in result.scores.tolist()]
    items = [
        {"item_id": item_id, "score": score, "rank": rank}
        for rank, (item_id, score) in enumerate(zip(ids, scores, strict=True), start=1)
    ]
    if cb is not None and cb.engine.item_titles is not None:
        for item, title in zip(items, cb.engine.titles(ids), strict=True):
            item["title"] = title
    return items
