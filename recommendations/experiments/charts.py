"""The experiment page's chart: cumulative click-through per arm over time with 95 % intervals, as inline SVG.

matplotlib's object API (``Figure``, no pyplot state), imported only when a page draws a chart.
"""

import io
from datetime import datetime


def rates_chart_svg(series):
    """Return an ``<svg>`` element charting ``results.series(...)``, or "" when there is nothing to draw."""
    if not any(series["arms"].values()):
        return ""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 3.2), layout="constrained")
    axes = figure.subplots()
    for name, points in series["arms"].items():
        if not points:
            continue
        when = [datetime.fromisoformat(point["at"]) for point in points]
        line = axes.plot(when, [point["rate"] for point in points], marker="o", markersize=3, label=name)[0]
        axes.fill_between(
            when,
            [point["low"] for point in points],
            [point["high"] for point in points],
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )
    axes.set_ylabel("click-through (cumulative)")
    axes.set_xlabel(f"time (UTC, {series['bucket']}ly buckets); bands: 95 % Wilson intervals")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.autofmt_xdate()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg") :]
