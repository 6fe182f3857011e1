"""``{% rates_chart results %}``: the results panel's chart (inline SVG), drawn from ``results["series"]``."""

from django import template
from django.utils.safestring import mark_safe

from ..charts import rates_chart_svg

register = template.Library()


@register.simple_tag
def rates_chart(results):
    """Return the chart of ``results["series"]`` (``experiment_results(..., with_series=True)``), or ""."""
    series = results.get("series") if isinstance(results, dict) else None
    if not series:
        return ""
    # The SVG is drawn by matplotlib from numbers and arm names; matplotlib escapes text it writes.
    return mark_safe(rates_chart_svg(series))
