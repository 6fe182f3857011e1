"""What an experiment has measured so far, per arm (shown by the API and the admin page).

The counts are the counters ``counting`` keeps as answers and events are written (the rules are
there and in docs/EXPERIMENTS.md, "What counts once"): a read sums at most one row per arm,
metric and hour, whatever the number of events and answers behind them.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from .models import Arm, Tally

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


def _counts(experiment):
    """Return ``{(arm id, metric): n}`` summed over the experiment's counters."""
    rows = (
        Tally.objects.filter(experiment=experiment)
        .values_list("arm_id", "metric")
        .annotate(total=Sum("n"))
        .values_list("arm_id", "metric", "total")
    )
    return {(arm, metric): n for arm, metric, n in rows}


def _aware(value):
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def bucket_size(experiment, now=None):
    """Return "hour" for an experiment that ran up to three days, else "day"."""
    end = experiment.ended_at or now or timezone.now()
    return "hour" if end - experiment.started_at <= HOURLY_UP_TO else "day"


def series(experiment):
    """Return the cumulative click-through per arm per time bucket, with 95 % intervals.

    ``{"bucket": "hour" | "day", "arms": {arm name: [{"at", "impressions", "clicks", "rate",
    "low", "high"}, …]}}``; a bucket with no impression of an arm is left out for that arm.
    """
    from . import stats

    size = bucket_size(experiment)
    rows = [
        {"arm": arm, "type": kind, "bucket": _start_of(_aware(at), size), "n": n}
        for arm, kind, at, n in Tally.objects.filter(
            experiment=experiment, metric__in=("impression", "click")
        ).values_list("arm_id", "metric", "hour", "n")
    ]
    names = dict(Arm.objects.filter(experiment=experiment).values_list("pk", "name"))
    per_arm: dict = {}
    for row in rows:
        bucket = per_arm.setdefault(row["arm"], {}).setdefault(row["bucket"], {})
        bucket[row["type"]] = bucket.get(row["type"], 0) + row["n"]
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


def _start_of(hour, size):
    return hour if size == "hour" else hour.replace(hour=0)


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


def experiment_results(experiment, *, with_series=True):
    """Return per-arm counts, rates with 95 % intervals, the test against the control and the plan.

    ``{"arms": [{"arm", "version", "is_control", "share", "served", "answers", "impressions", "clicks",
    "add_to_carts", "purchases", "ctr": {"rate", "low", "high"}, "conversion": {…},
    "vs_control": {"ctr": {"difference", "z", "p_value", "p_adjusted", "significant"},
    "conversion": {…}} | None}, …], "plan": {…}, "planned_size_reached", "test", "warning",
    "attribution_window_seconds", "clock_skew_seconds"[, "series"]}`` in arm order. ``served``
    counts the customers an arm served, once each; ``answers`` its counted answers (forced
    answers are never counted).
    """
    from . import stats

    counts = _counts(experiment)
    arms = list(Arm.objects.filter(experiment=experiment).order_by("position"))
    rows = []
    for arm in arms:
        row = {
            "arm": arm.name,
            "version": arm.version_id,
            "is_control": arm.is_control,
            "share": arm.share,
            "served": counts.get((arm.pk, "customer"), 0),
            "answers": counts.get((arm.pk, "answer"), 0),
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
        "attribution_window_seconds": settings.HYBRIDREC_ATTRIBUTION_WINDOW,
        "clock_skew_seconds": settings.HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS,
    }
    if with_series:
        result["series"] = series(experiment)
    return result
