"""Count exposures and attribute events when they are written, so the results read a few counters.

The rules (docs/EXPERIMENTS.md, "What counts once"):

- ``served`` counts customers, once per experiment however many answers they got; ``answers``
  counts answers.
- An event type counts for an arm at most once per customer and item (``Attribution``'s unique
  constraint), however many events report it and however many answers showed the item.
- An event with a ``request_id`` counts when that answer, of the same customer, served the item
  no later than the event's time plus ``HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS``; one without
  counts when the customer was served the item at most ``HYBRIDREC_ATTRIBUTION_WINDOW`` seconds
  before it (and at most the skew after it).

Whichever of an event and its answer is written second does the matching, each after its own
rows are committed, so two concurrent writes always see each other's rows. Every lookup is an
index probe per row written: the cost of a write never grows with what is already stored.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter

from recommendations.feedback.models import Event

from .models import Attribution, Experiment, ExposedCustomer, Exposure, ServedItem, Tally

logger = logging.getLogger(__name__)

FAILED = Counter(
    "hybridrec_experiment_counting_failures_total",
    "Writes whose counting failed after they were stored (experiment_recount repairs the counts).",
)
EVENT_TYPES = tuple(Event.Type.values)
CHUNK = 500  # rows per statement: far below SQLite's bound-parameter limit
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def _hour(when: datetime) -> datetime:
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.replace(minute=0, second=0, microsecond=0)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _rows(name: str, columns: str, rows: list[tuple]) -> tuple[str, list]:
    """Return a CTE ``name(columns)`` holding ``rows``, and its parameters: one per column, not per value.

    ``columns`` is "name type, …" (PostgreSQL types). PostgreSQL unnests one array per column;
    SQLite reads one JSON array of rows. A query of a few parameters is cheap for the driver to
    bind; thousands of placeholders cost more than the query itself.
    """
    names, types = zip(*(column.split() for column in columns.split(",")), strict=True)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        return f"{name}({', '.join(names)}) AS (SELECT * FROM unnest({arrays}))", [
            list(c) for c in zip(*rows, strict=True)
        ]
    picks = ", ".join(f"value ->> {n}" for n in range(len(names)))
    text = json.dumps([[str(v) if isinstance(v, datetime) else v for v in row] for row in rows])
    return f"{name}({', '.join(names)}) AS (SELECT {picks} FROM json_each(%s))", [text]


def _insert(
    model, columns: str, rows: list[tuple], *, conflict: str = "", returning: str = ""
) -> list[tuple]:
    """Insert ``rows`` into ``model``'s table ``CHUNK`` at a time; return what ``RETURNING`` gave.

    ``columns`` is "name type, …" as for ``_rows``; ``conflict`` the ``ON CONFLICT`` clause's
    target and action, ``returning`` its column list.
    """
    names = ", ".join(column.split()[0] for column in columns.split(","))
    # "WHERE true": SQLite would read ON CONFLICT as a join's ON otherwise.
    tail = f" WHERE true ON CONFLICT {conflict}" if conflict else ""
    tail += f" RETURNING {returning}" if returning else ""
    returned: list[tuple] = []
    for start in range(0, len(rows), CHUNK):
        cte, params = _rows("r", columns, rows[start : start + CHUNK])
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH {cte} INSERT INTO {_table(model)} ({names}) SELECT {names} FROM r{tail}", params
            )
            if returning:
                returned += cursor.fetchall()
    return returned


def _time(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _skew() -> timedelta:
    return timedelta(seconds=settings.HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS)


def _window() -> timedelta:
    return timedelta(seconds=settings.HYBRIDREC_ATTRIBUTION_WINDOW)


def _tally_add(counts: dict[tuple[int, int, str, datetime], int]) -> None:
    """Add ``{(experiment, arm, metric, hour): n}`` to the counters, in key order (no deadlock between writers)."""
    if not counts:
        return
    table = _table(Tally)
    rows = [(e, a, m, _time(h), n) for (e, a, m, h), n in sorted(counts.items())]
    _insert(
        Tally,
        "experiment_id bigint, arm_id bigint, metric text, hour timestamptz, n bigint",
        rows,
        conflict=f"(arm_id, metric, hour) DO UPDATE SET n = {table}.n + excluded.n",
    )


def _attribute(candidates: dict[tuple[int, str, str, str], tuple[int, datetime]]) -> int:
    """Store ``{(experiment, customer, item, type): (arm, at)}`` once each; count the new ones. Return how many."""
    if not candidates:
        return 0
    rows = [(e, arm, c, i, t, _time(at)) for (e, c, i, t), (arm, at) in sorted(candidates.items())]
    inserted = _insert(
        Attribution,
        "experiment_id bigint, arm_id bigint, customer_id text, item_id text, type text, at timestamptz",
        rows,
        conflict="(experiment_id, customer_id, item_id, type) DO NOTHING",
        returning="experiment_id, customer_id, item_id, type",
    )
    added: dict = defaultdict(int)
    for key in inserted:
        arm, at = candidates[tuple(key)]
        added[(key[0], arm, key[3], _hour(at))] += 1
    _tally_add(added)
    return sum(added.values())


def _guarded(what: str, function, *args) -> int:
    """Run a counting step in its own transaction; on a database error log it, count it and return 0.

    The rows it counts are already stored and acknowledged: a failed count must not undo them
    (or have them written again); ``experiment_recount`` repairs the counters.
    """
    try:
        with transaction.atomic():
            return function(*args)
    except DatabaseError:
        FAILED.inc()
        logger.exception("counting %s failed; run experiment_recount to repair", what)
        return 0


# --- answers ----------------------------------------------------------------------------------


def exposures_count(*, rows: list[tuple]) -> int:
    """Count stored answers ``(request_id, experiment_id, arm_id, customer_id, items, served_at)``.

    Record their items and customers, add to the answer and customer counters, then attribute
    the events already stored that they explain. Return how many events were attributed.
    """
    if not rows:
        return 0
    _guarded("answers", _served_record, rows)
    return _guarded("the events of answers", _events_for_answers, rows)


def _served_record(rows: list[tuple]) -> int:
    items = [
        (experiment_id, arm_id, request_id, customer_id, item, _time(served_at))
        for request_id, experiment_id, arm_id, customer_id, shown, served_at in rows
        for item in dict.fromkeys(shown)
    ]
    _insert(
        ServedItem,
        "experiment_id bigint, arm_id bigint, request_id text, customer_id text, item_id text, served_at timestamptz",
        items,
    )
    counts: dict = defaultdict(int)
    first: dict = {}
    for _request_id, experiment_id, arm_id, customer_id, _items, served_at in rows:
        counts[(experiment_id, arm_id, "answer", _hour(served_at))] += 1
        key = (experiment_id, customer_id)
        if key not in first or served_at < first[key][1]:
            first[key] = (arm_id, served_at)
    rows_first = [(e, arm, c, _time(at)) for (e, c), (arm, at) in sorted(first.items())]
    new_customers = _insert(
        ExposedCustomer,
        "experiment_id bigint, arm_id bigint, customer_id text, first_served_at timestamptz",
        rows_first,
        conflict="(experiment_id, customer_id) DO NOTHING",
        returning="experiment_id, customer_id",
    )
    for experiment_id, customer_id in new_customers:
        arm_id, served_at = first[(experiment_id, customer_id)]
        counts[(experiment_id, arm_id, "customer", _hour(served_at))] += 1
    _tally_add(counts)
    return len(rows)


def _periods(experiment_ids) -> dict[int, tuple[datetime, datetime]]:
    """Return ``{experiment: (first, last received_at read)}``: from its start to a window after its end."""
    window = _window()
    return {
        pk: (started, ended + window if ended else FAR_FUTURE)
        for pk, started, ended in Experiment.objects.filter(pk__in=set(experiment_ids)).values_list(
            "pk", "started_at", "ended_at"
        )
    }


def _events_for_answers(rows: list[tuple]) -> int:
    """Attribute stored events to the answers ``rows``: per item shown and type, the earliest one that counts."""
    skew, window = _skew(), _window()
    periods = _periods(row[1] for row in rows)
    pairs = {
        (experiment_id, arm_id, request_id, customer_id, item, served_at)
        for request_id, experiment_id, arm_id, customer_id, items, served_at in rows
        if experiment_id in periods and customer_id
        for item in items
    }
    event = _table(Event)
    types = ", ".join(["(%s)"] * len(EVENT_TYPES))
    candidates: dict = {}
    ordered = sorted(pairs)
    for start in range(0, len(ordered), CHUNK):
        chunk = [
            (e, a, r, c, i, _time(s - skew), _time(s + window), _time(periods[e][0]), _time(periods[e][1]))
            for e, a, r, c, i, s in ordered[start : start + CHUNK]
        ]
        values, params = _rows(
            "v",
            "experiment_id bigint, arm_id bigint, request_id text, customer_id text, item_id text, "
            "lo timestamptz, hi timestamptz, since timestamptz, until timestamptz",
            chunk,
        )
        received = "e.received_at >= v.since AND e.received_at <= v.until"
        # Events naming the answer: one probe of the request_id index per item shown.
        by_request = f"""
            WITH {values}
            SELECT v.experiment_id, v.arm_id, v.customer_id, v.item_id, e.type, MIN(e.at)
            FROM v JOIN {event} e ON e.request_id = v.request_id
            WHERE e.customer_id = v.customer_id AND e.item_id = v.item_id AND e.at >= v.lo AND {received}
            GROUP BY v.experiment_id, v.arm_id, v.customer_id, v.item_id, e.type
        """
        # Events matched by time: one probe of the partial index of events without a request id
        # per item shown; only where one is in the window, the earliest of each type (its first row).
        by_time = f"""
            WITH {values}, t(type) AS (VALUES {types})
            SELECT w.experiment_id, w.arm_id, w.customer_id, w.item_id, t.type,
                (SELECT MIN(e.at) FROM {event} e
                 WHERE e.customer_id = w.customer_id AND e.item_id = w.item_id AND e.type = t.type
                   AND e.request_id IS NULL AND e.at >= w.lo AND e.at <= w.hi
                   AND e.received_at >= w.since AND e.received_at <= w.until)
            FROM (SELECT * FROM v WHERE EXISTS (
                    SELECT 1 FROM {event} e WHERE e.customer_id = v.customer_id AND e.item_id = v.item_id
                    AND e.request_id IS NULL AND e.at >= v.lo AND e.at <= v.hi AND {received})) w
            CROSS JOIN t
        """
        found = []
        with connection.cursor() as cursor:
            cursor.execute(by_request, params)
            found += cursor.fetchall()
            cursor.execute(by_time, params + list(EVENT_TYPES))
            found += cursor.fetchall()
        for experiment_id, arm_id, customer_id, item_id, kind, at in found:
            if at is None:
                continue
            key = (experiment_id, customer_id, item_id, kind)
            at = _aware(at)
            if key not in candidates or at < candidates[key][1]:
                candidates[key] = (arm_id, at)
    return _attribute(candidates)


def _aware(value) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


# --- events -----------------------------------------------------------------------------------


def events_count(*, events: list[Event], now: datetime | None = None) -> int:
    """Attribute stored ``events`` (received at ``now``) to the answers already counted. Return how many counted."""
    if not events:
        return 0
    return _guarded("events", _answers_for_events, events, now or timezone.now())


def _answers_for_events(events: list[Event], now: datetime) -> int:
    window, skew = _window(), _skew()
    # The experiments whose period includes now: running, or ended less than a window ago.
    open_ids = list(
        Experiment.objects.filter(started_at__lte=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=now - window))
        .values_list("pk", flat=True)
    )
    if not open_ids:
        return 0
    rows = sorted(
        {
            (event.customer_id, event.item_id, event.type, event.request_id, event.ts or event.received_at)
            for event in events
        },
        key=lambda row: (row[0], row[1], row[2], row[3] or "", row[4]),
    )
    served, customers = _table(ServedItem), _table(ExposedCustomer)
    candidates: dict = {}
    for experiment_id in open_ids:
        for start in range(0, len(rows), CHUNK):
            chunk = [
                (c, i, t, r, _time(at), _time(at - window), _time(at + skew))
                for c, i, t, r, at in rows[start : start + CHUNK]
            ]
            rows_cte, params = _rows(
                "b",
                "customer_id text, item_id text, type text, request_id text, at timestamptz, "
                "lo timestamptz, hi timestamptz",
                chunk,
            )
            # The arm is the customer's (one probe); the match is one probe of an index of served items.
            query = f"""
                WITH {rows_cte}
                SELECT (SELECT x.arm_id FROM {customers} x
                        WHERE x.experiment_id = %s AND x.customer_id = b.customer_id) AS arm_id,
                    b.customer_id, b.item_id, b.type, b.at
                FROM b
                WHERE (b.request_id IS NOT NULL AND EXISTS (
                        SELECT 1 FROM {served} s WHERE s.request_id = b.request_id AND s.item_id = b.item_id
                        AND s.customer_id = b.customer_id AND s.experiment_id = %s AND s.served_at <= b.hi))
                   OR (b.request_id IS NULL AND EXISTS (
                        SELECT 1 FROM {served} s WHERE s.experiment_id = %s AND s.customer_id = b.customer_id
                        AND s.item_id = b.item_id AND s.served_at >= b.lo AND s.served_at <= b.hi))
            """
            with connection.cursor() as cursor:
                cursor.execute(query, [*params, experiment_id, experiment_id, experiment_id])
                found = cursor.fetchall()
            for arm_id, customer_id, item_id, kind, at in found:
                if arm_id is None:  # served items are written with their customer: a row in flight
                    continue
                key = (experiment_id, customer_id, item_id, kind)
                at = _aware(at)
                if key not in candidates or at < candidates[key][1]:
                    candidates[key] = (arm_id, at)
    return _attribute(candidates)


# --- repair -----------------------------------------------------------------------------------


def experiment_recount(*, experiment: Experiment, chunk: int = 5000) -> int:
    """Rebuild an experiment's counters from its stored answers and events. Return the events attributed.

    For a count a failed write left short, or after the attribution settings changed: every
    answer is counted again in serving order, which attributes every stored event it explains.
    """
    with transaction.atomic():
        for model in (Tally, Attribution, ExposedCustomer, ServedItem):
            model.objects.filter(experiment=experiment).delete()
    attributed = 0
    answers = Exposure.objects.filter(experiment=experiment).order_by("served_at", "pk")
    last = None
    while True:
        page = answers.filter(pk__gt=last) if last is not None else answers
        batch = list(
            page.order_by("pk").values_list(
                "pk", "request_id", "experiment_id", "arm_id", "customer_id", "items", "served_at"
            )[:chunk]
        )
        if not batch:
            return attributed
        last = batch[-1][0]
        with transaction.atomic():
            rows = [row[1:] for row in batch]
            _served_record(rows)
            attributed += _events_for_answers(rows)
