"""Check reported events one by one: each is kept as a row or refused with its reasons.

Hand-written rather than a DRF serializer per event: a batch holds up to a thousand events and a
serializer costs tens of microseconds per field, which would be most of the endpoint's time.
The OpenAPI schema describes the same fields (``api.serializers.EventIn``).

An event that passes is one both databases store: ids fit their columns (``hybridrec.limits``)
and hold no control character or lone surrogate (PostgreSQL refuses NUL in text, and neither
driver can encode a surrogate); a time is kept in UTC (PostgreSQL refuses offsets past ±15:59)
and only when it falls within the years 1 to 9999 there.
"""

import re
from datetime import UTC, datetime, timedelta

from hybridrec.limits import MAX_ID_LENGTH, MAX_REQUEST_ID_LENGTH

from .models import Event

TYPES = frozenset(Event.Type.values)
FIELDS = frozenset({"type", "customer_id", "item_id", "request_id", "event_id", "ts"})
MAX_TS_TEXT = 40
# A client's clock may run a little ahead of the server's; more than this is a wrong clock.
FUTURE_SKEW = timedelta(minutes=5)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NOT_ISO = "Must be an ISO 8601 date and time string, e.g. 2026-12-01T08:00:00Z."


def shown(name, length=50):
    """Return the start of a client's name fit to quote in an answer (no control or surrogate)."""
    return _SURROGATE.sub("\N{REPLACEMENT CHARACTER}", _CONTROL.sub("?", str(name)[:length]))


def _id_problem(value, max_length):
    if not isinstance(value, str):
        return "Must be a string."
    if not value:
        return "May not be empty."
    if len(value) > max_length:
        return f"Ensure this id has no more than {max_length} characters (it has {len(value)})."
    if _CONTROL.search(value):
        return "Ensure this id has no control characters."
    if _SURROGATE.search(value):
        return "Ensure this id is valid Unicode (it has a lone surrogate)."
    return None


def _ts(value, now, max_age):
    """Return ``(datetime in UTC, None)`` or ``(None, reason)`` for a client's timestamp."""
    if not isinstance(value, str) or len(value) > MAX_TS_TEXT or _CONTROL.search(value):
        return None, _NOT_ISO
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None, _NOT_ISO
    try:
        when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except OverflowError:
        return None, "Is outside the years 1 to 9999 once in UTC."
    # Differences, not now ± a limit: those can fall outside the years a datetime holds.
    if when - now > FUTURE_SKEW:
        return None, "Is in the future (more than 5 minutes ahead of the server's clock)."
    if now - when > max_age:
        return (
            None,
            f"Is older than {int(max_age.total_seconds())} seconds (HYBRIDREC_EVENTS_MAX_AGE_SECONDS).",
        )
    return when, None


def check_event(raw, *, now, max_age):
    """Return ``(Event, None)`` for an acceptable event, else ``(None, {field: [reason]})``."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["An event must be a JSON object."]}
    errors = {}
    unknown = raw.keys() - FIELDS
    if unknown:
        names = ", ".join(sorted(shown(name) for name in unknown)[:5])
        errors["non_field_errors"] = [f"Unknown field(s): {names}; an event has {', '.join(sorted(FIELDS))}."]
    kind = raw.get("type")
    if kind is None:
        errors["type"] = ["This field is required."]
    elif not isinstance(kind, str) or kind not in TYPES:
        errors["type"] = [f"Must be one of {', '.join(sorted(TYPES))}."]
    for field in ("customer_id", "item_id"):
        if field not in raw:
            errors[field] = ["This field is required."]
        else:
            problem = _id_problem(raw[field], MAX_ID_LENGTH)
            if problem:
                errors[field] = [problem]
    request_id = raw.get("request_id")
    if request_id is not None:
        problem = _id_problem(request_id, MAX_REQUEST_ID_LENGTH)
        if problem:
            errors["request_id"] = [problem]
    event_id = raw.get("event_id")
    if event_id is not None:
        problem = _id_problem(event_id, MAX_REQUEST_ID_LENGTH)
        if problem:
            errors["event_id"] = [problem]
    ts = raw.get("ts")
    if ts is not None:
        ts, problem = _ts(ts, now, max_age)
        if problem:
            errors["ts"] = [problem]
    if errors:
        return None, errors
    return (
        Event(
            type=kind,
            customer_id=raw["customer_id"],
            item_id=raw["item_id"],
            request_id=request_id,
            event_id=event_id,
            ts=ts,
            received_at=now,
        ),
        None,
    )
