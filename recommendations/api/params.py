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

from hybridrec.api.fields import single_values

from ..services import STRATEGIES
from .serializers import MAX_EXCLUDE, MAX_EXCLUDE_TEXT, MAX_ID_LENGTH

_INTEGER = re.compile(r"-?[0-9]{1,18}")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_MAX_NUMBER_TEXT = 64


def _k(raw):
    if not _INTEGER.fullmatch(raw):
        return None, "A valid integer is required."
    value = int(raw)
    if value < 1:
        return None, "Ensure this value is greater than or equal to 1."
    if value > settings.HYBRIDREC_MAX_K:
        return None, f"Ensure this value is less than or equal to {settings.HYBRIDREC_MAX_K}."
    return value, None


def _weight(raw):
    value = float(raw) if len(raw) <= _MAX_NUMBER_TEXT and _NUMBER.fullmatch(raw) else math.nan
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
    # Measured before blanks are dropped, as MAX_EXCLUDE_TEXT and EXCLUDE_PATTERN say in the schema.
    if len(raw) > MAX_EXCLUDE_TEXT:
        return None, f"Ensure this field has no more than {MAX_EXCLUDE_TEXT} characters."
    parts = raw.split(",")
    if len(parts) > MAX_EXCLUDE:
        return None, f"Ensure there are no more than {MAX_EXCLUDE} ids."
    if any(len(part) > MAX_ID_LENGTH for part in parts):
        return None, f"Ensure every id has no more than {MAX_ID_LENGTH} characters."
    return [part.strip() for part in parts if part.strip()], None


_PARSERS = {"k": _k, "weight": _weight, "strategy": _strategy, "exclude": _exclude}


def parse_query(params, names):
    """Return ``{name: value}`` for those of ``names`` present; raise a 400 naming the bad ones.

    Each may be given once; only ``exclude`` may be empty (nothing left out).
    """
    values, errors = {}, {}
    for name, raw in single_values(params, names).items():
        if raw == "":
            if name != "exclude":
                errors[name] = ["This field may not be blank."]
            continue
        value, error = _PARSERS[name](raw)
        if error:
            errors[name] = [error]
        else:
            values[name] = value
    if errors:
        raise ValidationError(errors)
    return values
