"""The read-only panels of a version's page: its metrics table and charts, and the activation timeline.

Each returns HTML rendered from a template, or "" when there is nothing to show.
"""

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format

from ..metrics import EvaluationResult, compare_metrics, version_metrics
from ..models import ActivationEvent

# Who an activation with no user was made by: the commands without --user, or a task they queued.
COMMAND_LINE = "command line"


def username_or_command_line(user):
    """Return who made a change: the user's name, or "command line" when no user was recorded."""
    return user.get_username() if user is not None else COMMAND_LINE


def when(value):
    """Return a date and time as the admin shows it, or "—"."""
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


def metrics_table_html(metrics):
    """Return a version's metrics as an HTML table (strategies × metrics), or "" when there are none."""
    result = EvaluationResult.from_json(metrics)
    if result is None:
        return ""
    names = result.metric_names()
    rows = [
        (strategy, [f"{values[name]:.4f}" if name in values else "—" for name in names])
        for strategy, values in sorted(result.strategies.items())
    ]
    k, test = result.k, result.test_description
    caption = " · ".join(
        part for part in (f"measured at k = {k}" if k else "", f"on {test}" if test else "") if part
    )
    context = {"names": names, "rows": rows, "caption": caption, "sha256": result.test_sha256}
    return render_to_string("admin/modelstore/modelversion/metrics_table.html", context)


CHART_METRICS = ("ndcg", "precision", "recall", "map")
CHART_LABEL_WIDTH = 70
CHART_BAR_WIDTH = 300
CHART_BAR_HEIGHT = 12
CHART_GAP = 8


def metrics_chart_context(version, active):
    """Return the bars of the offline-metrics charts: per metric, per strategy, this version beside the active one.

    The active version's bars are left out when its metrics were measured on other test data or k.
    """
    result = version_metrics(version)
    if result is None:
        return None
    mine = result.strategies
    comparable = (
        active is not None and active.pk != version.pk and compare_metrics(version, active).comparable
    )
    theirs = version_metrics(active).strategies if comparable else {}
    series = [(version.label, "hr-bar-this", mine)] + (
        [(active.label, "hr-bar-active", theirs)] if theirs else []
    )
    charts = []
    for metric in CHART_METRICS:
        strategies = sorted(name for name, values in mine.items() if metric in values)
        if not strategies:
            continue
        top = max(values[metric] for _, _, source in series for values in source.values() if metric in values)
        scale = CHART_BAR_WIDTH / top if top > 0 else 0
        rows, y = [], 0
        for strategy in strategies:
            bars = []
            for offset, (label, css, source) in enumerate(series):
                value = source.get(strategy, {}).get(metric)
                if value is None:
                    continue
                width = max(value * scale, 1)
                bars.append(
                    {
                        "label": label,
                        "css": css,
                        "value": f"{value:.4f}",
                        "y": y + offset * (CHART_BAR_HEIGHT + 2),
                        "width": round(width, 1),
                        "text_x": round(CHART_LABEL_WIDTH + width + 4, 1),
                    }
                )
            rows.append({"strategy": strategy, "y": y, "bars": bars})
            y += len(series) * (CHART_BAR_HEIGHT + 2) + CHART_GAP
        charts.append({"metric": metric, "rows": rows, "height": y})
    return {
        "charts": charts,
        "series": [(label, css) for label, css, _ in series],
        "k": result.k,
        "test": result.test_description,
        "label_width": CHART_LABEL_WIDTH,
        "bar_height": CHART_BAR_HEIGHT,
        "width": CHART_LABEL_WIDTH + CHART_BAR_WIDTH + 60,
        "active_left_out": active is not None and active.pk != version.pk and not comparable,
        "active": active,
    }


def metrics_chart_html(version, active):
    """Return the inline SVG charts of a version's offline metrics, or "" when it has none."""
    context = metrics_chart_context(version, active)
    if context is None:
        return ""
    return render_to_string("admin/modelstore/modelversion/metrics_chart.html", context)


TIMELINE_LENGTH = 20


def activation_timeline(version):
    """Return the latest activations and rollbacks of a version's kind, newest first, marking this version's."""
    events = ActivationEvent.objects.filter(kind=version.kind).select_related("user")[:TIMELINE_LENGTH]
    return [
        {
            "event": event,
            "when": when(event.created_at),
            "who": username_or_command_line(event.user),
            "involves": version.pk in (event.to_version_id, event.from_version_id),
            "to_this": event.to_version_id == version.pk,
        }
        for event in events
    ]


def activation_timeline_html(version):
    """Return the activation timeline of a version's kind as HTML, or "" when nothing was activated."""
    entries = activation_timeline(version)
    if not entries:
        return ""
    return render_to_string(
        "admin/modelstore/modelversion/timeline.html", {"entries": entries, "version": version}
    )
