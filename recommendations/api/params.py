"""Parse the query strings of the recommendation GETs on the hot path.

``serializers.RecommendationQuery`` and ``SimilarQuery`` describe the same parameters for the
OpenAPI schema; parsing them here instead of through a serializer per request matters because
building a DRF serializer (it deep-copies its fields) costs several times the recommendation.
Errors are the same 400s: ``ValidationError({field: [message]})``.
"""

import math
import re

from django.conf import settings
from rest_framework.exceptions import ValidationError

from ..services import STRATEGIES
from .serializers import MAX_EXCLUDE, MAX_ID_LENGTH

_INTEGER = re.compile(r"-?[0-9]{1,18}")
_MAX_NUMBER_TEXT = 64


def _k(raw):
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        return None, "A valid integer is required."
    value = int(text)
    if value < 1:
        return None, "Ensure this value is greater than or equal to 1."
    if value > settings.HYBRIDREC_MAX_K:
        return None, f"Ensure this value is less than or equal to {settings.HYBRIDREC_MAX_K}."
    return value, None


def _weight(raw):
    try:
        value = float(raw) if len(raw) <= _MAX_NUMBER_TEXT else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        return None, "A valid number is required."
    if not 0.0 <= value <= 1.0:
        return None, "Ensure this value is between 0 and 1."
    return value, None


def _strategy(raw):
    if raw in STRATEGIES:
        return raw, None
    return None, f'"{raw[:50]}" is not a valid choice; use one of {", ".join(STRATEGIES)}.'


def _exclude(raw):
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if len(ids) > MAX_EXCLUDE:
        return None, f"Ensure there are no more than {MAX_EXCLUDE} ids."
    if any(len(item_id) > MAX_ID_LENGTH for item_id in ids):
        return None, f"Ensure every id has no more than {MAX_ID_LENGTH} characters."
    return ids, None


_PARSERS = {"k": _k, "weight": _weight, "strategy": _strategy, "exclude": _exclude}


def parse_query(params, names):
    """Return ``{name: value}`` for those of ``names`` present and non-empty; raise a 400 naming the bad ones."""
    values, errors = {}, {}
    for name in names:
        raw = params.get(name)
        if raw is None or raw == "":
            continue
        value, error = _PARSERS[name](raw)
        if error:
            errors[name] = [error]
        else:
            values[name] = value
    if errors:
        raise ValidationError(errors)
    return values
