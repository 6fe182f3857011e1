"""Hostile event batches and asks: what a client sends to inflate or break the experiment counts.

Each builder takes the answer it aims at (``{"request_id", "customer_id", "items"}`` from a real
recommendation answer) where it needs one, and returns JSON-ready batches (``{"events": [...]}``).
The red-team run (``bench/attack.py``) sends them and reads the counts back.
"""

from datetime import UTC, datetime, timedelta, timezone


def _event(kind, answer, item, **extra):
    return {
        "type": kind,
        "customer_id": answer["customer_id"],
        "item_id": item,
        "request_id": answer["request_id"],
        **extra,
    }


def replayed_events(answer, times=300):
    """Return ``times`` copies of one batch (an impression and a click, each with its event id)."""
    item = answer["items"][0]
    batch = {
        "events": [
            _event("impression", answer, item, event_id=f"{answer['request_id']}-impression"),
            _event("click", answer, item, event_id=f"{answer['request_id']}-click"),
        ]
    }
    return [batch] * times


def impressions_flood(answer, count=100):
    """Return one batch of ``count`` impressions for an answer that showed ``len(answer["items"])`` items."""
    items = answer["items"]
    return {"events": [_event("impression", answer, items[i % len(items)]) for i in range(count)]}


def clicks_before_answer(answer, served_at, seconds_before=3600):
    """Return a batch of a click on each shown item, timestamped ``seconds_before`` before the answer."""
    ts = (served_at - timedelta(seconds=seconds_before)).astimezone(UTC).isoformat()
    return {"events": [_event("click", answer, item, ts=ts) for item in answer["items"]]}


def long_customer_id(length=150):
    """Return a customer id of ``length`` characters (the API takes up to 200)."""
    return ("C" * length)[:length]


def ts_with_offset(answer, hours=16):
    """Return a batch of one click whose ``ts`` is now, written with a ``+hours:00`` offset."""
    now = datetime.now(timezone(timedelta(hours=hours)))
    return {"events": [_event("click", answer, answer["items"][0], ts=now.isoformat())]}


def only_refused_events(count=3):
    """Return a batch of ``count`` events each refused on its own (an unknown type)."""
    return {"events": [{"type": "stare", "customer_id": f"C{i}", "item_id": "I1"} for i in range(count)]}
