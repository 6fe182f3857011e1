"""Which model answers a request, and what the answer says about it: request id, experiment, forced.

Every answer gets a ``request_id`` made here (a random 128-bit hex string, never taken from the
client, so a client's ``X-Request-ID`` cannot make two answers share an id). While an experiment
runs for the kind that ranks the answer, the customer's arm answers it, the answer names
``{"id", "arm", "version"}`` and the exposure is buffered (``recommendations.experiments.exposures``).
The kind that ranks: CF for ``strategy=cf`` and ``hybrid``, CB for ``strategy=cb`` and similar
items; the other kind, when used, is its active version. Similar items with no ``customer_id``
are assigned by their request id. Staff may force a version (``?version=<id>``, the active one
or an arm of the running experiment): the answer says ``"forced": true`` and is not counted.
"""

import uuid
from collections import defaultdict
from typing import cast

from rest_framework import status

from hybridrec.api.errors import ApiError, invalid
from hybridrec.api.fields import single_values
from modelstore import selectors
from modelstore.selectors import MAX_ID
from recommendations.experiments import exposures

from ..services import CB_STRATEGY, HybridRecommendationService
from ..serving import CB, CF, ModelCache, get_cache
from ..serving.experiments import random_point

_MAX_ID_DIGITS = len(str(MAX_ID))


def ranking_kind(strategy):
    """Return the kind whose model ranks answers of ``strategy``."""
    return CB if strategy == CB_STRATEGY else CF


def new_request_id():
    """Return a fresh server-issued id for one answer."""
    return uuid.uuid4().hex


class Pinned:
    """The model cache as one answer sees it: ``kind`` answered by ``model``, other kinds as cached."""

    def __init__(self, cache, kind, model):
        self._cache, self._kind, self._model = cache, kind, model

    def get(self, kind):
        return self._model if kind == self._kind else self._cache.get(kind)

    def peek(self, kind):
        return self._model if kind == self._kind else self._cache.peek(kind)


def _service(cache, kind, model):
    if model is None:
        return HybridRecommendationService(cache)
    return HybridRecommendationService(cast(ModelCache, Pinned(cache, kind, model)))


def forced_version(request, value, kind):
    """Return the loaded model a staff user forces with ``version``, or None when none is asked.

    A non-staff caller gets 403, a malformed id 400, an unknown version 404, and a version this
    answer cannot come from (of the other kind, or neither active nor an arm) 409.
    """
    if value is None:
        return None
    if not (request.user and request.user.is_staff):
        raise ApiError(
            "Only staff may force a version (version=…).",
            code="forbidden",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    text = str(value)
    if isinstance(value, bool) or not (text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS):
        raise invalid("version", "A valid version id is required.")
    if not 1 <= int(text) <= MAX_ID:
        raise invalid("version", f"Ensure this value is between 1 and {MAX_ID}.")
    version = selectors.version_get(int(text))
    if version.kind != kind:
        raise ApiError(
            f"version {version.label} is a {version.kind} version; this answer is ranked by {kind}",
            code="version_not_served",
            status_code=status.HTTP_409_CONFLICT,
        )
    model = get_cache().model_for_version(kind, version.pk)
    if model is None:
        raise ApiError(
            f"version {version.label} is not served now: only the active version and the arms of "
            "the running experiment can be forced",
            code="version_not_served",
            status_code=status.HTTP_409_CONFLICT,
        )
    return model


def query_version(request):
    """Return the ``version`` query parameter, or None."""
    return single_values(request.query_params, ("version",)).get("version")


def _finish(answer, request_id, experiment, arm, forced, customer_id):
    answer["request_id"] = request_id
    answer["experiment"] = experiment.tag(arm) if arm is not None else None
    answer["forced"] = forced
    if arm is not None:
        exposures.record(
            request_id=request_id,
            experiment_id=experiment.experiment_id,
            arm_id=arm.arm_id,
            customer_id=customer_id or "",
            items=[item["item_id"] for item in answer["items"]],
        )
    return answer


def recommend(request, customer_id, *, strategy, forced_value=None, **options):
    """Return the answer for one customer, from their arm while an experiment runs."""
    kind = ranking_kind(strategy)
    cache = get_cache()
    request_id = new_request_id()
    forced = forced_version(request, forced_value, kind)
    experiment = arm = None
    model = forced
    if forced is None:
        experiment = cache.experiment(kind)
        if experiment is not None:
            arm = experiment.arm_for(customer_id)
            model = arm.model
    answer = _service(cache, kind, model).recommend(customer_id, strategy=strategy, **options)
    return _finish(answer, request_id, experiment, arm, forced is not None, customer_id)


def recommend_batch(request, customer_ids, *, strategy, forced_value=None, **options):
    """Return one answer per customer, in order; each from the customer's arm while an experiment runs."""
    kind = ranking_kind(strategy)
    cache = get_cache()
    forced = forced_version(request, forced_value, kind)
    experiment = None if forced is not None else cache.experiment(kind)
    if experiment is None:
        results = _service(cache, kind, forced).recommend_batch(customer_ids, strategy=strategy, **options)
        return [
            _finish(answer, new_request_id(), None, None, forced is not None, customer_id)
            for answer, customer_id in zip(results, customer_ids, strict=True)
        ]
    by_arm = defaultdict(list)
    for position, customer_id in enumerate(customer_ids):
        by_arm[experiment.assignment.arm_index(customer_id)].append(position)
    results = [None] * len(customer_ids)
    for index, positions in by_arm.items():
        arm = experiment.arms[index]
        ids = [customer_ids[position] for position in positions]
        answers = _service(cache, kind, arm.model).recommend_batch(ids, strategy=strategy, **options)
        for position, answer in zip(positions, answers, strict=True):
            results[position] = _finish(
                answer, new_request_id(), experiment, arm, False, customer_ids[position]
            )
    return results


def similar(request, item_id, *, customer_id=None, forced_value=None, **options):
    """Return items like ``item_id``, from the customer's CB arm (or the request's) while an experiment runs."""
    cache = get_cache()
    request_id = new_request_id()
    forced = forced_version(request, forced_value, CB)
    experiment = arm = None
    model = forced
    if forced is None:
        experiment = cache.experiment(CB)
        if experiment is not None:
            arm = (
                experiment.arm_for(customer_id)
                if customer_id
                else experiment.arm_for_point(random_point(experiment.experiment_id, request_id))
            )
            model = arm.model
    answer = _service(cache, CB, model).similar(item_id, **options)
    return _finish(answer, request_id, experiment, arm, forced is not None, customer_id)
