"""What an experiment has measured so far, per arm (shown by the API and the admin page).

Attribution (docs/EXPERIMENTS.md, "Attribution"): an event counts for the arm that served it.
An event with a ``request_id`` counts when an exposure of this experiment has that request id,
the same customer and the item among its served items. An event without one counts when the
same customer was served the item by this experiment at most ``HYBRIDREC_ATTRIBUTION_WINDOW``
seconds before the event's time (the client's ``ts``, else when it was received). An event with
a request id that matches nothing counts nowhere. Counting is done by the database: one grouped
query that joins events to the experiment's exposures (no per-event subquery).
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import NotSupportedError, connection
from django.db.models import Count
from django.utils import timezone

from recommendations.feedback.models import Event

from .models import Arm, Exposure

EVENT_TYPES = ("impression", "click", "add_to_cart", "purchase")
COUNT_NAMES = {
    "impression": "impressions",
    "click": "clicks",
    "add_to_cart": "add_to_carts",
    "purchase": "purchases",
}
# Rates: click-through = clicks / impressions; conversion = purchases / impressions (the share of
# shown items that were bought). The experiment is called on click-through.
PRIMARY_METRIC = "ctr"
HOURLY_UP_TO = timedelta(days=3)


# The event's time, the item test and the window, per database. Dates on SQLite are ISO text
# ("YYYY-MM-DD HH:MM:SS.ffffff", UTC), which compares in time order.
_AT = "COALESCE(e.ts, e.received_at)"
_VENDOR_SQL = {
    "postgresql": {
        "has_item": "x.items @> jsonb_build_array(e.item_id)",
        "earliest": f"{_AT} - (%s * interval '1 second')",
        "hour": "date_trunc('hour', a.at AT TIME ZONE 'UTC')",
        "day": "date_trunc('day', a.at AT TIME ZONE 'UTC')",
    },
    "sqlite": {
        "has_item": "EXISTS (SELECT 1 FROM json_each(x.items) WHERE json_each.value = e.item_id)",
        "earliest": f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {_AT}, '-' || %s || ' seconds')",
        "hour": "strftime('%%Y-%%m-%%d %%H:00:00', a.at)",
        "day": "strftime('%%Y-%%m-%%d 00:00:00', a.at)",
    },
}


def _attributed_counts(experiment, window_seconds, bucket=None):
    """Return rows ``(arm id, event type[, bucket start], count)`` of the experiment's attributed events.

    One query: the events received since the start (and up to a window after the end) joined
    to the experiment's exposures of the same customer, matched by request id or by time, with
    the item among those served; each event is counted once.
    """
    vendor = connection.vendor
    if vendor not in _VENDOR_SQL:
        raise NotSupportedError(f"attribution needs PostgreSQL or SQLite, not {vendor}")
    sql = _VENDOR_SQL[vendor]
    event, exposure = Event._meta.db_table, Exposure._meta.db_table
    received = "e.received_at >= %s"
    # Dates as the ORM would store them (naive UTC text on SQLite), so they compare alike.
    adapt = connection.ops.adapt_datetimefield_value
    params: list = [window_seconds, experiment.pk, adapt(experiment.started_at)]
    if experiment.ended_at is not None:
        received += " AND e.received_at <= %s"
        params.append(adapt(experiment.ended_at + timedelta(seconds=window_seconds)))
    group = "a.arm_id, a.type" + (f", {sql[bucket]}" if bucket else "")
    query = f"""
        SELECT {group}, COUNT(*) FROM (
            SELECT e.id, e.type, MIN(x.arm_id) AS arm_id, MIN({_AT}) AS at
            FROM {event} e JOIN {exposure} x ON x.customer_id = e.customer_id
            WHERE (
                (e.request_id IS NOT NULL AND x.request_id = e.request_id)
                OR (e.request_id IS NULL AND x.served_at <= {_AT} AND x.served_at >= {sql["earliest"]})
            )
            AND x.experiment_id = %s AND {received} AND {sql["has_item"]}
            GROUP BY e.id, e.type
        ) a
        GROUP BY {group}
    """
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _counts(experiment, window):
    return {(arm, kind): n for arm, kind, n in _attributed_counts(experiment, window)}


def _aware(value):
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def bucket_size(experiment, now=None):
    """Return "hour" for an experiment that ran up to three days, else "day"."""
    end = experiment.ended_at or now or timezone.now()
    return "hour" if end - experiment.started_at <= HOURLY_UP_TO else "day"


def series(experiment, *, window=None):
    """Return the cumulative click-through per arm per time bucket, with 95 % intervals.

    ``{"bucket": "hour" | "day", "arms": {arm name: [{"at", "impressions", "clicks", "rate",
    "low", "high"}, …]}}``; a bucket with no impression of an arm is left out for that arm.
    """
    from . import stats

    size = bucket_size(experiment)
    window = settings.HYBRIDREC_ATTRIBUTION_WINDOW if window is None else window
    rows = [
        {"arm": arm, "type": kind, "bucket": _aware(at), "n": n}
        for arm, kind, at, n in _attributed_counts(experiment, window, bucket=size)
        if kind in ("impression", "click")
    ]
    names = dict(Arm.objects.filter(experiment=experiment).values_list("pk", "name"))
    per_arm: dict = {}
    for row in rows:
        per_arm.setdefault(row["arm"], {}).setdefault(row["bucket"], {})[row["type"]] = row["n"]
    out: dict = {}
    for arm_id, buckets in per_arm.items():
        impressions = clicks = 0
        points = []
        for at in sorted(buckets):
            impressions += buckets[at].get("impression", 0)
            clicks += buckets[at].get("click", 0)
            if impressions:
                rate = stats.wilson(clicks, impressions)
                points.append(
                    {"at": at.isoformat(), "impressions": impressions, "clicks": clicks, **rate.as_json()}
                )
        out[names.get(arm_id, str(arm_id))] = points
    return {"bucket": size, "cumulative": True, "arms": out}


def plan(n_candidates):
    """Return the fixed-horizon plan: impressions each arm needs, from the settings' baseline and effect."""
    from . import stats

    alpha = settings.HYBRIDREC_EXPERIMENT_ALPHA
    comparisons = max(n_candidates, 1)
    return {
        "metric": PRIMARY_METRIC,
        "baseline_rate": settings.HYBRIDREC_EXPERIMENT_BASELINE_RATE,
        "min_effect": settings.HYBRIDREC_EXPERIMENT_MIN_EFFECT,
        "alpha": alpha,
        "power": settings.HYBRIDREC_EXPERIMENT_POWER,
        "comparisons": comparisons,
        "impressions_per_arm": stats.sample_size_per_arm(
            settings.HYBRIDREC_EXPERIMENT_BASELINE_RATE,
            settings.HYBRIDREC_EXPERIMENT_MIN_EFFECT,
            alpha=alpha,
            power=settings.HYBRIDREC_EXPERIMENT_POWER,
            comparisons=comparisons,
        ),
    }


def experiment_results(experiment, *, window=None, with_series=True):
    """Return per-arm counts, rates with 95 % intervals, the test against the control and the plan.

    ``{"arms": [{"arm", "version", "is_control", "share", "served", "impressions", "clicks",
    "add_to_carts", "purchases", "ctr": {"rate", "low", "high"}, "conversion": {…},
    "vs_control": {"ctr": {"difference", "z", "p_value", "p_adjusted", "significant"},
    "conversion": {…}} | None}, …], "plan": {…}, "planned_size_reached", "test", "warning",
    "attribution_window_seconds"[, "series"]}`` in arm order. ``served`` counts the answers
    recorded as exposures (forced answers are never recorded).
    """
    from . import stats

    window_seconds = settings.HYBRIDREC_ATTRIBUTION_WINDOW if window is None else window
    served = dict(
        Exposure.objects.filter(experiment=experiment)
        .values_list("arm_id")
        .annotate(n=Count("id"))
        .values_list("arm_id", "n")
    )
    counts = _counts(experiment, window_seconds)
    arms = list(Arm.objects.filter(experiment=experiment).order_by("position"))
    rows = []
    for arm in arms:
        row = {
            "arm": arm.name,
            "version": arm.version_id,
            "is_control": arm.is_control,
            "share": arm.share,
            "served": served.get(arm.pk, 0),
            **{COUNT_NAMES[kind]: counts.get((arm.pk, kind), 0) for kind in EVENT_TYPES},
        }
        row["ctr"] = stats.wilson(row["clicks"], row["impressions"]).as_json()
        row["conversion"] = stats.wilson(row["purchases"], row["impressions"]).as_json()
        row["vs_control"] = None
        rows.append(row)

    the_plan = plan(sum(1 for arm in arms if not arm.is_control))
    control = next((row for row in rows if row["is_control"]), None)
    candidates = [row for row in rows if not row["is_control"]]
    reached = bool(rows) and all(row["impressions"] >= the_plan["impressions_per_arm"] for row in rows)
    if control is not None:
        for metric, successes in (("ctr", "clicks"), ("conversion", "purchases")):
            tests = [
                stats.two_proportion_z_test(
                    control[successes], control["impressions"], row[successes], row["impressions"]
                )
                for row in candidates
            ]
            adjusted = stats.holm([test.p_value for test in tests])
            for row, test, p_adjusted in zip(candidates, tests, adjusted, strict=True):
                row["vs_control"] = row["vs_control"] or {}
                row["vs_control"][metric] = {
                    "difference": test.difference,
                    "z": test.z,
                    "p_value": test.p_value,
                    "p_adjusted": p_adjusted,
                    "significant": bool(
                        reached and p_adjusted is not None and p_adjusted < the_plan["alpha"]
                    ),
                }
    result = {
        "arms": rows,
        "plan": the_plan,
        "planned_size_reached": reached,
        "test": (
            "two-sided pooled two-proportion z-test per candidate against the control, "
            "Holm-adjusted across candidates, read once every arm has the planned impressions"
        ),
        "warning": None
        if reached
        else (
            f"Not yet at the planned {the_plan['impressions_per_arm']:,} impressions per arm: a p-value read now "
            "and acted on when it dips under alpha gives far more false positives than alpha says."
        ),
        "attribution_window_seconds": window_seconds,
    }
    if with_series:
        result["series"] = series(experiment, window=window_seconds)
    return result
